/* fastcache._native.RequestParser: the C twin of fastcache.protocol.parser.PyRequestParser.
 *
 * Same contract, same results, same errors (see that module's docstring): Redis 7.0's request
 * parsing, including its leniencies. The unparsed bytes live in one growable buffer; arguments
 * of a partly received multibulk are kept as bytes objects until the command is complete.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>

#include "native.h"

#define INLINE_MAX (64 * 1024)
#define MULTIBULK_MAX 2147483647LL
#define UNAUTH_MULTIBULK_MAX 10
#define UNAUTH_BULK_MAX 16384
#define DEFAULT_MAX_BULK_LEN (512LL * 1024 * 1024)
#define DEFAULT_MAX_QUERY_BUFFER (1024LL * 1024 * 1024)
/* A drained buffer bigger than this is freed rather than kept for the next read. */
#define KEEP_BUFFER (256 * 1024)

#define WAIT (-1)
#define FAILED (-2)

static const char ERR_INVALID_MULTIBULK[] = "ERR Protocol error: invalid multibulk length";
static const char ERR_UNAUTH_MULTIBULK[] = "ERR Protocol error: unauthenticated multibulk length";
static const char ERR_INVALID_BULK[] = "ERR Protocol error: invalid bulk length";
static const char ERR_UNAUTH_BULK[] = "ERR Protocol error: unauthenticated bulk length";
static const char ERR_BIG_MULTIBULK[] = "ERR Protocol error: too big mbulk count string";
static const char ERR_BIG_BULK[] = "ERR Protocol error: too big bulk count string";
static const char ERR_BIG_INLINE[] = "ERR Protocol error: too big inline request";
static const char ERR_QUOTES[] = "ERR Protocol error: unbalanced quotes in request";
static const char ERR_QUERY_BUFFER[] = "query buffer limit exceeded";

typedef struct {
    PyObject_HEAD
    char *buf;                  /* unparsed input is buf[start:end] */
    Py_ssize_t start, end, cap;
    Py_ssize_t need;            /* parsing cannot progress before end - start reaches this */
    PyObject **argv;            /* arguments of a partly received multibulk */
    Py_ssize_t argc, argv_cap;
    long long left;             /* its arguments still to come */
    long long bulk;             /* length of the bulk being received, -1 before its header */
    long long max_bulk_len;
    long long max_query_buffer;
    int authenticated;
    PyObject *error_class;      /* set once the stream failed: every later call raises again */
    PyObject *error_message;
} Parser;

/* ---- errors: the classes live in fastcache.protocol.parser, looked up on first use ---- */

static PyObject *ProtocolError, *QueryBufferLimitExceeded;

static int load_error_classes(void)
{
    if (ProtocolError)
        return 0;
    PyObject *mod = PyImport_ImportModule("fastcache.protocol.parser");
    if (!mod)
        return -1;
    ProtocolError = PyObject_GetAttrString(mod, "ProtocolError");
    QueryBufferLimitExceeded = PyObject_GetAttrString(mod, "QueryBufferLimitExceeded");
    Py_DECREF(mod);
    if (!ProtocolError || !QueryBufferLimitExceeded) {
        Py_CLEAR(ProtocolError);
        Py_CLEAR(QueryBufferLimitExceeded);
        return -1;
    }
    return 0;
}

/* Raise cls(message, commands) and remember it so that later calls fail the same way. */
static void fail_with(Parser *p, PyObject *cls, PyObject *message, PyObject *commands)
{
    if (!p->error_class) {
        Py_INCREF(cls);
        Py_INCREF(message);
        p->error_class = cls;
        p->error_message = message;
    }
    PyObject *exc = PyObject_CallFunctionObjArgs(cls, message, commands, NULL);
    if (exc) {
        PyErr_SetObject(cls, exc);
        Py_DECREF(exc);
    }
}

