/* fastcache._native.run_batch: the C twin of fastcache.engine.fastpath.py_run_batch.
 *
 * Runs the happy path of the hottest commands straight on a Db's dicts and encodes their
 * replies, and queues those whose keys all belong to one other shard for forwarding. It stops at
 * the first command it does not fully handle (errors, options, other types, keys spread over
 * shards), before touching anything for it, so the Python handlers produce that one. The contract
 * and the semantics are documented in the Python module; both twins must leave identical replies,
 * forward queues, dicts and counters.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>
#include <time.h>

#include "native.h"

#define SLOTS 16384
/* MGET keeps its values here before sizing the reply; longer ones allocate. */
#define MGET_STACK 64

enum { STOP = 0, HANDLED = 1, FAILED = -1 };
/* owners of a command's keys besides a shard number: */
enum { SPREAD = -1, LOCAL = -2 };  /* on several shards; no keys or no slot table */

typedef struct {
    PyObject *data, *expires, *atime;   /* the Db's dicts */
    PyObject *clock;                    /* ks.clock, stored in atime on every access */
    PyObject *out;                      /* replies are appended here */
    PyObject *fwd;                      /* shard -> list of argvs to forward, or NULL */
    PyObject *null;                     /* RESP2 or RESP3 null */
    const unsigned char *owners;        /* slot -> shard, NULL when every key is local */
    long shard;
    long long now;                      /* ms; read at the first TTL that needs it */
    int have_now;
    long long hits, misses, dirty, expired;
    Py_ssize_t forwarded;
} Batch;

static PyObject *str_data, *str_expires, *str_atime, *str_clock;
static PyObject *str_hits, *str_misses, *str_dirty, *str_expired_keys;
static PyObject *reply_ok, *reply_pong, *reply_null2, *reply_null3, *reply_zero, *reply_one;
static unsigned short crc16_table[256];

/* ---- keys, slots, time ---- */

static void build_crc16_table(void)
{
    /* CRC16-XMODEM: polynomial 0x1021, no reflection, as Redis Cluster and binascii.crc_hqx */
    for (unsigned i = 0; i < 256; i++) {
        unsigned crc = i << 8;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 0x8000) ? (crc << 1) ^ 0x1021 : crc << 1;
        crc16_table[i] = (unsigned short)crc;
    }
}

static unsigned key_slot(PyObject *key)
{
    const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(key);
    Py_ssize_t n = PyBytes_GET_SIZE(key);
    const unsigned char *open = memchr(s, '{', (size_t)n);
    if (open) {
        /* a hash tag: the first {...} with a non-empty body */
        const unsigned char *close = memchr(open + 1, '}', (size_t)(s + n - open - 1));
        if (close && close > open + 1) {
            s = open + 1;
            n = close - s;
        }
    }
    unsigned crc = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        crc = ((crc << 8) ^ crc16_table[((crc >> 8) ^ s[i]) & 0xff]) & 0xffff;
    return crc & (SLOTS - 1);
}

/* keyspace.now_ms(): int(time.time() * 1000), through the same double. */
static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long ns = (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
    double seconds = ns % 1000000000LL == 0 ? (double)(ns / 1000000000LL) : (double)ns / 1e9;
    return (long long)(seconds * 1000.0);
}

/* ---- the keyspace, as Keyspace.peek / set / _remove do it ---- */

static int discard(PyObject *dict, PyObject *key)
{
    if (!PyDict_GET_SIZE(dict))
        return 0;
    int present = PyDict_Contains(dict, key);
    return present > 0 ? PyDict_DelItem(dict, key) : present;
}

static int remove_key(Batch *b, PyObject *key)
{
    if (PyDict_DelItem(b->data, key) < 0 || discard(b->expires, key) < 0 ||
        discard(b->atime, key) < 0)
        return FAILED;
    return 0;
}

