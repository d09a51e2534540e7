"""A nation's picture as the GeoJSON the web map draws, built on the server with numpy.

The page hands the URL of ``/api/picture/geojson`` to MapLibre's GeoJSON source, whose web
worker fetches, parses and tiles it: the browser's main thread never builds or copies the
5,000-track feature collection (it only loads the compact columns for its table). Filters and
the selected-track ring are layer filters on these properties, so they need no new data.

Features: one Point per track (properties ``track_number``, ``identity``, ``category``,
``nations`` = ``",JPN,USA,"`` so a layer filter can look for ``",USA,"``) and one LineString
heading vector per moving track (``track_number``, ``identity``, ``category``, ``nations``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from kizuna.cop.picture_store import PictureStore

# Heading vector: where the track will be in HEADING_LEAD_S seconds, capped at HEADING_MAX_M so a
# fast missile's vector stays readable (a display choice, not a prediction).
HEADING_LEAD_S = 240.0
HEADING_MAX_M = 120_000.0
# IUGG mean Earth radius (Moritz, "Geodetic Reference System 1980", J. Geodesy 74, 2000): a
# flat-earth step of at most 120 km is well within a pixel of the geodesic at the zooms we draw.
EARTH_RADIUS_M = 6_371_008.8
MOVING_MPS = 1.0  # slower than this: no heading vector


def heading_ends(
    lat_deg: np.ndarray, lon_deg: np.ndarray, course_deg: np.ndarray, speed_mps: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(lat, lon) in degrees of each heading vector's far end (small-offset flat earth)."""
    course = np.radians(course_deg)
    d = np.minimum(speed_mps * HEADING_LEAD_S, HEADING_MAX_M)
    d_lat = np.degrees(d * np.cos(course) / EARTH_RADIUS_M)
    cos_lat = np.maximum(np.cos(np.radians(lat_deg)), 0.01)
    d_lon = np.degrees(d * np.sin(course) / (EARTH_RADIUS_M * cos_lat))
    return lat_deg + d_lat, lon_deg + d_lon


def picture_feature_collection(store: PictureStore, rows: slice) -> dict[str, Any]:
    """The rows of ``store`` (one nation at one time) as a GeoJSON FeatureCollection."""
    if rows.stop <= rows.start:
        return {"type": "FeatureCollection", "features": []}
    c = store.columns
    lat = np.round(c["lat_deg"][rows], 6)
    lon = np.round(c["lon_deg"][rows], 6)
    speed = c["speed_mps"][rows]
    end_lat, end_lon = heading_ends(lat, lon, c["course_deg"][rows], speed)
    end_lat, end_lon = np.round(end_lat, 6), np.round(end_lon, 6)
    properties = [
        {"track_number": n, "identity": i, "category": k, "nations": f",{s},"}
        for n, i, k, s in zip(
            c["track_number"][rows].tolist(),
            c["identity"][rows].tolist(),
            c["category"][rows].tolist(),
            c["contributing_nations"][rows].tolist(),
            strict=True,
        )
    ]
    features: list[dict[str, Any]] = [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [x, y]}, "properties": p}
        for x, y, p in zip(lon.tolist(), lat.tolist(), properties, strict=True)
    ]
    moving = np.flatnonzero(speed > MOVING_MPS).tolist()
    xs, ys, ex, ey = lon.tolist(), lat.tolist(), end_lon.tolist(), end_lat.tolist()
    features += [
        {
            "type": "Feature",
            "geometry": {"type": "LineString", "coordinates": [[xs[k], ys[k]], [ex[k], ey[k]]]},
            "properties": properties[k],
        }
        for k in moving
        if math.isfinite(ex[k]) and math.isfinite(ey[k])
    ]
    return {"type": "FeatureCollection", "features": features}
