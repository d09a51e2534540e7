"""COP server and picture store (kizuna.cop): exact per-nation pictures, warnings, bad input.

Uses a hand-made recording (kizuna.cop.synthetic) whose releasability we control: shared tracks
are held by both nations, every 5th track is REL TO JPN only and must never reach USA.
"""

from __future__ import annotations

import atexit
import math
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pymap3d
import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from kizuna.cop.picture_store import PictureStore, ellipse_ring
from kizuna.cop.server import create_app, open_source
from kizuna.cop.synthetic import (
    BALLISTIC_TRACK,
    JPN_LABEL,
    JPN_ONLY_EVERY,
    write_synthetic_recording,
)
from kizuna.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "small-bilateral.toml"
TIMES = (10.0, 20.0, 30.0)
N_TRACKS = 12


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_recording(tmp_path_factory.mktemp("cop"), SCENARIO, N_TRACKS, TIMES)


@pytest.fixture(scope="module")
def store(recording: Path) -> PictureStore:
    return PictureStore(recording)


@pytest.fixture(scope="module")
def client(store: PictureStore) -> TestClient:
    return TestClient(create_app(store))


# -- the store ------------------------------------------------------------------------------------


def test_picture_is_the_latest_reporting_time_at_or_before_t(store: PictureStore) -> None:
    assert store.picture_rows("JPN", 5.0) == (None, slice(0, 0))  # before the first report
    for t, expected in ((10.0, 10.0), (19.999, 10.0), (20.0, 20.0), (1e9, 30.0)):
        at, rows = store.picture_rows("JPN", t)
        assert at == expected
        assert set(store.columns["time"][rows]) == {expected}
        assert set(store.columns["nation"][rows]) == {"JPN"}


def test_each_nation_holds_exactly_what_its_policy_allows(store: PictureStore) -> None:
    jpn_only = {10_000 + i for i in range(N_TRACKS) if i % JPN_ONLY_EVERY == JPN_ONLY_EVERY - 1}
    assert jpn_only  # the test would be empty otherwise
    for t in TIMES:
        jpn = {tr["track_number"] for tr in store.tracks(store.picture_rows("JPN", t)[1])}
        usa = store.tracks(store.picture_rows("USA", t)[1])
        assert jpn == {10_000 + i for i in range(N_TRACKS)}
        assert {tr["track_number"] for tr in usa} == jpn - jpn_only
        assert all("USA" in tr["label"] for tr in usa)


def test_geodetic_course_and_speed_match_the_recorded_state(store: PictureStore) -> None:
    _, rows = store.picture_rows("JPN", 20.0)
    c = store.columns
    for tr, i in zip(store.tracks(rows), range(rows.start, rows.stop), strict=True):
        x, y, z = pymap3d.geodetic2ecef(tr["lat_deg"], tr["lon_deg"], tr["alt_m"])
        assert math.dist((x, y, z), (c["x"][i], c["y"][i], c["z"][i])) < 1.0
        east, north, _ = pymap3d.ecef2enuv(
            c["vx"][i], c["vy"][i], c["vz"][i], tr["lat_deg"], tr["lon_deg"]
        )
        assert tr["speed_mps"] == pytest.approx(math.hypot(east, north), abs=0.01)
        course = math.degrees(math.atan2(east, north)) % 360
        assert abs((tr["course_deg"] - course + 180) % 360 - 180) < 0.01


def test_ellipse_ring_has_the_requested_axes_and_orientation() -> None:
    ring = np.array(ellipse_ring(36.0, 137.0, 50_000.0, 10_000.0, math.radians(90.0)))
    assert (ring[0] == ring[-1]).all()
    east, north, _ = pymap3d.geodetic2enu(ring[:, 1], ring[:, 0], 0.0, 36.0, 137.0, 0.0)
    r = np.hypot(east, north)
    assert r.max() == pytest.approx(50_000.0, rel=1e-3)
    assert r.min() == pytest.approx(10_000.0, rel=1e-2)
    # Major axis at 90° clockwise from north: the far points lie east-west.
    far = np.argmax(r)
    assert abs(north[far]) < 1_000.0


