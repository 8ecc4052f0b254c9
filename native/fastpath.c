/* fastcache._native.run_batch: the C twin of fastcache.engine.fastpath.py_run_batch.
 *
 * Runs the happy path of the hottest commands straight on a Db's dicts and containers (strings,
 * and the commonest list, set and hash commands) and encodes their replies, and queues those whose
 * keys all belong to one other shard for forwarding. It stops at the first command it does not
 * fully handle (errors, options, other types, keys spread over shards, container states it does
 * not mirror), before touching anything for it, so the Python handlers produce that one. The
 * contract and the semantics are documented in the Python module; both twins must leave identical
 * replies, forward queues, dicts, containers (internal state included) and counters.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>
#include <time.h>

#include "native.h"

#define SLOTS 16384
/* MGET and LRANGE keep their values here before sizing the reply; longer ones allocate. */
#define VALUES_STACK 64

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
static PyObject *reply_empty_array, *kw_hashtable;
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

/* Keyspace.set(db, key, value, keepttl=keepttl) but the change count */
static int put(Batch *b, PyObject *key, PyObject *value, int keepttl)
{
    if (PyDict_SetItem(b->data, key, value) < 0 || (!keepttl && discard(b->expires, key) < 0) ||
        touch(b, key) < 0)
        return FAILED;
    return 0;
}

/* Keyspace.set(db, key, value, keepttl=keepttl) */
static int store(Batch *b, PyObject *key, PyObject *value, int keepttl)
{
    if (put(b, key, value, keepttl) < 0)
        return FAILED;
    b->dirty++;
    return 0;
}

/* ---- the container families, bound on first use from their Python modules ---- */

typedef struct {
    PyObject *list, *set, *hash;        /* lists.List, sets.Set, hashes.Hash */
    /* List's own methods, called unbound: whatever List makes of them, the C does too */
    PyObject *append, *appendleft, *extend, *extendleft, *pop, *popleft, *reversed;
    /* offsets of the __slots__ the commands read or keep up to date */
    Py_ssize_t set_hashtable, set_pool, hash_hashtable;
    long long max_intset, max_listpack_entries, max_listpack_value;
    int bound;
} Families;

static Families fam;

#define SLOT(obj, offset) (*(PyObject **)((char *)(obj) + (offset)))

static PyObject *family_type(PyObject *module, const char *name, PyTypeObject *base)
{
    PyObject *type = PyObject_GetAttrString(module, name);
    if (type && (!PyType_Check(type) || !PyType_IsSubtype((PyTypeObject *)type, base))) {
        PyErr_Format(PyExc_TypeError, "%s must be a subclass of %s", name, base->tp_name);
        Py_CLEAR(type);
    }
    return type;
}

/* The offset of an object __slots__ entry of type. */
static Py_ssize_t slot_offset(PyObject *type, const char *name)
{
    PyObject *descr = PyObject_GetAttrString(type, name);
    Py_ssize_t offset = -1;
    if (!descr)
        return -1;
    if (Py_IS_TYPE(descr, &PyMemberDescr_Type) &&
        ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX)
        offset = ((PyMemberDescrObject *)descr)->d_member->offset;
    else
        PyErr_Format(PyExc_TypeError, "%R.%s must be a __slots__ entry", type, name);
    Py_DECREF(descr);
    return offset;
}

static int module_int(PyObject *module, const char *name, long long *value)
{
    PyObject *v = PyObject_GetAttrString(module, name);
    if (!v)
        return -1;
    *value = PyLong_AsLongLong(v);
    Py_DECREF(v);
    return *value == -1 && PyErr_Occurred() ? -1 : 0;
}

