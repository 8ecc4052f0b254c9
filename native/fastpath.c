/* fastcache._native.run_batch: the C twin of fastcache.engine.fastpath.py_run_batch.
 *
 * Runs the happy path of the hottest commands straight on a Db's dicts and containers (strings,
 * and the commonest list, set, hash and sorted-set commands) and encodes their replies, and
 * queues those whose keys all belong to one other shard for forwarding. It stops at the first
 * command it does not fully handle (errors, options, other types, keys spread over shards,
 * container states it does not mirror), before touching anything for it, so the Python
 * handlers produce that one. The contract and the semantics are documented in the Python
 * module; both twins must leave identical replies, forward queues, dicts, containers (internal
 * state included) and counters.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "native.h"

#define SLOTS 16384
/* MGET and LRANGE keep their values here before sizing the reply; longer ones allocate. */
#define VALUES_STACK 64
/* ZADD parses this many scores on the stack; more allocate. */
#define SCORES_STACK 16

enum { STOP = 0, HANDLED = 1, FAILED = -1 };
/* owners of a command's keys besides a shard number: */
enum { SPREAD = -1, LOCAL = -2 };  /* on several shards; no keys or no slot table */

/* A ZSet's SortedList opened for changes: its internals, held until the batch ends. */
typedef struct {
    PyObject *sl, *lists, *maxes, *index;   /* new references; sl NULL when none is open */
    Py_ssize_t load, len;
    int changed;                            /* len must be written back */
    struct Scores *scores;  /* the copy of its scores its ZSet keeps (borrowed), or NULL */
} Sorted;

enum { WARM_WINDOW = 32 };     /* commands whose keyspace entries are prefetched together */

typedef struct {
    PyObject *data, *expires, *atime;   /* the Db's dicts */
    PyObject *clock;                    /* ks.clock, stored in atime on every access */
    PyObject *out;                      /* replies are appended here */
    PyObject *fwd;                      /* shard -> list of argvs to forward, or NULL */
    PyObject *null;                     /* RESP2 or RESP3 null */
    int resp3;
    const unsigned char *owners;        /* slot -> shard, NULL when every key is local */
    long shard;
    long long now;                      /* ms; read at the first TTL that needs it */
    int have_now;
    long long hits, misses, dirty, expired;
    Py_ssize_t forwarded;
    Sorted order;       /* the last SortedList written to, kept open for the next write */
    PyObject *log;      /* mutation records are appended here, or NULL */
    /* the slot of each first key of the window warm_batch last looked at (-1: none) */
    Py_ssize_t window;
    int first_slot[WARM_WINDOW];
} Batch;

static PyObject *str_data, *str_expires, *str_atime, *str_clock;
static PyObject *str_hits, *str_misses, *str_dirty, *str_expired_keys;
static PyObject *reply_ok, *reply_pong, *reply_null2, *reply_null3, *reply_zero, *reply_one;
static PyObject *reply_empty_array, *kw_hashtable, *word_del, *word_srem;
static PyObject *str_lists, *str_maxes, *str_index, *str_load, *str_len, *str_offset;
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

/* Append the record [word, key] or [word, key, arg] to the batch's log. */
static int log_record(Batch *b, PyObject *word, PyObject *key, PyObject *arg)
{
    PyObject *argv = PyList_New(arg ? 3 : 2);
    if (!argv)
        return FAILED;
    Py_INCREF(word);
    PyList_SET_ITEM(argv, 0, word);
    Py_INCREF(key);
    PyList_SET_ITEM(argv, 1, key);
    if (arg) {
        Py_INCREF(arg);
        PyList_SET_ITEM(argv, 2, arg);
    }
    int rc = PyList_Append(b->log, argv);
    Py_DECREF(argv);
    return rc < 0 ? FAILED : 0;
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
                if (remove_key(b, key) < 0 || (b->log && log_record(b, word_del, key, NULL) < 0))
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
    PyObject *list, *set, *hash, *zset; /* lists.List, sets.Set, hashes.Hash, zset_type.ZSet */
    PyObject *sortedlist;               /* sortedcontainers.SortedList, a ZSet's order */
    /* List's own methods, called unbound: whatever List makes of them, the C does too */
    PyObject *append, *appendleft, *extend, *extendleft, *pop, *popleft, *reversed;
    /* random.getrandbits: SPOP draws from the generator random.choice uses */
    PyObject *getrandbits;
    /* offsets of the __slots__ the commands read or keep up to date */
    Py_ssize_t set_hashtable, set_pool, set_gone, hash_hashtable, zset_order, zset_big,
               zset_native;
    long long max_intset, small_set, max_listpack_entries, max_listpack_value;
    long long zset_max_entries, zset_max_value;
    int sorted_known;   /* a sortedcontainers release whose SortedList internals are mirrored */
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

/* Whether sortedcontainers is a release whose SortedList.add / remove were checked against
 * the mirror below; with another, ZADD and ZINCRBY are left to Python. */
static int known_release(PyObject *sortedcontainers)
{
    PyObject *version = PyObject_GetAttrString(sortedcontainers, "__version__");
    if (!version)
        return -1;
    int known = PyUnicode_Check(version) && PyUnicode_CompareWithASCIIString(version, "2.4.0") == 0;
    Py_DECREF(version);
    return known;
}

static int bind_families(void)
{
    PyObject *lists = PyImport_ImportModule("fastcache.engine.lists");
    PyObject *sets = lists ? PyImport_ImportModule("fastcache.engine.sets") : NULL;
    PyObject *hashes = sets ? PyImport_ImportModule("fastcache.engine.hashes") : NULL;
    PyObject *zsets = hashes ? PyImport_ImportModule("fastcache.engine.zset_type") : NULL;
    PyObject *sorted = zsets ? PyImport_ImportModule("sortedcontainers") : NULL;
    PyObject *random = sorted ? PyImport_ImportModule("random") : NULL;
    PyObject *deque = NULL, *collections = random ? PyImport_ImportModule("collections") : NULL;
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
        module_int(hashes, "MAX_LISTPACK_VALUE", &f.max_listpack_value) < 0 ||
        (f.set_gone = slot_offset(f.set, "_gone")) < 0 ||
        module_int(sets, "SMALL_SET", &f.small_set) < 0 ||
        !(f.zset = family_type(zsets, "ZSet", &PyDict_Type)) ||
        (f.zset_order = slot_offset(f.zset, "order")) < 0 ||
        (f.zset_big = slot_offset(f.zset, "big")) < 0 ||
        (f.zset_native = slot_offset(f.zset, "native")) < 0 ||
        module_int(zsets, "LISTPACK_ENTRIES", &f.zset_max_entries) < 0 ||
        module_int(zsets, "LISTPACK_VALUE", &f.zset_max_value) < 0 ||
        !(f.sortedlist = family_type(sorted, "SortedList", &PyBaseObject_Type)) ||
        (f.sorted_known = known_release(sorted)) < 0 ||
        !(f.getrandbits = PyObject_GetAttrString(random, "getrandbits")))
        goto done;
    f.bound = 1;
    fam = f;
    rc = 0;
done:
    if (rc < 0) {
        PyObject *refs[] = {f.list, f.set, f.hash, f.zset, f.sortedlist, f.append,
                            f.appendleft, f.extend, f.extendleft, f.pop, f.popleft,
                            f.reversed, f.getrandbits};
        for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++)
            Py_XDECREF(refs[i]);
    }
    Py_XDECREF(lists);
    Py_XDECREF(sets);
    Py_XDECREF(hashes);
    Py_XDECREF(zsets);
    Py_XDECREF(sorted);
    Py_XDECREF(random);
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

/* A double as the encoder writes it: format_double's text (%.17g, inf, -inf, nan) as a bulk
 * string in RESP2, a double in RESP3. */
