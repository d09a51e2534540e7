"""Test-session set-up shared by every test module."""

import kizuna  # noqa: F401  (first: keeps numpy's float maths address-independent, see below)
from kizuna._numeric_determinism import numpy_is_address_independent

# kizuna must be imported before numpy for reruns to be bit-identical
# (kizuna/_numeric_determinism.py). If a pytest plugin imported numpy first, say so loudly
# instead of letting the byte-identity tests fail at random.
if not numpy_is_address_independent():
    raise RuntimeError(
        "numpy was imported before kizuna with AVX-512 kernels active; byte-identity tests "
        "would be flaky. Set NPY_DISABLE_CPU_FEATURES (see kizuna/_numeric_determinism.py)."
    )
