/* Mutation records <-> bytes, for the WAL and replication frames (C twins of
 * fastcache.persistence.walfile.py_encode_payload and
 * fastcache.replication.frames.py_decode_records).
 *
 * A record payload is little endian: u16 db, u32 argc, then per argument a u32 length and
 * its bytes. A RECORDS frame's raw payload is `count` items, each a u32 length and one
 * record payload. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "native.h"

static void put_u16(char *p, unsigned v)
{
    p[0] = (char)(v & 0xff);
    p[1] = (char)((v >> 8) & 0xff);
}

static void put_u32(char *p, uint32_t v)
{
    p[0] = (char)(v & 0xff);
    p[1] = (char)((v >> 8) & 0xff);
    p[2] = (char)((v >> 16) & 0xff);
    p[3] = (char)((v >> 24) & 0xff);
}

static uint32_t get_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
           ((uint32_t)p[3] << 24);
}

/* The (db, argv-as-fast-sequence) of a (seq, db, argv) tuple; the payload size via *size.
 * Returns a new reference to the fast sequence, NULL with an error. */
static PyObject *record_parts(PyObject *record, long *db, Py_ssize_t *size)
{
    PyObject *seq;
    Py_ssize_t i, argc;

    if (!PyTuple_Check(record) || PyTuple_GET_SIZE(record) != 3) {
        PyErr_SetString(PyExc_TypeError, "records must be (seq, db, argv) tuples");
        return NULL;
    }
    *db = PyLong_AsLong(PyTuple_GET_ITEM(record, 1));
    if (*db == -1 && PyErr_Occurred())
        return NULL;
    if (*db < 0 || *db > 0xffff) {
        PyErr_SetString(PyExc_OverflowError, "db out of range for a record");
        return NULL;
    }
    seq = PySequence_Fast(PyTuple_GET_ITEM(record, 2), "argv must be a list or tuple of bytes");
    if (!seq)
        return NULL;
    argc = PySequence_Fast_GET_SIZE(seq);
    *size = 6;
    for (i = 0; i < argc; i++) {
        PyObject *arg = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyBytes_Check(arg) || PyBytes_GET_SIZE(arg) > (Py_ssize_t)UINT32_MAX) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_TypeError, "record arguments must be bytes");
            return NULL;
        }
        *size += 4 + PyBytes_GET_SIZE(arg);
    }
    return seq;
}

/* Write one payload (u16 db, u32 argc, args) at p; the end. */
static char *write_payload(char *p, long db, PyObject *seq)
{
    Py_ssize_t i, argc = PySequence_Fast_GET_SIZE(seq);

    put_u16(p, (unsigned)db);
    put_u32(p + 2, (uint32_t)argc);
    p += 6;
    for (i = 0; i < argc; i++) {
        PyObject *arg = PySequence_Fast_GET_ITEM(seq, i);
        Py_ssize_t n = PyBytes_GET_SIZE(arg);
        put_u32(p, (uint32_t)n);
        memcpy(p + 4, PyBytes_AS_STRING(arg), n);
        p += 4 + n;
    }
    return p;
}

/* encode_items(records, start, stop): records[start:stop], (seq, db, argv) tuples, as
 * frame items: each a u32 length and the record's payload. */
static PyObject *encode_items(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *records, *out;
    Py_ssize_t start, stop, k, total = 0;
    char *p;

    if (nargs != 3 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "encode_items(records: list, start, stop)");
        return NULL;
    }
    records = args[0];
    start = PyLong_AsSsize_t(args[1]);
    stop = PyLong_AsSsize_t(args[2]);
    if ((start == -1 || stop == -1) && PyErr_Occurred())
        return NULL;
    if (start < 0 || stop > PyList_GET_SIZE(records) || start > stop) {
        PyErr_SetString(PyExc_IndexError, "encode_items: start/stop out of range");
        return NULL;
    }
    for (k = start; k < stop; k++) {
        long db;
        Py_ssize_t size;
        PyObject *seq = record_parts(PyList_GET_ITEM(records, k), &db, &size);
        if (!seq)
            return NULL;
        Py_DECREF(seq);
        if (size > (Py_ssize_t)UINT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "record too large for a frame item");
            return NULL;
        }
        total += 4 + size;
    }
    out = PyBytes_FromStringAndSize(NULL, total);
    if (!out)
        return NULL;
    p = PyBytes_AS_STRING(out);
    for (k = start; k < stop; k++) {
        long db;
        Py_ssize_t size;
        PyObject *seq = record_parts(PyList_GET_ITEM(records, k), &db, &size);
        if (!seq) {   /* an argv changed under us (cannot happen with bytes): give up */
            Py_DECREF(out);
            return NULL;
        }
        put_u32(p, (uint32_t)size);
        p = write_payload(p + 4, db, seq);
        Py_DECREF(seq);
    }
    return out;
}

/* encode_payload(db, argv): argv a list or tuple of bytes. */
static PyObject *encode_payload(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *record, *seq, *out;
    Py_ssize_t size;
    long db;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "encode_payload(db, argv)");
        return NULL;
    }
    record = PyTuple_Pack(3, Py_None, args[0], args[1]);
    if (!record)
        return NULL;
    seq = record_parts(record, &db, &size);
    Py_DECREF(record);
    if (!seq)
        return NULL;
    out = PyBytes_FromStringAndSize(NULL, size);
    if (out)
        write_payload(PyBytes_AS_STRING(out), db, seq);
    Py_DECREF(seq);
    return out;
}

