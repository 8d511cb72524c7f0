"""Build of tickpipe's one compiled module, ``tickpipe._hot`` (the hot path of the core).

Everything else is in pyproject.toml. The extension is ``optional``: a machine without a C
compiler or the Python headers still installs tickpipe, and runs the pure-Python reference
path; ``setup.sh`` and ``import tickpipe`` then say so loudly (see ``tickpipe/hotpath.py``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tickpipe._hot",
            ["src/tickpipe/_hot.c"],
            extra_compile_args=["-O2", "-std=c99", "-Wall", "-Wextra", "-Wno-unused-parameter"],
            optional=True,
        )
    ]
)