static int emit_double(Batch *b, double v)
{
    char *digits = NULL, buf[64];
    const char *text = isnan(v) ? "nan" : isinf(v) ? (v > 0 ? "inf" : "-inf")
                     : (digits = PyOS_double_to_string(v, 'g', 17, 0, NULL));
    if (!text)
        return FAILED;
    size_t len = strlen(text);
    int n = b->resp3 ? snprintf(buf, sizeof(buf), ",%s\r\n", text)
                     : snprintf(buf, sizeof(buf), "$%zu\r\n%s\r\n", len, text);
    PyMem_Free(digits);
    return emit(b, PyBytes_FromStringAndSize(buf, n));
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

/* Store value (a new reference, stolen) in the __slots__ entry at offset. */
static void replace_slot(PyObject *obj, Py_ssize_t offset, PyObject *value)
{
    PyObject *old = SLOT(obj, offset);
    SLOT(obj, offset) = value;
    Py_XDECREF(old);
}

static void set_flag(PyObject *obj, Py_ssize_t offset)
{
    Py_INCREF(Py_True);
    replace_slot(obj, offset, Py_True);
}

/* A Set this mirrors: its slots set, its random-pick index absent (_pool and _gone None) or
 * a list with a set of the members whose entries are stale; anything else is left to Set's
 * methods. */
static int set_mirrored(PyObject *set)
{
    PyObject *pool = SLOT(set, fam.set_pool), *gone = SLOT(set, fam.set_gone);
    if (!SLOT(set, fam.set_hashtable) || !pool || !gone)
        return STOP;
    if (pool == Py_None)
        return gone == Py_None ? HANDLED : STOP;
    return PyList_CheckExact(pool) && PySet_CheckExact(gone) ? HANDLED : STOP;
}

/* Set.add_members' set and index: a new member revives its stale entry in a built index, if
 * it has one, else goes at the end. */
static int add_members(PyObject *set, PyObject **members, Py_ssize_t n)
{
    PyObject *pool = SLOT(set, fam.set_pool), *gone = SLOT(set, fam.set_gone);
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_ssize_t size = PySet_GET_SIZE(set);
        if (PySet_Add(set, members[i]) < 0)
            return -1;
        if (pool != Py_None && PySet_GET_SIZE(set) != size) {
            int revived = PySet_GET_SIZE(gone) ? PySet_Discard(gone, members[i]) : 0;
            if (revived < 0 || (!revived && PyList_Append(pool, members[i]) < 0))
                return -1;
        }
    }
    return 0;
}

/* SADD key member [member ...]: Set.add_members. */
static int cmd_sadd(Batch *b, PyObject **args, Py_ssize_t argc)
{
    PyObject *set;
    int rc = open_for_write(b, args[1], fam.set, kw_hashtable, set_mirrored, &set);
    if (rc != HANDLED)
        return rc;
    Py_ssize_t before = PySet_GET_SIZE(set), added;
    if (add_members(set, args + 2, argc - 2) < 0)
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

/* random._randbelow_with_getrandbits(n) on the random module's generator: a pick here draws
 * the numbers random.choice would, so a seeded run picks what Python would have picked. */
static int randbelow(Py_ssize_t n, Py_ssize_t *r)
{
    int k = 0;
    for (size_t v = (size_t)n; v; v >>= 1)
        k++;
    PyObject *bits = PyLong_FromLong(k);
    if (!bits)
        return -1;
    do {
        PyObject *drawn = PyObject_Vectorcall(fam.getrandbits, &bits, 1, NULL);
        *r = drawn ? PyLong_AsSsize_t(drawn) : -1;
        Py_XDECREF(drawn);
        if (*r == -1 && (!drawn || PyErr_Occurred())) {
            Py_DECREF(bits);
            return -1;
        }
    } while (*r >= n);
    Py_DECREF(bits);
    return 0;
}

/* Set._index()'s rebuild: _pool = list(set), _gone = set(). */
static int build_index(PyObject *set)
{
    PyObject *pool = PySequence_List(set), *gone = pool ? PySet_New(NULL) : NULL;
    if (!gone) {
        Py_XDECREF(pool);
        return -1;
    }
    replace_slot(set, fam.set_pool, pool);
    replace_slot(set, fam.set_gone, gone);
    return 0;
}

/* Set._drop(at): the index's entry at removed, the last one moved into its place. */
static int drop_entry(PyObject *pool, Py_ssize_t at)
{
    Py_ssize_t end = PyList_GET_SIZE(pool) - 1;
    PyObject *last = PyList_GET_ITEM(pool, end);
    Py_INCREF(last);
    if (PyList_SetSlice(pool, end, end + 1, NULL) < 0) {
        Py_DECREF(last);
        return -1;
    }
    if (at < end)
        return PyList_SetItem(pool, at, last);
    Py_DECREF(last);
    return 0;
}

/* Set.draw(): a random member (a new reference) and its position in the index, -1 when a
 * small set without one drew from its own iteration order, as from tuple(set). A bigger set
 * draws from its index, built or rebuilt first when missing or out of step; draws that land
 * on a stale entry drop it and draw again. */
static int draw_member(PyObject *set, PyObject **member, Py_ssize_t *at)
{
    PyObject *pool = SLOT(set, fam.set_pool), *gone;
    Py_ssize_t n = PySet_GET_SIZE(set), r;

    if (pool == Py_None && n <= fam.small_set) {
        if (randbelow(n, &r) < 0)
            return FAILED;
        PyObject *it = PyObject_GetIter(set);
        for (*member = NULL; it && r >= 0; r--) {
            Py_XDECREF(*member);
            if (!(*member = PyIter_Next(it)))
                break;
        }
        Py_XDECREF(it);
        *at = -1;
        if (*member)
            return HANDLED;
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_RuntimeError, "Set changed size during SPOP");
        return FAILED;
    }
    if ((pool == Py_None ||
         PyList_GET_SIZE(pool) != n + PySet_GET_SIZE(SLOT(set, fam.set_gone))) &&
        build_index(set) < 0)
        return FAILED;
    pool = SLOT(set, fam.set_pool);
    gone = SLOT(set, fam.set_gone);
    /* Each redraw takes an entry out of both: with len(pool) == n + len(gone) and n > 0, the
     * pool cannot run out before gone does. */
    for (;;) {
        if (randbelow(PyList_GET_SIZE(pool), &r) < 0)
            return FAILED;
        *member = PyList_GET_ITEM(pool, r);
        int stale = PySet_GET_SIZE(gone) ? PySet_Discard(gone, *member) : 0;
        if (stale < 0 || (stale && drop_entry(pool, r) < 0))
            return FAILED;
        if (!stale)
            break;
    }
    Py_INCREF(*member);
    *at = r;
    return HANDLED;
}