/* The parse functions record a protocol error here (message only); commands() raises it. */
typedef struct {
    const char *text;           /* a static message, or NULL */
    int got;                    /* for "expected '$', got 'X'": the byte, else -1 */
} ProtoErr;

static PyObject *error_message(const ProtoErr *e)
{
    if (e->got < 0)
        return PyUnicode_FromString(e->text);
    char msg[64];
    int c = (e->got == '\r' || e->got == '\n') ? ' ' : e->got;
    int len = snprintf(msg, sizeof(msg), "ERR Protocol error: expected '$', got '%c'", c);
    return PyUnicode_DecodeLatin1(msg, len, NULL);
}

static inline int has_nul(const char *b, Py_ssize_t from, Py_ssize_t to)
{
    return to > from && memchr(b + from, '\0', (size_t)(to - from)) != NULL;
}

static inline Py_ssize_t find_byte(const char *b, Py_ssize_t from, Py_ssize_t n, int c)
{
    const char *q = from < n ? memchr(b + from, c, (size_t)(n - from)) : NULL;
    return q ? q - b : -1;
}

/* A header line is not complete: wait, unless Redis's 64KB limit is passed. A CR that is the
 * last byte still needs its LF; it only counts as missing when a NUL hides it from Redis's
 * strchr (cr < 0 means missing). */
static Py_ssize_t header_wait(const char *b, Py_ssize_t pos, Py_ssize_t n, Py_ssize_t cr,
                              const char *too_big, ProtoErr *err)
{
    if ((cr < 0 || has_nul(b, pos, cr)) && n - pos > INLINE_MAX) {
        err->text = too_big;
        return FAILED;
    }
    return WAIT;
}

/* ---- inline requests: Redis's sdssplitargs ---- */

static inline int c_isspace(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static inline int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Split one line; returns a new list, or NULL with *unbalanced set (or a Python error). */
static PyObject *split_args(const char *line, Py_ssize_t n, int *unbalanced)
{
    PyObject *args = PyList_New(0);
    char *cur = PyMem_Malloc(n ? (size_t)n : 1);
    Py_ssize_t i = 0;

    *unbalanced = 0;
    if (!args || !cur)
        goto nomem;
    for (;;) {
        while (i < n && c_isspace((unsigned char)line[i]))
            i++;
        if (i >= n)
            break;
        Py_ssize_t len = 0;
        int quote = 0;
        for (;;) {
            if (i >= n) {
                if (quote)
                    goto unbalanced;
                break;
            }
            unsigned char c = (unsigned char)line[i];
            if (quote) {
                if (c == '\\' && quote == '"' && i + 3 < n && line[i + 1] == 'x' &&
                    hex_value((unsigned char)line[i + 2]) >= 0 &&
                    hex_value((unsigned char)line[i + 3]) >= 0) {
                    cur[len++] = (char)(hex_value((unsigned char)line[i + 2]) * 16 +
                                        hex_value((unsigned char)line[i + 3]));
                    i += 3;
                } else if (c == '\\' && i + 1 < n && (quote == '"' || line[i + 1] == '\'')) {
                    /* '...' only knows \' ; "..." also knows \n \r \t \b \a */
                    i++;
                    switch (line[i]) {
                    case 'n': cur[len++] = '\n'; break;
                    case 'r': cur[len++] = '\r'; break;
                    case 't': cur[len++] = '\t'; break;
                    case 'b': cur[len++] = '\b'; break;
                    case 'a': cur[len++] = '\a'; break;
                    default: cur[len++] = line[i]; break;
                    }
                } else if (c == quote) {
                    /* a closing quote must end the argument */
                    if (i + 1 < n && !c_isspace((unsigned char)line[i + 1]))
                        goto unbalanced;
                    i++;
                    break;
                } else {
                    cur[len++] = (char)c;
                }
            } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
                i++;
                break;
            } else if (c == '"' || c == '\'') {
                quote = c;
            } else {
                cur[len++] = (char)c;
            }
            i++;
        }
        PyObject *arg = PyBytes_FromStringAndSize(cur, len);
        if (!arg || PyList_Append(args, arg) < 0) {
            Py_XDECREF(arg);
            goto nomem;
        }
        Py_DECREF(arg);
    }
    PyMem_Free(cur);
    return args;
unbalanced:
    *unbalanced = 1;
nomem:
    PyMem_Free(cur);
    Py_XDECREF(args);
    if (!*unbalanced && !PyErr_Occurred())
        PyErr_NoMemory();
    return NULL;
}

