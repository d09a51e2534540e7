"""A small, deterministic version of ``make fuzz``: 2,000 Hypothesis inputs in all (400 per
decoder), random and mutated real samples; no exception may escape a decoder. The 100,000-input
run per decoder is ``benchmarks/fuzz_gateways.py``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, Phase, given, settings

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "fuzz_gateways.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_gateways", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("fuzz_gateways", module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


FUZZ = _load()
POOLS = FUZZ.seeds()
DECODERS = FUZZ.decoders()


@pytest.mark.parametrize("name", list(DECODERS))
def test_decoder_survives_random_and_mutated_inputs(name: str) -> None:
    family, decode = DECODERS[name]
    pool = POOLS[family] or [b"\x00"]
    tally = FUZZ.Tally()

    @settings(
        max_examples=400,
        database=None,
        deadline=None,
        derandomize=True,
        phases=[Phase.generate, Phase.shrink],
        suppress_health_check=list(HealthCheck),
    )
    @given(FUZZ.hypothesis_inputs(pool))
    def run(data: bytes) -> None:
        decode(data, tally)
        tally.inputs += 1

    run()
    assert tally.inputs >= 400
    assert tally.rejections > 0  # the inputs really are hostile


def test_fixed_index_mutator_is_deterministic() -> None:
    import random

    pool = POOLS["dis"] or [b"\x00" * 144]
    a = [FUZZ.mutate(random.Random(f"x:{i}"), pool) for i in range(50)]
    b = [FUZZ.mutate(random.Random(f"x:{i}"), pool) for i in range(50)]
    assert a == b and len(set(a)) > 40
