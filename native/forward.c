/* Forwarded commands and their replies as flat bytes (C twins of
 * fastcache.server.forward_codec's py_* functions; the format is described there).
 *
 * Pickling a list of argv lists and a list of replies cost more than running the commands
 * they carry, and putting the replies back in request order took a Python loop per pass.
 * Here both are a single pass over contiguous memory. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "native.h"

static inline void put_u32(char *p, uint32_t v)
{
    memcpy(p, &v, 4);   /* the format is little endian, like every target this builds for */
}

static inline uint32_t get_u32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static int too_long(Py_ssize_t n)
{
    if ((size_t)n > UINT32_MAX) {
        PyErr_SetString(PyExc_OverflowError, "item too long to forward");
        return 1;
    }
    return 0;
}

/* The bytes a list of bytes takes as u32-length-prefixed items; -1 with an error naming
 * what (`what`) must be bytes. */
static Py_ssize_t items_size(PyObject *items, const char *what)
{
    Py_ssize_t i, size = 0;
    for (i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        if (!PyBytes_Check(item) || too_long(PyBytes_GET_SIZE(item))) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, what);
            return -1;
        }
        size += 4 + PyBytes_GET_SIZE(item);
    }
    return size;
}

/* Write the items of a list that items_size checked; the position after them. */
static char *put_items(char *p, PyObject *items)
{
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(items); i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        Py_ssize_t len = PyBytes_GET_SIZE(item);
        put_u32(p, (uint32_t)len);
        memcpy(p + 4, PyBytes_AS_STRING(item), (size_t)len);
        p += 4 + len;
    }
    return p;
}

/* pack_commands(argvs): argvs is a list of lists of bytes. */
static PyObject *pack_commands(PyObject *module, PyObject *argvs)
{
    Py_ssize_t n, i, size = 0;
    if (!PyList_Check(argvs)) {
        PyErr_SetString(PyExc_TypeError, "argvs must be a list of lists of bytes");
        return NULL;
    }
    n = PyList_GET_SIZE(argvs);
    for (i = 0; i < n; i++) {
        PyObject *argv = PyList_GET_ITEM(argvs, i);
        if (!PyList_Check(argv) || too_long(PyList_GET_SIZE(argv))) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "argvs must be a list of lists of bytes");
            return NULL;
        }
        Py_ssize_t args = items_size(argv, "arguments must be bytes");
        if (args < 0)
            return NULL;
        size += 4 + args;
    }
    PyObject *blob = PyBytes_FromStringAndSize(NULL, size);
    if (!blob)
        return NULL;
    char *p = PyBytes_AS_STRING(blob);
    for (i = 0; i < n; i++) {
        PyObject *argv = PyList_GET_ITEM(argvs, i);
        put_u32(p, (uint32_t)PyList_GET_SIZE(argv));
        p = put_items(p + 4, argv);
    }
    return blob;
}

static PyObject *truncated(void)
{
    PyErr_SetString(PyExc_ValueError, "truncated forward payload");
    return NULL;
}

/* unpack_commands(blob) -> list of lists of bytes */
static PyObject *unpack_commands(PyObject *module, PyObject *blob)
{
    if (!PyBytes_Check(blob)) {
        PyErr_SetString(PyExc_TypeError, "blob must be bytes");
        return NULL;
    }
    const char *p = PyBytes_AS_STRING(blob), *end = p + PyBytes_GET_SIZE(blob);
    PyObject *argvs = PyList_New(0);
    if (!argvs)
        return NULL;
    while (p < end) {
        if (end - p < 4)
            goto bad;
        uint32_t argc = get_u32(p);
        p += 4;
        if ((size_t)(end - p) < (size_t)argc * 4)
            goto bad;
        PyObject *argv = PyList_New(argc);
        if (!argv)
            goto fail;
        int rc = PyList_Append(argvs, argv);
        Py_DECREF(argv);
        if (rc < 0)
            goto fail;
        for (uint32_t j = 0; j < argc; j++) {
            if (end - p < 4)
                goto bad;
            uint32_t len = get_u32(p);
            p += 4;
            if ((size_t)(end - p) < len)
                goto bad;
            PyObject *arg = PyBytes_FromStringAndSize(p, len);
            if (!arg)
                goto fail;
            PyList_SET_ITEM(argv, j, arg);
            p += len;
        }
    }
    return argvs;
bad:
    truncated();
fail:
    Py_DECREF(argvs);   /* a half-filled argv holds NULLs, which list_dealloc skips */
    return NULL;
}

