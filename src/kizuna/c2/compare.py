"""``kizuna compare A.toml B.toml``: run two exercises and show every metric side by side.

The point is to compare two *architectures* against the same threat: e.g. the alliance with and
without one partner's sensors, or with a different policy. So the two scenarios must describe
the same situation — the same nations, epoch, duration and threats (ids, kinds, routes, launches)
— and may differ in sensors, assets, links and seed. Anything else is refused up front with one
problem per mismatch, naming B's file and the field, before any exercise runs.

Every numeric leaf of the two ``metrics.json`` documents is flattened to a dotted key
(``nations.JPN.siap.completeness``) and printed as A, B and B − A; keys present in only one run
are shown with a dash.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import msgspec

from kizuna.errors import InputError, Problem
from kizuna.scenario import Scenario, load_scenario


def check_comparable(a: Scenario, b: Scenario, source_b: str) -> None:
    """Raise :class:`InputError` listing every way ``b`` describes a different situation."""
    problems: list[Problem] = []
    codes_a, codes_b = a.nation_codes(), b.nation_codes()
    if codes_a != codes_b:
        problems.append(
            Problem(
                source_b, "nation", "different nations from A", ",".join(codes_b), ",".join(codes_a)
            )
        )
    if a.epoch != b.epoch:
        problems.append(
            Problem(
                source_b,
                "epoch",
                "different epoch from A",
                b.epoch.isoformat(),
                a.epoch.isoformat(),
            )
        )
    if a.duration_s != b.duration_s:
        problems.append(
            Problem(
                source_b,
                "duration_s",
                "different duration from A",
                b.duration_s,
                f"{a.duration_s:g}",
            )
        )
    ids_a = [t.id for t in a.threat]
    ids_b = [t.id for t in b.threat]
    if ids_a != ids_b:
        problems.append(
            Problem(
                source_b, "threat", "different threats from A", ",".join(ids_b), ",".join(ids_a)
            )
        )
    else:
        for i, (ta, tb) in enumerate(zip(a.threat, b.threat, strict=True)):
            if msgspec.to_builtins(ta) != msgspec.to_builtins(tb):
                problems.append(
                    Problem(
                        source_b,
                        f"threat[{i}]",
                        f"threat {tb.id!r} differs from A's",
                        expected="the same threat",
                    )
                )
    if problems:
        raise InputError(problems)


def flatten(metrics: Any, prefix: str = "") -> dict[str, float]:
    """Numeric leaves of a JSON-like document as {dotted.key: value} (bools as 0/1)."""
    out: dict[str, float] = {}
    if isinstance(metrics, dict):
        for k, v in metrics.items():
            out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(metrics, list):
        for i, v in enumerate(metrics):
            out.update(flatten(v, f"{prefix}{i}."))
    elif isinstance(metrics, int | float):  # bool is an int: 0/1
        out[prefix[:-1]] = float(metrics)
    return out


def side_by_side(
    a: dict[str, Any], b: dict[str, Any]
) -> list[tuple[str, float | None, float | None]]:
    """(key, A, B) for every numeric metric of either run, in A's order then B's extras."""
    fa, fb = flatten(a), flatten(b)
    keys = list(fa) + [k for k in fb if k not in fa]
    return [(k, fa.get(k), fb.get(k)) for k in keys]


def _fmt(x: float | None) -> str:
    if x is None:
        return "–"
    if not math.isfinite(x):
        return str(x)
    if x == int(x) and abs(x) < 1e12:
        return f"{int(x):,}"
    return f"{x:.4g}"


def _run_one(
    path: str, scenario: Scenario, out_dir: Path, policies_dir: str | None
) -> dict[str, Any]:
    from kizuna.runtime.exercise import (
        default_policy_dir,
        exercise_keys,
        load_policies,
        run_exercise,
    )
    from kizuna.security.policy import Policies, Policy

    if len(scenario.nation) == 1:
        only = scenario.nation[0].code
        policies = Policies([Policy.parse(f'nation = "{only}"\n', f"<no allies: {only}>")])
    else:
        policies = load_policies(scenario, policies_dir or default_policy_dir(path))
    result = run_exercise(
        scenario, out_dir, policies, exercise_keys(scenario, None), scenario_source=path
    )
    return result.metrics


def run_command(
    path_a: str, path_b: str, out_dir: str, console: object, policies_dir: str | None = None
) -> list[tuple[str, float | None, float | None]]:
    """``kizuna compare``: check, run both, print the table; returns the rows.

    Policies: ``policies_dir`` for both runs if given, else each scenario's default directory
    (:func:`kizuna.runtime.exercise.default_policy_dir`).
    """
    from rich.console import Console
    from rich.table import Table

    assert isinstance(console, Console)
    a = load_scenario(path_a)
    b = load_scenario(path_b)
    check_comparable(a, b, path_b)
    out = Path(out_dir)
    metrics_a = _run_one(path_a, a, out / "A", policies_dir)
    metrics_b = _run_one(path_b, b, out / "B", policies_dir)
    rows = side_by_side(metrics_a, metrics_b)
    table = Table(title=f"kizuna compare — A: {path_a}  B: {path_b}")
    table.add_column("metric")
    table.add_column("A", justify="right")
    table.add_column("B", justify="right")
    table.add_column("B − A", justify="right")
    for key, va, vb in rows:
        diff = None if va is None or vb is None else vb - va
        table.add_row(key, _fmt(va), _fmt(vb), "" if diff is None or diff == 0 else _fmt(diff))
    console.print(table)
    console.print(f"wrote {out / 'A'} and {out / 'B'}", highlight=False)
    return rows
