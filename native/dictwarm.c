/* Warming a batch's keyspace lookups before running it.
 *
 * A GET or SET on a large keyspace spends most of its time waiting for memory: the dict's
 * index slot, then its entry, then the stored key (compared, and its reference count
 * touched), each a cache miss the next depends on. Run one command at a time, a pipeline of
 * N pays 3N misses in a row. warm_dicts walks the same three steps for every key of a batch
 * first, issuing prefetches only, so the misses of different keys overlap; the commands that
 * follow then find their entries in cache.
 *
 * This reads CPython 3.11's private dict layout (Objects/dictobject.c). A self-test at import
 * checks the layout on a real dict, and any other Python version or a failed check turns
 * warming off: it is only ever a hint, never needed for a correct answer.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "native.h"

static int enabled;

#if PY_VERSION_HEX >= 0x030B0000 && PY_VERSION_HEX < 0x030C0000

typedef struct {
    Py_ssize_t refcnt;
    uint8_t log2_size;
    uint8_t log2_index_bytes;
    uint8_t kind;           /* 0: general keys (ours are bytes), 1: str only, 2: split */
    uint32_t version;
    Py_ssize_t usable;
    Py_ssize_t nentries;
    char indices[];         /* 1 << log2_size indices, then the entries */
} Keys;

typedef struct {
    Py_hash_t hash;
    PyObject *key;
    PyObject *value;
} Entry;

typedef struct {
    PyObject_HEAD
    Py_ssize_t used;
    uint64_t version_tag;
    Keys *keys;
    PyObject **values;      /* split tables only */
} Dict;

#define GENERAL_KEYS 0

static inline Entry *entries_of(Keys *k)
{
    return (Entry *)(k->indices + ((size_t)1 << k->log2_index_bytes));
}

static inline void *index_slot(Keys *k, size_t i)
{
    return k->indices + (i << (k->log2_index_bytes - k->log2_size));
}

static inline Py_ssize_t index_at(Keys *k, size_t i)
{
    switch (k->log2_index_bytes - k->log2_size) {
    case 0: return ((int8_t *)k->indices)[i];
    case 1: return ((int16_t *)k->indices)[i];
    case 2: return ((int32_t *)k->indices)[i];
    default: return ((int64_t *)k->indices)[i];
    }
}

/* The general table of d, or NULL when d is not one this code can read. */
static inline Keys *table_of(PyObject *d)
{
    Dict *dict = (Dict *)d;
    Keys *k = dict->keys;
    if (dict->values || k->kind != GENERAL_KEYS || k->log2_size < 3)
        return NULL;
    return k;
}

/* The entry of the first probe for hash h, or NULL. */
static inline Entry *first_entry(Keys *k, Py_hash_t h)
{
    Py_ssize_t ix = index_at(k, (size_t)h & (((size_t)1 << k->log2_size) - 1));
    return ix >= 0 && ix < k->nentries ? entries_of(k) + ix : NULL;
}

enum { MAX_KEYS = 64, MAX_DICTS = 3 };

void warm_dicts(PyObject *const *dicts, int ndicts, PyObject *const *keys, Py_ssize_t nkeys)
{
    Keys *tables[MAX_DICTS];
    Py_hash_t hashes[MAX_KEYS];
    int t, ntables = 0;
    Py_ssize_t i;

    if (!enabled || nkeys < 2)
        return;     /* one key has nothing to overlap with */
    if (nkeys > MAX_KEYS)
        nkeys = MAX_KEYS;
    for (t = 0; t < ndicts && t < MAX_DICTS; t++) {
        Keys *k = table_of(dicts[t]);
        if (k)
            tables[ntables++] = k;
    }
    if (!ntables)
        return;
    for (i = 0; i < nkeys; i++) {
        /* exact bytes only: their hash runs no Python code and is cached for the lookup */
        hashes[i] = PyBytes_CheckExact(keys[i]) ? PyObject_Hash(keys[i]) : -1;
        if (hashes[i] == -1)
            continue;
        for (t = 0; t < ntables; t++)
            __builtin_prefetch(index_slot(tables[t],
                                          (size_t)hashes[i] & (((size_t)1 << tables[t]->log2_size) - 1)));
    }
    for (i = 0; i < nkeys; i++) {
        if (hashes[i] == -1)
            continue;
        for (t = 0; t < ntables; t++) {
            Entry *e = first_entry(tables[t], hashes[i]);
            if (e)
                __builtin_prefetch(e);
        }
    }
    /* the first table is the data: its stored key is compared and its value read or replaced */
    for (i = 0; i < nkeys; i++) {
        if (hashes[i] == -1)
            continue;
        Entry *e = first_entry(tables[0], hashes[i]);
        if (e && e->hash == hashes[i] && e->key) {
            __builtin_prefetch(e->key);
            if (e->value)
                __builtin_prefetch(e->value);
        }
    }
}

/* The layout above must find every key of a real dict where the dict itself does. */
static int layout_ok(void)
{
    PyObject *d = PyDict_New(), *key = NULL;
    int ok = d != NULL;
    for (long n = 0; ok && n < 300; n++) {
        key = PyBytes_FromFormat("key:%ld", n);
        ok = key && PyDict_SetItem(d, key, key) == 0;
        Py_XDECREF(key);
    }
    Keys *k = ok ? table_of(d) : NULL;
    ok = k != NULL;
    PyObject *found, *value;
    Py_ssize_t pos = 0;
    int first_probes = 0;
    while (ok && PyDict_Next(d, &pos, &found, &value)) {
        Py_hash_t h = PyObject_Hash(found);
        Entry *e = first_entry(k, h);
        if (e && e->key == found) {
            if (e->hash != h || e->value != value)
                ok = 0;
            first_probes++;
        }
    }
    Py_XDECREF(d);
    if (PyErr_Occurred())
        PyErr_Clear();
    return ok && first_probes > 100;    /* most keys sit at their first probe */
}

#else

void warm_dicts(PyObject *const *dicts, int ndicts, PyObject *const *keys, Py_ssize_t nkeys)
{
}

static int layout_ok(void)
{
    return 0;
}

#endif

int native_add_dictwarm(PyObject *module)
{
    enabled = layout_ok();
    return PyModule_AddIntConstant(module, "dict_warming", enabled);
}
