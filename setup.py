"""Build the Cython kernels (sources in top-level cython/) into private modules of ner_fast, each beside
the module that wraps it: preprocessing `ner_fast._kernels`, the GMB CSV reader `ner_fast._csv` (for
`ner_fast.corpus`; both cimport the hashing of cython/_hashing.pxd), decoding `ner_fast._decode` (for
`ner_fast.decode`), and the training-only `ner_fast.training._kernels` (CRF loss, flush-to-zero)."""
from Cython.Build import cythonize
from setuptools import Extension, setup

KERNELS = {
    "ner_fast._kernels": "cython/_kernels.pyx",
    "ner_fast._csv": "cython/_csv.pyx",
    "ner_fast._decode": "cython/_decode.pyx",
    "ner_fast.training._kernels": "cython/_training.pyx",
}

extensions = [Extension(name, [source], extra_compile_args=["-O3"]) for name, source in KERNELS.items()]

setup(
    ext_modules=cythonize(
        extensions,
        language_level=3,
        include_path=["cython"],  # cython/_hashing.pxd
        # binding and embedsignature: the compiled functions carry their signatures (`inspect.signature`),
        # which tests/test_kernel_stubs.py holds against the .pyi stubs.
        compiler_directives={"boundscheck": False, "wraparound": False, "cdivision": True,
                             "binding": True, "embedsignature": True},
    )
)