/* One record payload (data[0..len)) -> (seq, db, [args]); NULL with ValueError when malformed
 * (the messages name a frame: a WAL reader reports its own place). */
static PyObject *decode_one(const unsigned char *data, Py_ssize_t len, unsigned long long seq)
{
    PyObject *argv, *record;
    Py_ssize_t pos = 6;
    uint32_t argc, i;
    unsigned db;

    if (len < 6) {
        PyErr_Format(PyExc_ValueError, "bad record %llu in frame: too short", seq);
        return NULL;
    }
    db = (unsigned)data[0] | ((unsigned)data[1] << 8);
    argc = get_u32(data + 2);
    if (argc > (uint32_t)((len - 6) / 4)) {
        PyErr_Format(PyExc_ValueError, "bad record %llu in frame: %u arguments in %zd bytes",
                     seq, argc, len);
        return NULL;
    }
    argv = PyList_New(argc);
    if (!argv)
        return NULL;
    for (i = 0; i < argc; i++) {
        uint32_t n;
        PyObject *arg;
        if (len - pos < 4 || (n = get_u32(data + pos), (Py_ssize_t)n > len - pos - 4)) {
            Py_DECREF(argv);
            PyErr_Format(PyExc_ValueError, "bad record %llu in frame: argument %u cut short",
                         seq, i);
            return NULL;
        }
        arg = PyBytes_FromStringAndSize((const char *)data + pos + 4, n);
        if (!arg) {
            Py_DECREF(argv);
            return NULL;
        }
        PyList_SET_ITEM(argv, i, arg);
        pos += 4 + n;
    }
    if (pos != len) {
        Py_DECREF(argv);
        PyErr_Format(PyExc_ValueError,
                     "bad record %llu in frame: payload length does not match its arguments",
                     seq);
        return NULL;
    }
    record = Py_BuildValue("(KIN)", seq, db, argv);
    return record;
}

/* decode_records(payload, count, first_seq, after) -> [(seq, db, argv)] for seq > after. */
static PyObject *decode_records(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const unsigned char *data;
    Py_ssize_t size, pos = 0, count, k;
    unsigned long long first;
    long long after;
    PyObject *out;

    if (nargs != 4 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "decode_records(payload: bytes, count, first_seq, after)");
        return NULL;
    }
    data = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    size = PyBytes_GET_SIZE(args[0]);
    count = PyLong_AsSsize_t(args[1]);
    if (count == -1 && PyErr_Occurred())
        return NULL;
    first = PyLong_AsUnsignedLongLong(args[2]);
    if (first == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    after = PyLong_AsLongLong(args[3]);     /* -1 (or any seq before first): all of them */
    if (after == -1 && PyErr_Occurred())
        return NULL;
    /* First the items' framing, as the Python twin checks it, then the records. */
    for (k = 0; k < count; k++) {
        uint32_t n;
        if (size - pos < 4) {
            PyErr_SetString(PyExc_ValueError, "frame payload ends inside an item length");
            return NULL;
        }
        n = get_u32(data + pos);
        pos += 4;
        if ((Py_ssize_t)n > size - pos) {
            PyErr_SetString(PyExc_ValueError, "frame payload ends inside an item");
            return NULL;
        }
        pos += n;
    }
    if (pos != size) {
        PyErr_Format(PyExc_ValueError, "frame payload has %zd bytes after its %zd items",
                     size - pos, count);
        return NULL;
    }
    out = PyList_New(0);
    if (!out)
        return NULL;
    for (pos = 0, k = 0; k < count; k++) {
        uint32_t n = get_u32(data + pos);
        unsigned long long seq = first + (unsigned long long)k;
        pos += 4;
        if (after < 0 || seq > (unsigned long long)after) {
            PyObject *record = decode_one(data + pos, n, seq);
            if (!record || PyList_Append(out, record) < 0) {
                Py_XDECREF(record);
                Py_DECREF(out);
                return NULL;
            }
            Py_DECREF(record);
        }
        pos += n;
    }
    return out;
}

/* decode_record(payload, seq) -> (seq, db, argv): one WAL record's payload (the C twin of
 * walfile.py_decode_record). */
static PyObject *decode_record(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    unsigned long long seq;

    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "decode_record(payload: bytes, seq)");
        return NULL;
    }
    seq = PyLong_AsUnsignedLongLong(args[1]);
    if (seq == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    return decode_one((const unsigned char *)PyBytes_AS_STRING(args[0]),
                      PyBytes_GET_SIZE(args[0]), seq);
}

static PyMethodDef records_methods[] = {
    {"decode_record", (PyCFunction)(void (*)(void))decode_record, METH_FASTCALL,
     "decode_record(payload, seq) -> (seq, db, argv): one WAL record's payload"},
    {"encode_payload", (PyCFunction)(void (*)(void))encode_payload, METH_FASTCALL,
     "encode_payload(db, argv) -> bytes: one mutation record's payload"},
    {"encode_items", (PyCFunction)(void (*)(void))encode_items, METH_FASTCALL,
     "encode_items(records, start, stop) -> bytes: (seq, db, argv) records as frame items"},
    {"decode_records", (PyCFunction)(void (*)(void))decode_records, METH_FASTCALL,
     "decode_records(payload, count, first_seq, after) -> [(seq, db, argv)] past after"},
    {NULL, NULL, 0, NULL},
};

int native_add_records(PyObject *module)
{
    return PyModule_AddFunctions(module, records_methods);
}