/* ---- the state machine ---- */

static void clear_args(Parser *p)
{
    for (Py_ssize_t i = 0; i < p->argc; i++)
        Py_DECREF(p->argv[i]);
    p->argc = 0;
    p->left = 0;
    p->bulk = -1;
}

static int push_arg(Parser *p, PyObject *arg)
{
    if (p->argc == p->argv_cap) {
        Py_ssize_t cap = p->argv_cap ? p->argv_cap * 2 : 8;
        PyObject **argv = PyMem_Realloc(p->argv, (size_t)cap * sizeof(PyObject *));
        if (!argv) {
            Py_DECREF(arg);
            PyErr_NoMemory();
            return -1;
        }
        p->argv = argv;
        p->argv_cap = cap;
    }
    p->argv[p->argc++] = arg;
    return 0;
}

/* Hand the finished multibulk to out as a list. */
static int emit_args(Parser *p, PyObject *out)
{
    PyObject *cmd = PyList_New(p->argc);
    if (!cmd)
        return -1;
    for (Py_ssize_t i = 0; i < p->argc; i++)
        PyList_SET_ITEM(cmd, i, p->argv[i]);
    p->argc = 0;
    int rc = PyList_Append(out, cmd);
    Py_DECREF(cmd);
    return rc;
}

static Py_ssize_t multibulk_header(Parser *p, const char *b, Py_ssize_t pos, Py_ssize_t n,
                                   ProtoErr *err)
{
    Py_ssize_t cr = find_byte(b, pos, n, '\r');
    long long count;

    if (cr < 0 || cr + 1 >= n)
        return header_wait(b, pos, n, cr, ERR_BIG_MULTIBULK, err);
    if (!string2ll(b + pos + 1, cr - pos - 1, &count) || count > MULTIBULK_MAX) {
        if (has_nul(b, pos, cr))
            return header_wait(b, pos, n, -1, ERR_BIG_MULTIBULK, err);
        err->text = ERR_INVALID_MULTIBULK;
        return FAILED;
    }
    if (count > UNAUTH_MULTIBULK_MAX && !p->authenticated) {
        err->text = ERR_UNAUTH_MULTIBULK;
        return FAILED;
    }
    if (count > 0) {
        p->left = count;
        p->bulk = -1;
        p->argc = 0;
    }
    return cr + 2;
}

/* Read the current multibulk's arguments; returns where to resume (FAILED on error). */
static Py_ssize_t read_bulks(Parser *p, const char *b, Py_ssize_t pos, Py_ssize_t n, ProtoErr *err)
{
    while (p->left) {
        long long bulk = p->bulk;
        if (bulk < 0) {
            Py_ssize_t cr = find_byte(b, pos, n, '\r');
            Py_ssize_t r;
            if (cr < 0 || cr + 1 >= n) {
                r = header_wait(b, pos, n, cr, ERR_BIG_BULK, err);
                if (r == WAIT)
                    p->need = n - pos + 1;
                return r == WAIT ? pos : FAILED;
            }
            if (b[pos] != '$' || !string2ll(b + pos + 1, cr - pos - 1, &bulk) ||
                bulk < 0 || bulk > p->max_bulk_len) {
                if (has_nul(b, pos, cr)) {
                    r = header_wait(b, pos, n, -1, ERR_BIG_BULK, err);
                    if (r == WAIT)
                        p->need = n - pos + 1;
                    return r == WAIT ? pos : FAILED;
                }
                if (b[pos] != '$') {
                    err->text = "";
                    err->got = (unsigned char)b[pos];
                } else {
                    err->text = ERR_INVALID_BULK;
                }
                return FAILED;
            }
            if (bulk > UNAUTH_BULK_MAX && !p->authenticated) {
                err->text = ERR_UNAUTH_BULK;
                return FAILED;
            }
            pos = cr + 2;
            p->bulk = bulk;
        }
        if ((long long)(n - pos) < bulk + 2) {
            p->need = (Py_ssize_t)bulk + 2;
            return pos;
        }
        PyObject *arg = PyBytes_FromStringAndSize(b + pos, (Py_ssize_t)bulk);
        if (!arg || push_arg(p, arg) < 0)
            return FAILED;
        pos += (Py_ssize_t)bulk + 2;
        p->bulk = -1;
        p->left--;
    }
    return pos;
}