static int bind_families(void)
{
    PyObject *lists = PyImport_ImportModule("fastcache.engine.lists");
    PyObject *sets = lists ? PyImport_ImportModule("fastcache.engine.sets") : NULL;
    PyObject *hashes = sets ? PyImport_ImportModule("fastcache.engine.hashes") : NULL;
    PyObject *deque = NULL, *collections = hashes ? PyImport_ImportModule("collections") : NULL;
    Families f = {0};
    int rc = -1;

    if (!collections || !(deque = PyObject_GetAttrString(collections, "deque")) ||
        !PyType_Check(deque))
        goto done;
    if (!(f.list = family_type(lists, "List", (PyTypeObject *)deque)) ||
        !(f.set = family_type(sets, "Set", &PySet_Type)) ||
        !(f.hash = family_type(hashes, "Hash", &PyDict_Type)) ||
        !(f.append = PyObject_GetAttrString(f.list, "append")) ||
        !(f.appendleft = PyObject_GetAttrString(f.list, "appendleft")) ||
        !(f.extend = PyObject_GetAttrString(f.list, "extend")) ||
        !(f.extendleft = PyObject_GetAttrString(f.list, "extendleft")) ||
        !(f.pop = PyObject_GetAttrString(f.list, "pop")) ||
        !(f.popleft = PyObject_GetAttrString(f.list, "popleft")) ||
        !(f.reversed = PyObject_GetAttrString(f.list, "__reversed__")) ||
        (f.set_hashtable = slot_offset(f.set, "hashtable")) < 0 ||
        (f.set_pool = slot_offset(f.set, "_pool")) < 0 ||
        (f.hash_hashtable = slot_offset(f.hash, "hashtable")) < 0 ||
        module_int(sets, "MAX_INTSET_ENTRIES", &f.max_intset) < 0 ||
        module_int(hashes, "MAX_LISTPACK_ENTRIES", &f.max_listpack_entries) < 0 ||
        module_int(hashes, "MAX_LISTPACK_VALUE", &f.max_listpack_value) < 0)
        goto done;
    f.bound = 1;
    fam = f;
    rc = 0;
done:
    if (rc < 0) {
        PyObject *refs[] = {f.list, f.set, f.hash, f.append, f.appendleft, f.extend,
                            f.extendleft, f.pop, f.popleft, f.reversed};
        for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++)
            Py_XDECREF(refs[i]);
    }
    Py_XDECREF(lists);
    Py_XDECREF(sets);
    Py_XDECREF(hashes);
    Py_XDECREF(collections);
    Py_XDECREF(deque);
    return rc;
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

/* Values for an array reply (new references, NULL for a null), on the stack while few. */
typedef struct {
    PyObject *stack[VALUES_STACK], **items;
    Py_ssize_t n;
} Values;

static int values_init(Values *v, Py_ssize_t capacity)
{
    v->n = 0;
    v->items = v->stack;
    if (capacity > VALUES_STACK &&
        !(v->items = PyMem_Malloc((size_t)capacity * sizeof(PyObject *)))) {
        PyErr_NoMemory();
        return FAILED;
    }
    return 0;
}

static void values_clear(Values *v)
{
    while (v->n)
        Py_XDECREF(v->items[--v->n]);
    if (v->items != v->stack)
        PyMem_Free(v->items);
}