def test_warnings_revise_in_time_order(store: PictureStore) -> None:
    assert store.warnings_at("JPN", 15.0) == []
    first = store.warnings_at("JPN", 20.0)
    assert [w["revision"] for w in first] == [0]
    latest = store.warnings_at("JPN", 35.0)
    assert len(latest) == 1
    w = latest[0]
    assert (w["threat_track_number"], w["revision"], w["status"]) == (BALLISTIC_TRACK, 1, "update")
    assert [h["revision"] for h in w["history"]] == [0, 1]
    assert w["endangered_assets"] == ["Kanazawa"]
    assert w["impact_lat_deg"] == pytest.approx(36.6, abs=1e-6)
    assert w["ellipse"] is not None and w["ellipse"][0] == w["ellipse"][-1]


def test_store_without_warnings_or_scenario_still_answers(tmp_path: Path) -> None:
    write_synthetic_recording(tmp_path, tmp_path / "missing.toml", 3, (1.0,), warnings=False)
    s = PictureStore(tmp_path)
    assert s.warnings_at("JPN", 10.0) == []
    assert s.assets() == [] and s.sensors() == []
    assert s.nation_codes() == ["JPN", "USA"]  # from the recording when no scenario is found


def test_refresh_picks_up_a_grown_recording(tmp_path: Path) -> None:
    write_synthetic_recording(tmp_path, SCENARIO, 4, (1.0, 2.0))
    s = PictureStore(tmp_path)
    assert s.refresh() is False
    assert len(s.times) == 2
    write_synthetic_recording(tmp_path, SCENARIO, 4, (1.0, 2.0, 3.0, 4.0))
    assert s.refresh() is True
    assert s.times.tolist() == [1.0, 2.0, 3.0, 4.0]