static Py_ssize_t inline_request(const char *b, Py_ssize_t pos, Py_ssize_t n, PyObject *out,
                                 ProtoErr *err)
{
    Py_ssize_t nl = find_byte(b, pos, n, '\n');
    int unbalanced;

    if (nl >= 0 && has_nul(b, pos, nl))
        nl = -1;
    if (nl < 0) {
        if (n - pos > INLINE_MAX) {
            err->text = ERR_BIG_INLINE;
            return FAILED;
        }
        return WAIT;
    }
    Py_ssize_t end = (nl > pos && b[nl - 1] == '\r') ? nl - 1 : nl;
    PyObject *argv = split_args(b + pos, end - pos, &unbalanced);
    if (!argv) {
        if (unbalanced)
            err->text = ERR_QUOTES;
        return FAILED;
    }
    int rc = PyList_GET_SIZE(argv) ? PyList_Append(out, argv) : 0;
    Py_DECREF(argv);
    return rc < 0 ? FAILED : nl + 1;
}

/* Parse b[0:n] into out; returns how many bytes were consumed, or FAILED. */
static Py_ssize_t run(Parser *p, const char *b, Py_ssize_t n, PyObject *out, ProtoErr *err)
{
    Py_ssize_t pos = 0;

    for (;;) {
        if (p->left) {
            pos = read_bulks(p, b, pos, n, err);
            if (pos == FAILED)
                return FAILED;
            if (p->left)
                return pos;
            if (emit_args(p, out) < 0)
                return FAILED;
        }
        /* Before AUTH, one request at a time: AUTH lifts the limits for the next one. */
        if (pos >= n || (!p->authenticated && PyList_GET_SIZE(out))) {
            p->need = 0;
            return pos;
        }
        Py_ssize_t start = pos;
        pos = b[pos] == '*' ? multibulk_header(p, b, pos, n, err)
                            : inline_request(b, pos, n, out, err);
        if (pos == FAILED)
            return FAILED;
        if (pos == WAIT) {
            p->need = n - start + 1;
            return start;
        }
    }
}

/* ---- buffer management ---- */

static int reserve(Parser *p, Py_ssize_t extra)
{
    Py_ssize_t used = p->end - p->start;
    if (p->cap - p->end >= extra)
        return 0;
    if (p->start && p->cap - used >= extra) {
        memmove(p->buf, p->buf + p->start, (size_t)used);
        p->start = 0;
        p->end = used;
        return 0;
    }
    Py_ssize_t want = used + extra;
    Py_ssize_t cap = p->cap * 2 > want ? p->cap * 2 : want;
    /* A bulk in progress tells how much is coming; never grow past it (nor allocate it
     * before its bytes arrive). */
    if (p->need > want && cap > p->need)
        cap = p->need;
    if (cap < 4096)
        cap = 4096;
    if (p->start) {
        memmove(p->buf, p->buf + p->start, (size_t)used);
        p->start = 0;
        p->end = used;
    }
    char *buf = PyMem_Realloc(p->buf, (size_t)cap);
    if (!buf) {
        PyErr_NoMemory();
        return -1;
    }
    p->buf = buf;
    p->cap = cap;
    return 0;
}