/* The live value of key (borrowed) in *value, NULL if missing. An expired key is removed on
 * the way, without touching hit/miss stats. */
static int lookup(Batch *b, PyObject *key, PyObject **value)
{
    PyObject *v = PyDict_GetItemWithError(b->data, key);
    *value = NULL;
    if (!v)
        return PyErr_Occurred() ? FAILED : 0;
    if (PyDict_GET_SIZE(b->expires)) {
        PyObject *at = PyDict_GetItemWithError(b->expires, key);
        if (at) {
            if (!PyLong_CheckExact(at)) {
                PyErr_SetString(PyExc_TypeError, "an expiry must be an int");
                return FAILED;
            }
            int overflow;
            long long when = PyLong_AsLongLongAndOverflow(at, &overflow);
            if (!b->have_now) {
                b->now = now_ms();
                b->have_now = 1;
            }
            if (overflow < 0 || (!overflow && when <= b->now)) {
                if (remove_key(b, key) < 0)
                    return FAILED;
                b->expired++;
                return 0;
            }
        } else if (PyErr_Occurred()) {
            return FAILED;
        }
    }
    *value = v;
    return 0;
}

static inline int touch(Batch *b, PyObject *key)
{
    return PyDict_SetItem(b->atime, key, b->clock);
}

/* Keyspace.set(db, key, value, keepttl=keepttl) */
static int store(Batch *b, PyObject *key, PyObject *value, int keepttl)
{
    if (PyDict_SetItem(b->data, key, value) < 0 || (!keepttl && discard(b->expires, key) < 0) ||
        touch(b, key) < 0)
        return FAILED;
    b->dirty++;
    return 0;
}

/* ---- replies, byte-identical to fastcache.protocol.encoder ---- */

/* Decimal digits of v into buf (at least 20 bytes); returns their count. */
static int format_ll(char *buf, long long v)
{
    char tmp[24];
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    int n = 0, len = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[len++] = '-';
    while (n)
        buf[len++] = tmp[--n];
    return len;
}

