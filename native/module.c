/* fastcache._native: the module object; each source file adds its own part. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "native.h"

static struct PyModuleDef native_module = {
    PyModuleDef_HEAD_INIT, "fastcache._native",
    "C implementations of fastcache's hot paths; each has a pure-Python twin.", -1, NULL,
};

PyMODINIT_FUNC PyInit__native(void)
{
    PyObject *m = PyModule_Create(&native_module);
    if (!m)
        return NULL;
    if (native_add_parser(m) < 0 || native_add_fastpath(m) < 0 ||
        native_add_records(m) < 0 || native_add_forward(m) < 0 ||
        native_add_dictwarm(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