/* SPOP key: sets.spop without a count. */
static int cmd_spop(Batch *b, PyObject **args, Py_ssize_t argc)
{
    PyObject *key = args[1], *set, *member;
    Py_ssize_t at;
    int rc = lookup_typed(b, key, fam.set, &set);
    if (rc != HANDLED)
        return rc;
    if (!set)
        return emit_shared(b, b->null);
    if (!PySet_GET_SIZE(set) || (rc = set_mirrored(set)) != HANDLED)
        return STOP;                    /* never stored empty */
    Py_INCREF(set);
    if ((rc = draw_member(set, &member, &at)) == HANDLED && !PyBytes_CheckExact(member)) {
        Py_DECREF(member);
        rc = STOP;                      /* never stored: the families store bytes */
    }
    if (rc != HANDLED) {
        Py_DECREF(set);
        return rc;
    }
    if (touch(b, key) < 0 || PySet_Discard(set, member) < 0 ||     /* Set.take */
        (at >= 0 && drop_entry(SLOT(set, fam.set_pool), at) < 0) ||
        (!PySet_GET_SIZE(set) && remove_key(b, key) < 0))   /* Redis drops an emptied set */
        rc = FAILED;
    Py_DECREF(set);
    if (rc == HANDLED) {
        b->dirty++;
        rc = emit_bulk(b, member);
        if (rc == HANDLED && b->log && log_record(b, word_srem, key, member) < 0)
            rc = FAILED;    /* a popped member is recorded as removed: replay can't draw it */
    }
    Py_DECREF(member);
    return rc;
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

/* HGET, ZSCORE: the value (borrowed) at args[2] in the dict of the given type at key
 * args[1]; when key or field is missing, NULL and the null reply sent. STOP for a value
 * that is not of kind (the encoder would write another reply). */
static int field_of(Batch *b, PyObject **args, PyObject *type, PyTypeObject *kind,
                    PyObject **value)
{
    PyObject *container;
    int rc = read_typed(b, args[1], type, b->null, &container);
    *value = NULL;
    if (rc != HANDLED || !container)
        return rc;
    if (!(*value = PyDict_GetItemWithError(container, args[2])) && PyErr_Occurred())
        return FAILED;
    if (*value && !Py_IS_TYPE(*value, kind))
        return STOP;
    if (hit(b, args[1]) < 0)
        return FAILED;
    return *value ? HANDLED : emit_shared(b, b->null);
}

static int cmd_hget(Batch *b, PyObject **args, Py_ssize_t argc)
{
    PyObject *value;
    int rc = field_of(b, args, fam.hash, &PyBytes_Type, &value);
    return rc == HANDLED && value ? emit_bulk(b, value) : rc;
}

/* ---- sorted sets, as zsets.py and zset_type.ZSet leave them ----
 * A ZSet is a dict (member -> score) and, in its `order` slot, a sortedcontainers.SortedList
 * of (score, member). That list's add and remove cost more than the rest of ZADD, so they are
 * mirrored here on its internals, step for step: _lists (sublists of at most 2 * _load items),
 * _maxes (each sublist's last item), _index (a positional tree over the sublists, kept up to
 * date while built), _len; comparisons of (float, bytes) pairs are done in C, anything else
 * the way Python compares tuples. */

/* zset_type.parse_score's value, for the texts it reads with float(): a plain decimal
 * ([+-], digits with an optional '.', or '.' and digits, then an optional exponent), finite,
 * not underflowing to 0. 0 for any other text: Python parses it (or reports the error). */
static int parse_score(PyObject *raw, double *score)
{
    const char *s = PyBytes_AS_STRING(raw), *p = s, *end = s + PyBytes_GET_SIZE(raw);
    int digits = 0, nonzero = 0, plain_int = 1;
    unsigned long long v = 0;

    if (p < end && (*p == '-' || *p == '+'))
        p++;
    for (; p < end && *p >= '0' && *p <= '9'; p++, digits++) {
        nonzero |= *p != '0';
        v = v * 10 + (unsigned)(*p - '0');
    }
    if (digits > 15)        /* v may have lost digits; below 10**15 it is exact in a double */
        plain_int = 0;
    if (p < end && *p == '.') {
        plain_int = 0;
        for (p++; p < end && *p >= '0' && *p <= '9'; p++, digits++)
            nonzero |= *p != '0';
    }
    if (!digits)
        return 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        const char *exponent;
        plain_int = 0;
        if (++p < end && (*p == '-' || *p == '+'))
            p++;
        for (exponent = p; p < end && *p >= '0' && *p <= '9'; p++)
            ;
        if (p == exponent)
            return 0;
    }
    if (p != end)
        return 0;
    if (plain_int) {
        *score = *s == '-' ? -(double)v : (double)v;
        return 1;
    }
    /* the grammar above is float()'s minus blanks and underscores: the same double */
    char *parsed;
    *score = PyOS_string_to_double(s, &parsed, NULL);
    if (*score == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    return parsed == end && !isinf(*score) && (*score != 0 || !nonzero);
}

/* A pair a SortedList is searched for: (score, member) with score the float object; pair
 * is that tuple, when it exists (the one being added), else NULL (the one being removed). */
typedef struct {
    double score;
    PyObject *score_obj, *member, *pair;    /* borrowed; member is bytes */
} Key;

enum { UNKNOWN = 2 };

/* item against key as Python orders tuples: -1, 0 or 1; UNKNOWN for what only Python can
 * compare (an item that is not a (float, bytes) pair, a NaN). A member is read only on a tie
 * of scores, as Python does: each read of a scattered object may cost a cache miss. */
static inline int key_order(PyObject *item, const Key *k)
{
    if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2)
        return UNKNOWN;
    PyObject *score = PyTuple_GET_ITEM(item, 0), *member;
    if (!PyFloat_CheckExact(score))
        return UNKNOWN;
    double x = PyFloat_AS_DOUBLE(score);
    if (x < k->score)
        return -1;
    if (x > k->score)
        return 1;
    if (x != k->score || !PyBytes_CheckExact(member = PyTuple_GET_ITEM(item, 1)))
        return UNKNOWN;
    Py_ssize_t la = PyBytes_GET_SIZE(member), lb = PyBytes_GET_SIZE(k->member);
    int c = memcmp(PyBytes_AS_STRING(member), PyBytes_AS_STRING(k->member),
                   (size_t)(la < lb ? la : lb));
    return c ? (c > 0) - (c < 0) : (la > lb) - (la < lb);
}

/* PyObject_RichCompareBool(a, b, op) with b the key's pair (made for the occasion when it
 * has none), or (b, a) with swap: what bisect and list.remove would ask Python. */
static Py_NO_INLINE int python_compare(PyObject *a, const Key *k, int op, int swap)
{
    PyObject *pair = k->pair ? Py_NewRef(k->pair) : PyTuple_Pack(2, k->score_obj, k->member);
    if (!pair)
        return -1;
    Py_INCREF(a);
    int rc = swap ? PyObject_RichCompareBool(pair, a, op) : PyObject_RichCompareBool(a, pair, op);
    Py_DECREF(a);
    Py_DECREF(pair);
    return rc;
}

static inline Py_ssize_t middle(Py_ssize_t lo, Py_ssize_t hi)
{
    return (Py_ssize_t)(((size_t)lo + (size_t)hi) / 2);
}

/* Start loading what the bisect of list[lo:hi] will read next: the score of the pair it
 * probes (that pair should be loaded by now), and the pairs it may probe after that. A
 * pair's score is its first item; for anything else this fetches its type field, which lies
 * inside any object. Inlined by force: as a call, GCC finds it without effects and drops it. */
static inline __attribute__((always_inline)) void prefetch_probes(PyObject *list, Py_ssize_t lo,
                                                                  Py_ssize_t hi)
{
    if (lo < hi) {
        Py_ssize_t mid = middle(lo, hi);
        PyObject *pair = PyList_GET_ITEM(list, mid);
        PyObject **score = Py_IS_TYPE(pair, &PyTuple_Type) ? &PyTuple_GET_ITEM(pair, 0)
                                                           : (PyObject **)&pair->ob_type;
        __builtin_prefetch(*score);
        if (lo < mid)
            __builtin_prefetch(PyList_GET_ITEM(list, middle(lo, mid)));
        if (mid + 1 < hi)
            __builtin_prefetch(PyList_GET_ITEM(list, middle(mid + 1, hi)));
    }
}

/* A bisect.bisect_right (right) or bisect_left of a key in a list, run a probe at a time so
 * that two can run side by side: pairs lie scattered in memory, and a big sorted set written
 * at random costs two cache misses a probe (the pair, then its score), unless they are loaded
 * ahead, for both ways the bisect may go, or overlap with another bisect's. */
typedef struct {
    PyObject *list;
    const Key *key;
    int right;
    Py_ssize_t lo, hi;
} Search;

static inline Search search(PyObject *list, const Key *k, int right)
{
    return (Search){list, k, right, 0, PyList_GET_SIZE(list)};
}

/* One probe: 1 while the search goes on, 0 once done (the position is lo), -1 with an error. */
static inline __attribute__((always_inline)) int search_step(Search *q)
{
    if (q->lo >= q->hi)
        return 0;
    if (q->hi > PyList_GET_SIZE(q->list)) {     /* only a comparison in Python could do it */
        PyErr_SetString(PyExc_RuntimeError, "list changed size during bisect");
        return -1;
    }
    Py_ssize_t mid = middle(q->lo, q->hi);
    PyObject *item = PyList_GET_ITEM(q->list, mid);
    prefetch_probes(q->list, q->lo, mid);
    prefetch_probes(q->list, mid + 1, q->hi);
    int order = key_order(item, q->key), below;  /* right: key < item; left: item < key */
    if (order == UNKNOWN && (below = python_compare(item, q->key, Py_LT, q->right)) < 0)
        return -1;
    if (order != UNKNOWN)
        below = q->right ? order > 0 : order < 0;
    if (q->right ? below : !below)
        q->hi = mid;
    else
        q->lo = mid + 1;
    return 1;
}

