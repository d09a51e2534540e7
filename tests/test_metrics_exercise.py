"""Exercise scoring from a hand-made recording: entitlement, SIAP per nation, commonality,
latency, GOSPA; and bad recordings → InputError naming the file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pymap3d
import pytest

from kizuna.errors import InputError
from kizuna.metrics.exercise import compute, score
from kizuna.scenario import Scenario, parse_scenario
from kizuna.security.policy import Policies, Policy

SCENARIO = """
name = "metrics-test"
epoch = 2026-05-01T00:00:00Z
duration_s = 40.0
seed = 1

[[nation]]
code = "USA"
name = "United States"

[[nation]]
code = "JPN"
name = "Japan"

[[sensor]]
id = "USA-R1"
nation = "USA"
kind = "radar"
site = { lat_deg = 37.0, lon_deg = 137.0 }
period_s = 2.0

[[sensor]]
id = "JPN-R1"
nation = "JPN"
kind = "radar"
site = { lat_deg = 36.0, lon_deg = 136.0 }
period_s = 2.0

[[sensor]]
id = "USA-SAT"
nation = "USA"
kind = "space_ir"
orbit = { altitude_km = 35786.0, phase_deg = 137.0 }
period_s = 2.0

[[link]]
a = "USA"
b = "JPN"
latency_ms = 50.0
"""

USA_POLICY = """
nation = "USA"
[[rule]]
name = "all-to-japan"
to = ["JPN"]
"""

JPN_POLICY = """
nation = "JPN"
[[rule]]
name = "air-to-usa"
to = ["USA"]
categories = ["air", "cruise", "unknown"]
"""

TIMES = 2.0 * np.arange(1, 21)  # picture/truth times 2..40 s
# Object 0 (aircraft) seen by the USA radar, 1 (aircraft) and 2 (ballistic) by Japan's; Japan
# last sees object 1 at t = 19.5.
OBJECTS = {0: (0, 37.2, 137.2), 1: (0, 37.6, 137.6), 2: (2, 38.0, 138.0)}
SEEN_BY = {0: "USA-R1", 1: "JPN-R1", 2: "JPN-R1"}


def scenario() -> Scenario:
    return parse_scenario(SCENARIO, "metrics-test.toml")


def policies() -> Policies:
    return Policies([Policy.parse(USA_POLICY, "USA.toml"), Policy.parse(JPN_POLICY, "JPN.toml")])


def _position(obj: int, t: float) -> np.ndarray:
    _, lat, lon = OBJECTS[obj]
    x, y, z = pymap3d.geodetic2ecef(lat, lon, 9000.0)
    return np.array([x, y, z]) + np.array([100.0, 0.0, 0.0]) * t


def write_recording(out: Path, extra_usa_track_on_2: bool = True) -> None:
    """truth, plots, pictures and envelopes of a small two-nation exercise."""
    (out / "recording").mkdir(parents=True, exist_ok=True)
    truth: dict[str, list] = {k: [] for k in ("time", "object_id", "kind", "phase")}
    for k in ("x", "y", "z", "vx", "vy", "vz", "lat", "lon", "alt"):
        truth[k] = []
    for t in TIMES:
        for obj, (kind, lat, lon) in OBJECTS.items():
            p = _position(obj, t)
            for k, v in zip(
                ("time", "object_id", "kind", "phase", "x", "y", "z", "vx", "vy", "vz"),
                (t, obj, kind, 0, *p, 100.0, 0.0, 0.0),
                strict=True,
            ):
                truth[k].append(v)
            truth["lat"].append(lat)
            truth["lon"].append(lon)
            truth["alt"].append(9000.0)
    pq.write_table(pa.table(truth), out / "truth.parquet")
    plots: dict[str, list] = {"time": [], "sensor_id": [], "truth_id": []}
    for t in TIMES - 0.5:
        for obj, sensor in SEEN_BY.items():
            if obj == 1 and t > 20.5:
                continue
            plots["time"].append(float(t))
            plots["sensor_id"].append(sensor)
            plots["truth_id"].append(obj)
        plots["time"].append(float(t))
        plots["sensor_id"].append("USA-R1")
        plots["truth_id"].append(-1)  # a false alarm: ignored
        plots["time"].append(float(t))
        plots["sensor_id"].append("USA-SAT")
        plots["truth_id"].append(2)  # angles-only: feeds no track, entitles nobody
    pq.write_table(pa.table(plots), out / "recording" / "plots.parquet")
    columns = (
        "time",
        "nation",
        "track_number",
        *("x", "y", "z", "vx", "vy", "vz"),
        "source_time",
        "contributing_nations",
    )
    pics: dict[str, list] = {k: [] for k in columns}

    def row(t: float, nation: str, number: int, p: np.ndarray, source: float, by: str) -> None:
        for k, v in zip(columns, (t, nation, number, *p, 100.0, 0.0, 0.0, source, by), strict=True):
            pics[k].append(v)

    offset = np.array([0.0, 300.0, 0.0])
    for t in TIMES:
        row(t, "USA", 10000, _position(0, t) + offset, t - 0.5, "USA")
        row(t, "USA", 20000, _position(1, t) + offset, t - 1.0, "JPN")
        if extra_usa_track_on_2:
            row(t, "USA", 10001, _position(2, t), t - 1.0, "JPN")  # not entitled: not spurious
        row(t, "USA", 10002, _position(0, t) + np.array([0, 0, 400e3]), t - 0.5, "USA")  # spurious
        row(t, "JPN", 10000, _position(0, t) + offset, t - 1.0, "USA")
        row(t, "JPN", 20001, _position(1, t) + offset, t - 0.5, "JPN")  # not USA's number
        row(t, "JPN", 20002, _position(2, t) + offset, t - 0.5, "JPN")
    pq.write_table(pa.table(pics), out / "recording" / "pictures.parquet")
    env = {
        "time_sent": [2.0, 2.0, 4.0, 4.0],
        "time_delivered": [2.05, float("nan"), 4.06, float("nan")],
        "sender": ["USA", "JPN", "JPN", "JPN"],
        "receiver": ["JPN", "USA", "USA", "USA"],
        "kind": ["track_report"] * 4,
        "track_number": [10000, 20001, 20001, 20002],
        "category": ["air", "air", "air", "ballistic"],
        "label": ["UNCLASSIFIED REL TO JPN,USA"] * 4,
        "outcome": ["delivered", "lost", "delivered", "withheld:default deny"],
        "bytes": [400, 380, 380, 0],
    }
    pq.write_table(pa.table(env), out / "recording" / "envelopes.parquet")


def test_entitlement_follows_sensors_policy_and_lag(tmp_path: Path) -> None:
    write_recording(tmp_path)
    scored = compute(tmp_path, scenario(), policies(), "test")
    truth = pq.read_table(tmp_path / "truth.parquet").to_pydict()
    obj, t = np.array(truth["object_id"]), np.array(truth["time"])

    def times(nation: str, o: int) -> list[float]:
        return t[(obj == o) & scored.nations[nation].entitled].tolist()

    # Own detections at 1.5, 3.5, 5.5: the third arrives by t = 6.
    assert times("USA", 0) == TIMES[TIMES >= 6].tolist()
    # Allied detections arrive a reporting interval (2 s) + 50 ms later: third at 7.55 → t = 8;
    # the last (19.5) arrives at 21.55 and holds for 3 scans (6 s): entitled up to t = 26.
    assert times("USA", 1) == TIMES[(TIMES >= 8) & (TIMES <= 26)].tolist()
    # Japan's policy withholds ballistic tracks from the USA.
    assert times("USA", 2) == []
    # Japan's own sensor: from t = 6 until 19.5 + 6 s.
    assert times("JPN", 1) == TIMES[(TIMES >= 6) & (TIMES <= 24)].tolist()
    assert times("JPN", 2) == TIMES[TIMES >= 6].tolist()
    assert times("JPN", 0) == TIMES[TIMES >= 8].tolist()


def test_scores_from_hand_made_recording(tmp_path: Path) -> None:
    write_recording(tmp_path)
    scored = compute(tmp_path, scenario(), policies(), "test")
    result = scored.as_dict()
    usa = result["nations"]["USA"]
    # Everything USA is entitled to is tracked from the first step: complete, not ambiguous.
    assert usa["siap"]["completeness"] == 1.0
    assert usa["siap"]["ambiguity"] == 1.0
    # Spurious: the far track (20 rows). The track on object 2 (not entitled) counts nowhere;
    # the tracks on objects 0 and 1 count only while USA is entitled to them.
    n_ent_0, n_ent_1 = 18, 10  # t = 6 .. 40 and t = 8 .. 26
    assert usa["siap"]["spuriousness"] == pytest.approx(20 / (20 + n_ent_0 + n_ent_1), abs=1e-6)
    assert usa["siap"]["position_accuracy_m"] == pytest.approx(300.0)
    assert usa["track_numbers"] == 4
    jpn = result["nations"]["JPN"]
    assert jpn["siap"]["completeness"] == 1.0
    assert jpn["siap"]["spuriousness"] == 0.0
    # Commonality: shared samples are object 0 (t ≥ 8, both) and object 1 (8 ≤ t ≤ 24); object
    # 0 is held under 10000 by both, object 1 under different numbers → 0.5 while both are
    # shared (t = 8..24: 9 steps), 1.0 at t = 26..40 (object 0 alone, 8 steps).
    assert result["commonality"] == pytest.approx((9 * 0.5 + 8 * 1.0) / 17, abs=1e-6)
    assert result["commonality_detail"]["shared_samples"] == 17 + 9
    # Latency: USA's updates are 0.5 s old on two tracks and 1.0 s on two (median between).
    assert usa["latency_ms"] == {"p50": pytest.approx(750.0), "p99": pytest.approx(1000.0)}
    by_source = usa["latency_ms_by_source"]
    assert by_source["own"]["p50"] == pytest.approx(500.0)
    assert by_source["allied"]["p50"] == pytest.approx(1000.0)
    assert jpn["latency_ms"]["p50"] == pytest.approx(500.0)
    # GOSPA (c = 10 km, p = 1): at t = 40 USA is entitled to object 0 only: its track is 300 m
    # off, the spurious track costs c/2 = 5 km, the tracks on objects 1 and 2 are left out.
    g = scored.nations["USA"].gospa_distance
    assert g[-1] == pytest.approx(300.0 + 5000.0)
    assert usa["gospa_mean"] == pytest.approx(float(g.mean()), abs=1e-3)
    json.dumps(result, allow_nan=False)  # JSON-ready, no NaN


def test_unentitled_track_would_be_spurious_without_entitlement(tmp_path: Path) -> None:
    """The same USA track on object 2 is spurious if nobody could have told USA about it."""
    write_recording(tmp_path)
    with_track = compute(tmp_path, scenario(), policies(), "test").nations["USA"].siap
    write_recording(tmp_path, extra_usa_track_on_2=False)
    without = compute(tmp_path, scenario(), policies(), "test").nations["USA"].siap
    assert with_track.spuriousness == without.spuriousness
    assert with_track.completeness == without.completeness


def test_without_policies_allies_release_everything(tmp_path: Path) -> None:
    write_recording(tmp_path)
    scored = compute(tmp_path, scenario(), None, "none")
    truth = pq.read_table(tmp_path / "truth.parquet").to_pydict()
    obj, t = np.array(truth["object_id"]), np.array(truth["time"])
    # Object 2 now reaches the USA from Japan's radar (t >= 8 after the lag); the USA's own
    # satellite sees it from t = 1.5 but space IR is angles-only and entitles nobody.
    usa_2 = t[(obj == 2) & scored.nations["USA"].entitled].tolist()
    assert usa_2 == TIMES[TIMES >= 8].tolist()


def test_score_is_the_dict_the_runtime_merges(tmp_path: Path) -> None:
    write_recording(tmp_path)
    result = score(tmp_path, scenario(), policies())
    assert set(result["nations"]) == {"USA", "JPN"}
    assert set(result["nations"]["USA"]["siap"]) == {
        "completeness",
        "ambiguity",
        "spuriousness",
        "position_accuracy_m",
        "velocity_accuracy_mps",
        "track_number_change_rate",
        "longest_segment",
    }
    assert 0.0 <= result["commonality"] <= 1.0


@pytest.mark.parametrize(
    ("relative", "damage", "message"),
    [
        ("truth.parquet", "delete", "file not found"),
        ("recording/pictures.parquet", "garbage", "not a readable Parquet file"),
        ("recording/plots.parquet", "truncate", "not a readable Parquet file"),
        ("recording/pictures.parquet", "drop-column", "missing column"),
    ],
)
def test_bad_recording_names_the_file(
    tmp_path: Path, relative: str, damage: str, message: str
) -> None:
    write_recording(tmp_path)
    path = tmp_path / relative
    if damage == "delete":
        path.unlink()
    elif damage == "garbage":
        path.write_bytes(b"this is not parquet at all")
    elif damage == "truncate":
        path.write_bytes(path.read_bytes()[:100])
    else:
        pq.write_table(pq.read_table(path).drop(["source_time"]), path)
    with pytest.raises(InputError) as info:
        score(tmp_path, scenario(), policies())
    text = str(info.value)
    assert str(path) in text
    assert message in text
    if damage == "drop-column":
        assert "source_time" in text


def test_gospa_series_equals_gospa_step_by_step() -> None:
    """All steps in one assignment (time as a 4th coordinate) = GOSPA computed per step."""
    from kizuna.metrics.exercise import GOSPA_C_M, _gospa_series
    from kizuna.metrics.gospa import gospa
    from kizuna.metrics.siap import States

    rng = np.random.default_rng(3)
    rows_t, rows_id, rows_p = [], [], []
    trows_t, trows_id, trows_p = [], [], []
    for step in range(12):
        t = 2.0 * step
        objects = rng.uniform(-60e3, 60e3, (int(rng.integers(0, 8)), 3))
        for j, p in enumerate(objects):
            trows_t.append(t)
            trows_id.append(j)
            trows_p.append(p)
            if rng.random() < 0.8:  # a track, sometimes far off (false + missed)
                rows_t.append(t)
                rows_id.append(100 + j)
                rows_p.append(p + rng.normal(0, rng.choice([300.0, 8e3]), 3))
        for k in range(int(rng.integers(0, 3))):  # clutter tracks
            rows_t.append(t)
            rows_id.append(900 + k)
            rows_p.append(rng.uniform(-60e3, 60e3, 3))
    tracks = States.from_arrays(
        rows_t, rows_id, np.reshape(rows_p, (-1, 3)), np.zeros((len(rows_t), 3))
    )
    truths = States.from_arrays(
        trows_t, trows_id, np.reshape(trows_p, (-1, 3)), np.zeros((len(trows_t), 3))
    )
    times, dist = _gospa_series(tracks, truths, np.ones(len(truths), bool))
    for t, d in zip(times.tolist(), dist.tolist(), strict=True):
        est = tracks.position[tracks.time == t]
        tru = truths.position[truths.time == t]
        assert d == pytest.approx(gospa(est, tru, c=GOSPA_C_M, p=1.0).distance, rel=1e-9, abs=1e-6)


def test_empty_pictures_and_envelopes_score_and_report(tmp_path: Path) -> None:
    """A run where no nation ever held a track (and nothing was sent) still scores."""
    write_recording(tmp_path)
    for name in ("pictures", "envelopes"):
        path = tmp_path / "recording" / f"{name}.parquet"
        pq.write_table(pq.read_table(path).slice(0, 0), path)
    result = score(tmp_path, scenario(), policies())
    usa = result["nations"]["USA"]
    assert usa["siap"]["completeness"] == 0.0
    assert usa["siap"]["spuriousness"] == 0.0
    assert usa["latency_ms"] == {"p50": None, "p99": None}
    assert usa["gospa_mean"] > 0  # every entitled object missed
    assert result["commonality"] == 0.0
    report = (tmp_path / "report.html").read_text()
    assert report.count("<svg") >= 3
    assert "Objects held least" in report  # every entitled object, share held 0.00
    assert "<td>USA</td><td>0</td><td>aircraft</td><td>18</td><td>0.00</td>" in report
    json.dumps(result, allow_nan=False)


def test_any_damage_to_a_recording_file_is_an_input_error(tmp_path: Path) -> None:
    """Truncations and byte flips of pictures.parquet: a score or an InputError naming the
    file — never another exception. (Seeded, so deterministic.)"""
    write_recording(tmp_path)
    path = tmp_path / "recording" / "pictures.parquet"
    good = path.read_bytes()
    rng = np.random.default_rng(5)
    for _ in range(40):
        data = bytearray(good)
        if rng.random() < 0.5:
            data = data[: int(rng.integers(0, len(data)))]
        else:
            for i in rng.integers(0, len(data), int(rng.integers(1, 6))).tolist():
                data[i] = int(rng.integers(0, 256))
        path.write_bytes(bytes(data))
        try:
            compute(tmp_path, scenario(), policies(), "test")
        except InputError as exc:
            assert str(path) in str(exc)


def test_wrong_column_type_is_an_input_error(tmp_path: Path) -> None:
    write_recording(tmp_path)
    path = tmp_path / "recording" / "pictures.parquet"
    table = pq.read_table(path)
    bad = table.set_column(
        table.schema.get_field_index("time"), "time", pa.array(["x"] * table.num_rows)
    )
    pq.write_table(bad, path)
    with pytest.raises(InputError, match=r"column 'time'.*wrong type"):
        compute(tmp_path, scenario(), policies(), "test")