/* "*<n>\r\n" then each value as a bulk string, or b->null where NULL. */
static int emit_array(Batch *b, const Values *v)
{
    Py_ssize_t size = 3, null_size = PyBytes_GET_SIZE(b->null), i;
    char digits[24];

    if (!v->n)
        return emit_shared(b, reply_empty_array);
    size += format_ll(digits, v->n);
    for (i = 0; i < v->n; i++)
        size += v->items[i] ? bulk_size(v->items[i]) : null_size;
    PyObject *reply = PyBytes_FromStringAndSize(NULL, size);
    if (reply) {
        char *p = PyBytes_AS_STRING(reply);
        *p++ = '*';
        p += format_ll(p, v->n);
        *p++ = '\r';
        *p++ = '\n';
        for (i = 0; i < v->n; i++) {
            if (v->items[i]) {
                p = put_bulk(p, v->items[i]);
            } else {
                memcpy(p, PyBytes_AS_STRING(b->null), (size_t)null_size);
                p += null_size;
            }
        }
    }
    return emit(b, reply);
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
    Values values;
    int rc = FAILED;

    if (values_init(&values, argc - 1) < 0)
        return FAILED;
    for (Py_ssize_t i = 1; i < argc; i++) {
        PyObject *key = args[i], *value;
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
        values.items[values.n++] = value;
    }
    rc = emit_array(b, &values);
done:
    values_clear(&values);
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

/* ---- lists, sets and hashes, as lists.py, sets.py and hashes.py leave them ----
 * Reads look their key up like Keyspace.get_typed, writes like Keyspace.get_for_write; a key of
 * another type stops before anything is counted. */

/* The live value at key (borrowed) in *value, NULL if missing; STOP if it is not of type. */
static int lookup_typed(Batch *b, PyObject *key, PyObject *type, PyObject **value)
{
    if (lookup(b, key, value) < 0)
        return FAILED;
    return *value && (PyObject *)Py_TYPE(*value) != type ? STOP : HANDLED;
}

/* Keyspace.get_typed's lookup: as lookup_typed, and a missing key is a miss answered with
 * reply (HANDLED, *value NULL). */
static int read_typed(Batch *b, PyObject *key, PyObject *type, PyObject *reply, PyObject **value)
{
    int rc = lookup_typed(b, key, type, value);
    if (rc != HANDLED || *value)
        return rc;
    b->misses++;
    return emit_shared(b, reply);
}

static inline int hit(Batch *b, PyObject *key)
{
    b->hits++;
    return touch(b, key);
}

/* A new empty container stored at key, as the families' _create leave it; ks.dirty is the
 * caller's to count. A new reference. */
static PyObject *create(Batch *b, PyObject *key, PyObject *type, PyObject *kwnames)
{
    PyObject *args[2] = {NULL, Py_False};
    PyObject *value = kwnames ? PyObject_Vectorcall(type, args + 1, PY_VECTORCALL_ARGUMENTS_OFFSET,
                                                    kwnames)
                              : PyObject_CallNoArgs(type);
    if (value && put(b, key, value, 0) < 0)
        Py_CLEAR(value);
    return value;
}

/* The write-side container at key (a new reference, its access time refreshed) or a new one;
 * STOP (nothing touched) for another type or when check refuses the existing one. */
typedef int (*Check)(PyObject *);

static int open_for_write(Batch *b, PyObject *key, PyObject *type, PyObject *kwnames,
                          Check check, PyObject **value)
{
    int rc = lookup_typed(b, key, type, value);
    if (rc != HANDLED)
        return rc;
    if (!*value)
        return (*value = create(b, key, type, kwnames)) ? HANDLED : FAILED;
    if (check && (rc = check(*value)) != HANDLED)
        return rc;
    if (touch(b, key) < 0)
        return FAILED;
    Py_INCREF(*value);
    return HANDLED;
}

static PyObject *call1(PyObject *method, PyObject *self)
{
    return PyObject_Vectorcall(method, &self, 1, NULL);
}

static PyObject *call2(PyObject *method, PyObject *self, PyObject *arg)
{
    PyObject *args[2] = {self, arg};
    return PyObject_Vectorcall(method, args, 2, NULL);
}

/* A tuple of args[from:argc] (new reference). */
static PyObject *tail(PyObject **args, Py_ssize_t from, Py_ssize_t argc)
{
    PyObject *t = PyTuple_New(argc - from);
    for (Py_ssize_t i = from; t && i < argc; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(t, i - from, args[i]);
    }
    return t;
}

/* LPUSH / RPUSH key element [element ...] */
static int push(Batch *b, PyObject **args, Py_ssize_t argc, int left)
{
    PyObject *lst, *done;
    int rc = open_for_write(b, args[1], fam.list, NULL, NULL, &lst);
    if (rc != HANDLED)
        return rc;
    if (argc == 3) {
        done = call2(left ? fam.appendleft : fam.append, lst, args[2]);
    } else {
        PyObject *elements = tail(args, 2, argc);
        done = elements ? call2(left ? fam.extendleft : fam.extend, lst, elements) : NULL;
        Py_XDECREF(elements);
    }
    Py_ssize_t len = done ? PyObject_Size(lst) : -1;
    Py_XDECREF(done);
    Py_DECREF(lst);
    if (len < 0)
        return FAILED;
    b->dirty += argc - 2;
    return emit_int(b, len);
}

static int cmd_lpush(Batch *b, PyObject **args, Py_ssize_t argc)
{
    return push(b, args, argc, 1);
}

static int cmd_rpush(Batch *b, PyObject **args, Py_ssize_t argc)
{
    return push(b, args, argc, 0);
}

/* LPOP / RPOP key: lists.pop without a count. */
static int pop(Batch *b, PyObject **args, int left)
{
    PyObject *key = args[1], *lst, *end, *value;
    int rc = lookup_typed(b, key, fam.list, &lst);
    if (rc != HANDLED)
        return rc;
    if (!lst)
        return emit_shared(b, b->null);
    Py_ssize_t len = PyObject_Size(lst);
    if (len <= 0)
        return len < 0 ? FAILED : STOP;     /* an empty list is not for the fast path */
    if (!(end = PySequence_GetItem(lst, left ? 0 : len - 1)))
        return FAILED;
    rc = PyBytes_CheckExact(end) ? HANDLED : STOP;
    Py_DECREF(end);
    if (rc != HANDLED)
        return rc;
    if (touch(b, key) < 0)
        return FAILED;
    Py_INCREF(lst);
    value = call1(left ? fam.popleft : fam.pop, lst);
    Py_DECREF(lst);
    if (!value)
        return FAILED;
    b->dirty++;
    if (len == 1 && remove_key(b, key) < 0) {     /* Redis drops an emptied list */
        Py_DECREF(value);
        return FAILED;
    }
    rc = emit_bulk(b, value);
    Py_DECREF(value);
    return rc;
}

static int cmd_lpop(Batch *b, PyObject **args, Py_ssize_t argc)
{
    return pop(b, args, 1);
}

static int cmd_rpop(Batch *b, PyObject **args, Py_ssize_t argc)
{
    return pop(b, args, 0);
}

/* LLEN, SCARD: the size of the container at key, 0 when missing. */
static int size_of(Batch *b, PyObject *key, PyObject *type)
{
    PyObject *value;
    int rc = read_typed(b, key, type, reply_zero, &value);
    if (rc != HANDLED || !value)
        return rc;
    Py_ssize_t size = PyObject_Size(value);
    if (size < 0 || hit(b, key) < 0)
        return FAILED;
    return emit_int(b, size);
}

static int cmd_llen(Batch *b, PyObject **args, Py_ssize_t argc)
{
    return size_of(b, args[1], fam.list);
}

/* count elements of lst from index start into v, walking from the nearer end like lists._slice;
 * STOP if one is not bytes. */
static int take_range(PyObject *lst, Py_ssize_t len, Py_ssize_t start, Py_ssize_t count,
                      Values *v)
{
    int backwards = start > len - (start + count);
    Py_ssize_t skip = backwards ? len - (start + count) : start;
    PyObject *it = backwards ? call1(fam.reversed, lst) : PyObject_GetIter(lst), *item;
    int rc = HANDLED;

    if (!it)
        return FAILED;
    while (rc == HANDLED && v->n < count && (item = PyIter_Next(it))) {
        if (skip) {
            skip--;
            Py_DECREF(item);
        } else {
            v->items[v->n++] = item;
            if (!PyBytes_CheckExact(item))
                rc = STOP;
        }
    }
    Py_DECREF(it);
    if (rc == HANDLED && v->n < count)
        rc = PyErr_Occurred() ? FAILED : STOP;      /* it changed size while we walked */
    if (rc == HANDLED && backwards)
        for (Py_ssize_t i = 0, j = count - 1; i < j; i++, j--) {
            PyObject *t = v->items[i];
            v->items[i] = v->items[j];
            v->items[j] = t;
        }
    return rc;
}

/* LRANGE key start stop, with lists._span's clamping. */
static int cmd_lrange(Batch *b, PyObject **args, Py_ssize_t argc)
{
    PyObject *lst;
    long long first, last;
    Values values;

    /* parsed before the lookup, which may expire the key */
    if (!string2ll(PyBytes_AS_STRING(args[2]), PyBytes_GET_SIZE(args[2]), &first) ||
        !string2ll(PyBytes_AS_STRING(args[3]), PyBytes_GET_SIZE(args[3]), &last))
        return STOP;
    int rc = read_typed(b, args[1], fam.list, reply_empty_array, &lst);
    if (rc != HANDLED || !lst)
        return rc;
    Py_ssize_t len = PyObject_Size(lst);
    if (len < 0)
        return FAILED;
    if (first < 0)
        first += len;
    if (last < 0)
        last += len;
    if (first < 0)
        first = 0;
    if (last >= len)
        last = len - 1;
    Py_ssize_t count = first > last || first >= len ? 0 : (Py_ssize_t)(last - first + 1);
    if (values_init(&values, count) < 0)
        return FAILED;
    Py_INCREF(lst);
    rc = count ? take_range(lst, len, (Py_ssize_t)first, count, &values) : HANDLED;
    Py_DECREF(lst);
    if (rc == HANDLED)
        rc = hit(b, args[1]) < 0 ? FAILED : emit_array(b, &values);
    values_clear(&values);
    return rc;
}

/* Whether Redis would keep these members in an intset (sets.fits_intset). */
static int fits_intset(PyObject **members, Py_ssize_t n)
{
    long long ignored;
    if (n > fam.max_intset)
        return 0;
    for (Py_ssize_t i = 0; i < n; i++)
        if (!string2ll(PyBytes_AS_STRING(members[i]), PyBytes_GET_SIZE(members[i]), &ignored))
            return 0;
    return 1;
}

/* Truth of an encoding flag (a slot's value); -1 with an error. */
static int flag(PyObject *value)
{
    if (value == Py_True)
        return 1;
    if (value == Py_False)
        return 0;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "hashtable");
        return -1;
    }
    return PyObject_IsTrue(value);
}