/* "$<len>\r\n<value>\r\n" at p; returns the end. */
static char *put_bulk(char *p, PyObject *value)
{
    Py_ssize_t len = PyBytes_GET_SIZE(value);
    *p++ = '$';
    p += format_ll(p, len);
    *p++ = '\r';
    *p++ = '\n';
    memcpy(p, PyBytes_AS_STRING(value), (size_t)len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

static Py_ssize_t bulk_size(PyObject *value)
{
    char digits[24];
    Py_ssize_t len = PyBytes_GET_SIZE(value);
    return 5 + format_ll(digits, len) + len;
}

/* Append reply (a new reference, or NULL after an error) to the output. */
static int emit(Batch *b, PyObject *reply)
{
    if (!reply)
        return FAILED;
    int rc = PyList_Append(b->out, reply);
    Py_DECREF(reply);
    return rc < 0 ? FAILED : HANDLED;
}

static int emit_shared(Batch *b, PyObject *reply)
{
    return PyList_Append(b->out, reply) < 0 ? FAILED : HANDLED;
}

static int emit_bulk(Batch *b, PyObject *value)
{
    PyObject *reply = PyBytes_FromStringAndSize(NULL, bulk_size(value));
    if (reply)
        put_bulk(PyBytes_AS_STRING(reply), value);
    return emit(b, reply);
}

static int emit_int(Batch *b, long long v)
{
    if (v == 0 || v == 1)
        return emit_shared(b, v ? reply_one : reply_zero);
    char buf[32];
    buf[0] = ':';
    int len = 1 + format_ll(buf + 1, v);
    buf[len++] = '\r';
    buf[len++] = '\n';
    return emit(b, PyBytes_FromStringAndSize(buf, len));
}

/* ---- the commands: each returns HANDLED, STOP (untouched, Python runs it) or FAILED ----
 * run_batch has checked the argument count and that the keys are local. */

static int cmd_get(Batch *b, PyObject **args, Py_ssize_t argc)
{
    PyObject *value;
    if (lookup(b, args[1], &value) < 0)
        return FAILED;
    if (!value) {
        b->misses++;
        return emit_shared(b, b->null);
    }
    if (!PyBytes_CheckExact(value))
        return STOP;            /* WRONGTYPE */
    b->hits++;
    if (touch(b, args[1]) < 0)
        return FAILED;
    return emit_bulk(b, value);
}

static int cmd_set(Batch *b, PyObject **args, Py_ssize_t argc)
{
    if (store(b, args[1], args[2], 0) < 0)
        return FAILED;
    return emit_shared(b, reply_ok);
}

static int cmd_mset(Batch *b, PyObject **args, Py_ssize_t argc)
{
    for (Py_ssize_t i = 1; i < argc; i += 2)
        if (store(b, args[i], args[i + 1], 0) < 0)
            return FAILED;
    return emit_shared(b, reply_ok);
}

/* INCR, DECR, INCRBY, DECRBY once their delta is known. */
static int incr_by(Batch *b, PyObject *key, long long delta)
{
    PyObject *old, *stored;
    long long value;
    char buf[24];

    if (lookup(b, key, &old) < 0)
        return FAILED;
    if (old) {
        if (!PyBytes_CheckExact(old) ||
            !string2ll(PyBytes_AS_STRING(old), PyBytes_GET_SIZE(old), &value) ||
            __builtin_add_overflow(value, delta, &value))
            return STOP;        /* WRONGTYPE, not an integer, overflow */
    } else {
        value = delta;
    }
    stored = PyBytes_FromStringAndSize(buf, format_ll(buf, value));
    if (!stored)
        return FAILED;
    int rc = store(b, key, stored, 1);
    Py_DECREF(stored);
    return rc < 0 ? FAILED : emit_int(b, value);
}

static int cmd_incr(Batch *b, PyObject **args, Py_ssize_t argc)
{
    return incr_by(b, args[1], 1);
}

static int cmd_decr(Batch *b, PyObject **args, Py_ssize_t argc)
{
    return incr_by(b, args[1], -1);
}

static int cmd_incrby(Batch *b, PyObject **args, Py_ssize_t argc)
{
    long long delta;
    if (!string2ll(PyBytes_AS_STRING(args[2]), PyBytes_GET_SIZE(args[2]), &delta))
        return STOP;
    return incr_by(b, args[1], delta);
}

static int cmd_decrby(Batch *b, PyObject **args, Py_ssize_t argc)
{
    long long delta;
    if (!string2ll(PyBytes_AS_STRING(args[2]), PyBytes_GET_SIZE(args[2]), &delta) ||
        delta == LLONG_MIN)
        return STOP;
    return incr_by(b, args[1], -delta);
}

static int cmd_mget(Batch *b, PyObject **args, Py_ssize_t argc)
{
    PyObject *stack[MGET_STACK], **values = stack;
    Py_ssize_t n = argc - 1, size, i;
    char digits[24];
    int rc = FAILED;

    if (n > MGET_STACK && !(values = PyMem_Malloc((size_t)n * sizeof(PyObject *))))
        return PyErr_NoMemory(), FAILED;
    size = 3 + format_ll(digits, n);
    for (i = 0; i < n; i++) {
        PyObject *key = args[i + 1], *value;
        if (lookup(b, key, &value) < 0)
            goto done;
        if (!value) {
            b->misses++;
        } else {
            b->hits++;
            if (touch(b, key) < 0)
                goto done;
            if (!PyBytes_CheckExact(value))
                value = NULL;   /* another type reads as null, without an error */
        }
        Py_XINCREF(value);
        values[i] = value;
        size += value ? bulk_size(value) : PyBytes_GET_SIZE(b->null);
    }
    PyObject *reply = PyBytes_FromStringAndSize(NULL, size);
    if (reply) {
        char *p = PyBytes_AS_STRING(reply);
        *p++ = '*';
        p += format_ll(p, n);
        *p++ = '\r';
        *p++ = '\n';
        for (Py_ssize_t j = 0; j < n; j++) {
            if (values[j]) {
                p = put_bulk(p, values[j]);
            } else {
                memcpy(p, PyBytes_AS_STRING(b->null), (size_t)PyBytes_GET_SIZE(b->null));
                p += PyBytes_GET_SIZE(b->null);
            }
        }
    }
    rc = emit(b, reply);
done:
    while (i--)
        Py_XDECREF(values[i]);
    if (values != stack)
        PyMem_Free(values);
    return rc;
}

static int cmd_exists(Batch *b, PyObject **args, Py_ssize_t argc)
{
    PyObject *value;
    if (lookup(b, args[1], &value) < 0)
        return FAILED;
    if (value)
        b->hits++;
    else
        b->misses++;
    return emit_shared(b, value ? reply_one : reply_zero);
}

static int cmd_del(Batch *b, PyObject **args, Py_ssize_t argc)
{
    PyObject *value;
    if (lookup(b, args[1], &value) < 0)
        return FAILED;
    if (value) {
        if (remove_key(b, args[1]) < 0)
            return FAILED;
        b->dirty++;
    }
    return emit_shared(b, value ? reply_one : reply_zero);
}

static int cmd_ping(Batch *b, PyObject **args, Py_ssize_t argc)
{
    return emit_shared(b, reply_pong);
}

static int cmd_echo(Batch *b, PyObject **args, Py_ssize_t argc)
{
    return emit_bulk(b, args[1]);
}

typedef int (*Handler)(Batch *, PyObject **, Py_ssize_t);

/* The shapes run_batch handles: with another argument count a command stops. */
typedef struct {
    const char *name;           /* lowercase */
    Py_ssize_t len;
    Py_ssize_t arity;           /* argc, or at least -arity when negative */
    int keyed;                  /* the first key is argv[1] */
    Py_ssize_t key_step;        /* further keys every key_step arguments; 0: one key */
    Handler run;
} Command;

static const Command COMMANDS[] = {
    {"get", 3, 2, 1, 0, cmd_get}, {"set", 3, 3, 1, 0, cmd_set},
    {"incr", 4, 2, 1, 0, cmd_incr}, {"decr", 4, 2, 1, 0, cmd_decr},
    {"incrby", 6, 3, 1, 0, cmd_incrby}, {"decrby", 6, 3, 1, 0, cmd_decrby},
    {"mget", 4, -2, 1, 1, cmd_mget}, {"mset", 4, -3, 1, 2, cmd_mset},
    {"exists", 6, 2, 1, 0, cmd_exists}, {"del", 3, 2, 1, 0, cmd_del},
    {"ping", 4, 1, 0, 0, cmd_ping}, {"echo", 4, 2, 0, 0, cmd_echo},
};

static inline int shape_ok(const Command *cmd, Py_ssize_t argc)
{
    if (cmd->arity >= 0)
        return argc == cmd->arity;
    /* MSET: the name and whole key/value pairs */
    return argc >= -cmd->arity && (cmd->key_step != 2 || argc & 1);
}

/* The shard that owns every key of the command, or SPREAD. */
static int owner_of(const Batch *b, const Command *cmd, PyObject **args, Py_ssize_t argc)
{
    int owner = b->owners[key_slot(args[1])];
    if (cmd->key_step)
        for (Py_ssize_t i = 1 + cmd->key_step; i < argc; i += cmd->key_step)
            if (b->owners[key_slot(args[i])] != owner)
                return SPREAD;
    return owner;
}

/* Queue argv for shard and leave the shard number in its reply's place. */
static int forward(Batch *b, int shard, PyObject *argv)
{
    PyObject *queue = shard < PyList_GET_SIZE(b->fwd) ? PyList_GET_ITEM(b->fwd, shard) : NULL;
    if (!queue || !PyList_Check(queue)) {
        PyErr_Format(queue ? PyExc_TypeError : PyExc_IndexError,
                     "fwd[%d] must be the list of shard %d's forwards", shard, shard);
        return FAILED;
    }
    if (PyList_Append(queue, argv) < 0)
        return FAILED;
    b->forwarded++;
    return emit(b, PyLong_FromLong(shard));     /* a cached small int: owners are bytes */
}

/* The command for a name (ASCII case-insensitive, like the registry), or NULL. */
static const Command *command_of(PyObject *name)
{
    Py_ssize_t n = PyBytes_GET_SIZE(name);
    const char *s = PyBytes_AS_STRING(name);
    char lower[6];

    if (n < 3 || n > 6)
        return NULL;
    for (Py_ssize_t i = 0; i < n; i++)
        lower[i] = (char)(s[i] >= 'A' && s[i] <= 'Z' ? s[i] + ('a' - 'A') : s[i]);
    for (size_t i = 0; i < sizeof(COMMANDS) / sizeof(COMMANDS[0]); i++)
        if (COMMANDS[i].len == n && !memcmp(COMMANDS[i].name, lower, (size_t)n))
            return &COMMANDS[i];
    return NULL;
}

/* ---- run_batch ---- */

static int add_counter(PyObject *ks, PyObject *name, long long delta)
{
    if (!delta)
        return 0;
    PyObject *old = PyObject_GetAttr(ks, name);
    if (!old)
        return -1;
    PyObject *d = PyLong_FromLongLong(delta);
    PyObject *sum = d ? PyNumber_Add(old, d) : NULL;
    Py_DECREF(old);
    Py_XDECREF(d);
    if (!sum)
        return -1;
    int rc = PyObject_SetAttr(ks, name, sum);
    Py_DECREF(sum);
    return rc;
}

/* Add the batch's counts to ks, keeping any error already raised. */
static int flush_counters(Batch *b, PyObject *ks)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    int rc = add_counter(ks, str_hits, b->hits) < 0 || add_counter(ks, str_misses, b->misses) < 0 ||
             add_counter(ks, str_dirty, b->dirty) < 0 ||
             add_counter(ks, str_expired_keys, b->expired) < 0 ? -1 : 0;
    if (type) {
        PyErr_Restore(type, value, tb);
        return -1;
    }
    return rc;
}

static PyObject *dict_attr(PyObject *obj, PyObject *name)
{
    PyObject *d = PyObject_GetAttr(obj, name);
    if (d && !PyDict_CheckExact(d)) {
        PyErr_Format(PyExc_TypeError, "db.%U must be a dict", name);
        Py_CLEAR(d);
    }
    return d;
}

static PyObject *run_batch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Batch b = {0};
    PyObject *commands, *db, *ks, *owners, *result = NULL;
    Py_ssize_t start, i;
    long proto;

    if (nargs != 8 && nargs != 9) {
        PyErr_SetString(PyExc_TypeError,
                        "run_batch(commands, start, out, db, ks, proto, owners, shard, fwd=None)");
        return NULL;
    }
    commands = args[0];
    b.out = args[2];
    db = args[3];
    ks = args[4];
    owners = args[6];
    if (!PyList_Check(commands) || !PyList_Check(b.out)) {
        PyErr_SetString(PyExc_TypeError, "commands and out must be lists");
        return NULL;
    }
    start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred())
        return NULL;
    if (start < 0) {
        PyErr_SetString(PyExc_ValueError, "start must not be negative");
        return NULL;
    }
    proto = PyLong_AsLong(args[5]);
    if (proto == -1 && PyErr_Occurred())
        return NULL;
    b.null = proto == 3 ? reply_null3 : reply_null2;
    if (owners != Py_None) {
        if (!PyBytes_Check(owners) || PyBytes_GET_SIZE(owners) != SLOTS) {
            PyErr_SetString(PyExc_TypeError, "owners must be None or a 16384-byte slot table");
            return NULL;
        }
        b.owners = (const unsigned char *)PyBytes_AS_STRING(owners);
        b.shard = PyLong_AsLong(args[7]);
        if (b.shard == -1 && PyErr_Occurred())
            return NULL;
    }
    if (nargs == 9 && args[8] != Py_None) {
        if (!PyList_Check(args[8])) {
            PyErr_SetString(PyExc_TypeError, "fwd must be None or a list of lists");
            return NULL;
        }
        b.fwd = args[8];
    }
    if (!(b.data = dict_attr(db, str_data)) || !(b.expires = dict_attr(db, str_expires)) ||
        !(b.atime = dict_attr(db, str_atime)) || !(b.clock = PyObject_GetAttr(ks, str_clock)))
        goto done;

    for (i = start; i < PyList_GET_SIZE(commands); i++) {
        PyObject *argv = PyList_GET_ITEM(commands, i);
        if (!PyList_Check(argv) || PyList_GET_SIZE(argv) == 0)
            break;
        PyObject **items = ((PyListObject *)argv)->ob_item;
        Py_ssize_t argc = PyList_GET_SIZE(argv), j;
        for (j = 0; j < argc && PyBytes_CheckExact(items[j]); j++)
            ;
        const Command *cmd = j == argc ? command_of(items[0]) : NULL;
        if (!cmd || !shape_ok(cmd, argc))
            break;
        int owner = b.owners && cmd->keyed ? owner_of(&b, cmd, items, argc) : LOCAL, rc;
        if (owner == SPREAD)
            break;
        if (owner == LOCAL || owner == b.shard)
            rc = cmd->run(&b, items, argc);
        else if (b.fwd)
            rc = forward(&b, owner, argv);
        else
            break;
        if (rc == STOP)
            break;
        if (rc == FAILED) {
            flush_counters(&b, ks);
            goto done;
        }
    }
    if (flush_counters(&b, ks) == 0)
        result = Py_BuildValue("(nnn)", i, i > start ? i - start - b.forwarded : 0,
                               b.forwarded);
