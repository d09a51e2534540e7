"""The after-action report: one self-contained HTML file, ``DIR/report.html``.

No network access is needed to read it: the charts are inline SVG drawn here, the styles are
inline, there are no scripts. Sections: the scores per nation against the targets, picture
quality over time (completeness and track counts per nation, commonality), picture latency
histograms, network traffic per link and the releasability counters (withheld, rejected, lost),
all computed from the recording (:mod:`kizuna.metrics.exercise`) and ``envelopes.parquet``.
"""

from __future__ import annotations

import html
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from kizuna.errors import InputError
from kizuna.metrics.exercise import TEXT_COLUMNS, Scored, compute, read_columns
from kizuna.scenario import Scenario
from kizuna.security.policy import Policies

F64 = npt.NDArray[np.float64]

ENVELOPE_COLUMNS = ("time_sent", "time_delivered", "sender", "receiver", "kind", "outcome", "bytes")

#: Targets from the "Alliance network" issue (SIAP over entitled objects, commonality).
TARGETS: dict[str, tuple[str, float]] = {
    "completeness": (">=", 0.95),
    "ambiguity": ("<=", 1.05),
    "spuriousness": ("<=", 0.05),
    "commonality": (">=", 0.95),
}

_FALLBACK_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


@dataclass(frozen=True)
class Series:
    name: str
    colour: str
    x: F64
    y: F64


def write_report(
    out_dir: str | Path,
    scenario: Scenario,
    scored: Scored | None = None,
    metrics: dict[str, Any] | None = None,
    policies: Policies | None = None,
) -> Path:
    """Write ``DIR/report.html`` (scoring the recording first unless ``scored`` is given).

    ``metrics``: the run's ``metrics.json`` content, if known (adds wall time and node
    counters); everything else comes from the recording files.
    """
    out = Path(out_dir)
    if scored is None:
        scored = compute(out, scenario, policies, "given" if policies is not None else None)
    env = read_columns(
        out / "recording" / "envelopes.parquet",
        ENVELOPE_COLUMNS,
        "envelopes from kizuna exercise",
        TEXT_COLUMNS | {"kind"},  # the envelope item kind: "track_report", ...
    )
    body = _render(scenario, scored, env, metrics or {})
    path = out / "report.html"
    path.write_text(body, encoding="utf-8")
    return path