/* bisect.bisect_right (right) or bisect_left of the key in list; -1 with an error. */
static Py_ssize_t bisect(PyObject *list, const Key *k, int right)
{
    Search q = search(list, k, right);
    int rc;
    while ((rc = search_step(&q)) > 0)
        ;
    return rc < 0 ? -1 : q.lo;
}

/* Two bisects probe for probe; -1 with an error. */
static int bisect_both(Search *a, Search *b)
{
    int ra = 1, rb = 1;
    while (ra > 0 || rb > 0)
        if ((ra > 0 && (ra = search_step(a)) < 0) || (rb > 0 && (rb = search_step(b)) < 0))
            return -1;
    return 0;
}

static int list_attr(PyObject *obj, PyObject *name, PyObject **list)
{
    *list = PyObject_GetAttr(obj, name);
    if (!*list)
        return FAILED;
    return PyList_CheckExact(*list) ? HANDLED : STOP;
}

static int ssize_attr(PyObject *obj, PyObject *name, Py_ssize_t *value)
{
    PyObject *v = PyObject_GetAttr(obj, name);
    if (!v)
        return FAILED;
    if (!PyLong_CheckExact(v)) {
        Py_DECREF(v);
        return STOP;
    }
    *value = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return *value == -1 && PyErr_Occurred() ? FAILED : HANDLED;
}

static void sorted_release(Sorted *s)
{
    Py_CLEAR(s->sl);
    Py_CLEAR(s->lists);
    Py_CLEAR(s->maxes);
    Py_CLEAR(s->index);
    s->scores = NULL;
}

/* Write the open SortedList's _len back and let it go: no Python code runs while a batch
 * holds it (bytes, floats and tuples compare in C), so only the batch's end must do it. */
static int sorted_close(Sorted *s)
{
    int rc = 0;
    if (s->sl && s->changed) {
        PyObject *len = PyLong_FromSsize_t(s->len);
        rc = len ? PyObject_SetAttr(s->sl, str_len, len) : -1;
        Py_XDECREF(len);
    }
    sorted_release(s);
    return rc;
}

/* The internals of sl, a SortedList, in *s (the batch's, reused while it writes to the same
 * list); STOP, nothing held, for one it does not mirror. */
static int sorted_open(Batch *b, PyObject *sl, Sorted **s)
{
    Sorted *o = &b->order;
    int rc;
    *s = o;
    if (o->sl == sl)
        return HANDLED;
    if (sorted_close(o) < 0)
        return FAILED;
    Py_INCREF(sl);
    *o = (Sorted){sl, NULL, NULL, NULL, 0, 0, 0, NULL};
    if ((rc = list_attr(sl, str_lists, &o->lists)) != HANDLED ||
        (rc = list_attr(sl, str_maxes, &o->maxes)) != HANDLED ||
        (rc = list_attr(sl, str_index, &o->index)) != HANDLED ||
        (rc = ssize_attr(sl, str_load, &o->load)) != HANDLED ||
        (rc = ssize_attr(sl, str_len, &o->len)) != HANDLED ||
        (o->load <= 0 || o->load > PY_SSIZE_T_MAX / 2))
        rc = rc == HANDLED ? STOP : rc;
    if (rc != HANDLED)
        sorted_release(o);
    return rc;
}

/* list[i] (borrowed), a list itself; NULL with an error. */
static PyObject *sublist(Sorted *s, Py_ssize_t i)
{
    PyObject *item = i < PyList_GET_SIZE(s->lists) ? PyList_GET_ITEM(s->lists, i) : NULL;
    if (!item || !PyList_CheckExact(item)) {
        PyErr_SetString(PyExc_TypeError, "SortedList._lists must hold lists");
        return NULL;
    }
    return item;
}

static PyObject *last_item(PyObject *list)
{
    Py_ssize_t n = PyList_GET_SIZE(list);
    if (!n)
        PyErr_SetString(PyExc_IndexError, "list index out of range");
    return n ? PyList_GET_ITEM(list, n - 1) : NULL;
}

static int set_item(PyObject *list, Py_ssize_t i, PyObject *value)
{
    if (!value)
        return -1;
    Py_INCREF(value);
    return PyList_SetItem(list, i, value);
}

static int del_items(PyObject *list, Py_ssize_t from, Py_ssize_t to)
{
    return PyList_SetSlice(list, from, to, NULL);
}

/* ---- a copy of each sublist's scores, so that a bisect need not visit the pairs ----
 * A probe of a bisect over the pairs reads a tuple, then its float: in a big sorted set,
 * two cache misses each, ten probes a sublist. The ZSet's `native` slot holds (in a capsule)
 * each sublist's scores in a plain array as well, kept in step by the changes below. A
 * bisect runs on that array, reads pairs only where scores tie, and checks its answer on
 * the pairs either side of it: a copy out of step (Python changed the list since) costs a
 * rebuild, never a wrong answer. A copy is in step with a sublist while `list` is that
 * sublist and `n` its length; the copy of a SortedList while `count` is its sublists'. */

typedef struct {
    PyObject *list;             /* the sublist copied, compared by identity only */
    Py_ssize_t n, cap;
    double *score;
    int usable;                 /* every item is a tuple with a float score */
} ScoreRun;

typedef struct Scores {
    PyObject *sl;               /* the SortedList copied, compared by identity only */
    Py_ssize_t count, cap;
    ScoreRun *run;
} Scores;

static const char SCORES_CAPSULE[] = "fastcache.zset.scores";

static void scores_clear(Scores *sc, PyObject *sl)
{
    for (Py_ssize_t i = 0; i < sc->cap; i++)
        PyMem_Free(sc->run[i].score);
    PyMem_Free(sc->run);
    *sc = (Scores){sl, 0, 0, NULL};
}

static void scores_free(PyObject *capsule)
{
    Scores *sc = PyCapsule_GetPointer(capsule, SCORES_CAPSULE);
    if (sc) {
        scores_clear(sc, NULL);
        PyMem_Free(sc);
    }
}

/* Room for count runs (new ones empty); 0 when memory ran out (the copy is dropped). */
static int scores_reserve(Scores *sc, Py_ssize_t count)
{
    if (count > sc->cap) {
        Py_ssize_t cap = count + count / 2 + 4;
        ScoreRun *run = PyMem_Realloc(sc->run, (size_t)cap * sizeof(ScoreRun));
        if (!run) {
            scores_clear(sc, NULL);
            return 0;
        }
        memset(run + sc->cap, 0, (size_t)(cap - sc->cap) * sizeof(ScoreRun));
        sc->run = run;
        sc->cap = cap;
    }
    return 1;
}

/* The copy of sl's scores in zs's native slot, made (empty) when missing or of another
 * list, with one run a sublist (the ones not known to be in step emptied); NULL without
 * one (no memory: the bisects visit the pairs). */
static Scores *scores_of(PyObject *zs, PyObject *sl, PyObject *lists)
{
    PyObject *capsule = SLOT(zs, fam.zset_native);
    Scores *sc;
    if (capsule && PyCapsule_IsValid(capsule, SCORES_CAPSULE)) {
        sc = PyCapsule_GetPointer(capsule, SCORES_CAPSULE);
    } else {
        if (!(sc = PyMem_Calloc(1, sizeof(Scores))))
            return NULL;
        if (!(capsule = PyCapsule_New(sc, SCORES_CAPSULE, scores_free))) {
            PyMem_Free(sc);
            PyErr_Clear();
            return NULL;
        }
        replace_slot(zs, fam.zset_native, capsule);
    }
    Py_ssize_t count = PyList_GET_SIZE(lists);
    if (sc->sl != sl || sc->count != count) {
        for (Py_ssize_t i = 0; i < sc->cap; i++)
            sc->run[i].list = NULL;
        if (!scores_reserve(sc, count))
            return NULL;
        sc->sl = sl;
        sc->count = count;
    }
    return sc;
}

/* A run for a sublist inserted at pos, empty (filled on first use). */
static void scores_insert_run(Sorted *s, Py_ssize_t pos)
{
    Scores *sc = s->scores;
    if (!sc)
        return;
    if (!scores_reserve(sc, sc->count + 1)) {
        s->scores = NULL;
        return;
    }
    ScoreRun spare = sc->run[sc->count];    /* an unused run's array, reused */
    memmove(sc->run + pos + 1, sc->run + pos, (size_t)(sc->count - pos) * sizeof(ScoreRun));
    sc->run[pos] = spare;
    sc->run[pos].list = NULL;
    sc->count++;
}