done:
    Py_XDECREF(b.data);
    Py_XDECREF(b.expires);
    Py_XDECREF(b.atime);
    Py_XDECREF(b.clock);
    return result;
}

static PyMethodDef fastpath_methods[] = {
    {"run_batch", (PyCFunction)(void (*)(void))run_batch, METH_FASTCALL,
     "run_batch(commands, start, out, db, ks, proto, owners, shard, fwd=None)\n"
     "    -> (next_index, executed, forwarded)\n\n"
     "C twin of fastcache.engine.fastpath.py_run_batch."},
    {NULL}
};

static PyObject *intern(const char *s)
{
    return PyUnicode_InternFromString(s);
}

static PyObject *constant(const char *s)
{
    return PyBytes_FromString(s);
}

int native_add_fastpath(PyObject *module)
{
    build_crc16_table();
    if (!(str_data = intern("data")) || !(str_expires = intern("expires")) ||
        !(str_atime = intern("atime")) || !(str_clock = intern("clock")) ||
        !(str_hits = intern("hits")) || !(str_misses = intern("misses")) ||
        !(str_dirty = intern("dirty")) || !(str_expired_keys = intern("expired_keys")) ||
        !(reply_ok = constant("+OK\r\n")) || !(reply_pong = constant("+PONG\r\n")) ||
        !(reply_null2 = constant("$-1\r\n")) || !(reply_null3 = constant("_\r\n")) ||
        !(reply_zero = constant(":0\r\n")) || !(reply_one = constant(":1\r\n")))
        return -1;
    return PyModule_AddFunctions(module, fastpath_methods);
}