def test_bad_directory_and_bad_file_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such directory"):
        PictureStore(tmp_path / "nope")
    (tmp_path / "recording").mkdir()
    (tmp_path / "recording" / "pictures.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match=r"pictures\.parquet: not a readable Parquet file"):
        PictureStore(tmp_path)
    with pytest.raises(InputError, match="not supported yet"):
        open_source("zenoh://127.0.0.1:7447")


def test_cli_bad_input_is_one_message_and_exit_2(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-c", "from kizuna.cli import main; main()", "cop", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2
    assert "no such directory" in run.stderr and "Traceback" not in run.stderr


# -- the API --------------------------------------------------------------------------------------


def test_api_picture_matches_the_store(client: TestClient, store: PictureStore) -> None:
    body = client.get("/api/picture", params={"nation": "USA", "t": 25}).json()
    assert body["time"] == 20.0
    expected = store.tracks(store.picture_rows("USA", 25.0)[1])
    assert [t["track_number"] for t in body["tracks"]] == [t["track_number"] for t in expected]
    assert all(t["label"] != JPN_LABEL for t in body["tracks"])
    latest = client.get("/api/picture", params={"nation": "JPN"}).json()
    assert latest["time"] == 30.0 and len(latest["tracks"]) == N_TRACKS


def test_api_picture_columns_hold_the_same_picture(client: TestClient, store: PictureStore) -> None:
    for nation, t in (("USA", 25.0), ("JPN", 30.0), ("JPN", 5.0)):
        full = client.get("/api/picture", params={"nation": nation, "t": t}).json()
        cols = client.get("/api/picture/columns", params={"nation": nation, "t": t}).json()
        assert cols["time"] == full["time"] and cols["n"] == len(full["tracks"])
        assert cols["track_number"] == [tr["track_number"] for tr in full["tracks"]]
        for name in ("category", "identity", "label"):
            coded = cols[name]
            assert [coded["values"][k] for k in coded["codes"]] == [
                tr[name] for tr in full["tracks"]
            ]
        nations = cols["contributing_nations"]
        assert [nations["values"][k].split(",") for k in nations["codes"]] == [
            tr["contributing_nations"] for tr in full["tracks"]
        ]
        for name, digits in (("lat_deg", 6), ("lon_deg", 6), ("alt_m", 0), ("speed_mps", 1)):
            assert cols[name] == pytest.approx(
                [tr[name] for tr in full["tracks"]], abs=10.0**-digits
            )
    assert all(
        label != JPN_LABEL
        for label in client.get("/api/picture/columns", params={"nation": "USA"}).json()["label"][
            "values"
        ]
    )


def test_api_picture_geojson_has_a_point_and_heading_per_track(client: TestClient) -> None:
    full = client.get("/api/picture", params={"nation": "USA", "t": 20}).json()["tracks"]
    response = client.get("/api/picture/geojson", params={"nation": "USA", "t": 20})
    assert response.headers["content-type"] == "application/geo+json"
    features = response.json()["features"]
    points = [f for f in features if f["geometry"]["type"] == "Point"]
    lines = [f for f in features if f["geometry"]["type"] == "LineString"]
    assert [f["properties"]["track_number"] for f in points] == [t["track_number"] for t in full]
    assert len(lines) == len(full)  # every synthetic track moves
    assert all(",USA," in f["properties"]["nations"] for f in points)
    for track, line in zip(full, lines, strict=True):
        (x0, y0), (x1, y1) = line["geometry"]["coordinates"]
        assert (x0, y0) == (track["lon_deg"], track["lat_deg"])
        # The vector runs along the course for min(240 s x speed, 120 km): check by pymap3d.
        az, dist = _azimuth_distance(y0, x0, y1, x1)
        expected = min(240.0 * track["speed_mps"], 120_000.0)
        assert dist == pytest.approx(expected, rel=0.01)
        assert (az - track["course_deg"] + 180.0) % 360.0 - 180.0 == pytest.approx(0.0, abs=0.5)
    empty = client.get("/api/picture/geojson", params={"nation": "USA", "t": 1}).json()
    assert empty == {"type": "FeatureCollection", "features": []}


def _azimuth_distance(lat0: float, lon0: float, lat1: float, lon1: float) -> tuple[float, float]:
    from pymap3d.vincenty import vdist

    dist, az = vdist(lat0, lon0, lat1, lon1)
    return float(az), float(dist)


def test_api_lists(client: TestClient) -> None:
    assert [n["code"] for n in client.get("/api/nations").json()] == ["USA", "JPN"]
    times = client.get("/api/times").json()
    assert times["times"] == list(TIMES) and times["epoch"] == "2026-05-01T00:00:00Z"
    assets = client.get("/api/assets").json()
    assert {a["name"] for a in assets} == {"Kanazawa", "Niigata"}
    sensors = client.get("/api/sensors").json()
    assert all(s["coverage"][0] == s["coverage"][-1] for s in sensors if s["coverage"])
    assert client.get("/api/metrics").json()["synthetic"] is True
    # The schema names the recording's nations, so generated requests reach real pictures.
    parameters = client.get("/openapi.json").json()["paths"]["/api/picture"]["get"]["parameters"]
    nation = next(p for p in parameters if p["name"] == "nation")
    assert nation["schema"]["enum"] == ["USA", "JPN"]


def test_api_track_history_and_details(client: TestClient) -> None:
    body = client.get(f"/api/tracks/{BALLISTIC_TRACK}", params={"nation": "JPN"}).json()
    assert [h["time"] for h in body["history"]] == list(TIMES)
    assert body["latest"]["category"] == "ballistic" and body["latest"]["identity"] == "hostile"
    hidden = 10_000 + JPN_ONLY_EVERY - 1
    response = client.get(f"/api/tracks/{hidden}", params={"nation": "USA"})
    assert response.status_code == 404
    assert response.json()["detail"] == f"number: USA never held track {hidden}"


@pytest.mark.parametrize(
    ("url", "status", "needle"),
    [
        ("/api/picture?nation=FRA", 404, "unknown nation 'FRA' (expected one of USA, JPN)"),
        ("/api/picture", 422, "Field required"),
        ("/api/picture?nation=JPN&t=nan", 422, "finite number"),
        ("/api/picture?nation=JPN&t=soon", 422, "valid number"),
        ("/api/warnings?nation=XX&t=3", 404, "unknown nation"),
        ("/api/tracks/-1?nation=JPN", 422, "greater than or equal to 0"),
        ("/api/tracks/abc?nation=JPN", 422, "valid integer"),
        ("/api/tracks/1" + "0" * 30 + "?nation=JPN", 422, "less than or equal"),
    ],
)
def test_api_bad_parameters_are_4xx_with_a_message(
    client: TestClient, url: str, status: int, needle: str
) -> None:
    response = client.get(url)
    assert response.status_code == status
    assert needle in response.text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(nation=st.text(max_size=20), t=st.one_of(st.floats(), st.text(max_size=12)))
def test_api_never_500_on_arbitrary_parameters(client: TestClient, nation: str, t: object) -> None:
    for path in ("/api/picture", "/api/warnings"):
        response = client.get(path, params={"nation": nation, "t": str(t)})
        assert response.status_code < 500
        if response.status_code >= 400:
            assert response.json()["detail"]


def test_websocket_replays_in_order_and_refuses_bad_nations(client: TestClient) -> None:
    with client.websocket_connect("/ws/picture?nation=USA&t=10&speed=1000") as ws:
        frames = [ws.receive_json() for _ in range(4)]
    assert [f.get("time") for f in frames[:3]] == list(TIMES)
    assert frames[3] == {"type": "end"}
    assert all(f["picture"]["n"] == N_TRACKS - N_TRACKS // JPN_ONLY_EVERY for f in frames[:3])
    assert frames[2]["warnings"][0]["revision"] == 1
    with client.websocket_connect("/ws/picture?nation=USA&t=30&speed=1000") as ws:
        assert ws.receive_json()["time"] == 30.0
        assert ws.receive_json() == {"type": "end"}
        ws.send_text("not json")  # ignored
        ws.send_text('{"t": 10, "nation": "JPN", "playing": true, "speed": -1}')
        frame = ws.receive_json()
        assert (frame["time"], frame["nation"]) == (10.0, "JPN")  # steered; bad speed ignored
    from starlette.websockets import WebSocketDisconnect

    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect("/ws/picture?nation=ZZZ") as ws,
    ):
        ws.receive_json()
    assert closed.value.code == 1008


# -- schemathesis against the OpenAPI schema ------------------------------------------------------


# Loaded at import (schemathesis parametrizes from the schema at collection), on its own
# hand-made recording in a temporary directory removed at exit.
_SCHEMA_DIR = Path(tempfile.mkdtemp(prefix="kizuna-cop-schema-"))
atexit.register(shutil.rmtree, _SCHEMA_DIR, ignore_errors=True)
api_schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    create_app(PictureStore(write_synthetic_recording(_SCHEMA_DIR, SCENARIO, N_TRACKS, TIMES))),
)
api_schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE],
    max_examples=40,
    deterministic=True,
    database="none",
)


