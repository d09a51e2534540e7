"""Property tests: whatever the text, the loader returns a Scenario or raises InputError."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kizuna.errors import InputError
from kizuna.scenario import Scenario, parse_scenario

BASE_LINES = (
    (Path(__file__).parent / "data" / "scenarios" / "base.toml")
    .read_text(encoding="utf-8")
    .splitlines()
)
VALUES = st.one_of(
    st.integers(min_value=-(2**80), max_value=2**80).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(lambda f: repr(f).replace("inf", "inf")),
    st.sampled_from(
        [
            '""',
            '"x"',
            "true",
            "[]",
            "[1, 2]",
            "{}",
            "{ lat_deg = 1.0 }",
            "2026-05-01",
            "12:00:00",
            "2026-05-01T00:00:00",
            "2026-05-01T00:00:00-05:00",
            '"#zzzzzz"',
            "[{ lat_deg = 1.0, lon_deg = 2.0 }]",
            "1" + "0" * 400,
        ]
    ),
)


def _check(text: str) -> None:
    try:
        result = parse_scenario(text, "fuzz.toml")
    except InputError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert str(problem).startswith("fuzz.toml")
    else:
        assert isinstance(result, Scenario)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_replacing_a_value_never_crashes(data: st.DataObject) -> None:
    lines = list(BASE_LINES)
    candidates = [i for i, line in enumerate(lines) if " = " in line and not line.startswith("#")]
    i = data.draw(st.sampled_from(candidates))
    key = lines[i].split(" = ", 1)[0]
    lines[i] = f"{key} = {data.draw(VALUES)}"
    _check("\n".join(lines))


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_deleting_lines_never_crashes(data: st.DataObject) -> None:
    lines = list(BASE_LINES)
    for _ in range(data.draw(st.integers(1, 6))):
        del lines[data.draw(st.integers(0, len(lines) - 1))]
    _check("\n".join(lines))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_crashes(text: str) -> None:
    _check(text)