static int append(Parser *p, const char *data, Py_ssize_t len)
{
    if (reserve(p, len) < 0)
        return -1;
    memcpy(p->buf + p->end, data, (size_t)len);
    p->end += len;
    return 0;
}

static void drain(Parser *p)
{
    p->start = p->end = 0;
    if (p->cap > KEEP_BUFFER) {
        PyMem_Free(p->buf);
        p->buf = NULL;
        p->cap = 0;
    }
}

static void fail_protocol(Parser *p, const ProtoErr *err, PyObject *done)
{
    clear_args(p);
    drain(p);
    if (load_error_classes() < 0)
        return;
    PyObject *message = error_message(err);
    if (message) {
        fail_with(p, ProtocolError, message, done);
        Py_DECREF(message);
    }
}

static PyObject *raise_stored(Parser *p)
{
    PyObject *done = PyList_New(0);
    if (done) {
        fail_with(p, p->error_class, p->error_message, done);
        Py_DECREF(done);
    }
    return NULL;
}

/* Parse b[0:n]; returns the commands and sets *used to the bytes consumed. */
static PyObject *parse_buffer(Parser *p, const char *b, Py_ssize_t n, Py_ssize_t *used)
{
    ProtoErr err = {NULL, -1};
    PyObject *out = PyList_New(0);
    if (!out)
        return NULL;
    Py_ssize_t r = run(p, b, n, out, &err);
    if (r == FAILED) {
        if (err.text)
            fail_protocol(p, &err, out);
        Py_DECREF(out);
        return NULL;
    }
    *used = r;
    return out;
}

static int check_query_buffer(Parser *p, Py_ssize_t incoming)
{
    if ((long long)(p->end - p->start) + incoming <= p->max_query_buffer)
        return 0;
    clear_args(p);
    drain(p);
    if (load_error_classes() < 0)
        return -1;
    PyObject *message = PyUnicode_FromString(ERR_QUERY_BUFFER);
    PyObject *done = PyList_New(0);
    if (message && done)
        fail_with(p, QueryBufferLimitExceeded, message, done);
    Py_XDECREF(message);
    Py_XDECREF(done);
    return -1;
}

/* ---- the Python type ---- */

static int Parser_init(Parser *p, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"max_bulk_len", "max_query_buffer", NULL};
    long long max_bulk_len = DEFAULT_MAX_BULK_LEN, max_query_buffer = DEFAULT_MAX_QUERY_BUFFER;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|LL", kwlist, &max_bulk_len, &max_query_buffer))
        return -1;
    clear_args(p);
    drain(p);
    Py_CLEAR(p->error_class);
    Py_CLEAR(p->error_message);
    p->need = 0;
    p->max_bulk_len = max_bulk_len;
    p->max_query_buffer = max_query_buffer;
    p->authenticated = 1;
    return 0;
}

static void Parser_dealloc(Parser *p)
{
    clear_args(p);
    PyMem_Free(p->argv);
    PyMem_Free(p->buf);
    Py_XDECREF(p->error_class);
    Py_XDECREF(p->error_message);
    Py_TYPE(p)->tp_free((PyObject *)p);
}

static int feed_object(Parser *p, PyObject *data)
{
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return -1;
    int rc = view.len ? check_query_buffer(p, view.len) : 0;
    if (rc == 0 && view.len)
        rc = append(p, view.buf, view.len);
    PyBuffer_Release(&view);
    return rc;
}

static PyObject *Parser_feed(Parser *p, PyObject *data)
{
    if (!p->error_class && feed_object(p, data) < 0)
        return NULL;
    Py_RETURN_NONE;
}