static void set_flag(PyObject *obj, Py_ssize_t offset)
{
    PyObject *old = SLOT(obj, offset);
    Py_INCREF(Py_True);
    SLOT(obj, offset) = Py_True;
    Py_XDECREF(old);
}

/* A set whose random-pick index is built (or whose slots are unset) is left to Set's methods. */
static int set_unindexed(PyObject *set)
{
    PyObject *pool = SLOT(set, fam.set_pool);
    return pool == Py_None && SLOT(set, fam.set_hashtable) ? HANDLED : STOP;
}

/* SADD key member [member ...]: Set.add_members without an index. */
static int cmd_sadd(Batch *b, PyObject **args, Py_ssize_t argc)
{
    PyObject *set;
    int rc = open_for_write(b, args[1], fam.set, kw_hashtable, set_unindexed, &set);
    if (rc != HANDLED)
        return rc;
    Py_ssize_t before = PySet_GET_SIZE(set), added;
    for (Py_ssize_t i = 2; i < argc; i++)
        if (PySet_Add(set, args[i]) < 0)
            goto failed;
    added = PySet_GET_SIZE(set) - before;
    if (added) {
        int hashtable = flag(SLOT(set, fam.set_hashtable));
        if (hashtable < 0)
            goto failed;
        if (!hashtable &&
            (PySet_GET_SIZE(set) > fam.max_intset || !fits_intset(args + 2, argc - 2)))
            set_flag(set, fam.set_hashtable);
    }
    Py_DECREF(set);
    b->dirty += added;
    return emit_int(b, added);
failed:
    Py_DECREF(set);
    return FAILED;
}

