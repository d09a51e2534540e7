"""The World scan generator and ``kizuna simulate``: ordering, consistency, determinism, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from kizuna.geo import aer_to_ecef, geodetic_to_ecef, radar_horizon_m
from kizuna.plots import KIND_RADAR, KIND_SPACE_IR, PlotBatch
from kizuna.scenario import Point, Scenario, Sensor
from kizuna.sim.output import PLOTS_SCHEMA, load, simulate
from kizuna.sim.truth import PHASE_BOOST
from kizuna.sim.world import World

DATA = Path(__file__).parent / "data"
SMALL = DATA / "sim_small.toml"
SINGLE_RADAR = Path(__file__).parents[1] / "scenarios" / "single-radar.toml"


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return load(SMALL)


@pytest.fixture(scope="module")
def world(scenario: Scenario) -> World:
    return World(scenario)


@pytest.fixture(scope="module")
def scans(world: World) -> list[tuple[float, int, PlotBatch]]:
    return [(s.time, s.sensor_index, s.plots) for s in world.sensor_scans()]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", "from kizuna.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_scans_are_time_ordered_on_each_sensors_schedule(
    world: World, scenario: Scenario, scans: list[tuple[float, int, PlotBatch]]
) -> None:
    times = np.array([t for t, _, _ in scans])
    assert np.all(np.diff(times) >= 0.0)
    assert times[0] >= 0.0 and times[-1] <= scenario.duration_s
    for i, sensor in enumerate(scenario.sensor):
        mine = np.array([t for t, j, _ in scans if j == i])
        offset = world.scan_offsets_s[i]
        assert 0.0 <= offset < sensor.period_s
        assert mine[0] == pytest.approx(offset)
        assert np.allclose(np.diff(mine), sensor.period_s)
        assert len(mine) == int((scenario.duration_s - offset) // sensor.period_s) + 1
    # Offsets differ between sensors (so they do not all scan at t = 0) and are reproducible.
    assert len(set(world.scan_offsets_s)) == len(scenario.sensor)
    assert World(scenario).scan_offsets_s == world.scan_offsets_s
    # scans() is the same stream without the sensor index.
    plain = list(world.scans(0.0, 60.0))
    assert [t for t, _ in plain] == [t for t, _, _ in scans if t <= 60.0]
    for t, j, batch in scans:
        assert np.all(batch.time == t) and np.all(batch.sensor_index == j)


def test_radar_detections_point_at_the_truth(
    world: World, scans: list[tuple[float, int, PlotBatch]]
) -> None:
    checked = 0
    for t, _, batch in scans:
        radar = batch.take((batch.kind == KIND_RADAR) & (batch.truth_id >= 0))
        if not len(radar):
            continue
        state = world.truth.at(t)
        truth_pos = state.position[np.searchsorted(state.object_id, radar.truth_id)]
        measured = aer_to_ecef(
            radar.azimuth_rad,
            radar.elevation_rad,
            radar.range_m,
            radar.sensor_lat_rad,
            radar.sensor_lon_rad,
            radar.sensor_alt_m,
        )
        # Cross-range error bound: 5 σ of angle noise at the range, plus 5 σ in range.
        bound = 5 * (
            radar.sigma_range_m
            + radar.range_m * np.hypot(radar.sigma_azimuth_rad, radar.sigma_elevation_rad)
        )
        assert np.all(np.linalg.norm(measured - truth_pos, axis=1) < bound)
        checked += len(radar)
    assert checked > 50  # the scenario really produces detections


def test_moving_sensor_reports_carry_its_position_at_report_time(
    scenario: Scenario, scans: list[tuple[float, int, PlotBatch]]
) -> None:
    ship = [s.id for s in scenario.sensor].index("us-ship-1")
    rows = PlotBatch.concat([b for _, j, b in scans if j == ship and len(b)])
    assert len(rows) > 10
    # 10 m/s along the route: the site moves between the first and last report.
    dt = rows.time[-1] - rows.time[0]
    moved = np.linalg.norm(rows.sensor_ecef[-1] - rows.sensor_ecef[0])
    assert moved == pytest.approx(10.0 * dt, rel=0.01)
    # Geodetic and ECEF columns describe the same point.
    again = geodetic_to_ecef(rows.sensor_lat_rad, rows.sensor_lon_rad, rows.sensor_alt_m)
    assert np.allclose(again, rows.sensor_ecef, atol=1e-3)


def test_space_ir_sees_the_ballistic_missile_only_in_boost(
    world: World, scans: list[tuple[float, int, PlotBatch]]
) -> None:
    ir_detections = 0
    for t, _, batch in scans:
        ir = batch.take((batch.kind == KIND_SPACE_IR) & (batch.truth_id >= 0))
        if not len(ir):
            continue
        state = world.truth.at(t)
        phase = state.phase[np.searchsorted(state.object_id, ir.truth_id)]
        assert np.all(phase == PHASE_BOOST)
        assert np.all(np.isnan(ir.range_m))
        ir_detections += len(ir)
    assert ir_detections >= 3  # the boost phase is seen at all


def test_simulate_writes_the_contract_files_byte_identically(
    scenario: Scenario, tmp_path: Path
) -> None:
    first = simulate(scenario, tmp_path / "a", truth_interval_s=2.0)
    simulate(scenario, tmp_path / "b", truth_interval_s=2.0)
    for name in ("truth.parquet", "plots.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    plots = pq.read_table(tmp_path / "a" / "plots.parquet")
    assert plots.schema.names == PLOTS_SCHEMA.names
    assert plots.num_rows == first.plot_rows > 0
    assert set(plots.column("sensor_id").to_pylist()) <= {s.id for s in scenario.sensor}
    assert set(plots.column("kind").to_pylist()) == {"radar", "space_ir"}
    truth = pq.read_table(tmp_path / "a" / "truth.parquet")
    assert truth.schema.names == [
        "time", "object_id", "kind", "phase", "x", "y", "z", "vx", "vy", "vz", "lat", "lon", "alt"
    ]  # fmt: skip
    times = np.unique(truth.column("time").to_numpy())
    assert np.allclose(times, np.arange(0.0, scenario.duration_s + 1e-9, 2.0))
    # Degrees at the edge: the first aircraft starts at its first waypoint (36°N, 131°E, 9 km).
    first_row = {k: v[0] for k, v in truth.slice(0, 1).to_pydict().items()}  # t = 0, id 0
    assert first_row["time"] == 0.0 and first_row["object_id"] == 0
    assert first_row["lat"] == pytest.approx(36.0) and first_row["lon"] == pytest.approx(131.0)
    assert first_row["alt"] == pytest.approx(9000.0, abs=1e-3)
    # Per-sensor tallies add up to the file.
    truth_ids = plots.column("truth_id").to_numpy()
    assert sum(s.detections for s in first.sensors) == int(np.sum(truth_ids >= 0))
    assert sum(s.false_alarms for s in first.sensors) == int(np.sum(truth_ids < 0))


def test_adding_a_sensor_does_not_change_another_sensors_plots(scenario: Scenario) -> None:
    extra = Sensor(
        id="extra-radar",
        nation="JPN",
        kind="radar",
        site=scenario.sensor[0].site,
        period_s=3.0,
        clutter_rate=5.0,
    )
    bigger = msgspec.structs.replace(scenario, sensor=[extra, *scenario.sensor])

    def per_sensor(sc: Scenario) -> dict[str, list[PlotBatch]]:
        out: dict[str, list[PlotBatch]] = {}
        for s in World(sc).sensor_scans(0.0, 120.0):
            out.setdefault(sc.sensor[s.sensor_index].id, []).append(s.plots)
        return out

    before, after = per_sensor(scenario), per_sensor(bigger)
    assert len(after["extra-radar"]) > 0
    for sensor in scenario.sensor:
        a = PlotBatch.concat(before[sensor.id])
        b = PlotBatch.concat(after[sensor.id])
        assert len(a) == len(b)
        for name in ("time", "range_m", "azimuth_rad", "elevation_rad", "truth_id"):
            assert np.array_equal(getattr(a, name), getattr(b, name), equal_nan=True), name


def test_cli_simulate_end_to_end(tmp_path: Path) -> None:
    res = run_cli("simulate", str(SINGLE_RADAR), "--out", str(tmp_path / "out"))
    assert res.returncode == 0, res.stderr
    assert "JPN-KYOGAMISAKI" in res.stdout and "total" in res.stdout
    assert "simulated s per wall s" in res.stdout
    plots = pq.read_table(tmp_path / "out" / "plots.parquet")
    truth = pq.read_table(tmp_path / "out" / "truth.parquet")
    assert plots.num_rows > 0
    assert set(truth.column("object_id").to_pylist()) == {0, 1, 2}  # the three aircraft
    assert truth.column("time").to_numpy().max() <= 120.0
    assert set(plots.column("sensor_id").to_pylist()) == {"JPN-KYOGAMISAKI"}


def run_main(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """``kizuna.cli.main`` in this process: (exit code, stderr)."""
    from kizuna.cli import main

    old_argv = sys.argv
    sys.argv = ["kizuna", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old_argv
    return code, capsys.readouterr().err


def test_cli_simulate_bad_input_is_one_message_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One real subprocess (the user's view: no traceback), the other cases in-process.
    broken = tmp_path / "broken.toml"
    broken.write_text(SMALL.read_text().replace("period_s = 5.0", "period_s = -5.0"))
    bad = run_cli("simulate", str(broken), "--out", str(tmp_path / "o"))
    assert bad.returncode == 2
    assert "period_s" in bad.stderr and "Traceback" not in bad.stderr
    code, err = run_main(["simulate", str(tmp_path / "nope.toml"), "--out", str(tmp_path)], capsys)
    assert code == 2 and "nope.toml" in err
    code, err = run_main(
        ["simulate", str(SMALL), "--out", str(tmp_path / "o"), "--truth-interval", "0"], capsys
    )
    assert code == 2 and "--truth-interval" in err
    assert not (tmp_path / "o").exists()  # nothing written for a refused run
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    code, err = run_main(["simulate", str(SMALL), "--out", str(blocker / "sub")], capsys)
    assert code == 2 and "--out" in err and "a-file" in err


def test_oth_radar_in_a_scenario_is_deterministic_and_sees_beyond_the_horizon(
    scenario: Scenario, tmp_path: Path
) -> None:
    """An oth_radar ~1500 km south of the small scenario's aircraft: detections far beyond any
    line-of-sight horizon, the same bytes on every run, and the other sensors' plots unchanged."""
    sky_wave = Sensor(
        id="OTH",
        nation="JPN",
        kind="oth_radar",
        site=Point(lat_deg=22.5, lon_deg=133.0, alt_m=500.0),
        period_s=20.0,
        sigma_range_m=5_000.0,
        sigma_az_deg=0.5,
        sigma_el_deg=5.0,
        ref_range_km=2_000.0,
        ref_rcs_m2=1.0,
        ref_pd=0.9,
        fov_az_deg=60.0,
        min_range_km=1_000.0,
        max_range_km=2_500.0,
        clutter_rate=1.0,
    )
    with_oth = msgspec.structs.replace(scenario, sensor=[*scenario.sensor, sky_wave])
    simulate(with_oth, tmp_path / "a", truth_interval_s=10.0)
    simulate(with_oth, tmp_path / "b", truth_interval_s=10.0)
    for name in ("truth.parquet", "plots.parquet"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    plots = pq.read_table(tmp_path / "a" / "plots.parquet").to_pydict()
    rows = [i for i, s in enumerate(plots["sensor_id"]) if s == "OTH"]
    detected = [i for i in rows if plots["truth_id"][i] >= 0]
    assert len(detected) >= 5
    horizon = radar_horizon_m(500.0, 10_000.0)  # aircraft fly below 10 km here
    assert all(plots["range_m"][i] > horizon + 300e3 for i in detected)
    assert all(plots["kind"][i] == "radar" for i in rows)
    assert all(1_000e3 <= plots["range_m"][i] <= 2_500e3 for i in rows if plots["truth_id"][i] < 0)
    # Adding the OTH changed no other sensor's reports.
    simulate(scenario, tmp_path / "c", truth_interval_s=10.0)
    base = pq.read_table(tmp_path / "c" / "plots.parquet")
    mixed = pq.read_table(tmp_path / "a" / "plots.parquet")
    others = mixed.filter(pc.not_equal(mixed.column("sensor_id"), "OTH"))
    assert others.num_rows == base.num_rows > 0
    for name in base.schema.names:
        a, b = others.column(name).to_numpy(), base.column(name).to_numpy()
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name