@api_schema.parametrize()
def test_openapi_conformance_and_no_server_errors(case: schemathesis.Case) -> None:
    # Every response must match the declared schema and status codes; none may be a 5xx.
    case.call_and_validate()


# -- the SVG snapshot for the after-action report -------------------------------------------------


def test_render_map_svg_draws_every_track_and_the_warning(recording: Path) -> None:
    import xml.etree.ElementTree as ET

    from kizuna.cop import render_map_svg

    svg = render_map_svg(recording, "USA", 30.0)
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    tracks = [g for g in root.iter(f"{ns}g")]
    assert len(tracks) == N_TRACKS - N_TRACKS // JPN_ONLY_EVERY
    titles = [t.text or "" for t in root.iter(f"{ns}title")]
    assert any(t.startswith(f"threat {BALLISTIC_TRACK} revision 1") for t in titles)
    assert "Kanazawa" in titles
    assert "USA picture, T+30 s" in svg
    with pytest.raises(InputError, match="unknown nation"):
        render_map_svg(recording, "FRA", 30.0)


def test_live_websocket_pushes_each_new_picture(tmp_path: Path) -> None:
    import kizuna.cop.server as server

    write_synthetic_recording(tmp_path, SCENARIO, 4, (1.0, 2.0))
    store = PictureStore(tmp_path)
    server.LIVE_POLL_S, saved = 0.05, server.LIVE_POLL_S
    try:
        with (
            TestClient(create_app(store, live=True)) as live_client,
            live_client.websocket_connect("/ws/picture?nation=JPN") as ws,
        ):
            assert live_client.get("/api/times").json()["mode"] == "live"
            assert ws.receive_json()["time"] == 2.0  # the latest picture at once
            write_synthetic_recording(tmp_path, SCENARIO, 4, (1.0, 2.0, 3.0))
            assert ws.receive_json()["time"] == 3.0  # pushed when the recording grew
    finally:
        server.LIVE_POLL_S = saved


