"""Build hook for the optional C extension; the project metadata lives in pyproject.toml."""
from setuptools import Extension, setup

setup(
    ext_modules=[
        # optional: without a compiler the pure-Python twins serve.
        Extension(
            "fastcache._native",
            sources=["native/module.c", "native/parser.c", "native/fastpath.c",
                     "native/records.c", "native/forward.c", "native/dictwarm.c"],
            depends=["native/native.h"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter",
                                "-Wno-missing-field-initializers"],
            optional=True,
        ),
    ],
)