static int cmd_scard(Batch *b, PyObject **args, Py_ssize_t argc)
{
    return size_of(b, args[1], fam.set);
}

static int cmd_sismember(Batch *b, PyObject **args, Py_ssize_t argc)
{
    PyObject *set;
    int rc = read_typed(b, args[1], fam.set, reply_zero, &set), found;
    if (rc != HANDLED || !set)
        return rc;
    if ((found = PySet_Contains(set, args[2])) < 0 || hit(b, args[1]) < 0)
        return FAILED;
    return emit_shared(b, found ? reply_one : reply_zero);
}

static int hash_flagged(PyObject *hash)
{
    return SLOT(hash, fam.hash_hashtable) ? HANDLED : STOP;
}

/* HSET key field value [field value ...]: hashes._set_pairs, encoding flag included. */
static int cmd_hset(Batch *b, PyObject **args, Py_ssize_t argc)
{
    PyObject *hash;
    int rc = open_for_write(b, args[1], fam.hash, NULL, hash_flagged, &hash), hashtable;
    if (rc != HANDLED)
        return rc;
    if ((hashtable = flag(SLOT(hash, fam.hash_hashtable))) < 0)
        goto failed;
    for (Py_ssize_t i = 2; !hashtable && i < argc; i++)
        if (PyBytes_GET_SIZE(args[i]) > fam.max_listpack_value) {
            set_flag(hash, fam.hash_hashtable);  /* Redis converts before inserting anything */
            hashtable = 1;
        }
    Py_ssize_t before = PyDict_GET_SIZE(hash);
    for (Py_ssize_t i = 2; i < argc; i += 2)
        if (PyDict_SetItem(hash, args[i], args[i + 1]) < 0)
            goto failed;
    Py_ssize_t added = PyDict_GET_SIZE(hash) - before;
    if (PyDict_GET_SIZE(hash) > fam.max_listpack_entries)
        set_flag(hash, fam.hash_hashtable);
    Py_DECREF(hash);
    b->dirty += (argc - 2) / 2;
    return emit_int(b, added);
failed:
    Py_DECREF(hash);
    return FAILED;
}

static int cmd_hget(Batch *b, PyObject **args, Py_ssize_t argc)
{
    PyObject *hash, *value = NULL;
    int rc = read_typed(b, args[1], fam.hash, b->null, &hash);
    if (rc != HANDLED || !hash)
        return rc;
    if (!(value = PyDict_GetItemWithError(hash, args[2])) && PyErr_Occurred())
        return FAILED;
    if (value && !PyBytes_CheckExact(value))
        return STOP;
    if (hit(b, args[1]) < 0)
        return FAILED;
    return value ? emit_bulk(b, value) : emit_shared(b, b->null);
}

