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

/* argv (a list or tuple of bytes) as a fast sequence, its payload size via *size.
 * Returns a new reference, NULL with an error. */
static PyObject *argv_parts(PyObject *argv, Py_ssize_t *size)
{
    PyObject *seq;
    Py_ssize_t i, argc;

    seq = PySequence_Fast(argv, "argv must be a list or tuple of bytes");
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

/* A db number into *db; -1 with an error when it is not one a record can carry. */
static int record_db(PyObject *obj, long *db)
{
    *db = PyLong_AsLong(obj);
    if (*db == -1 && PyErr_Occurred())
        return -1;
    if (*db < 0 || *db > 0xffff) {
        PyErr_SetString(PyExc_OverflowError, "db out of range for a record");
        return -1;
    }
    return 0;
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

/* encode_entries(entries, pos, db, max_count, max_bytes, force) -> (items, count, pos, db)
 *
 * The records of a journal's entries (argvs, with an int wherever the db changes; db is
 * the one in force at pos) from pos on, as frame items (each a u32 length and the
 * record's payload): at most max_count records and max_bytes of items, except that force
 * takes the first record however large. The returned pos and db are where the next call
 * goes on. Twin of fastcache.replication.frames.py_encode_entries. */
static PyObject *encode_entries(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *entries, *out;
    Py_ssize_t pos, max_count, max_bytes, n, k, end, count = 0, total = 0;
    long db, cur;
    int force;
    char *p;

    if (nargs != 6 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError,
                        "encode_entries(entries: list, pos, db, max_count, max_bytes, force)");
        return NULL;
    }
    entries = args[0];
    pos = PyLong_AsSsize_t(args[1]);
    if (pos == -1 && PyErr_Occurred())
        return NULL;
    if (record_db(args[2], &db) < 0)
        return NULL;
    max_count = PyLong_AsSsize_t(args[3]);
    if (max_count == -1 && PyErr_Occurred())
        return NULL;
    max_bytes = PyLong_AsSsize_t(args[4]);
    if (max_bytes == -1 && PyErr_Occurred())
        return NULL;
    force = PyObject_IsTrue(args[5]);
    if (force < 0)
        return NULL;
    n = PyList_GET_SIZE(entries);
    if (pos < 0 || pos > n) {
        PyErr_SetString(PyExc_IndexError, "encode_entries: pos out of range");
        return NULL;
    }
    /* First pass: how far the limits allow, and the size of the items. */
    cur = db;
    for (k = pos; k < n && count < max_count; k++) {
        PyObject *item = PyList_GET_ITEM(entries, k), *seq;
        Py_ssize_t size;
        if (PyLong_Check(item)) {
            if (record_db(item, &cur) < 0)
                return NULL;
            continue;
        }
        seq = argv_parts(item, &size);
        if (!seq)
            return NULL;
        Py_DECREF(seq);
        if (size > (Py_ssize_t)UINT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "record too large for a frame item");
            return NULL;
        }
        if (total + 4 + size > max_bytes && !(count == 0 && force))
            break;
        total += 4 + size;
        count++;
    }
    end = k;
    out = PyBytes_FromStringAndSize(NULL, total);
    if (!out)
        return NULL;
    /* Second pass: write them (nothing ran in between, so the entries are as measured). */
    p = PyBytes_AS_STRING(out);
    cur = db;
    for (k = pos; k < end; k++) {
        PyObject *item = PyList_GET_ITEM(entries, k), *seq;
        Py_ssize_t size;
        if (PyLong_Check(item)) {
            cur = PyLong_AsLong(item);
            continue;
        }
        seq = argv_parts(item, &size);
        if (!seq) {
            Py_DECREF(out);
            return NULL;
        }
        put_u32(p, (uint32_t)size);
        p = write_payload(p + 4, cur, seq);
        Py_DECREF(seq);
    }
    return Py_BuildValue("(Nnnl)", out, count, end, cur);
}

