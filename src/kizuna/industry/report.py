"""A self-contained HTML report for one plan: charts drawn here as inline SVG, no internet.

Charts: capacity vs demand (and deliveries) over time for every end item, backlog over time by
nation and item, and the top bottlenecks by the value of one more unit of capacity. Tables:
key figures, demand met and backlog, lines added, bottlenecks.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyarrow as pa

from kizuna.industry.data import FloatArray
from kizuna.industry.results import PlanResult

PALETTE = [
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
]
WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 150, 28, 36


def _nice_max(value: float) -> float:
    """Round an axis maximum up to 1, 2 or 5 times a power of ten."""
    if value <= 0:
        return 1.0
    power = 10 ** np.floor(np.log10(value))
    for step in (1, 2, 5, 10):
        if value <= step * power:
            return float(step * power)
    return float(10 * power)


def _fmt(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 10 else f"{v:,.3g}"


def line_chart(
    title: str, months: list[str], series: list[tuple[str, FloatArray, str]], y_label: str
) -> str:
    """An SVG line chart of monthly series with year ticks and a legend on the right."""
    T = len(months)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    top = _nice_max(max((float(np.max(v)) for _, v, _ in series), default=1.0))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{LEFT}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
    ]

    def px(t: float) -> float:
        return LEFT + plot_w * t / max(T - 1, 1)

    def py(v: float) -> float:
        return TOP + plot_h * (1.0 - v / top)

    for k in range(5):
        v = top * k / 4
        parts.append(
            f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{py(v):.1f}" y2="{py(v):.1f}" '
            'stroke="#ddd"/>'
        )
        parts.append(
            f'<text x="{LEFT - 4}" y="{py(v) + 4:.1f}" font-size="10" '
            f'text-anchor="end">{_fmt(v)}</text>'
        )
    for t, month in enumerate(months):
        if month.endswith("-01"):
            parts.append(
                f'<line x1="{px(t):.1f}" x2="{px(t):.1f}" y1="{TOP}" '
                f'y2="{TOP + plot_h}" stroke="#eee"/>'
            )
            parts.append(
                f'<text x="{px(t):.1f}" y="{TOP + plot_h + 14}" font-size="10" '
                f'text-anchor="middle">{month[:4]}</text>'
            )
    parts.append(
        f'<text x="12" y="{TOP + plot_h / 2:.0f}" font-size="10" '
        f'transform="rotate(-90 12 {TOP + plot_h / 2:.0f})" text-anchor="middle">'
        f"{html.escape(y_label)}</text>"
    )
    for k, (name, values, colour) in enumerate(series):
        points = " ".join(f"{px(t):.1f},{py(float(v)):.1f}" for t, v in enumerate(values))
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{points}"/>'
        )
        y = TOP + 12 + 16 * k
        parts.append(
            f'<line x1="{WIDTH - RIGHT + 10}" x2="{WIDTH - RIGHT + 26}" y1="{y - 4}" '
            f'y2="{y - 4}" stroke="{colour}" stroke-width="3"/>'
        )
        parts.append(
            f'<text x="{WIDTH - RIGHT + 30}" y="{y}" font-size="11">{html.escape(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(title: str, labels: list[str], values: list[float], unit: str) -> str:
    """A horizontal SVG bar chart."""
    n = max(len(labels), 1)
    height = TOP + 22 * n + 10
    label_w, bar_w = 260, WIDTH - 260 - 90
    top = max(values, default=1.0) or 1.0
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="4" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>',
    ]
    for k, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = TOP + 22 * k
        w = bar_w * value / top
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 14}" font-size="11" text-anchor="end">'
            f"{html.escape(label)}</text>"
        )
        parts.append(
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="15" '
            f'fill="{PALETTE[k % len(PALETTE)]}"/>'
        )
        parts.append(
            f'<text x="{label_w + w + 4:.1f}" y="{y + 14}" font-size="10">'
            f"{_fmt(value)} {html.escape(unit)}</text>"
        )
    if not labels:
        parts.append(f'<text x="4" y="{TOP + 14}" font-size="11">no binding capacity</text>')
    parts.append("</svg>")
    return "".join(parts)


def html_table(table: pa.Table, limit: int = 50) -> str:
    rows = table.slice(0, limit).to_pylist()
    head = "".join(f"<th>{html.escape(c)}</th>" for c in table.column_names)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(v))}</td>" for v in r.values()) + "</tr>"
        for r in rows
    )
    more = (
        f"<p class=note>{table.num_rows - limit} more rows in the CSV/Parquet file.</p>"
        if table.num_rows > limit
        else ""
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{more}"


def _cell(v: object) -> str:
    if isinstance(v, float):
        return f"{v:,.4g}" if abs(v) < 1000 else f"{v:,.0f}"
    return str(v)


def render(result: PlanResult) -> str:
    """The report as one HTML string."""
    s = result.summary
    charts = []
    for k, item in enumerate(result.end_items):
        charts.append(
            line_chart(
                f"{item}: capacity vs demand",
                result.months,
                [
                    ("capacity", result.capacity_by_item[k], PALETTE[0]),
                    ("demand", result.demand_by_item[k], PALETTE[1]),
                    ("delivered", result.delivered_by_item[k], PALETTE[2]),
                ],
                "units / month",
            )
        )
    backlog_series = [
        (name, result.backlog_series[k], PALETTE[k % len(PALETTE)])
        for k, name in enumerate(result.backlog_keys)
        if result.backlog_series[k].max() > 1e-6
    ]
    # quantities differ by orders of magnitude between items: one chart per item
    by_item: dict[str, list[tuple[str, FloatArray, str]]] = {}
    for name, values, colour in backlog_series:
        by_item.setdefault(name.split(" ", 1)[1], []).append((name, values, colour))
    backlog_charts = [
        line_chart(f"Backlog: {item}", result.months, series, "units owed")
        for item, series in by_item.items()
    ]
    bn = result.tables["bottlenecks"].slice(0, 10).to_pylist()
    bottleneck_chart = bar_chart(
        "Top bottlenecks: value of one more unit (or hour) every month",
        [f"{r['plant']} {r['item']} ({r['kind']}, per {r['per']})" for r in bn],
        [float(r["value_every_month_musd"]) for r in bn],
        "M$",
    )
    key_rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_cell(v))}</td></tr>"
        for k, v in s.items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Kizuna industry plan: {html.escape(result.scenario)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px; color: #222; max-width: 1320px; }}
table {{ border-collapse: collapse; margin: 8px 0 16px; font-size: 12px; }}
th, td {{ border: 1px solid #ccc; padding: 3px 7px; text-align: left; }}
.charts {{ display: flex; flex-wrap: wrap; gap: 12px; }}
.banner {{ background: #fff3cd; border: 1px solid #e0c36a; padding: 6px 10px; }}
.note {{ color: #666; font-size: 12px; }}
</style></head><body>
<h1>Alliance defence-production plan: {html.escape(result.title)}</h1>
<p class="banner">NOTIONAL DATA — an open planning tool's sample; figures are invented and
calibrated only on public reporting. Not real programme data.</p>
<h2>Key figures</h2><table>{key_rows}</table>
<h2>Capacity vs demand</h2><div class="charts">{"".join(charts)}</div>
<h2>Backlog</h2><div class="charts">{"".join(backlog_charts) or "<p>No backlog.</p>"}</div>
{html_table(result.tables["backlog"])}
<h2>Bottlenecks</h2>
<p class="note">From the LP with the line decisions fixed: the value (M$) of one more unit of
capacity in every month of the horizon, and in the single most valuable month.</p>
{bottleneck_chart}
{html_table(result.tables["bottlenecks"], 20)}
<h3>Components: value of one more unit where it is used</h3>
{html_table(result.tables["component_values"], 12)}
<h2>Lines added</h2>{html_table(result.tables["line_additions"])}
</body></html>
"""


def write_report(result: PlanResult, path: str | Path) -> Path:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(render(result), encoding="utf-8")
    return target