static void scores_remove_run(Sorted *s, Py_ssize_t pos)
{
    Scores *sc = s->scores;
    if (!sc)
        return;
    ScoreRun gone = sc->run[pos];
    memmove(sc->run + pos, sc->run + pos + 1, (size_t)(sc->count - pos - 1) * sizeof(ScoreRun));
    sc->count--;
    sc->run[sc->count] = gone;
    sc->run[sc->count].list = NULL;
}

static int run_reserve(ScoreRun *r, Py_ssize_t n)
{
    if (n > r->cap) {
        Py_ssize_t cap = n + n / 4 + 16;
        double *score = PyMem_Realloc(r->score, (size_t)cap * sizeof(double));
        if (!score) {
            r->list = NULL;
            return 0;
        }
        r->score = score;
        r->cap = cap;
    }
    return 1;
}

/* The run of sublist pos (part) if it is in step with part's n items (before a change
 * mirrored on it), else NULL. */
static ScoreRun *run_in_step(Sorted *s, Py_ssize_t pos, PyObject *part, Py_ssize_t n)
{
    Scores *sc = s->scores;
    if (!sc || pos >= sc->count)
        return NULL;
    ScoreRun *r = &sc->run[pos];
    return r->list == part && r->n == n && r->usable ? r : NULL;
}

/* The run of sublist pos (part), copied from it unless in step; NULL when there is none (a
 * score that is not a float, no memory). */
static ScoreRun *run_of(Sorted *s, Py_ssize_t pos, PyObject *part)
{
    Scores *sc = s->scores;
    Py_ssize_t n = PyList_GET_SIZE(part);
    if (!sc || pos >= sc->count)
        return NULL;
    ScoreRun *r = &sc->run[pos];
    if (r->list == part && r->n == n)
        return r->usable ? r : NULL;
    if (!run_reserve(r, n))
        return NULL;
    r->list = part;
    r->n = n;
    r->usable = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(part, i), *score;
        if (i + 8 < n)
            __builtin_prefetch(PyList_GET_ITEM(part, i + 8));
        if (!PyTuple_CheckExact(item) || PyTuple_GET_SIZE(item) != 2 ||
            !PyFloat_CheckExact(score = PyTuple_GET_ITEM(item, 0)))
            return NULL;
        r->score[i] = PyFloat_AS_DOUBLE(score);
    }
    r->usable = 1;
    return r;
}

/* Mirror list.insert(at, pair with score x) on r (NULL: nothing to mirror). */
static void run_insert(ScoreRun *r, Py_ssize_t at, double x)
{
    if (!r || !run_reserve(r, r->n + 1))
        return;
    memmove(r->score + at + 1, r->score + at, (size_t)(r->n - at) * sizeof(double));
    r->score[at] = x;
    r->n++;
}

static void run_delete(ScoreRun *r, Py_ssize_t at)
{
    if (!r)
        return;
    memmove(r->score + at, r->score + at + 1, (size_t)(r->n - at - 1) * sizeof(double));
    r->n--;
}

/* A bisect_left of x in a run's scores, a probe at a time so that two can run side by side;
 * each probe starts loading the four the search may probe two steps on: the arrays are
 * small, and a few probes into them the reads miss the cache. */
typedef struct {
    const double *v;
    double x;
    Py_ssize_t lo, hi;
} ScoreSearch;

static inline __attribute__((always_inline)) int score_step(ScoreSearch *t)
{
    if (t->lo >= t->hi)
        return 0;
    Py_ssize_t lo = t->lo, hi = t->hi, mid = middle(lo, hi);
    Py_ssize_t left = middle(lo, mid), right = middle(mid + 1, hi);
    __builtin_prefetch(t->v + middle(lo, left));
    __builtin_prefetch(t->v + middle(left + 1, mid));
    __builtin_prefetch(t->v + middle(mid + 1, right));
    __builtin_prefetch(t->v + middle(right + 1, hi));
    if (t->v[mid] < t->x)
        t->lo = mid + 1;
    else
        t->hi = mid;
    return 1;
}

/* Narrow q, a bisect of sublist pos, to the pairs whose score ties the key's, found on the
 * run of scores (ties are few, so they are walked); 0 (q left whole) without a run or for a
 * NaN key. Two at once when b is not NULL, *narrowed_b telling the same of b. */
static int narrow_both(Sorted *s, Py_ssize_t pos_a, Search *a, Py_ssize_t pos_b, Search *b,
                       int *narrowed_b)
{
    ScoreRun *r[2] = {NULL, NULL};
    Search *q[2] = {a, b};
    Py_ssize_t pos[2] = {pos_a, pos_b};
    ScoreSearch t[2] = {{NULL, 0, 0, 0}, {NULL, 0, 0, 0}};
    for (int i = 0; i < 2; i++)
        if (q[i] && !isnan(q[i]->key->score) && (r[i] = run_of(s, pos[i], q[i]->list)))
            t[i] = (ScoreSearch){r[i]->score, q[i]->key->score, 0, r[i]->n};
    while (score_step(&t[0]) | score_step(&t[1]))
        ;
    for (int i = 0; i < 2; i++)
        if (r[i]) {
            Py_ssize_t end = t[i].lo;
            while (end < r[i]->n && r[i]->score[end] == t[i].x)
                end++;
            q[i]->lo = t[i].lo;
            q[i]->hi = end;
        }
    if (narrowed_b)
        *narrowed_b = r[1] != NULL;
    return r[0] != NULL;
}

static int narrow(Sorted *s, Py_ssize_t pos, Search *q)
{
    return narrow_both(s, pos, q, 0, NULL, NULL);
}

/* Start loading the pairs a narrowed bisect reads (the ties, then the pairs either side of
 * its answer, which check it), or their items: the pairs must be loaded first. Ties are
 * common in a big set (redis-benchmark draws scores and members from one range). */
static inline __attribute__((always_inline)) void prefetch_window(const Search *q, int items)
{
    Py_ssize_t n = PyList_GET_SIZE(q->list), i = q->lo > 0 ? q->lo - 1 : 0;
    Py_ssize_t end = q->hi < n ? q->hi : n - 1;
    if (end - i > 8)
        end = i + 8;
    for (; i <= end; i++) {
        PyObject *pair = PyList_GET_ITEM(q->list, i);
        if (!items) {
            __builtin_prefetch(pair);
        } else if (Py_IS_TYPE(pair, &PyTuple_Type)) {
            __builtin_prefetch(PyTuple_GET_ITEM(pair, 0));
            __builtin_prefetch(PyTuple_GET_ITEM(pair, 1));
        }
    }
}

/* Whether a narrowed bisect's answer holds in the list: the pair before it is below the key
 * (not above it, for a bisect_right) and the pair at it not below (above) it, which in a
 * sorted list makes it the bisect's answer. */
static int confirmed(const Search *q)
{
    Py_ssize_t p = q->lo, n = PyList_GET_SIZE(q->list);
    int order;
    if (p > n)
        return 0;
    if (p > 0 && ((order = key_order(PyList_GET_ITEM(q->list, p - 1), q->key)) == UNKNOWN ||
                  (q->right ? order > 0 : order >= 0)))
        return 0;
    if (p < n && ((order = key_order(PyList_GET_ITEM(q->list, p), q->key)) == UNKNOWN ||
                  (q->right ? order <= 0 : order < 0)))
        return 0;
    return 1;
}

/* After a narrowed bisect: its answer if confirmed, else the run is dropped and the whole
 * sublist bisected; -1 with an error. */
static Py_ssize_t settle(Sorted *s, Py_ssize_t pos, Search *q)
{
    if (confirmed(q))
        return q->lo;
    s->scores->run[pos].list = NULL;
    return q->lo = bisect(q->list, q->key, q->right);
}

