"""A static map snapshot of one nation's picture as inline SVG, for the after-action report.

``render_map_svg(out_dir, nation, t)`` draws what :class:`~kizuna.cop.picture_store.PictureStore`
answers for (nation, t): land from Natural Earth 1:50m (the world-atlas TopoJSON the web build
copies into ``static/land-50m.json``; public domain), sensor coverage, assets, warning ellipses
and tracks (coloured by identity, with a heading vector). No external resources, no JavaScript.

Projection: equirectangular scaled by cos(mid-latitude) — fine over the few hundred to few
thousand kilometres of a scenario area (Snyder, *Map Projections — A Working Manual*, USGS PP 1395,
1987, p. 90).
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from kizuna.cop.picture_store import PictureStore
from kizuna.errors import InputError

LAND_FILE = Path(__file__).parent / "static" / "land-50m.json"
IDENTITY_COLOURS = {
    "hostile": "#e03131",
    "suspect": "#f08c00",
    "unknown": "#e6c200",
    "neutral": "#2f9e44",
    "assumed_friend": "#1c7ed6",
    "friend": "#1c7ed6",
}
HEADING_LEAD_S = 240.0  # as the web page: vector to where the track will be in 4 minutes
HEADING_MAX_M = 120_000.0
EARTH_RADIUS_M = 6_371_008.8  # IUGG mean radius


@lru_cache(maxsize=1)
def land_polygons() -> list[list[np.ndarray]]:
    """Natural Earth land as polygons (lists of [lon, lat] rings), decoded from TopoJSON.

    TopoJSON arcs are quantised and delta-encoded; a ring concatenates arcs, ``~i`` meaning arc
    i reversed (TopoJSON specification, §2.1.3–2.2, github.com/topojson/topojson-specification).
    """
    if not LAND_FILE.exists():
        return []
    topo = json.loads(LAND_FILE.read_text())
    scale = np.asarray(topo["transform"]["scale"])
    translate = np.asarray(topo["transform"]["translate"])
    arcs = [np.cumsum(np.asarray(a, float), axis=0) * scale + translate for a in topo["arcs"]]

    def ring(indices: list[int]) -> np.ndarray:
        parts = []
        for k, i in enumerate(indices):
            arc = arcs[i] if i >= 0 else arcs[~i][::-1]
            parts.append(arc if k == 0 else arc[1:])
        return np.concatenate(parts)

    polygons: list[list[np.ndarray]] = []
    for geometry in topo["objects"]["land"]["geometries"]:
        if geometry["type"] == "Polygon":
            polygons.append([ring(r) for r in geometry["arcs"]])
        elif geometry["type"] == "MultiPolygon":
            polygons.extend([ring(r) for r in poly] for poly in geometry["arcs"])
    return polygons


class _Projection:
    def __init__(self, lon_min: float, lon_max: float, lat_min: float, lat_max: float, width: int):
        self.lon0, self.lat1 = lon_min, lat_max
        self.k = math.cos(math.radians((lat_min + lat_max) / 2))
        self.scale = width / ((lon_max - lon_min) * self.k)
        self.width = width
        self.height = round((lat_max - lat_min) * self.scale)

    def xy(self, lon: Any, lat: Any) -> tuple[Any, Any]:
        return (np.asarray(lon) - self.lon0) * self.k * self.scale, (
            self.lat1 - np.asarray(lat)
        ) * self.scale


def _path(proj: _Projection, ring: Any) -> str:
    pts = np.asarray(ring, float)
    x, y = proj.xy(pts[:, 0], pts[:, 1])
    coords = " ".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y, strict=True))
    return f"M{coords}Z"


def _unwrap_ring(ring: np.ndarray, lon_min: float, lon_max: float) -> np.ndarray:
    """A ring cut at the antimeridian (Fiji, Chukotka) made continuous (np.unwrap on longitude)
    and moved by 360° towards the view; otherwise its ±180° points join across the whole map."""
    lon = np.degrees(np.unwrap(np.radians(ring[:, 0])))
    if lon.max() < lon_min:
        lon += 360.0
    elif lon.min() > lon_max:
        lon -= 360.0
    return np.column_stack([lon, ring[:, 1]])


def render_map_svg(
    out_dir: str | Path, nation: str, t: float, width: int = 800, store: PictureStore | None = None
) -> str:
    """SVG of ``nation``'s picture at the latest reporting time ≤ ``t`` in an exercise output."""
    store = store or PictureStore(out_dir)
    if nation not in store.nation_codes():
        raise InputError.single(
            str(out_dir), "nation", "unknown nation", nation, ", ".join(store.nation_codes())
        )
    at, rows = store.picture_rows(nation, t)
    tracks = store.tracks(rows)
    warnings = store.warnings_at(nation, t)
    sensors, assets = store.sensors(), store.assets()

    lons: list[float] = [tr["lon_deg"] for tr in tracks]
    lats: list[float] = [tr["lat_deg"] for tr in tracks]
    for s in sensors:
        for lon, lat in s["coverage"] or []:
            lons.append(lon)
            lats.append(lat)
    for a in assets:
        lons.append(a["lon_deg"])
        lats.append(a["lat_deg"])
    if not lons:
        lons, lats = [0.0], [0.0]
    pad_lon = max(1.0, 0.05 * (max(lons) - min(lons)))
    pad_lat = max(1.0, 0.05 * (max(lats) - min(lats)))
    lon_min, lon_max = min(lons) - pad_lon, max(lons) + pad_lon
    lat_min, lat_max = max(min(lats) - pad_lat, -85.0), min(max(lats) + pad_lat, 85.0)
    proj = _Projection(lon_min, lon_max, lat_min, lat_max, width)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{proj.width}" height="{proj.height}" '
        f'viewBox="0 0 {proj.width} {proj.height}" font-family="sans-serif" font-size="10">',
        f'<rect width="{proj.width}" height="{proj.height}" fill="#dbe9f4"/>',
    ]
    land = []
    for polygon in land_polygons():
        if any(np.abs(np.diff(r[:, 0])).max(initial=0.0) > 180.0 for r in polygon):
            polygon = [_unwrap_ring(r, lon_min, lon_max) for r in polygon]
        outer = polygon[0]
        if (
            outer[:, 0].max() < lon_min
            or outer[:, 0].min() > lon_max
            or outer[:, 1].max() < lat_min
            or outer[:, 1].min() > lat_max
        ):
            continue
        land.append("".join(_path(proj, r) for r in polygon))
    if land:
        out.append(
            f'<path d="{"".join(land)}" fill="#eef0e6" stroke="#9aa58c" stroke-width="0.5"/>'
        )
    colours = {n["code"]: n["colour"] for n in store.nations()}
    for s in sensors:
        if s["coverage"]:
            colour = colours.get(s["nation"], "#888888")
            out.append(
                f'<path d="{_path(proj, s["coverage"])}" fill="{colour}" fill-opacity="0.05" '
                f'stroke="{colour}" stroke-dasharray="4 3" stroke-width="0.8"/>'
            )
    for a in assets:
        out.append(
            f'<path d="{_path(proj, a["outline"])}" fill="#ffd24d" fill-opacity="0.5" '
            f'stroke="#b38f00"><title>{escape(a["name"])}</title></path>'
        )
    for w in warnings:
        if w["ellipse"]:
            fill = "#888888" if w["status"] == "retracted" else "#e03131"
            out.append(
                f'<path d="{_path(proj, w["ellipse"])}" fill="{fill}" fill-opacity="0.35" '
                f'stroke="{fill}" stroke-width="1.5"><title>threat {w["threat_track_number"]} '
                f"revision {w['revision']}</title></path>"
            )
    for tr in tracks:
        x, y = proj.xy(tr["lon_deg"], tr["lat_deg"])
        colour = IDENTITY_COLOURS.get(tr["identity"], "#e6c200")
        d = min(tr["speed_mps"] * HEADING_LEAD_S, HEADING_MAX_M)
        course = math.radians(tr["course_deg"])
        dlat = math.degrees(d * math.cos(course) / EARTH_RADIUS_M)
        dlon = math.degrees(
            d
            * math.sin(course)
            / (EARTH_RADIUS_M * max(math.cos(math.radians(tr["lat_deg"])), 0.01))
        )
        x2, y2 = proj.xy(tr["lon_deg"] + dlon, tr["lat_deg"] + dlat)
        shape = (
            f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" '
            f'transform="rotate(45 {x:.1f} {y:.1f})"'
            if tr["category"] in ("ballistic", "cruise")
            else f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4"'
        )
        out.append(
            f'<g><line x1="{x:.1f}" y1="{y:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" stroke="{colour}"/>'
            f'{shape} fill="{colour}" stroke="#222" stroke-width="0.6"/>'
            f'<text x="{x + 6:.1f}" y="{y - 5:.1f}" fill="#222">{tr["track_number"]}</text>'
            f"<title>{tr['track_number']} {tr['category']} {tr['identity']} "
            f"Q{tr['quality']} {escape(tr['label'])}</title></g>"
        )
    when = "no report yet" if at is None else f"T+{at:.0f} s"
    out.append(
        f'<text x="8" y="16" font-size="13" font-weight="bold" fill="#1b2a38">'
        f"{escape(nation)} picture, {when}: {len(tracks)} tracks, {len(warnings)} warnings</text>"
    )
    out.append("</svg>")
    return "\n".join(out)


