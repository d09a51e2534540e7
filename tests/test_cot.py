"""CoT events: types by category and identity, accuracy mapping, label element, warnings,
and safe parsing of hostile XML."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import numpy as np
import pymap3d
import pytest

from kizuna.gateways import cot
from kizuna.gateways.picture import from_columns
from kizuna.messages import Ellipse, Label, Warning

EPOCH = datetime(2026, 5, 1, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("identity", "category", "expected"),
    [
        ("hostile", "cruise", "a-h-A-W-M"),
        ("hostile", "air", "a-h-A-M-F"),
        ("hostile", "ballistic", "a-h-A-W-M-S-S"),
        ("friend", "air", "a-f-A-M-F"),
        ("neutral", "air", "a-n-A-M-F"),
        ("suspect", "ballistic", "a-s-A-W-M-S-S"),
        ("unknown", "unknown", "a-u-A"),
        ("something-else", "cruise", "a-u-A-W-M"),
    ],
)
def test_cot_type(identity: str, category: str, expected: str) -> None:
    assert cot.cot_type(identity, category) == expected


def _table(contributors: str = "JPN-A") -> object:
    lat, lon, alt = 35.0, 139.0, 10_000.0
    x, y, z = pymap3d.geodetic2ecef(lat, lon, alt)
    # Heading 045°, 300 m/s horizontally, climbing 10 m/s.
    ve = vn = 300.0 / math.sqrt(2)
    vx, vy, vz = pymap3d.enu2uvw(ve, vn, 10.0, lat, lon)
    return from_columns(
        "JPN",
        {
            "time": [61.25], "track_number": [4242], "x": [x], "y": [y], "z": [z],
            "vx": [vx], "vy": [vy], "vz": [vz], "pos_sigma_m": [100.0], "quality": [6],
            "category": ["air"], "identity": ["hostile"], "contributors": [contributors],
            "contributing_nations": ["JPN"], "label": ["CONFIDENTIAL REL TO JPN,USA"],
        },
        EPOCH,
    )  # fmt: skip


def test_picture_event_fields() -> None:
    (raw,) = cot.picture_events(_table(), cot.CotOptions(stale_s=20))  # type: ignore[arg-type]
    ev = ET.fromstring(raw)
    assert ev.get("uid") == "KIZUNA-JPN-4242"
    assert ev.get("type") == "a-h-A-M-F"
    assert ev.get("how") == "m-r"  # one sensor: not fused
    assert ev.get("time") == ev.get("start") == "2026-05-01T00:01:01.250Z"
    assert ev.get("stale") == "2026-05-01T00:01:21.250Z"
    point = ev.find("point")
    assert point is not None
    assert float(point.get("lat", "")) == pytest.approx(35.0, abs=1e-7)
    assert float(point.get("hae", "")) == pytest.approx(10_000.0, abs=0.1)
    assert float(point.get("ce", "")) == pytest.approx(117.7, abs=0.1)  # 1.1774 σ
    assert float(point.get("le", "")) == pytest.approx(67.5, abs=0.1)  # 0.6745 σ
    track = ev.find("detail/track")
    assert track is not None
    assert float(track.get("course", "")) == pytest.approx(45.0, abs=0.1)
    assert float(track.get("speed", "")) == pytest.approx(300.0, abs=0.1)
    label = ev.find("detail/__kizuna_label")
    assert label is not None and label.attrib == {
        "classification": "CONFIDENTIAL",
        "releasable_to": "JPN,USA",
    }
    assert ev.find("detail/remarks") is None  # the label is never in remarks
    (fused,) = cot.picture_events(_table("JPN-A,USA-B"))  # type: ignore[arg-type]
    assert ET.fromstring(fused).get("how") == "m-f"


def test_ce_le_from_a_full_covariance() -> None:
    # σ_east = 30, σ_north = 40, σ_up = 10 in ENU, rotated into ECEF.
    lat, lon = np.array([20.0]), np.array([-70.0])
    enu = np.diag([30.0**2, 40.0**2, 10.0**2])
    images = [pymap3d.enu2uvw(*col, lat[0], lon[0]) for col in np.eye(3)]
    rot = np.array(images, dtype=float).T  # columns: ECEF images of east, north, up
    cov = (rot @ enu @ rot.T)[None]
    ce, le = cot.accuracy_50(lat, lon, np.array([np.nan]), cov)
    assert ce[0] == pytest.approx(0.5887 * 70.0, rel=1e-9)
    assert le[0] == pytest.approx(0.6745 * 10.0, rel=1e-9)


def test_warning_event_has_impact_point_and_ellipse() -> None:
    x, y, z = pymap3d.geodetic2ecef(34.0, 135.0, 0.0)
    w = Warning(
        threat_track_number=77, node="JPN", time=100.0, revision=2, status="update",
        impact_point=(x, y, z), impact_time=400.0,
        impact_ellipse=Ellipse(
            semi_major_m=5000.0, semi_minor_m=2000.0, orientation_rad=math.pi / 2
        ),
        endangered_assets=("Osaka",), label=Label("SECRET", ("JPN", "USA")),
    )  # fmt: skip
    raw = cot.warning_event(w, EPOCH)
    assert raw is not None
    ev = ET.fromstring(raw)
    assert ev.get("type") == "b-m-p-s-m" and ev.get("uid") == "KIZUNA-WARN-JPN-77"
    point = ev.find("point")
    assert point is not None and float(point.get("lat", "")) == pytest.approx(34.0, abs=1e-6)
    ellipse = ev.find("detail/shape/ellipse")
    assert ellipse is not None
    shape = (ellipse.get("major"), ellipse.get("minor"), ellipse.get("angle"))
    assert shape == ("5000.0", "2000.0", "90.0")
    kw = ev.find("detail/__kizuna_warning")
    assert kw is not None and kw.get("impact_time") == "2026-05-01T00:06:40.000Z"
    label = ev.find("detail/__kizuna_label")
    assert label is not None and label.get("releasable_to") == "JPN,USA"
    no_impact = Warning(threat_track_number=1, node="JPN", time=0.0)
    assert cot.warning_event(no_impact, EPOCH) is None


def test_round_trip_through_our_parser() -> None:
    events = cot.picture_events(_table())  # type: ignore[arg-type]
    parsed = cot.parse_events(b'<?xml version="1.0"?>\n' + b"".join(events))
    assert parsed.rejections == []
    (e,) = parsed.events
    assert e.uid == "KIZUNA-JPN-4242" and e.lat == pytest.approx(35.0)
    assert e.find("__kizuna_label").get("classification") == "CONFIDENTIAL"  # type: ignore[union-attr]


HOSTILE = {
    b'<!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
    b"<event>&b;</event>": "forbidden XML",
    b'<!DOCTYPE x SYSTEM "http://example.invalid/x.dtd"><event></event>': "forbidden XML",
    b'<event uid="x" type="a-f"><point lat="1" lon="2"/>&ext;</event>': "malformed XML",
    b"<event uid='x' type='a'><point lat='1' lon='2'></event>": "malformed XML",
    b"<notcot/></event>": "malformed XML",
    b"<root><x/></root></event>": "malformed XML",
    b'<event uid="x" type="a-f"></event>': "CoT event without <point>",
    b'<event uid="x" type="a-f"><point lat="nan" lon="2"/></event>': "bad point attribute",
    b'<event uid="x" type="a-f"><point lat="95" lon="2"/></event>': "bad point attribute",
    b'<event uid="x" type="a-f"><point lat="abc" lon="2"/></event>': "bad point attribute",
    b'<event><point lat="1" lon="2"/></event>': "CoT event without uid or type",
    b"\xff\xfe<event/></event>": "bytes before an event",
}


@pytest.mark.parametrize("data", list(HOSTILE), ids=range(len(HOSTILE)))
def test_hostile_xml_is_rejected_with_a_reason(data: bytes) -> None:
    parsed = cot.parse_events(data, "t")
    assert parsed.events == []
    assert [r.reason.split(":")[0] for r in parsed.rejections][:1] == [HOSTILE[data]]


def test_stream_splits_across_reads_and_limits_size() -> None:
    events = b"".join(cot.picture_events(_table()) * 3)  # type: ignore[arg-type]
    stream = cot.CotStream("s")
    for i in range(0, len(events), 7):
        stream.feed(events[i : i + 7])
    assert len(stream.result.events) == 3
    assert [e.offset for e in stream.result.events] == [0, len(events) // 3, 2 * len(events) // 3]
    big = cot.CotStream("s", max_event_bytes=1000)
    big.feed(b"<event>" + b"x" * 2000)
    assert big.result.rejection_counts() == {"event too large": 1}
    assert cot.parse_events(b"<event uid='a'").rejection_counts() == {"truncated event": 1}


def test_position_reports_to_friendly_tracks() -> None:
    data = (
        b'<event version="2.0" uid="ANDROID-1" type="a-f-G-U-C" how="m-g" '
        b'time="2026-05-01T00:10:00Z" start="2026-05-01T00:10:00Z" stale="2026-05-01T00:20:00Z">'
        b'<point lat="-33.86" lon="151.21" hae="20" ce="11.774" le="5"/>'
        b'<detail><contact callsign="Kangaroo"/><track course="180" speed="10"/></detail></event>'
        b'<event uid="CHAT" type="b-t-f" time="2026-05-01T00:10:00Z">'
        b'<point lat="0" lon="0"/></event>'
        b'<event uid="A2" type="a-h-A" time="yesterday"><point lat="0" lon="0"/></event>'
    )
    parsed = cot.parse_events(data)
    table, rejections = cot.position_reports_to_table(parsed.events, "AUS", EPOCH)
    assert [r.reason.split(":")[0] for r in rejections] == ["not a position report", "bad time"]
    assert len(table) == 1
    c = table.columns
    assert c["time"][0] == 600.0 and c["identity"][0] == "friend"
    assert c["category"][0] == "unknown" and c["contributors"][0] == "TAK:Kangaroo"
    assert c["pos_sigma_m"][0] == pytest.approx(10.0, rel=1e-3)
    lat, lon, _ = pymap3d.ecef2geodetic(*table.position[0])
    ve, vn, vu = pymap3d.uvw2enu(*table.velocity[0], lat, lon)
    assert (ve, vn, vu) == pytest.approx((0.0, -10.0, 0.0), abs=1e-9)
