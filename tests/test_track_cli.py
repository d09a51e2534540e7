"""``kizuna track`` end to end, and its bad-input table (exit 2, one message, no traceback)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pymap3d
import pytest

from kizuna.cli import main


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    old = sys.argv
    sys.argv = ["kizuna", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    finally:
        sys.argv = old
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def two_targets_csv(path: Path, n_scans: int = 12, with_sigma_columns: bool = False) -> None:
    rng = np.random.default_rng(0)
    lines = ["time,x,y,sensor" + (",sx,sy" if with_sigma_columns else "")]
    for k in range(n_scans):
        t = 2.0 * k
        for x0, y0, vx in ((0.0, 0.0, 150.0), (5000.0, 8000.0, -100.0)):
            x = x0 + vx * t + rng.normal(0, 20)
            y = y0 + rng.normal(0, 20)
            lines.append(f"{t},{x:.2f},{y:.2f},R1" + (",20,20" if with_sigma_columns else ""))
    path.write_text("\n".join(lines) + "\n")


def test_track_csv_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = tmp_path / "detections.csv"
    two_targets_csv(src)
    out = tmp_path / "tracks.parquet"
    code, stdout, stderr = run_cli(
        ["track", str(src), "--out", str(out), "--sigma", "20", "--confirm", "2/3"], capsys
    )
    assert code == 0, stderr
    assert "confirmed tracks" in stdout
    table = pq.read_table(out)
    assert table.column_names == ["time", "track_id", "x", "y", "vx", "vy", "quality"]
    last = table.filter(pa.compute.equal(table["time"], 22.0)).to_pydict()
    assert sorted(last["track_id"]) == [1, 2]
    vx = sorted(last["vx"])
    assert vx[0] == pytest.approx(-100.0, abs=15.0) and vx[1] == pytest.approx(150.0, abs=15.0)
    # Same input, same bytes.
    out2 = tmp_path / "tracks2.parquet"
    run_cli(["track", str(src), "--out", str(out2), "--sigma", "20", "--confirm", "2/3"], capsys)
    assert out.read_bytes() == out2.read_bytes()


def test_track_parquet_with_sigma_columns_and_jpda(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_path = tmp_path / "d.csv"
    two_targets_csv(csv_path, with_sigma_columns=True)
    import pyarrow.csv as pacsv

    src = tmp_path / "d.parquet"
    pq.write_table(pacsv.read_csv(csv_path), src)
    out = tmp_path / "t.parquet"
    code, _, stderr = run_cli(
        ["track", str(src), "--out", str(out), "--association", "jpda"], capsys
    )
    assert code == 0, stderr
    assert set(pq.read_table(out)["track_id"].to_pylist()) == {1, 2}


def test_track_simulate_plots_layout_in_ecef(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lat, lon, alt = 35.0, 139.0, 10.0
    rng = np.random.default_rng(1)
    rows: dict[str, list[object]] = {
        k: []
        for k in (
            "time",
            "sensor_id",
            "nation",
            "kind",
            "range_m",
            "azimuth_deg",
            "elevation_deg",
            "sigma_range_m",
            "sigma_azimuth_deg",
            "sigma_elevation_deg",
            "sensor_lat_deg",
            "sensor_lon_deg",
            "sensor_alt_m",
            "sensor_x",
            "sensor_y",
            "sensor_z",
            "truth_id",
        )
    }
    site = pymap3d.geodetic2ecef(lat, lon, alt)
    for k in range(15):
        t = 4.0 * k
        e, n, u = 40_000.0 + 200.0 * t, 60_000.0, 9_000.0
        az, el, r = pymap3d.enu2aer(e, n, u)
        for kind in ("radar", "space_ir"):
            rows["time"].append(t)
            rows["sensor_id"].append("JPN-R1")
            rows["nation"].append("JPN")
            rows["kind"].append(kind)
            rows["range_m"].append(r + rng.normal(0, 30) if kind == "radar" else float("nan"))
            rows["azimuth_deg"].append(az + rng.normal(0, 0.05))
            rows["elevation_deg"].append(el + rng.normal(0, 0.05))
            rows["sigma_range_m"].append(30.0 if kind == "radar" else float("nan"))
            rows["sigma_azimuth_deg"].append(0.05)
            rows["sigma_elevation_deg"].append(0.05)
            rows["sensor_lat_deg"].append(lat)
            rows["sensor_lon_deg"].append(lon)
            rows["sensor_alt_m"].append(alt)
            rows["sensor_x"].append(site[0])
            rows["sensor_y"].append(site[1])
            rows["sensor_z"].append(site[2])
            rows["truth_id"].append(0)
    src = tmp_path / "plots.parquet"
    pq.write_table(pa.table(rows), src)
    out = tmp_path / "tracks.parquet"
    code, stdout, stderr = run_cli(["track", str(src), "--out", str(out)], capsys)
    assert code == 0, stderr
    assert "ECEF" in stdout
    table = pq.read_table(out).to_pydict()
    assert set(table) == {"time", "track_id", "x", "y", "z", "vx", "vy", "vz", "quality"}
    t_last = table["time"][-1]
    truth = pymap3d.enu2ecef(40_000.0 + 200.0 * t_last, 60_000.0, 9_000.0, lat, lon, alt)
    err = np.linalg.norm(np.array([table["x"][-1], table["y"][-1], table["z"][-1]]) - truth)
    assert err < 200.0


BAD_CASES = [
    # (file name, content, extra args, fragments expected in the message)
    ("a.csv", "time,x\n0,1\n", [], ["a.csv", "missing column y"]),
    ("b.csv", "time,x,y\n0,1000,20\n1,abc,30\n", [], ["b.csv:3", "column 'x', row 1", "abc"]),
    ("c.csv", "time,x,y\n0,1000,20\n1,,30\n", [], ["c.csv:3", "column 'x'"]),
    ("d.csv", "time,x,y\n0,1000,20\n2,1100,30\n1,1200,40\n", [], ["d.csv:4", "backwards"]),
    ("e.csv", "time,x,y\n0,1000,20\n1,nan,30\n", [], ["e.csv:3", "finite"]),
    ("f.csv", "time,x,y\n0,1000,20\n1,1100,30\n", ["--no-sigma"], ["--sigma"]),
    (
        "g.csv",
        "time,x,y\n0,139.70,35.68\n1,139.71,35.69\n2,139.72,35.70\n",
        [],
        ["degrees", "metres"],
    ),
    ("h.txt", "time,x,y\n", [], ["unsupported file type"]),
    ("i.csv", "time,x,y\n0,1000,20\n", ["--confirm", "4/3"], ["--confirm", "M/N"]),
    ("j.csv", "time,x,y\n0,1000,20\n", ["--pd", "1.5"], ["--pd"]),
    ("k.csv", "time,x,y,sx,sy\n0,1000,20,5,-1\n", ["--no-sigma"], ["row 0", "> 0"]),
    (
        "l.csv",
        "time,sensor_id,kind,range_m,azimuth_deg\n0,R,radar,1000,10\n",
        [],
        ["plots layout", "elevation_deg"],
    ),
    (
        "m.csv",
        "time,sensor_id,kind,range_m,azimuth_deg,elevation_deg,sigma_range_m,sigma_azimuth_deg,"
        "sigma_elevation_deg,sensor_lat_deg,sensor_lon_deg,sensor_alt_m\n"
        "0,R,radar,1000,10,1,30,0.1,0.1,35,139,0\n"
        "1,R,radar,1000,10,1,30,0,0.1,35,139,0\n",
        [],
        ["m.csv:3", "sigma_azimuth_deg", "row 1", "> 0"],
    ),
    (
        "n.csv",
        "time,sensor_id,kind,range_m,azimuth_deg,elevation_deg,sigma_range_m,sigma_azimuth_deg,"
        "sigma_elevation_deg,sensor_lat_deg,sensor_lon_deg,sensor_alt_m\n"
        "0,R,sonar,1000,10,1,30,0.1,0.1,35,139,0\n",
        [],
        ["n.csv:2", "unknown report kind", "sonar"],
    ),
]


@pytest.mark.parametrize(("name", "content", "extra", "expected"), BAD_CASES)
def test_bad_input_is_one_clear_error(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    name: str,
    content: str,
    extra: list[str],
    expected: list[str],
) -> None:
    src = tmp_path / name
    src.write_text(content)
    out = tmp_path / "out.parquet"
    args = ["track", str(src), "--out", str(out)]
    if "--no-sigma" not in extra:
        args += ["--sigma", "10"]
    args += [a for a in extra if a != "--no-sigma"]
    code, _, stderr = run_cli(args, capsys)
    assert code == 2
    assert "Traceback" not in stderr
    assert stderr.startswith("error:")
    for fragment in expected:
        assert fragment in stderr, (fragment, stderr)
    assert not out.exists()  # validated before tracking: nothing written


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, stderr = run_cli(
        ["track", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.parquet")], capsys
    )
    assert code == 2 and "file not found" in stderr