def test_warnings_from_two_issuers_of_one_threat_stay_apart(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    write_synthetic_recording(tmp_path, SCENARIO, 4, TIMES)
    path = tmp_path / "recording" / "warnings.parquet"
    usa = pq.read_table(path)
    jpn = usa.set_column(
        usa.schema.get_field_index("issuer"), "issuer", pa.array(["JPN"] * usa.num_rows)
    ).filter(pc.equal(usa["revision"], 0))
    pq.write_table(pa.concat_tables([usa, jpn]), path)
    held = PictureStore(tmp_path).warnings_at("JPN", 30.0)
    assert sorted((w["issuer"], w["revision"], len(w["history"])) for w in held) == [
        ("JPN", 0, 1),
        ("USA", 1, 2),
    ]


def test_live_directory_before_anything_is_written(tmp_path: Path) -> None:
    client = TestClient(create_app(PictureStore(tmp_path), live=True))
    assert client.get("/api/times").json() == {"mode": "live", "epoch": None, "times": []}
    assert client.get("/api/nations").json() == []
    assert client.get("/api/picture", params={"nation": "JPN"}).status_code == 404


def test_scenario_named_relative_to_where_the_exercise_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import shutil as sh

    project = tmp_path / "project"
    (project / "scenarios").mkdir(parents=True)
    sh.copy(SCENARIO, project / "scenarios" / "small-bilateral.toml")
    out = write_synthetic_recording(project / "out" / "run", SCENARIO, 3, (1.0,))
    (out / "metrics.json").write_text(json.dumps({"scenario": "scenarios/small-bilateral.toml"}))
    monkeypatch.chdir(tmp_path)  # not the project directory
    assert {a["name"] for a in PictureStore(out).assets()} == {"Kanazawa", "Niigata"}


def test_render_warning_timeline_svg(recording: Path, tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from kizuna.cop import render_warning_timeline_svg

    root = ET.fromstring(render_warning_timeline_svg(recording, "JPN"))
    ticks = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert ticks == ["revision 0 new at 20 s", "revision 1 update at 30 s"]
    write_synthetic_recording(tmp_path, SCENARIO, 2, (1.0,), warnings=False)
    assert "no warnings" in render_warning_timeline_svg(tmp_path, "USA")


def test_land_cut_at_the_antimeridian_is_drawn_continuous() -> None:
    from kizuna.cop.snapshot import _unwrap_ring

    fiji_like = np.array([[179.0, -17.0], [-179.5, -17.0], [-179.5, -16.0], [179.0, -16.0]])
    east = _unwrap_ring(fiji_like, 100.0, 170.0)
    assert np.ptp(east[:, 0]) == pytest.approx(1.5)
    west = _unwrap_ring(fiji_like[::-1], -175.0, -100.0)  # starts east of the cut, view west
    assert np.ptp(west[:, 0]) == pytest.approx(1.5) and west[:, 0].max() <= -179.0


def test_a_renumbered_threat_shows_once_with_its_whole_history(tmp_path: Path) -> None:
    """An issuer warned first under one number (e.g. IR-only) and revised under the agreed track
    number, listing the old one in ``replaces``: one warning, both revisions in its history."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    write_synthetic_recording(tmp_path, SCENARIO, 4, TIMES)
    path = tmp_path / "recording" / "warnings.parquet"
    table = pq.read_table(path)
    revision = table.column("revision").to_pylist()
    agreed = table.column("threat_track_number").to_pylist()
    assert set(revision) == {0, 1}  # revision 0, then 1, to each receiving nation
    numbers = [999_001 if r == 0 else n for r, n in zip(revision, agreed, strict=True)]
    replaces = ["" if r == 0 else "999001" for r in revision]
    table = table.set_column(
        table.schema.get_field_index("threat_track_number"),
        table.schema.field("threat_track_number"),
        pa.array(numbers, table.schema.field("threat_track_number").type),
    )
    table = table.set_column(
        table.schema.get_field_index("replaces"), "replaces", pa.array(replaces, pa.string())
    )
    pq.write_table(table, path)
    store = PictureStore(tmp_path)
    early = store.warnings_at("JPN", min(table.column("time").to_pylist()))
    assert [w["threat_track_number"] for w in early] == [999_001]  # before the renumbering
    held = store.warnings_at("JPN", 30.0)
    assert [(w["threat_track_number"], len(w["history"])) for w in held] == [
        (agreed[revision.index(1)], 2)
    ]