/* bisect (right or left) of k in sublist pos (part), through its run of scores if it can. */
static Py_ssize_t bisect_sublist(Sorted *s, Py_ssize_t pos, PyObject *part, const Key *k,
                                 int right)
{
    Search q = search(part, k, right);
    int narrowed = narrow(s, pos, &q), rc;
    if (narrowed) {
        prefetch_window(&q, 0);
        prefetch_window(&q, 1);
    }
    while ((rc = search_step(&q)) > 0)
        ;
    if (rc < 0)
        return -1;
    return narrowed ? settle(s, pos, &q) : q.lo;
}

/* Mirror the split of sublist pos at s->load into it and half; in_step: its run was in step
 * before. */
static void run_split(Sorted *s, Py_ssize_t pos, int in_step, PyObject *half)
{
    scores_insert_run(s, pos + 1);
    if (!s->scores)
        return;
    ScoreRun *r = &s->scores->run[pos], *h = &s->scores->run[pos + 1];
    Py_ssize_t tail = r->n - s->load;
    if (!in_step || !run_reserve(h, tail)) {
        r->list = NULL;
        return;
    }
    memcpy(h->score, r->score + s->load, (size_t)tail * sizeof(double));
    *h = (ScoreRun){half, tail, h->cap, h->score, 1};
    r->n = s->load;
}

/* Mirror the merge of sublist pos into pos - 1; runs: theirs if they were in step. */
static void run_merge(Sorted *s, Py_ssize_t pos, ScoreRun *prev, ScoreRun *next)
{
    if (prev && (!next || !run_reserve(prev, prev->n + next->n)))
        prev->list = NULL;
    else if (prev) {
        memcpy(prev->score + prev->n, next->score, (size_t)next->n * sizeof(double));
        prev->n += next->n;
    }
    scores_remove_run(s, pos);
}

/* list[i] += delta, for the positional index's counts. */
static int add_to_count(PyObject *list, Py_ssize_t i, long delta)
{
    if (i >= PyList_GET_SIZE(list)) {
        PyErr_SetString(PyExc_IndexError, "SortedList._index out of step");
        return -1;
    }
    Py_ssize_t count = PyLong_AsSsize_t(PyList_GET_ITEM(list, i));
    if (count == -1 && PyErr_Occurred())
        return -1;
    PyObject *v = PyLong_FromSsize_t(count + delta);
    return v ? PyList_SetItem(list, i, v) : -1;
}

/* The index's counts on the way from sublist pos to the root, while the index is built. */
static int index_update(Sorted *s, Py_ssize_t pos, long delta)
{
    Py_ssize_t offset;
    if (!PyList_GET_SIZE(s->index))
        return 0;
    int rc = ssize_attr(s->sl, str_offset, &offset);
    if (rc != HANDLED) {
        if (rc == STOP)
            PyErr_SetString(PyExc_TypeError, "SortedList._offset must be an int");
        return -1;
    }
    for (Py_ssize_t child = offset + pos; child > 0; child = (child - 1) >> 1)
        if (add_to_count(s->index, child, delta) < 0)
            return -1;
    return add_to_count(s->index, 0, delta);
}

/* SortedList._expand: split an overfull sublist, or count its new item in the index. */
static int sorted_expand(Sorted *s, Py_ssize_t pos)
{
    PyObject *part = sublist(s, pos), *half;
    if (!part)
        return -1;
    Py_ssize_t n = PyList_GET_SIZE(part);
    if (n <= s->load * 2)
        return index_update(s, pos, 1);
    if (!(half = PyList_GetSlice(part, s->load, n)))
        return -1;
    int in_step = run_in_step(s, pos, part, n) != NULL;
    int rc = del_items(part, s->load, n) < 0 || set_item(s->maxes, pos, last_item(part)) < 0 ||
             PyList_Insert(s->lists, pos + 1, half) < 0 ||
             PyList_Insert(s->maxes, pos + 1, last_item(half)) < 0 ||
             del_items(s->index, 0, PyList_GET_SIZE(s->index)) < 0 ? -1 : 0;
    if (rc == 0)
        run_split(s, pos, in_step, half);
    Py_DECREF(half);
    return rc;
}

/* The insort of SortedList.add: the key's pair at position at of sublist pos. */
static int sorted_insert(Sorted *s, const Key *k, Py_ssize_t pos, Py_ssize_t at)
{
    PyObject *part = sublist(s, pos);
    s->changed = 1;
    if (!part)
        return -1;
    ScoreRun *r = run_in_step(s, pos, part, PyList_GET_SIZE(part));
    if (PyList_Insert(part, at, k->pair) < 0)
        return -1;
    run_insert(r, at, k->score);
    if (sorted_expand(s, pos) < 0)
        return -1;
    s->len++;
    return 0;
}

/* SortedList.add(value): value is the key's pair */
static int sorted_add(Sorted *s, const Key *k)
{
    PyObject *value = k->pair;
    Py_ssize_t n = PyList_GET_SIZE(s->maxes), pos, at;
    PyObject *part;
    s->changed = 1;
    if (!n) {
        PyObject *first = PyList_New(1);
        if (!first)
            return -1;
        Py_INCREF(value);
        PyList_SET_ITEM(first, 0, value);
        int rc = PyList_Append(s->lists, first) < 0 || PyList_Append(s->maxes, value) < 0;
        Py_DECREF(first);
        if (rc)
            return -1;
        scores_insert_run(s, 0);
    } else {
        if ((pos = bisect(s->maxes, k, 1)) < 0 || !(part = sublist(s, pos == n ? n - 1 : pos)))
            return -1;
        if (pos < n)
            return (at = bisect_sublist(s, pos, part, k, 1)) < 0 ? -1
                                                                 : sorted_insert(s, k, pos, at);
        ScoreRun *r = run_in_step(s, n - 1, part, PyList_GET_SIZE(part));
        if (PyList_Append(part, value) < 0)
            return -1;
        run_insert(r, PyList_GET_SIZE(part) - 1, k->score);
        if (set_item(s->maxes, n - 1, value) < 0 || sorted_expand(s, n - 1) < 0)
            return -1;
    }
    s->len++;
    return 0;
}

/* SortedList._delete: take item idx out of sublist pos, merging a sublist that got too short
 * into its neighbour. RESHAPED when that merged or dropped sublists, 0 when they are the
 * same lists, -1 with an error. */
enum { RESHAPED = 1 };

static int sorted_delete(Sorted *s, Py_ssize_t pos, Py_ssize_t idx)
{
    PyObject *part = sublist(s, pos), *prev_part, *next_part;
    ScoreRun *r = part ? run_in_step(s, pos, part, PyList_GET_SIZE(part)) : NULL;
    if (!part || del_items(part, idx, idx + 1) < 0)
        return -1;
    run_delete(r, idx);
    s->len--;
    Py_ssize_t n = PyList_GET_SIZE(part);
    if (n > s->load / 2)
        return set_item(s->maxes, pos, last_item(part)) < 0 ? -1 : index_update(s, pos, -1);
    if (PyList_GET_SIZE(s->lists) > 1) {
        if (!pos)
            pos++;
        if (!(prev_part = sublist(s, pos - 1)) || !(next_part = sublist(s, pos)))
            return -1;
        ScoreRun *prev = run_in_step(s, pos - 1, prev_part, PyList_GET_SIZE(prev_part));
        ScoreRun *next = run_in_step(s, pos, next_part, PyList_GET_SIZE(next_part));
        if (PyList_SetSlice(prev_part, PyList_GET_SIZE(prev_part), PyList_GET_SIZE(prev_part),
                            next_part) < 0 ||
            set_item(s->maxes, pos - 1, last_item(prev_part)) < 0 ||
            del_items(s->lists, pos, pos + 1) < 0)
            return -1;
        run_merge(s, pos, prev, next);
        if (del_items(s->maxes, pos, pos + 1) < 0 ||
            del_items(s->index, 0, PyList_GET_SIZE(s->index)) < 0)
            return -1;
        return sorted_expand(s, pos - 1) < 0 ? -1 : RESHAPED;
    }
    if (n)
        return set_item(s->maxes, pos, last_item(part));
    if (del_items(s->lists, pos, pos + 1) < 0)
        return -1;
    scores_remove_run(s, pos);
    return del_items(s->maxes, pos, pos + 1) < 0 ||
           del_items(s->index, 0, PyList_GET_SIZE(s->index)) < 0 ? -1 : RESHAPED;
}

