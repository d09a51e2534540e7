"""The exercise runtime end to end: determinism, recordings, metrics.json, the CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pyarrow.parquet as pq
import pytest

from kizuna.runtime.exercise import exercise_keys, load_policies, run_exercise
from kizuna.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "small-bilateral.toml"
RELEASE_ALL = 'nation = "{n}"\n[[rule]]\nname = "all"\nto = "all"\n'
FILES = [
    "truth.parquet",
    "recording/envelopes.parquet",
    "recording/plots.parquet",
]


def _policy_dir(tmp: Path) -> Path:
    d = tmp / "policies"
    d.mkdir(parents=True, exist_ok=True)
    for n in ("USA", "JPN"):
        (d / f"{n}.toml").write_text(RELEASE_ALL.format(n=n))
    return d


def _run(tmp: Path, name: str, duration: float = 150.0) -> Path:
    scenario = msgspec.structs.replace(load_scenario(SCENARIO), duration_s=duration)
    out = tmp / name
    run_exercise(
        scenario, out, load_policies(scenario, _policy_dir(tmp)), exercise_keys(scenario, None)
    )
    return out


def _run_in_fresh_process(tmp: Path, name: str, hash_seed: str) -> Path:
    """One exercise in its own interpreter, as a user runs it (each run starts from a fresh
    process; a different PYTHONHASHSEED shows no output depends on string hashing)."""
    code = (
        "import sys; from pathlib import Path; sys.path.insert(0, sys.argv[1]); "
        "import test_exercise as t; t._run(Path(sys.argv[2]), sys.argv[3])"
    )
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    subprocess.run(
        [sys.executable, "-c", code, str(Path(__file__).parent), str(tmp), name],
        check=True,
        env=env,
        timeout=300,
    )
    return tmp / name


def _first_difference(a: Path, b: Path) -> str:
    """Name the first column and row where two Parquet files differ (for the failure message)."""
    ta, tb = pq.read_table(a), pq.read_table(b)
    if ta.num_rows != tb.num_rows:
        return f"{a.name}: {ta.num_rows} rows vs {tb.num_rows}"
    for name in ta.column_names:
        xa, xb = ta.column(name).to_pylist(), tb.column(name).to_pylist()
        for row, (u, v) in enumerate(zip(xa, xb, strict=True)):
            if u != v:
                return f"{a.name}: column {name} row {row}: {u!r} vs {v!r}"
    return f"{a.name}: same values, different bytes"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("exercise")
    _policy_dir(tmp)
    return _run_in_fresh_process(tmp, "a", "1"), _run_in_fresh_process(tmp, "b", "2")


def test_same_scenario_and_seed_give_identical_files(two_runs: tuple[Path, Path]) -> None:
    a, b = two_runs
    for f in FILES:
        assert (a / f).read_bytes() == (b / f).read_bytes(), _first_difference(a / f, b / f)


def test_same_scenario_and_seed_give_identical_pictures_and_metrics(
    two_runs: tuple[Path, Path],
) -> None:
    a, b = two_runs
    f = "recording/pictures.parquet"
    assert (a / f).read_bytes() == (b / f).read_bytes(), _first_difference(a / f, b / f)
    ma = json.loads((a / "metrics.json").read_text())
    mb = json.loads((b / "metrics.json").read_text())
    ma.pop("wall_seconds")
    mb.pop("wall_seconds")
    assert ma == mb


def test_recordings_have_the_documented_columns_and_sane_content(
    two_runs: tuple[Path, Path],
) -> None:
    out = two_runs[0]
    env = pq.read_table(out / "recording" / "envelopes.parquet")
    assert env.column_names == [
        "time_sent", "time_delivered", "sender", "receiver", "kind", "track_number",
        "category", "label", "outcome", "bytes",
    ]  # fmt: skip
    outcome = env.column("outcome").to_pylist()
    assert set(outcome) <= {"delivered", "lost"}
    sent = np.asarray(env.column("time_sent"))
    got = np.asarray(env.column("time_delivered"))
    delivered = np.asarray([o == "delivered" for o in outcome])
    delay = got[delivered] - sent[delivered]
    assert np.all(delay > 0.0) and np.all(delay < 1.0)  # 40 ms ± 5 ms link + queueing
    metrics = json.loads((out / "metrics.json").read_text())
    assert sum(env.column("bytes").to_pylist()) == metrics["network"]["USA-JPN"]["bytes"]
    assert metrics["releasability"] == {"violations": 0, "withheld": 0, "rejected": 0}

    pic = pq.read_table(out / "recording" / "pictures.parquet")
    assert pic.column_names[:3] == ["time", "nation", "track_number"]
    assert "source_time" in pic.column_names and "pos_sigma_m" in pic.column_names
    times = np.asarray(pic.column("time"))
    source = np.asarray(pic.column("source_time"))
    assert np.all(source <= times + 1e-9)
    assert set(pic.column("nation").to_pylist()) == {"USA", "JPN"}
    truth_times = np.unique(np.asarray(pq.read_table(out / "truth.parquet").column("time")))
    # Truth is sampled at the reporting ticks (every 2 s), like the pictures.
    np.testing.assert_allclose(truth_times, 2.0 * np.arange(1, truth_times.size + 1))
    assert set(np.unique(times)) <= set(truth_times.tolist())


def test_pictures_match_truth_and_share_numbers(two_runs: tuple[Path, Path]) -> None:
    """Every picture row is near a true object, and the two nations use the same number
    for an object both hold (the numbering converges)."""
    from scipy.spatial import cKDTree

    out = two_runs[0]
    pic = pq.read_table(out / "recording" / "pictures.parquet")
    truth = pq.read_table(out / "truth.parquet")
    p = {c: np.asarray(pic.column(c)) for c in ("time", "x", "y", "z", "track_number")}
    nation = np.asarray(pic.column("nation").to_pylist())
    q = {c: np.asarray(truth.column(c)) for c in ("time", "x", "y", "z", "object_id")}
    near = same = both = 0
    for t in np.unique(p["time"]):
        tm = q["time"] == t
        tree = cKDTree(np.stack([q[c][tm] for c in "xyz"], 1))
        held: dict[str, dict[int, int]] = {}
        for code in ("USA", "JPN"):
            m = (p["time"] == t) & (nation == code)
            dist, idx = tree.query(np.stack([p[c][m] for c in "xyz"], 1))
            ok = dist < 5000.0
            near += int(ok.sum())
            objects = q["object_id"][tm][idx[ok]].tolist()
            held[code] = dict(zip(objects, p["track_number"][m][ok].tolist(), strict=True))
        for obj in set(held["USA"]) & set(held["JPN"]):
            both += 1
            same += held["USA"][obj] == held["JPN"][obj]
    assert near >= 0.95 * len(p["time"])
    assert both > 100 and same >= 0.95 * both


def test_cli_runs_and_reports_bad_input(tmp_path: Path) -> None:
    # A shorter copy of small-bilateral (long enough for every threat to start).
    full = load_scenario(SCENARIO)
    starts = [t.start_time_s for t in full.threat] + [t.launch_time_s or 0.0 for t in full.threat]
    duration = max(starts) + 60.0
    scenario = tmp_path / "short.toml"
    scenario.write_text(
        re.sub(r"^duration_s = .*$", f"duration_s = {duration}", SCENARIO.read_text(), flags=re.M)
    )
    env = dict(os.environ)
    run = [sys.executable, "-c", "from kizuna.cli import main; main()", "exercise", str(scenario)]
    ok = subprocess.run(
        [*run, "--out", str(tmp_path / "o"), "--policies", str(_policy_dir(tmp_path))],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    assert "violations" in ok.stdout
    metrics = json.loads((tmp_path / "o" / "metrics.json").read_text())
    assert metrics["sim_seconds"] == duration and "USA-JPN" in metrics["network"]
    bad = subprocess.run(
        [*run, "--out", str(tmp_path / "p"), "--policies", str(tmp_path / "nowhere")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert bad.returncode == 2
    assert "policy directory not found" in bad.stderr and "Traceback" not in bad.stderr


def test_keys_from_a_directory_and_bad_policy_files(tmp_path: Path) -> None:
    from kizuna.errors import InputError
    from kizuna.messages import ReportBatch
    from kizuna.security.keys import init_keys
    from kizuna.security.signing import Opened, Signer, Verifier

    scenario = load_scenario(SCENARIO)
    init_keys(["USA", "JPN"], tmp_path / "keys")
    keys = exercise_keys(scenario, tmp_path / "keys")
    data = Signer("USA", keys["USA"].private_key).seal_bytes(
        ReportBatch(node="USA", time=1.0), 1.0, "JPN"
    )
    assert isinstance(Verifier(keys["JPN"].keyring, me="JPN").open(data, 1.0), Opened)
    with pytest.raises(InputError, match="keyring"):
        exercise_keys(scenario, tmp_path / "nowhere")
    policies = _policy_dir(tmp_path)
    (policies / "JPN.toml").unlink()
    with pytest.raises(InputError, match="no policy file for nation JPN"):
        load_policies(scenario, policies)
    (policies / "JPN.toml").write_text('nation = "USA"\n[[rule]]\nto = "all"\n')
    with pytest.raises(InputError, match="wrong nation"):
        load_policies(scenario, policies)


def test_a_lone_nation_needs_no_policy_files(tmp_path: Path) -> None:
    from kizuna.runtime.exercise import run_command

    result = run_command(ROOT / "scenarios" / "single-radar.toml", tmp_path, show_progress=False)
    assert result.messages == 0 and result.picture_rows > 0
    assert (tmp_path / "recording" / "pictures.parquet").exists()
