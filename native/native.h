/* Shared by the sources of fastcache._native: what each part registers, and Redis's number
 * syntax used by both the request parser and the command fast path. */
#ifndef FASTCACHE_NATIVE_H
#define FASTCACHE_NATIVE_H

#include <Python.h>
#include <limits.h>

/* Each adds its objects to the module; -1 with a Python error on failure. */
int native_add_parser(PyObject *module);
int native_add_fastpath(PyObject *module);
int native_add_records(PyObject *module);
int native_add_forward(PyObject *module);
int native_add_dictwarm(PyObject *module);

/* Prefetch the entries of keys in dicts (the keyspace's data first): see dictwarm.c. */
void warm_dicts(PyObject *const *dicts, int ndicts, PyObject *const *keys, Py_ssize_t nkeys);

/* Strict like Redis's string2ll: optional '-', no leading zeros, no '+' or spaces. */
static inline int string2ll(const char *s, Py_ssize_t len, long long *value)
{
    const char *p = s, *end = s + len;
    int negative = 0;
    unsigned long long v;

    if (len == 0 || len > 20)
        return 0;
    if (len == 1 && s[0] == '0') {
        *value = 0;
        return 1;
    }
    if (*p == '-') {
        negative = 1;
        if (++p == end)
            return 0;
    }
    if (*p < '1' || *p > '9')
        return 0;
    v = (unsigned long long)(*p++ - '0');
    for (; p < end; p++) {
        if (*p < '0' || *p > '9')
            return 0;
        if (v > (~0ULL) / 10)
            return 0;
        v *= 10;
        if (v > (~0ULL) - (unsigned long long)(*p - '0'))
            return 0;
        v += (unsigned long long)(*p - '0');
    }
    if (negative) {
        if (v > (unsigned long long)LLONG_MAX + 1)
            return 0;
        *value = (long long)(0 - v);
    } else {
        if (v > (unsigned long long)LLONG_MAX)
            return 0;
        *value = (long long)v;
    }
    return 1;
}

#endif