def report_command(
    out_dir: str | Path,
    scenario_path: str | Path | None = None,
    policies_dir: str | Path | None = None,
) -> dict[str, Any]:
    """``kizuna report DIR``: rescore an exercise directory, rewrite metrics.json and
    report.html. The scenario defaults to the one named in ``DIR/metrics.json``."""
    from kizuna.metrics.exercise import load_policy_dir
    from kizuna.scenario import load_scenario

    out = Path(out_dir)
    if not out.is_dir():
        raise InputError.single(
            str(out), "", "not a directory", expected="a kizuna exercise --out DIR"
        )
    metrics_path = out / "metrics.json"
    metrics: dict[str, Any] = {}
    if metrics_path.exists():
        try:
            loaded = json.loads(metrics_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError.single(str(metrics_path), "", f"not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise InputError.single(
                str(metrics_path), "", "not a JSON object", type(loaded).__name__
            )
        metrics = loaded
    if scenario_path is None:
        named = metrics.get("scenario")
        if not isinstance(named, str) or not named:
            raise InputError.single(
                str(metrics_path),
                "scenario",
                "no scenario file recorded",
                expected="--scenario FILE",
            )
        scenario_path = named
    scenario = load_scenario(scenario_path)
    policies = None
    source = None
    if policies_dir is not None:
        policies = load_policy_dir(scenario, Path(policies_dir))
        if policies is None:
            raise InputError.single(
                str(policies_dir),
                "",
                "not a policy directory for this scenario",
                expected=", ".join(f"{c}.toml" for c in scenario.nation_codes()),
            )
        source = str(policies_dir)
    scored = compute(out, scenario, policies, source)
    metrics.update(scored.as_dict())
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    write_report(out, scenario, scored, metrics)
    return metrics


def target_failures(metrics: dict[str, Any]) -> list[str]:
    """The issue's targets (:data:`TARGETS`) a scored ``metrics.json`` misses, one line each."""
    failures = []
    checks: list[tuple[str, str, float | None]] = [
        (f"{code} {name}", name, n["siap"].get(name))
        for code, n in metrics.get("nations", {}).items()
        for name in ("completeness", "ambiguity", "spuriousness")
    ]
    checks.append(("commonality", "commonality", metrics.get("commonality")))
    for label, name, value in checks:
        op, target = TARGETS[name]
        ok = value is not None and (value >= target if op == ">=" else value <= target)
        if not ok:
            sign = "≥" if op == ">=" else "≤"
            failures.append(f"{label} {_fmt(value)} (target {sign} {target})")
    return failures


def print_summary(metrics: dict[str, Any], out_dir: str | Path, console: Any) -> None:
    """A rich table of the scores per nation (``console``: a ``rich.console.Console``)."""
    from rich.table import Table

    nations: dict[str, Any] = metrics.get("nations", {})
    table = Table(title=f"kizuna report — {Path(str(metrics.get('scenario', out_dir))).stem}")
    table.add_column("metric")
    for code in nations:
        table.add_column(code, justify="right")
    rows = [
        ("completeness", lambda n: _fmt(n["siap"]["completeness"])),
        ("ambiguity", lambda n: _fmt(n["siap"]["ambiguity"])),
        ("spuriousness", lambda n: _fmt(n["siap"]["spuriousness"])),
        ("position accuracy m", lambda n: _fmt(n["siap"]["position_accuracy_m"], 0)),
        ("velocity accuracy m/s", lambda n: _fmt(n["siap"]["velocity_accuracy_mps"], 1)),
        ("track no. changes /s", lambda n: _fmt(n["siap"]["track_number_change_rate"], 4)),
        ("longest segment", lambda n: _fmt(n["siap"]["longest_segment"])),
        ("GOSPA mean m", lambda n: _fmt(n["gospa_mean"], 0)),
        ("latency p50 ms", lambda n: _fmt(n["latency_ms"]["p50"], 0)),
        ("latency p99 ms", lambda n: _fmt(n["latency_ms"]["p99"], 0)),
    ]
    for label, fn in rows:
        table.add_row(label, *(fn(n) for n in nations.values()))
    console.print(table)
    console.print(
        f"commonality {metrics.get('commonality', float('nan')):.3f}; "
        f"wrote {Path(out_dir) / 'metrics.json'} and {Path(out_dir) / 'report.html'}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )


# ---------------------------------------------------------------------------------------------
# Rendering.
# ---------------------------------------------------------------------------------------------


def _render(
    scenario: Scenario, scored: Scored, env: dict[str, np.ndarray], metrics: dict[str, Any]
) -> str:
    e = html.escape
    colours = {
        n.code: n.colour if n.colour != "#888888" else _FALLBACK_COLOURS[i % 6]
        for i, n in enumerate(scenario.nation)
    }
    summary = scored.as_dict()
    parts: list[str] = []
    title = f"Kizuna after-action report — {scenario.name}"
    parts.append(f"<h1>{e(title)}</h1>")
    facts = [
        f"Scenario <b>{e(scenario.name)}</b>, {scenario.duration_s:.0f} s simulated from "
        f"{e(scenario.epoch.strftime('%Y-%m-%d %H:%M:%SZ'))}",
        e(scenario.summary()),
        f"Entitlement policies: {e(scored.policies_source)}",
    ]
    if isinstance(metrics.get("wall_seconds"), int | float) and metrics["wall_seconds"] > 0:
        speed = scenario.duration_s / metrics["wall_seconds"]
        facts.append(f"Run time {metrics['wall_seconds']:.1f} s wall ({speed:.0f}× real time)")
    parts.append("<p>" + "<br>".join(facts) + "</p>")

    # --- scores table ---
    parts.append("<h2>Picture quality per nation</h2>")
    parts.append(_scores_table(summary, scenario.nation_codes()))
    common = summary["commonality"]
    parts.append(
        f"<p>Commonality (same track number on every entitled nation): "
        f"<b>{common:.3f}</b> {_mark('commonality', common)} over "
        f"{summary['commonality_detail']['steps']} time steps, "
        f"{summary['commonality_detail']['shared_samples']} shared object samples.</p>"
    )
    parts.append(
        "<p class=note>SIAP per Votruba et al. 2001 as implemented by Stone Soup "
        "(TrackToTruth association, gate "
        f"{summary['scoring']['association_threshold_m'] / 1000:.0f} km), over the objects each "
        "nation is entitled to see (its own sensors' detections and those its allies' policies "
        "release to it). GOSPA c = "
        f"{summary['scoring']['gospa']['c_m'] / 1000:.0f} km, p = 1, α = 2. Latency: from the "
        "measurement to the first recorded picture showing it. Definitions: docs/metrics.md.</p>"
    )

    parts.append(_least_held(scored))

    # --- over time ---
    parts.append("<h2>Picture over time</h2>")
    comp = [
        Series(c, colours[c], s.siap.times, s.siap.completeness_at_times())
        for c, s in scored.nations.items()
    ]
    parts.append(_line_chart("SIAP completeness at each time", comp, "time (s)", (0.0, 1.05)))
    counts = [
        Series(f"{c} tracks", colours[c], s.siap.times, s.siap.n_tracks.astype(float))
        for c, s in scored.nations.items()
    ] + [
        Series(
            f"{c} entitled objects",
            _lighter(colours[c]),
            s.siap.times,
            s.siap.n_truths.astype(float),
        )
        for c, s in scored.nations.items()
    ]
    parts.append(_line_chart("Tracks held and objects entitled", counts, "time (s)", None))
    if scored.commonality.steps:
        parts.append(
            _line_chart(
                "Commonality at each time",
                [Series("all", "#444444", scored.commonality.times, scored.commonality.share)],
                "time (s)",
                (0.0, 1.05),
            )
        )
    gospa = [
        Series(c, colours[c], s.gospa_times, s.gospa_distance) for c, s in scored.nations.items()
    ]
    parts.append(_line_chart("GOSPA distance (m)", gospa, "time (s)", None))

    # --- latency ---
    parts.append("<h2>Latency: measurement to picture</h2>")
    lat = {c: s.latency_s * 1000.0 for c, s in scored.nations.items()}
    parts.append(_histogram("Picture-update latency (ms)", lat, colours))

    # --- network and releasability ---
    parts.append("<h2>Network traffic and releasability</h2>")
    parts.append(_network_section(env, metrics))
    parts.append("<p class=note>Generated by <code>kizuna report</code>. All data notional.</p>")
    return (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{e(title)}</title><style>{_CSS}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;"
    "text-align:right}th{background:#f2f2f2}td:first-child,th:first-child{text-align:left}"
    ".ok{color:#1a7f37}.bad{color:#cf222e;font-weight:bold}.note{color:#555;font-size:90%}"
    "svg{display:block;margin:1em 0}"
)


def _mark(name: str, value: float | None) -> str:
    if name not in TARGETS or value is None:
        return ""
    op, target = TARGETS[name]
    ok = value >= target if op == ">=" else value <= target
    sign = "≥" if op == ">=" else "≤"
    cls, sym = ("ok", "✓") if ok else ("bad", "✗")
    return f"<span class={cls} title='target {sign} {target}'>{sym}</span>"


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not math.isfinite(value):
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _scores_table(summary: dict[str, Any], codes: Sequence[str]) -> str:
    rows = [
        ("completeness", "Completeness", 3),
        ("ambiguity", "Ambiguity", 3),
        ("spuriousness", "Spuriousness", 3),
        ("position_accuracy_m", "Position accuracy (m)", 1),
        ("velocity_accuracy_mps", "Velocity accuracy (m/s)", 1),
        ("track_number_change_rate", "Track number changes (/s)", 5),
        ("longest_segment", "Longest segment", 3),
    ]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in codes)
    out = [f"<table><tr><th>metric</th>{head}<th>target</th></tr>"]
    nations = summary["nations"]
    for key, label, digits in rows:
        cells = ""
        for c in codes:
            v = nations[c]["siap"][key]
            cells += f"<td>{_fmt(v, digits)} {_mark(key, v)}</td>"
        target = TARGETS.get(key)
        t = f"{'≥' if target[0] == '>=' else '≤'} {target[1]}" if target else ""
        out.append(f"<tr><td>{label}</td>{cells}<td>{t}</td></tr>")
    extra = [
        ("GOSPA mean (m)", lambda n: _fmt(n["gospa_mean"], 0)),
        ("Latency p50 (ms)", lambda n: _fmt(n["latency_ms"]["p50"], 0)),
        ("Latency p99 (ms)", lambda n: _fmt(n["latency_ms"]["p99"], 0)),
        (
            "Latency p50 own / allied data (ms)",
            lambda n: (
                f"{_fmt(n['latency_ms_by_source']['own']['p50'], 0)} / "
                f"{_fmt(n['latency_ms_by_source']['allied']['p50'], 0)}"
            ),
        ),
        ("Track numbers used", lambda n: _fmt(n["track_numbers"])),
        ("Entitled object samples", lambda n: _fmt(n["entitled_samples"])),
    ]
    for label, fn in extra:
        cells = "".join(f"<td>{fn(nations[c])}</td>" for c in codes)
        out.append(f"<tr><td>{label}</td>{cells}<td></td></tr>")
    out.append("</table>")
    return "".join(out)


def _least_held(scored: Scored, limit: int = 5, min_steps: int = 10) -> str:
    """Per nation, the objects it held for the smallest share of the time it was entitled."""
    kinds = ("aircraft", "cruise", "ballistic")
    rows = []
    for code, s in scored.nations.items():
        steps, held = s.siap.truth_steps, s.siap.truth_steps_held
        ok = steps >= min_steps
        share = np.divide(held, steps, out=np.ones(steps.shape[0]), where=steps > 0)
        order = [i for i in np.argsort(share, kind="stable").tolist() if ok[i] and share[i] < 1.0]
        for i in order[:limit]:
            obj = int(s.siap.truth_ids[i])
            k = scored.object_kind.get(obj, -1)
            kind = kinds[k] if 0 <= k < len(kinds) else "?"
            rows.append(
                f"<tr><td>{html.escape(code)}</td><td>{obj}</td><td>{kind}</td>"
                f"<td>{int(steps[i]):,}</td><td>{share[i]:.2f}</td></tr>"
            )
    if not rows:
        return "<p>Every nation held every object it was entitled to, all the time.</p>"
    return (
        f"<h3>Objects held least (up to {limit} per nation)</h3><table><tr><th>nation</th>"
        "<th>object</th><th>kind</th><th>entitled steps</th><th>share held</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _network_section(env: dict[str, np.ndarray], metrics: dict[str, Any]) -> str:
    sender, receiver, outcome = env["sender"], env["receiver"], env["outcome"]
    n_bytes = env["bytes"].astype(np.int64)
    links = sorted({(str(s), str(r)) for s, r in zip(sender, receiver, strict=True)})
    out = [
        "<table><tr><th>link</th><th>items sent</th><th>delivered</th><th>lost</th>"
        "<th>rejected</th><th>withheld</th><th>bytes</th><th>p50 delivery (ms)</th></tr>"
    ]
    bars: list[tuple[str, float]] = []
    text = outcome.astype(str)
    all_rejected = np.char.startswith(text, "rejected")
    all_withheld = np.char.startswith(text, "withheld")
    for s, r in links:
        m = (sender == s) & (receiver == r)
        oc = text[m]
        delivered = oc == "delivered"
        lost = oc == "lost"
        rejected = all_rejected[m]
        withheld = all_withheld[m]
        dt = env["time_delivered"][m][delivered] - env["time_sent"][m][delivered]
        p50 = float(np.median(dt) * 1000) if dt.size else None
        total_bytes = int(n_bytes[m].sum())
        bars.append((f"{s}→{r}", total_bytes / 1024.0))
        out.append(
            f"<tr><td>{html.escape(s)} → {html.escape(r)}</td><td>{int((~withheld).sum()):,}</td>"
            f"<td>{int(delivered.sum()):,}</td><td>{int(lost.sum()):,}</td>"
            f"<td>{int(rejected.sum()):,}</td><td>{int(withheld.sum()):,}</td>"
            f"<td>{total_bytes:,}</td><td>{_fmt(p50, 0)}</td></tr>"
        )
    out.append("</table>")
    if bars:
        out.append(_bar_chart("Bytes on the wire per link (KiB)", bars))
    values, counts = np.unique(text[text != "delivered"], return_counts=True)
    reasons = Counter(dict(zip(values.tolist(), counts.tolist(), strict=True)))
    out.append("<h3>Releasability and rejection counters</h3>")
    rel = metrics.get("releasability")
    if isinstance(rel, dict):
        out.append(
            "<p>Node counters: "
            + ", ".join(
                f"{html.escape(str(k))} <b>{html.escape(str(v))}</b>" for k, v in rel.items()
            )
            + "</p>"
        )
    if reasons:
        out.append("<table><tr><th>outcome (items)</th><th>count</th></tr>")
        for k, v in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])):
            out.append(f"<tr><td>{html.escape(k)}</td><td>{v:,}</td></tr>")
        out.append("</table>")
    else:
        out.append("<p>Every item sent was delivered; nothing withheld or rejected.</p>")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Inline SVG charts.