/* Whether item idx of part is the key's pair (list.remove's test); -1 with an error. */
static int holds(PyObject *part, Py_ssize_t idx, const Key *k)
{
    if (idx >= PyList_GET_SIZE(part))
        return 0;
    PyObject *item = PyList_GET_ITEM(part, idx);
    int order = key_order(item, k);
    return order == UNKNOWN ? python_compare(item, k, Py_EQ, 0) : order == 0;
}

static int not_in_list(const Key *k)
{
    PyErr_Format(PyExc_ValueError, "(%R, %R) not in list", k->score_obj, k->member);
    return -1;
}

/* SortedList.remove(gone's pair) then .add(added's pair), as ZSet.rescore does. The two
 * bisects of the sublists run side by side (the add's on the list as it was before the
 * remove), the add's kept unless the remove reshaped the sublists or moved the one the add
 * goes to: removing the item at idx from a list takes one off the bisect_right of anything
 * it was not above. */
static int sorted_move(Sorted *s, const Key *gone, const Key *added)
{
    Py_ssize_t n = PyList_GET_SIZE(s->maxes), pos, to;
    PyObject *part;
    int found, reshaped;
    s->changed = 1;
    if (!n || (pos = bisect(s->maxes, gone, 0)) == n)
        return not_in_list(gone);
    if (pos < 0 || (to = bisect(s->maxes, added, 1)) < 0 || !(part = sublist(s, pos)))
        return -1;
    Search from = search(part, gone, 0), into = {NULL, added, 1, 0, 0};
    int narrowed_from, narrowed_into = 0;
    if (to < n) {
        PyObject *target = sublist(s, to);
        if (!target)
            return -1;
        into = search(target, added, 1);
    }                                   /* else appended to the last: no bisect of a sublist */
    narrowed_from = narrow_both(s, pos, &from, to, to < n ? &into : NULL, &narrowed_into);
    for (int items = 0; items < 2; items++) {
        if (narrowed_from)
            prefetch_window(&from, items);
        if (narrowed_into)
            prefetch_window(&into, items);
    }
    if (bisect_both(&from, &into) < 0)
        return -1;
    if ((narrowed_from && settle(s, pos, &from) < 0) ||
        (narrowed_into && settle(s, to, &into) < 0) ||
        (found = holds(part, from.lo, gone)) < 0)
        return -1;
    if (!found)
        return not_in_list(gone);
    if ((reshaped = sorted_delete(s, pos, from.lo)) < 0)
        return -1;
    if (reshaped || to == n)
        return sorted_add(s, added);
    Py_ssize_t again = bisect(s->maxes, added, 1);     /* the maxima are in the cache */
    if (again < 0)
        return -1;
    if (again != to)
        return sorted_add(s, added);
    return sorted_insert(s, added, to, into.lo - (to == pos && from.lo < into.lo));
}

/* A ZSet this mirrors: a SortedList for order, a bool for big. */
static int zset_mirrored(PyObject *zs)
{
    PyObject *order = SLOT(zs, fam.zset_order), *big = SLOT(zs, fam.zset_big);
    return fam.sorted_known && order && (PyObject *)Py_TYPE(order) == fam.sortedlist &&
           (big == Py_True || big == Py_False) ? HANDLED : STOP;
}

/* A ZSet being written, with its order opened. */
typedef struct {
    PyObject *zs;
    Sorted *order;
} ZWrite;

/* Start writing to zs, the live ZSet at key (borrowed), or to a new one stored there when
 * zs is NULL (zsets._create); the access time is refreshed like Keyspace.get_for_write. */
static int zset_start(Batch *b, PyObject *key, PyObject *zs, ZWrite *z)
{
    int rc, created = !zs;
    if (zs)
        Py_INCREF(zs);
    else if (!(zs = PyObject_CallNoArgs(fam.zset)))
        return FAILED;
    if ((rc = zset_mirrored(zs)) == HANDLED &&
        (rc = sorted_open(b, SLOT(zs, fam.zset_order), &z->order)) == HANDLED &&
        (created ? put(b, key, zs, 0) : touch(b, key)) < 0)
        rc = FAILED;
    if (rc == HANDLED)
        z->order->scores = scores_of(zs, z->order->sl, z->order->lists);
    if (rc != HANDLED) {
        Py_DECREF(zs);
        return rc;
    }
    z->zs = zs;
    return HANDLED;
}

/* Done writing: HANDLED unless something failed (ok is -1). */
static int zset_finish(ZWrite *z, int ok)
{
    Py_DECREF(z->zs);
    return ok < 0 ? FAILED : HANDLED;
}

/* Store member's score in the dict and its (score, member) pair in the order, in place of
 * the pair with the old score (a float object) if any. */
static int zset_place(ZWrite *z, PyObject *member, double score, PyObject *old)
{
    PyObject *value = PyFloat_FromDouble(score);
    if (!value)
        return -1;
    Key added = {score, value, member, PyTuple_Pack(2, value, member)};
    /* a float and bytes make no cycle: untracked, as the collector would leave it, the pair
     * is freed without touching its neighbours in the collector's list (two cache misses) */
    if (added.pair)
        PyObject_GC_UnTrack(added.pair);
    int rc = added.pair ? PyDict_SetItem(z->zs, member, value) : -1;
    if (rc == 0 && old) {       /* the dict let go of old; the caller holds it */
        /* a NaN key is compared by Python: what it makes of a score of another type */
        Key gone = {PyFloat_CheckExact(old) ? PyFloat_AS_DOUBLE(old) : Py_NAN, old, member,
                    NULL};
        rc = sorted_move(z->order, &gone, &added);
    } else if (rc == 0) {
        rc = sorted_add(z->order, &added);
    }
    Py_XDECREF(added.pair);
    Py_DECREF(value);
    return rc;
}

/* ZSet.insert(member, score): a listpack holds -0 as 0 and converts past its limits. */
static int zset_insert(ZWrite *z, PyObject *member, double score)
{
    if (SLOT(z->zs, fam.zset_big) == Py_False) {
        if (PyDict_GET_SIZE(z->zs) >= fam.zset_max_entries ||
            PyBytes_GET_SIZE(member) > fam.zset_max_value)
            set_flag(z->zs, fam.zset_big);
        else
            score += 0.0;
    }
    return zset_place(z, member, score, NULL);
}

/* ZSet.rescore(member, old, score) */
static int zset_rescore(ZWrite *z, PyObject *member, PyObject *old, double score)
{
    if (SLOT(z->zs, fam.zset_big) == Py_False)
        score += 0.0;
    Py_INCREF(old);
    int rc = zset_place(z, member, score, old);
    Py_DECREF(old);
    return rc;
}

/* score != old, as Python compares a float with a stored score; -1 with an error. */
static int score_differs(double score, PyObject *old)
{
    if (PyFloat_CheckExact(old))
        return score != PyFloat_AS_DOUBLE(old);
    PyObject *value = PyFloat_FromDouble(score);
    int rc = -1;
    if (value) {
        Py_INCREF(old);
        rc = PyObject_RichCompareBool(value, old, Py_NE);
        Py_DECREF(old);
        Py_DECREF(value);
    }
    return rc;
}

/* The live ZSet at key (borrowed) in *zs, NULL if missing; STOP for another type or a ZSet
 * this does not mirror. */
static int zset_lookup(Batch *b, PyObject *key, PyObject **zs)
{
    int rc = lookup_typed(b, key, fam.zset, zs);
    return rc == HANDLED && *zs ? zset_mirrored(*zs) : rc;
}

