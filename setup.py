"""Build the Cython kernels (sources in top-level cython/) into private modules of ner_fast."""
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        "ner_fast._kernels",
        ["cython/_kernels.pyx"],
        extra_compile_args=["-O3"],
    ),
]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True},
    )
)