typedef int (*Handler)(Batch *, PyObject **, Py_ssize_t);

/* The shapes run_batch handles: with another argument count a command stops. */
typedef struct {
    const char *name;           /* lowercase */
    Py_ssize_t len;
    Py_ssize_t arity;           /* argc, or at least -arity when negative */
    int parity;                 /* argc % 2 must be this (whole pairs), or ANY_PARITY */
    int keyed;                  /* the first key is argv[1] */
    Py_ssize_t key_step;        /* further keys every key_step arguments; 0: one key */
    int container;              /* a list, set or hash command: needs the families bound */
    Handler run;
} Command;

enum { ANY_PARITY = -1 };

#define STRING(name, arity, parity, keyed, step, run) \
    {name, sizeof(name) - 1, arity, parity, keyed, step, 0, run}
#define CONTAINER(name, arity, parity, run) {name, sizeof(name) - 1, arity, parity, 1, 0, 1, run}

static const Command COMMANDS[] = {
    STRING("get", 2, ANY_PARITY, 1, 0, cmd_get),
    STRING("set", 3, ANY_PARITY, 1, 0, cmd_set),
    STRING("incr", 2, ANY_PARITY, 1, 0, cmd_incr),
    STRING("decr", 2, ANY_PARITY, 1, 0, cmd_decr),
    STRING("incrby", 3, ANY_PARITY, 1, 0, cmd_incrby),
    STRING("decrby", 3, ANY_PARITY, 1, 0, cmd_decrby),
    STRING("mget", -2, ANY_PARITY, 1, 1, cmd_mget),
    STRING("mset", -3, 1, 1, 2, cmd_mset),
    STRING("exists", 2, ANY_PARITY, 1, 0, cmd_exists),
    STRING("del", 2, ANY_PARITY, 1, 0, cmd_del),
    STRING("ping", 1, ANY_PARITY, 0, 0, cmd_ping),
    STRING("echo", 2, ANY_PARITY, 0, 0, cmd_echo),
    CONTAINER("lpush", -3, ANY_PARITY, cmd_lpush),
    CONTAINER("rpush", -3, ANY_PARITY, cmd_rpush),
    CONTAINER("lpop", 2, ANY_PARITY, cmd_lpop),
    CONTAINER("rpop", 2, ANY_PARITY, cmd_rpop),
    CONTAINER("llen", 2, ANY_PARITY, cmd_llen),
    CONTAINER("lrange", 4, ANY_PARITY, cmd_lrange),
    CONTAINER("sadd", -3, ANY_PARITY, cmd_sadd),
    CONTAINER("scard", 2, ANY_PARITY, cmd_scard),
    CONTAINER("sismember", 3, ANY_PARITY, cmd_sismember),
    CONTAINER("hset", -4, 0, cmd_hset),
    CONTAINER("hget", 3, ANY_PARITY, cmd_hget),
};

#define SHORTEST_NAME 3
#define LONGEST_NAME 9

static inline int shape_ok(const Command *cmd, Py_ssize_t argc)
{
    if (cmd->arity >= 0)
        return argc == cmd->arity;
    return argc >= -cmd->arity && (cmd->parity == ANY_PARITY || argc % 2 == cmd->parity);
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
    char lower[LONGEST_NAME];

    if (n < SHORTEST_NAME || n > LONGEST_NAME)
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
    if (!fam.bound && bind_families() < 0) {
        /* the container commands are left to Python, loudly */
        fam.bound = -1;
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        int raised = PyErr_WarnFormat(PyExc_RuntimeWarning, 1,
                                      "run_batch leaves list, set and hash commands to Python: %S",
                                      value);
        Py_XDECREF(type);
        Py_XDECREF(value);
        Py_XDECREF(tb);
        if (raised < 0)
            return NULL;
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
        if (!cmd || !shape_ok(cmd, argc) || (cmd->container && fam.bound <= 0))
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
        !(reply_zero = constant(":0\r\n")) || !(reply_one = constant(":1\r\n")) ||
        !(reply_empty_array = constant("*0\r\n")) ||
        !(kw_hashtable = Py_BuildValue("(s)", "hashtable")))
        return -1;
    return PyModule_AddFunctions(module, fastpath_methods);
}
