"""numpy float64 maths must not depend on where the allocator put the arrays.

On AVX-512 machines numpy's SVML kernels and libm differ by an ulp, and numpy picks between them
by the distance between input and output buffers. Importing kizuna disables that dispatch
(kizuna/_numeric_determinism.py). Each case runs in a fresh interpreter because numpy reads the
setting only at import.
"""

import os
import subprocess
import sys

import pytest

# The same values through a fresh output buffer (SIMD path) and an output 64 bytes after the
# input (scalar path); prints how many of the results differ.
PROBE = """
import sys
if sys.argv[1] == "kizuna-first":
    import kizuna
import numpy as np
from kizuna._numeric_determinism import numpy_is_address_independent
x = np.random.default_rng(7).uniform(0.1, 3.0, 8000)
differing = 0
for start in range(0, x.size, 8):
    chunk = x[start : start + 8]
    buffer = np.zeros(16)
    buffer[:8] = chunk
    for fn in (np.log, np.arctan, np.tan):
        adjacent = fn(buffer[:8], out=buffer[8:16]).copy()
        differing += int((adjacent != fn(chunk.copy())).sum())
        buffer[:8] = chunk
print(differing, numpy_is_address_independent())
"""


def _probe(order: str, env_value: str | None) -> tuple[int, bool]:
    env = {k: v for k, v in os.environ.items() if k != "NPY_DISABLE_CPU_FEATURES"}
    if env_value is not None:
        env["NPY_DISABLE_CPU_FEATURES"] = env_value
    done = subprocess.run(
        [sys.executable, "-c", PROBE, order], env=env, capture_output=True, text=True, check=True
    )
    count, independent = done.stdout.split()
    return int(count), independent == "True"


def test_importing_kizuna_first_makes_results_independent_of_buffer_addresses() -> None:
    differing, independent = _probe("kizuna-first", None)
    assert independent
    assert differing == 0


def test_without_the_setting_an_avx512_machine_shows_the_address_dependence() -> None:
    """The control: proves the probe above can fail (skipped where numpy has no AVX-512)."""
    differing, independent = _probe("numpy-only", "")
    if independent:
        pytest.skip("this CPU/numpy has no AVX-512 float kernels, so there is nothing to show")
    assert differing > 0