static PyObject *Parser_commands(Parser *p, PyObject *unused)
{
    Py_ssize_t used;
    if (p->error_class)
        return raise_stored(p);
    Py_ssize_t size = p->end - p->start;
    if (size == 0 || size < p->need)
        return PyList_New(0);
    PyObject *out = parse_buffer(p, p->buf + p->start, size, &used);
    if (!out)
        return NULL;
    p->start += used;
    if (p->start == p->end)
        drain(p);
    return out;
}

/* feed + commands in one call; with nothing left over from earlier reads it parses the
 * caller's buffer in place and copies only the unfinished tail. */
static PyObject *Parser_parse(Parser *p, PyObject *data)
{
    Py_buffer view;
    Py_ssize_t used;
    if (p->error_class)
        return raise_stored(p);
    if (p->start != p->end)
        return feed_object(p, data) < 0 ? NULL : Parser_commands(p, NULL);
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    PyObject *out = NULL;
    if (view.len == 0) {
        out = PyList_New(0);
    } else if (check_query_buffer(p, view.len) == 0) {
        out = parse_buffer(p, view.buf, view.len, &used);
        if (out && used < view.len && append(p, (const char *)view.buf + used, view.len - used) < 0)
            Py_CLEAR(out);
    }
    PyBuffer_Release(&view);
    return out;
}

static PyObject *Parser_get_buffered(Parser *p, void *closure)
{
    return PyLong_FromSsize_t(p->end - p->start);
}

static PyObject *Parser_get_authenticated(Parser *p, void *closure)
{
    return PyBool_FromLong(p->authenticated);
}

static int Parser_set_authenticated(Parser *p, PyObject *value, void *closure)
{
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete authenticated");
        return -1;
    }
    int v = PyObject_IsTrue(value);
    if (v < 0)
        return -1;
    p->authenticated = v;
    return 0;
}

static PyMethodDef Parser_methods[] = {
    {"feed", (PyCFunction)Parser_feed, METH_O, "Append bytes read from the connection."},
    {"commands", (PyCFunction)Parser_commands, METH_NOARGS,
     "Every complete command buffered now, as lists of bytes."},
    {"parse", (PyCFunction)Parser_parse, METH_O, "feed(data) then commands()."},
    {NULL}
};

static PyMemberDef Parser_members[] = {
    {"max_bulk_len", T_LONGLONG, offsetof(Parser, max_bulk_len), 0, "proto-max-bulk-len"},
    {"max_query_buffer", T_LONGLONG, offsetof(Parser, max_query_buffer), 0,
     "client-query-buffer-limit"},
    {NULL}
};

static PyObject *Parser_get_idle(Parser *p, void *closure)
{
    return PyBool_FromLong(p->end == p->start && p->left == 0);
}

static PyGetSetDef Parser_getset[] = {
    {"buffered", (getter)Parser_get_buffered, NULL, "Unparsed bytes held.", NULL},
    {"idle", (getter)Parser_get_idle, NULL,
     "Nothing of a next command held: no unparsed bytes, no partly received multibulk.", NULL},
    {"authenticated", (getter)Parser_get_authenticated, (setter)Parser_set_authenticated,
     "False applies Redis's limits for connections that still have to AUTH.", NULL},
    {NULL}
};

static PyTypeObject ParserType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "fastcache._native.RequestParser",
    .tp_basicsize = sizeof(Parser),
    .tp_dealloc = (destructor)Parser_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Redis request parser (C twin of fastcache.protocol.parser.PyRequestParser).",
    .tp_methods = Parser_methods,
    .tp_members = Parser_members,
    .tp_getset = Parser_getset,
    .tp_init = (initproc)Parser_init,
    .tp_new = PyType_GenericNew,
};

int native_add_parser(PyObject *module)
{
    if (PyType_Ready(&ParserType) < 0)
        return -1;
    Py_INCREF(&ParserType);
    if (PyModule_AddObject(module, "RequestParser", (PyObject *)&ParserType) < 0) {
        Py_DECREF(&ParserType);
        return -1;
    }
    return 0;
}