/* pack_replies(replies): replies is a list of bytes. */
static PyObject *pack_replies(PyObject *module, PyObject *replies)
{
    if (!PyList_Check(replies)) {
        PyErr_SetString(PyExc_TypeError, "replies must be a list of bytes");
        return NULL;
    }
    Py_ssize_t size = items_size(replies, "replies must be a list of bytes");
    if (size < 0)
        return NULL;
    PyObject *blob = PyBytes_FromStringAndSize(NULL, size);
    if (blob)
        put_items(PyBytes_AS_STRING(blob), replies);
    return blob;
}

/* Cursor over one shard's packed replies. */
typedef struct {
    const char *p, *end;
} Pack;

enum { MAX_SHARDS = 256 };     /* config.py caps shards at 256 */

/* assemble(out, packs) -> bytes: out holds bytes and ints; an int s stands for the next reply
 * in packs[s] (packed by pack_replies), which are taken in order. */
static PyObject *assemble(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[0]) || !PyList_Check(args[1])) {
        PyErr_SetString(PyExc_TypeError, "assemble(out: list, packs: list)");
        return NULL;
    }
    PyObject *out = args[0], *packs = args[1];
    Py_ssize_t n = PyList_GET_SIZE(out), npacks = PyList_GET_SIZE(packs), i, size = 0;
    Pack cur[MAX_SHARDS];
    if (npacks > MAX_SHARDS) {
        PyErr_SetString(PyExc_ValueError, "too many shards");
        return NULL;
    }
    for (i = 0; i < npacks; i++) {
        PyObject *pk = PyList_GET_ITEM(packs, i);
        if (PyBytes_Check(pk)) {
            cur[i].p = PyBytes_AS_STRING(pk);
            cur[i].end = cur[i].p + PyBytes_GET_SIZE(pk);
        } else {
            cur[i].p = cur[i].end = NULL;
        }
    }
    /* First pass: the size, checking every placeholder has its reply. */
    Pack probe[MAX_SHARDS];
    memcpy(probe, cur, sizeof(Pack) * (size_t)npacks);
    for (i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(out, i);
        if (PyBytes_Check(item)) {
            size += PyBytes_GET_SIZE(item);
            continue;
        }
        Py_ssize_t s = PyLong_Check(item) ? PyLong_AsSsize_t(item) : -1;
        if (s < 0 || s >= npacks) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "out items must be bytes or shard numbers");
            return NULL;
        }
        Pack *q = &probe[s];
        if (!q->p || q->end - q->p < 4)
            return truncated();
        uint32_t len = get_u32(q->p);
        if ((size_t)(q->end - q->p - 4) < len)
            return truncated();
        size += len;
        q->p += 4 + len;
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, size);
    if (!result)
        return NULL;
    char *w = PyBytes_AS_STRING(result);
    for (i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(out, i);
        if (PyBytes_Check(item)) {
            memcpy(w, PyBytes_AS_STRING(item), (size_t)PyBytes_GET_SIZE(item));
            w += PyBytes_GET_SIZE(item);
            continue;
        }
        Pack *q = &cur[PyLong_AsSsize_t(item)];
        uint32_t len = get_u32(q->p);
        memcpy(w, q->p + 4, len);
        w += len;
        q->p += 4 + len;
    }
    return result;
}

static PyMethodDef forward_methods[] = {
    {"pack_commands", (PyCFunction)pack_commands, METH_O, "argv lists -> bytes"},
    {"unpack_commands", (PyCFunction)unpack_commands, METH_O, "bytes -> argv lists"},
    {"pack_replies", (PyCFunction)pack_replies, METH_O, "encoded replies -> bytes"},
    {"assemble", (PyCFunction)(void (*)(void))assemble, METH_FASTCALL,
     "a pass's output: its own replies with the forwarded ones in their places"},
    {NULL, NULL, 0, NULL},
};

int native_add_forward(PyObject *module)
{
    return PyModule_AddFunctions(module, forward_methods);
}