def render_warning_timeline_svg(
    out_dir: str | Path, nation: str, width: int = 800, store: PictureStore | None = None
) -> str:
    """SVG timeline of the warnings ``nation`` held: one row per (issuer, threat), a bar from the
    first revision to the last predicted impact time, a tick per revision (red new/update, grey
    retracted). An empty recording gives a one-line "no warnings" SVG."""
    store = store or PictureStore(out_dir)
    if nation not in store.nation_codes():
        raise InputError.single(
            str(out_dir), "nation", "unknown nation", nation, ", ".join(store.nation_codes())
        )
    end = float(store.times[-1]) if len(store.times) else 0.0
    held = store.warnings_at(nation, math.inf)
    if not held:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="24" '
            f'font-family="sans-serif" font-size="12"><text x="4" y="16">{escape(nation)}: '
            "no warnings</text></svg>"
        )
    impacts = [h["impact_time"] for w in held for h in w["history"] if h["impact_time"] is not None]
    t_max = max([end, *impacts]) or 1.0
    left, row, top = 150, 22, 24
    height = top + row * len(held) + 20

    def x_of(t: float) -> float:
        return left + (width - left - 10) * t / t_max

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="11">',
        f'<text x="4" y="14" font-weight="bold">{escape(nation)} warnings (s since epoch)</text>',
    ]
    for i, w in enumerate(held):
        y = top + i * row
        first = w["history"][0]["time"]
        last_impact = w["history"][-1]["impact_time"] or w["time"]
        who = f" from {w['issuer']}" if w.get("issuer") else ""
        bar = max(x_of(last_impact) - x_of(first), 1.0)
        out.append(
            f'<text x="4" y="{y + 13}">threat {w["threat_track_number"]}{escape(who)}</text>'
            f'<rect x="{x_of(first):.1f}" y="{y + 4}" width="{bar:.1f}" height="10" '
            f'fill="#f4c7c7"/>'
        )
        for h in w["history"]:
            colour = "#888888" if h["status"] == "retracted" else "#c92a2a"
            out.append(
                f'<line x1="{x_of(h["time"]):.1f}" x2="{x_of(h["time"]):.1f}" y1="{y + 2}" '
                f'y2="{y + 16}" stroke="{colour}" stroke-width="2"><title>revision '
                f"{h['revision']} {h['status']} at {h['time']:.0f} s</title></line>"
            )
    axis_y = top + row * len(held) + 4
    out.append(
        f'<line x1="{left}" x2="{width - 10}" y1="{axis_y}" y2="{axis_y}" stroke="#444"/>'
        f'<text x="{left}" y="{axis_y + 13}">0</text>'
        f'<text x="{width - 10}" y="{axis_y + 13}" text-anchor="end">{t_max:.0f}</text></svg>'
    )
    return "".join(out)
