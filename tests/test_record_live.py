"""The recorder's live journal and the COP following a run as it goes (kizuna cop --live).

An exercise runs in a subprocess (``kizuna exercise``, as a user runs it) while the COP API, with
its live poller, is asked for its time range: the range must grow during the run and end equal
to the final recording. A second run is killed mid-way: what it had journaled must read back
intact — exactly the first reporting times of the complete run.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from kizuna.cop import server as cop_server
from kizuna.cop.picture_store import PictureStore
from kizuna.record.recorder import (
    JOURNAL_DIR,
    PICTURES_JOURNAL,
    PICTURES_SCHEMA,
    StreamJournal,
    read_journal,
)

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "small-bilateral.toml"
KIZUNA = str(Path(sys.executable).with_name("kizuna"))


def _batch(t: float, n: int) -> pa.Table:
    columns = {f.name: pa.nulls(n, f.type) for f in PICTURES_SCHEMA}
    columns["time"] = pa.array([t] * n, pa.float64())
    columns["nation"] = pa.array(["JPN"] * n)
    columns["track_number"] = pa.array(range(n), pa.int64())
    return pa.Table.from_arrays([columns[f.name] for f in PICTURES_SCHEMA], schema=PICTURES_SCHEMA)


def test_journal_reads_back_every_complete_batch_of_a_cut_off_file(tmp_path: Path) -> None:
    path = tmp_path / "pictures.arrows"
    assert read_journal(path) is None  # not there yet
    journal = StreamJournal(path, PICTURES_SCHEMA)
    empty = read_journal(path)  # the schema may wait for the first batch
    assert empty is None or (empty.num_rows == 0 and empty.schema == PICTURES_SCHEMA)
    sizes = []
    for k in range(3):
        journal.append(_batch(2.0 * (k + 1), 5 + k))
        sizes.append(path.stat().st_size)  # on disk at once: the file is unbuffered
    whole = read_journal(path)
    assert (
        whole is not None and whole.column("time").to_pylist() == [2.0] * 5 + [4.0] * 6 + [6.0] * 7
    )
    # Cut anywhere inside the third batch (as a kill mid-write would): the first two remain.
    data = path.read_bytes()
    for cut in (sizes[1] + 1, (sizes[1] + sizes[2]) // 2, sizes[2] - 1):
        partial = tmp_path / f"cut{cut}.arrows"
        partial.write_bytes(data[:cut])
        table = read_journal(partial)
        assert table is not None
        assert table.column("time").to_pylist() == [2.0] * 5 + [4.0] * 6
    journal.close()


def _start_exercise(out: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    return subprocess.Popen(
        [KIZUNA, "exercise", str(SCENARIO), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=ROOT,
    )


@pytest.fixture(scope="module")
def followed_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, list[int]]]:
    """A complete exercise, followed by the live COP API while it ran: (out dir, the number of
    reporting times /api/times returned at each poll while the process was alive)."""
    out = tmp_path_factory.mktemp("followed") / "exercise"
    out.mkdir()
    saved = cop_server.LIVE_POLL_S
    cop_server.LIVE_POLL_S = 0.1  # the exercise runs ~70x real time: look often
    seen: list[int] = []
    try:
        with TestClient(cop_server.create_app(PictureStore(out), live=True)) as client:
            process = _start_exercise(out)
            try:
                while process.poll() is None:
                    seen.append(len(client.get("/api/times").json()["times"]))
                    time.sleep(0.1)
            finally:
                if process.poll() is None:
                    process.kill()
                _, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr.decode()[-2000:]
            time.sleep(5 * cop_server.LIVE_POLL_S)  # the poller picks up the final files
            final = client.get("/api/times").json()["times"]
            seen.append(len(final))
    finally:
        cop_server.LIVE_POLL_S = saved
    yield out, seen


def test_live_cop_shows_a_growing_time_range_while_the_exercise_runs(
    followed_run: tuple[Path, list[int]],
) -> None:
    out, seen = followed_run
    final_times = sorted(
        set(pq.read_table(out / "recording" / "pictures.parquet")["time"].to_pylist())
    )
    during = [n for n in seen[:-1] if 0 < n < len(final_times)]
    assert len(set(during)) >= 2, f"no growth seen while running: {seen}"
    assert seen == sorted(seen), "the time range shrank"
    assert seen[-1] == len(final_times)
    # A clean finish leaves the final Parquet files only: the journal duplicated them.
    assert not (out / "recording" / JOURNAL_DIR).exists()
    assert (out / "recording" / "scenario.json").is_file()


def test_a_run_killed_midway_reads_back_intact(
    followed_run: tuple[Path, list[int]], tmp_path: Path
) -> None:
    complete, _ = followed_run
    out = tmp_path / "killed"
    journal = out / "recording" / JOURNAL_DIR / PICTURES_JOURNAL
    process = _start_exercise(out)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            table = read_journal(journal)
            if table is not None and len(set(table["time"].to_pylist())) >= 20:
                break
            time.sleep(0.05)
        assert process.poll() is None, "the exercise finished before it could be killed"
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=60)
    assert not (out / "recording" / "pictures.parquet").exists()
    store = PictureStore(out)  # reads the journal: the run never finished
    assert len(store.times) >= 20
    assert store.scenario is not None  # from recording/scenario.json: no metrics.json yet
    assert [n["code"] for n in store.nations()] == ["USA", "JPN"]
    # Exactly the complete run's rows up to the last journaled time (deterministic exercise).
    last = float(store.times[-1])
    whole = pq.read_table(complete / "recording" / "pictures.parquet")
    prefix = whole.filter(pa.compute.less_equal(whole["time"], last))
    killed = read_journal(journal)
    assert killed is not None
    assert killed.equals(prefix.cast(killed.schema)), "journaled rows differ from the full run"
    # And the COP serves it.
    client = TestClient(cop_server.create_app(store))
    picture = client.get("/api/picture", params={"nation": "JPN", "t": last}).json()
    assert picture["time"] == last and len(picture["tracks"]) > 0
    shutil.rmtree(out)


def _picture(t: float, nation: str, n: int) -> object:
    import numpy as np

    from kizuna.fuse.fuser import Picture

    return Picture(
        time=t,
        nation=nation,
        track_number=np.arange(n, dtype=np.int64),
        state=np.full((n, 6), 7.0e6),
        covariance=np.broadcast_to(np.eye(6) * 100.0, (n, 6, 6)).copy(),
        quality=np.full(n, 5, np.int64),
        category=["air"] * n,
        identity=["unknown"] * n,
        contributors=[("S1",)] * n,
        nations=[(nation,)] * n,
        label=[f"UNCLASSIFIED REL TO {nation}"] * n,  # type: ignore[list-item]
        source_time=np.full(n, t - 1.0),
    )


def _journaled_times(out: Path) -> list[float]:
    table = read_journal(out / "recording" / JOURNAL_DIR / PICTURES_JOURNAL)
    return [] if table is None else sorted(set(table["time"].to_pylist()))


def test_a_reporting_time_is_journaled_once_every_recorded_nation_reported_it(
    tmp_path: Path,
) -> None:
    from kizuna.record.recorder import Recorder
    from kizuna.scenario import load_scenario

    scenario = load_scenario(SCENARIO)  # nations USA and JPN
    exercise = Recorder(tmp_path / "exercise", scenario)
    exercise.picture(_picture(2.0, "USA", 3))  # type: ignore[arg-type]
    assert _journaled_times(tmp_path / "exercise") == []  # JPN has not reported 2.0 yet
    exercise.picture(_picture(2.0, "JPN", 0))  # type: ignore[arg-type]  # empty still counts
    assert _journaled_times(tmp_path / "exercise") == [2.0]
    exercise.picture(_picture(4.0, "USA", 2))  # type: ignore[arg-type]
    exercise.picture(_picture(6.0, "USA", 2))  # type: ignore[arg-type]  # JPN silent at 4.0
    assert _journaled_times(tmp_path / "exercise") == [2.0, 4.0]
    # A live node records its own nation only: each of its pictures is journaled at once.
    node = Recorder(tmp_path / "nodes" / "JPN", scenario, nations=["JPN"])
    node.picture(_picture(2.0, "JPN", 4))  # type: ignore[arg-type]
    assert _journaled_times(tmp_path / "nodes" / "JPN") == [2.0]
    store = PictureStore(tmp_path / "nodes" / "JPN")  # what `kizuna cop --live DIR/nodes/JPN` reads
    assert (
        store.times.tolist() == [2.0] and len(store.tracks(store.picture_rows("JPN", 2.0)[1])) == 4
    )
    assert store.nation_codes() == ["USA", "JPN"]  # from the recorded scenario.json
    node.close(pa.table({"time": pa.array([], pa.float64())}))
    assert not (tmp_path / "nodes" / "JPN" / "recording" / JOURNAL_DIR).exists()
    assert PictureStore(tmp_path / "nodes" / "JPN").times.tolist() == [2.0]  # the final Parquet


def test_a_new_run_into_an_old_directory_is_followed_not_the_old_run(tmp_path: Path) -> None:
    from kizuna.cop.synthetic import write_synthetic_recording
    from kizuna.record.recorder import Recorder
    from kizuna.scenario import load_scenario

    write_synthetic_recording(tmp_path, SCENARIO, 4, (10.0, 20.0, 30.0))  # the old run
    assert PictureStore(tmp_path).times.tolist() == [10.0, 20.0, 30.0]
    recorder = Recorder(tmp_path, load_scenario(SCENARIO), nations=["JPN"])
    assert not (tmp_path / "recording" / "pictures.parquet").exists()
    assert not (tmp_path / "recording" / "warnings.parquet").exists()
    recorder.picture(_picture(2.0, "JPN", 3))  # type: ignore[arg-type]
    assert PictureStore(tmp_path).times.tolist() == [2.0]  # the new run, from its journal