/* encode_payload(db, argv): argv a list or tuple of bytes. */
static PyObject *encode_payload(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *seq, *out;
    Py_ssize_t size;
    long db;

    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "encode_payload(db, argv)");
        return NULL;
    }
    if (record_db(args[0], &db) < 0)
        return NULL;
    seq = argv_parts(args[1], &size);
    if (!seq)
        return NULL;
    out = PyBytes_FromStringAndSize(NULL, size);
    if (out)
        write_payload(PyBytes_AS_STRING(out), db, seq);
    Py_DECREF(seq);
    return out;
}

/* One record payload (data[0..len)) -> its argv list, its db via *db; NULL with ValueError
 * when malformed (the messages name a frame: a WAL reader reports its own place).
 *
 * With name (not NULL), a command name equal to *name is that same object, and *name
 * becomes this record's name (borrowed: the caller keeps the argvs): records of one frame
 * mostly share a few names, and a shared object also keeps its hash for the command
 * lookup. */
static PyObject *decode_argv(const unsigned char *data, Py_ssize_t len, unsigned long long seq,
                             unsigned *db, PyObject **name)
{
    PyObject *argv;
    Py_ssize_t pos = 6;
    uint32_t argc, i;

    if (len < 6) {
        PyErr_Format(PyExc_ValueError, "bad record %llu in frame: too short", seq);
        return NULL;
    }
    *db = (unsigned)data[0] | ((unsigned)data[1] << 8);
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
        if (i == 0 && name && *name && PyBytes_GET_SIZE(*name) == (Py_ssize_t)n &&
                memcmp(PyBytes_AS_STRING(*name), data + pos + 4, n) == 0) {
            arg = *name;
            Py_INCREF(arg);
        }
        else {
            arg = PyBytes_FromStringAndSize((const char *)data + pos + 4, n);
            if (!arg) {
                Py_DECREF(argv);
                return NULL;
            }
            if (i == 0 && name)
                *name = arg;
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
    return argv;
}

/* (seq, db, x), stealing x; NULL with an error (x released). */
static PyObject *seq_db_tuple(unsigned long long seq, unsigned db, PyObject *x)
{
    PyObject *tuple = PyTuple_New(3), *item;

    if (!tuple) {
        Py_DECREF(x);
        return NULL;
    }
    PyTuple_SET_ITEM(tuple, 2, x);
    if (!(item = PyLong_FromUnsignedLongLong(seq))) {
        Py_DECREF(tuple);
        return NULL;
    }
    PyTuple_SET_ITEM(tuple, 0, item);
    if (!(item = PyLong_FromUnsignedLong(db))) {
        Py_DECREF(tuple);
        return NULL;
    }
    PyTuple_SET_ITEM(tuple, 1, item);
    return tuple;
}

/* One record payload -> (seq, db, argv); NULL with an error. */
static PyObject *decode_one(const unsigned char *data, Py_ssize_t len, unsigned long long seq)
{
    unsigned db;
    PyObject *argv = decode_argv(data, len, seq, &db, NULL);

    return argv ? seq_db_tuple(seq, db, argv) : NULL;
}

/* The arguments of decode_records / decode_runs, with the payload's items checked to fill
 * it exactly, as the Python twin checks them before any record; -1 with an error. */
static int records_args(PyObject *const *args, Py_ssize_t nargs, const char *usage,
                        const unsigned char **data, Py_ssize_t *count,
                        unsigned long long *first, long long *after)
{
    Py_ssize_t size, pos = 0, k;

    if (nargs != 4 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, usage);
        return -1;
    }
    *data = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    size = PyBytes_GET_SIZE(args[0]);
    *count = PyLong_AsSsize_t(args[1]);
    if (*count == -1 && PyErr_Occurred())
        return -1;
    *first = PyLong_AsUnsignedLongLong(args[2]);
    if (*first == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *after = PyLong_AsLongLong(args[3]);     /* -1 (or any seq before first): all of them */
    if (*after == -1 && PyErr_Occurred())
        return -1;
    for (k = 0; k < *count; k++) {
        uint32_t n;
        if (size - pos < 4) {
            PyErr_SetString(PyExc_ValueError, "frame payload ends inside an item length");
            return -1;
        }
        n = get_u32(*data + pos);
        pos += 4;
        if ((Py_ssize_t)n > size - pos) {
            PyErr_SetString(PyExc_ValueError, "frame payload ends inside an item");
            return -1;
        }
        pos += n;
    }
    if (pos != size) {
        PyErr_Format(PyExc_ValueError, "frame payload has %zd bytes after its %zd items",
                     size - pos, *count);
        return -1;
    }
    return 0;
}

/* Append (seq, db, argv) to out, or with runs argv to the last run when that is in db, else
 * a new run (seq, db, [argv]) (*argvs: the last run's list); steals argv. -1 with an error. */
static int add_record(PyObject *out, int runs, PyObject **argvs, unsigned *run_db,
                      unsigned long long seq, unsigned db, PyObject *argv)
{
    PyObject *entry;
    int rc;

    if (runs && *argvs && db == *run_db) {
        rc = PyList_Append(*argvs, argv);
        Py_DECREF(argv);
        return rc;
    }
    if (runs) {
        PyObject *list = PyList_New(1);
        if (!list) {
            Py_DECREF(argv);
            return -1;
        }
        PyList_SET_ITEM(list, 0, argv);
        *argvs = list;          /* borrowed: the run in out holds it */
        *run_db = db;
        argv = list;
    }
    entry = seq_db_tuple(seq, db, argv);
    if (!entry)
        return -1;
    rc = PyList_Append(out, entry);
    Py_DECREF(entry);
    return rc;
}

/* The records of a RECORDS payload past after: [(seq, db, argv)], or with runs
 * [(seq, db, [argv, ...])], a run per stretch of consecutive records in one db. */
static PyObject *decode_payload_records(PyObject *const *args, Py_ssize_t nargs, int runs,
                                        const char *usage)
{
    const unsigned char *data;
    Py_ssize_t pos, count, k;
    unsigned long long first;
    long long after;
    PyObject *out, *argvs = NULL, *name = NULL;
    unsigned run_db = 0;

    if (records_args(args, nargs, usage, &data, &count, &first, &after) < 0)
        return NULL;
    out = PyList_New(0);
    if (!out)
        return NULL;
    for (pos = 0, k = 0; k < count; k++) {
        uint32_t n = get_u32(data + pos);
        unsigned long long seq = first + (unsigned long long)k;
        pos += 4;
        if (after < 0 || seq > (unsigned long long)after) {
            unsigned db;
            PyObject *argv = decode_argv(data + pos, n, seq, &db, &name);
            if (!argv || add_record(out, runs, &argvs, &run_db, seq, db, argv) < 0) {
                Py_DECREF(out);
                return NULL;
            }
        }
        pos += n;
    }
    return out;
}

/* decode_records(payload, count, first_seq, after) -> [(seq, db, argv)] for seq > after. */
static PyObject *decode_records(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return decode_payload_records(args, nargs, 0,
                                  "decode_records(payload: bytes, count, first_seq, after)");
}

/* decode_runs(payload, count, first_seq, after) -> [(seq, db, [argv, ...])]: the records
 * past after, each run of consecutive ones in one db as one entry (seq: its first). */
static PyObject *decode_runs(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    return decode_payload_records(args, nargs, 1,
                                  "decode_runs(payload: bytes, count, first_seq, after)");
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
    {"encode_entries", (PyCFunction)(void (*)(void))encode_entries, METH_FASTCALL,
     "encode_entries(entries, pos, db, max_count, max_bytes, force) -> (items, count, pos, "
     "db): a journal's records as frame items"},
    {"decode_records", (PyCFunction)(void (*)(void))decode_records, METH_FASTCALL,
     "decode_records(payload, count, first_seq, after) -> [(seq, db, argv)] past after"},
    {"decode_runs", (PyCFunction)(void (*)(void))decode_runs, METH_FASTCALL,
     "decode_runs(payload, count, first_seq, after) -> [(seq, db, argvs)]: records past "
     "after, a run per db"},
    {NULL, NULL, 0, NULL},
};

int native_add_records(PyObject *module)
{
    return PyModule_AddFunctions(module, records_methods);
}