/* ZADD key score member [score member ...]: zsets._zadd without options. */
static int cmd_zadd(Batch *b, PyObject **args, Py_ssize_t argc)
{
    Py_ssize_t pairs = (argc - 2) / 2, added = 0, updated = 0, i;
    double stack[SCORES_STACK], *scores = stack;
    PyObject *zs;
    ZWrite z;
    int rc = STOP, ok = 0;

    if (pairs > SCORES_STACK && !(scores = PyMem_Malloc((size_t)pairs * sizeof(double)))) {
        PyErr_NoMemory();
        return FAILED;
    }
    /* every score is parsed before the lookup, which may expire the key */
    for (i = 0; i < pairs; i++)
        if (!parse_score(args[2 + 2 * i], &scores[i]))
            goto done;
    if ((rc = zset_lookup(b, args[1], &zs)) != HANDLED ||
        (rc = zset_start(b, args[1], zs, &z)) != HANDLED)
        goto done;
    for (i = 0; i < pairs && ok == 0; i++) {
        PyObject *member = args[3 + 2 * i], *old = PyDict_GetItemWithError(z.zs, member);
        int differs;
        if (!old) {
            ok = PyErr_Occurred() ? -1 : zset_insert(&z, member, scores[i]);
            added++;
        } else if ((differs = score_differs(scores[i], old)) != 0) {
            ok = differs < 0 ? -1 : zset_rescore(&z, member, old, scores[i]);
            updated++;
        }
    }
    if ((rc = zset_finish(&z, ok)) == HANDLED) {
        b->dirty += added + updated;
        rc = emit_int(b, added);
    }
done:
    if (scores != stack)
        PyMem_Free(scores);
    return rc;
}

/* ZINCRBY key increment member: zsets._zadd with INCR. */
static int cmd_zincrby(Batch *b, PyObject **args, Py_ssize_t argc)
{
    PyObject *key = args[1], *member = args[3], *zs, *old = NULL;
    double score;
    ZWrite z;
    int rc, ok = 0, changed = 1;

    if (!parse_score(args[2], &score))
        return STOP;
    if ((rc = zset_lookup(b, key, &zs)) != HANDLED)
        return rc;
    if (zs && !(old = PyDict_GetItemWithError(zs, member)) && PyErr_Occurred())
        return FAILED;
    if (old) {
        if (!PyFloat_CheckExact(old))
            return STOP;
        score += PyFloat_AS_DOUBLE(old);
        if (isnan(score))
            return STOP;                /* the NaN error is Python's to report */
    }
    if ((rc = zset_start(b, key, zs, &z)) != HANDLED)
        return rc;
    if (!old)
        ok = zset_insert(&z, member, score);
    else if (score != PyFloat_AS_DOUBLE(old))
        ok = zset_rescore(&z, member, old, score);
    else
        changed = 0;
    if ((rc = zset_finish(&z, ok)) != HANDLED)
        return rc;
    b->dirty += changed;
    return emit_double(b, score);       /* the sum, before a listpack turns -0 into 0 */
}

static int cmd_zscore(Batch *b, PyObject **args, Py_ssize_t argc)
{
    PyObject *score;
    int rc = field_of(b, args, fam.zset, &PyFloat_Type, &score);
    return rc == HANDLED && score ? emit_double(b, PyFloat_AS_DOUBLE(score)) : rc;
}

static int cmd_zcard(Batch *b, PyObject **args, Py_ssize_t argc)
{
    return size_of(b, args[1], fam.zset);
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
    int container;              /* a container command: needs the families bound */
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
    CONTAINER("spop", 2, ANY_PARITY, cmd_spop),
    CONTAINER("zadd", -4, 0, cmd_zadd),
    CONTAINER("zincrby", 4, ANY_PARITY, cmd_zincrby),
    CONTAINER("zscore", 3, ANY_PARITY, cmd_zscore),
    CONTAINER("zcard", 2, ANY_PARITY, cmd_zcard),
};

#define SHORTEST_NAME 3
#define LONGEST_NAME 9

static inline int shape_ok(const Command *cmd, Py_ssize_t argc)
{
    if (cmd->arity >= 0)
        return argc == cmd->arity;
    return argc >= -cmd->arity && (cmd->parity == ANY_PARITY || argc % 2 == cmd->parity);
}

/* The shard that owns every key of the command, or SPREAD. first_slot is args[1]'s slot as
 * warm_batch found it (-1: not known). */
static int owner_of(const Batch *b, const Command *cmd, PyObject **args, Py_ssize_t argc,
                    int first_slot)
{
    int owner = b->owners[first_slot >= 0 ? (unsigned)first_slot : key_slot(args[1])];
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
        if (COMMANDS[i].len == n && COMMANDS[i].name[0] == lower[0] &&
            !memcmp(COMMANDS[i].name, lower, (size_t)n))
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

/* End the batch: add its counts to ks and close its open SortedList, keeping any error
 * already raised. */
static int finish_batch(Batch *b, PyObject *ks)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    int rc = add_counter(ks, str_hits, b->hits) < 0 || add_counter(ks, str_misses, b->misses) < 0 ||
             add_counter(ks, str_dirty, b->dirty) < 0 ||
             add_counter(ks, str_expired_keys, b->expired) < 0 ? -1 : 0;
    if (rc == 0 && !type)
        rc = sorted_close(&b->order);
    else
        sorted_release(&b->order);
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

/* Prefetch the keyspace entries of the local first keys of the next WARM_WINDOW commands, so
 * their cache misses overlap instead of following one another; keep their slots for routing. */
static void warm_batch(Batch *b, PyObject *commands, Py_ssize_t from)
{
    PyObject *keys[WARM_WINDOW];
    Py_ssize_t n = 0, i, end = PyList_GET_SIZE(commands);
    if (end - from > WARM_WINDOW)
        end = from + WARM_WINDOW;
    b->window = from;
    for (i = from; i < end; i++) {
        PyObject *argv = PyList_GET_ITEM(commands, i);
        int *slot = &b->first_slot[i - from];
        *slot = -1;
        if (!PyList_Check(argv) || PyList_GET_SIZE(argv) < 2)
            continue;
        PyObject *key = PyList_GET_ITEM(argv, 1);
        if (!PyBytes_CheckExact(key))
            continue;
        if (b->owners) {
            *slot = (int)key_slot(key);
            if (b->owners[*slot] != b->shard)
                continue;
        }
        keys[n++] = key;
    }
    PyObject *dicts[3] = {b->data, b->atime, b->expires};
    warm_dicts(dicts, PyDict_GET_SIZE(b->expires) ? 3 : 2, keys, n);
}

static PyObject *run_batch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Batch b = {0};
    PyObject *commands, *db, *ks, *owners, *result = NULL;
    Py_ssize_t start, i;
    long proto;

    if (nargs < 8 || nargs > 10) {
        PyErr_SetString(PyExc_TypeError,
                        "run_batch(commands, start, out, db, ks, proto, owners, shard, fwd=None, "
                        "log=None)");
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
    b.resp3 = proto == 3;
    b.null = b.resp3 ? reply_null3 : reply_null2;
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
    if (nargs == 10 && args[9] != Py_None) {
        if (!PyList_Check(args[9])) {
            PyErr_SetString(PyExc_TypeError, "log must be None or a list");
            return NULL;
        }
        b.log = args[9];
    }
    if (nargs >= 9 && args[8] != Py_None) {
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
                                      "run_batch leaves container commands to Python: %S",
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
        if (i == start || i - b.window == WARM_WINDOW)
            warm_batch(&b, commands, i);
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
        int owner = b.owners && cmd->keyed
                        ? owner_of(&b, cmd, items, argc, b.first_slot[i - b.window]) : LOCAL, rc;
        if (owner == SPREAD)
            break;
        if (owner == LOCAL || owner == b.shard) {
            long long dirty = b.dirty;
            rc = cmd->run(&b, items, argc);
            if (rc == HANDLED && b.log && b.dirty != dirty && cmd->run != cmd_spop &&
                PyList_Append(b.log, argv) < 0)
                rc = FAILED;
        } else if (b.fwd)
            rc = forward(&b, owner, argv);
        else
            break;
        if (rc == STOP)
            break;
        if (rc == FAILED) {
            finish_batch(&b, ks);
            goto done;
        }
    }
    if (finish_batch(&b, ks) == 0)
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
     "run_batch(commands, start, out, db, ks, proto, owners, shard, fwd=None, log=None)\n"
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
        !(word_del = constant("DEL")) || !(word_srem = constant("SREM")) ||
        !(str_lists = intern("_lists")) || !(str_maxes = intern("_maxes")) ||
        !(str_index = intern("_index")) || !(str_load = intern("_load")) ||
        !(str_len = intern("_len")) || !(str_offset = intern("_offset")) ||
        !(kw_hashtable = Py_BuildValue("(s)", "hashtable")))
        return -1;
    return PyModule_AddFunctions(module, fastpath_methods);
}
