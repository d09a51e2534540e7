"""Make numpy's float64 maths give the same bits on every run of the same machine.

Why: numpy (1.26 and 2.x) computes ``log``, ``arctan``, ``arctan2``, ``arcsin``, ``tan`` … for
float64 with Intel SVML kernels when the CPU has AVX-512 (dispatch target ``AVX512_SKX``), and
with the C library otherwise. The SVML result can differ from libm's by one ulp. Which path an
element takes depends on *memory addresses*: the SIMD loop is skipped when the output buffer lies
within one vector (64 bytes) of the input buffer without being the same buffer, which happens for
small arrays whose buffers the allocator happened to place side by side (see numpy
``loops_umath_fp.dispatch.c.src``, ``IS_OUTPUT_BLOCKABLE_UNARY``). Heap layout varies between
runs, so two identical exercises gave Parquet files one ulp apart (found by
``tests/test_exercise.py``; reproduced in ``tests/test_numeric_determinism.py``).

Disabling numpy's AVX-512 dispatch makes those functions always use libm, which is address-free
and deterministic. The cost, measured in ``benchmarks/bench_exercise.py``, is small because our
hot arrays are short; it is paid only on AVX-512 machines. numpy reads the variable once, when it
is first imported, so this module must run before anything imports numpy; ``kizuna/__init__``
calls it first. A user who needs the SIMD speed more than bit-identical reruns can set
``NPY_DISABLE_CPU_FEATURES`` themselves (an empty string keeps every feature).
"""

from __future__ import annotations

import os
import sys

# numpy's dispatch names for AVX-512 targets (1.26 and 2.x). numpy ignores, with an
# ImportWarning, names it does not dispatch on this build.
AVX512_DISPATCH_TARGETS = (
    "AVX512F",
    "AVX512CD",
    "AVX512_KNL",
    "AVX512_KNM",
    "AVX512_SKX",
    "AVX512_CLX",
    "AVX512_CNL",
    "AVX512_ICL",
    "AVX512_SPR",
)
ENV_VAR = "NPY_DISABLE_CPU_FEATURES"


def request_address_independent_numpy() -> bool:
    """Ask numpy (not yet imported) to skip AVX-512 kernels. Returns whether the request can
    still take effect: False when numpy was imported before Kizuna."""
    if "numpy" in sys.modules:
        return False
    os.environ.setdefault(ENV_VAR, " ".join(AVX512_DISPATCH_TARGETS))
    return True


def numpy_is_address_independent() -> bool:
    """True when the imported numpy uses no AVX-512 float kernels (so reruns are bit-identical)."""
    import importlib

    import numpy as np

    # The private module moved in numpy 2 (numpy.core → numpy._core); both expose the table.
    where = "numpy.core" if np.__version__.startswith("1.") else "numpy._core"
    umath = importlib.import_module(f"{where}._multiarray_umath")
    features: dict[str, bool] = umath.__cpu_features__
    # A feature disabled through the environment reads as False here. The float64 SVML loops
    # dispatch on AVX512_SKX (which needs AVX512F); the later targets (e.g. AVX512_SPR, which
    # numpy 1.26 cannot disable) only add float16 kernels.
    return not (features.get("AVX512F", False) or features.get("AVX512_SKX", False))