# ---------------------------------------------------------------------------------------------

_W, _H = 900, 260
_L, _R, _T, _B = 60, 160, 28, 36  # margins: left axis, right legend, title, bottom axis


def _nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Round tick values ("nice numbers", Heckbert, Graphics Gems I, 1990, pp. 61-63)."""
    if not math.isfinite(lo) or not math.isfinite(hi) or hi <= lo:
        return [lo]
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step) * step
    return [start + i * step for i in range(int((hi - start) / step + 1e-9) + 1)]


def _downsample(x: F64, y: F64, limit: int = 600) -> tuple[F64, F64]:
    if x.shape[0] <= limit:
        return x, y
    idx = np.linspace(0, x.shape[0] - 1, limit).round().astype(int)
    return x[idx], y[idx]


def _frame(title: str, x0: float, x1: float, y0: float, y1: float, x_label: str) -> list[str]:
    pw, ph = _W - _L - _R, _H - _T - _B
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{_W}' height='{_H}' "
        f"viewBox='0 0 {_W} {_H}' role='img' aria-label='{html.escape(title)}' "
        "font-family='sans-serif' font-size='11'>",
        f"<text x='{_L}' y='16' font-size='13' font-weight='bold'>{html.escape(title)}</text>",
        f"<rect x='{_L}' y='{_T}' width='{pw}' height='{ph}' fill='none' stroke='#999'/>",
    ]
    for v in _nice_ticks(y0, y1):
        py = _T + ph - (v - y0) / (y1 - y0) * ph
        out.append(
            f"<line x1='{_L}' x2='{_L + pw}' y1='{py:.1f}' y2='{py:.1f}' stroke='#eee'/>"
            f"<text x='{_L - 4}' y='{py + 4:.1f}' text-anchor='end'>{v:g}</text>"
        )
    for v in _nice_ticks(x0, x1, 8):
        px = _L + (v - x0) / (x1 - x0) * pw
        out.append(f"<text x='{px:.1f}' y='{_T + ph + 14}' text-anchor='middle'>{v:g}</text>")
    out.append(
        f"<text x='{_L + pw / 2}' y='{_H - 4}' text-anchor='middle'>{html.escape(x_label)}</text>"
    )
    return out


def _line_chart(
    title: str, series: list[Series], x_label: str, y_range: tuple[float, float] | None
) -> str:
    xs = [s.x for s in series if s.x.size]
    ys = [s.y[np.isfinite(s.y)] for s in series if s.y.size]
    if not xs:
        return f"<p>{html.escape(title)}: no data.</p>"
    x0, x1 = float(min(x.min() for x in xs)), float(max(x.max() for x in xs))
    if x1 <= x0:
        x1 = x0 + 1.0
    if y_range is None:
        top = max((float(y.max()) for y in ys if y.size), default=1.0)
        y0, y1 = 0.0, top * 1.05 if top > 0 else 1.0
    else:
        y0, y1 = y_range
    pw, ph = _W - _L - _R, _H - _T - _B
    out = _frame(title, x0, x1, y0, y1, x_label)
    for i, s in enumerate(series):
        x, y = _downsample(s.x, s.y)
        ok = np.isfinite(y)
        px = _L + (x[ok] - x0) / (x1 - x0) * pw
        py = _T + ph - (np.clip(y[ok], y0, y1) - y0) / (y1 - y0) * ph
        pts = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(px.tolist(), py.tolist(), strict=True))
        out.append(
            f"<polyline fill='none' stroke='{html.escape(s.colour)}' stroke-width='1.5' "
            f"points='{pts}'/>"
        )
        ly = _T + 12 + 16 * i
        out.append(
            f"<line x1='{_W - _R + 10}' x2='{_W - _R + 30}' y1='{ly - 4}' y2='{ly - 4}' "
            f"stroke='{html.escape(s.colour)}' stroke-width='3'/>"
            f"<text x='{_W - _R + 34}' y='{ly}'>{html.escape(s.name)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _histogram(title: str, values: dict[str, F64], colours: dict[str, str]) -> str:
    finite = [v[np.isfinite(v)] for v in values.values()]
    if not any(v.size for v in finite):
        return f"<p>{html.escape(title)}: no picture updates.</p>"
    top = float(np.percentile(np.concatenate(finite), 99.5))
    top = top if top > 0 else 1.0
    edges = np.linspace(0.0, top, 41)
    counts = {k: np.histogram(np.clip(v, 0, top), edges)[0] for k, v in values.items()}
    cmax = max(int(c.max()) for c in counts.values()) or 1
    pw, ph = _W - _L - _R, _H - _T - _B
    out = _frame(title, 0.0, top, 0.0, float(cmax), "latency (ms), clipped at p99.5")
    nbin, nser = edges.shape[0] - 1, max(len(counts), 1)
    bw = pw / nbin
    for j, (name, c) in enumerate(counts.items()):
        colour = html.escape(colours.get(name, "#444"))
        for i, v in enumerate(c.tolist()):
            if v == 0:
                continue
            h = v / cmax * ph
            x = _L + i * bw + j * bw / nser
            out.append(
                f"<rect x='{x:.1f}' y='{_T + ph - h:.1f}' width='{bw / nser:.1f}' "
                f"height='{h:.1f}' fill='{colour}'><title>{html.escape(name)}: {v}</title></rect>"
            )
        ly = _T + 12 + 16 * j
        out.append(
            f"<rect x='{_W - _R + 10}' y='{ly - 9}' width='20' height='8' fill='{colour}'/>"
            f"<text x='{_W - _R + 34}' y='{ly}'>{html.escape(name)} ({values[name].size:,})</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _bar_chart(title: str, bars: list[tuple[str, float]]) -> str:
    h = 30 + 22 * len(bars)
    top = max(v for _, v in bars) or 1.0
    width = _W - 220
    out = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{_W}' height='{h}' "
        f"viewBox='0 0 {_W} {h}' role='img' aria-label='{html.escape(title)}' "
        "font-family='sans-serif' font-size='11'>",
        f"<text x='10' y='16' font-size='13' font-weight='bold'>{html.escape(title)}</text>",
    ]
    for i, (name, v) in enumerate(bars):
        y = 26 + 22 * i
        w = v / top * width
        out.append(
            f"<text x='100' y='{y + 12}' text-anchor='end'>{html.escape(name)}</text>"
            f"<rect x='110' y='{y}' width='{w:.1f}' height='16' fill='#4c78a8'/>"
            f"<text x='{114 + w:.1f}' y='{y + 12}'>{v:,.1f}</text>"
        )
    out.append("</svg>")
    return "".join(out)


def _lighter(colour: str) -> str:
    """The colour mixed halfway with white (for a companion series)."""
    c = colour.lstrip("#")
    if len(c) != 6:
        return "#bbbbbb"
    rgb = [int(c[i : i + 2], 16) for i in (0, 2, 4)]
    return "#" + "".join(f"{(v + 255) // 2:02x}" for v in rgb)
