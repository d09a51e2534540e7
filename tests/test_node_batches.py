"""A node splits a reporting interval that does not fit one envelope into several signed
envelopes, each within the size bound (issue #8), and the ally takes them all in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kizuna.geo import geodetic_to_ecef
from kizuna.messages import (
    DEFAULT_MAX_ENVELOPE_BYTES,
    ReportBatch,
    decode_envelope,
    decode_payload,
    envelope_overhead_bound,
)
from kizuna.node import Node, NodeConfig
from kizuna.runtime.exercise import exercise_keys, load_policies
from kizuna.scenario import load_scenario
from kizuna.track import TrackTable

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "small-bilateral.toml"
RELEASE_ALL = 'nation = "{n}"\n[[rule]]\nname = "all"\nto = "all"\n'


class _SyntheticTracks:
    """Stands in for the node's tracker: ``n`` confirmed aircraft tracks on a grid, seen by
    USA's first sensor (so the node holds, numbers and reports all of them)."""

    dropped_late = 0

    def __init__(self, n: int, sensor_index: int) -> None:
        side = int(np.ceil(np.sqrt(n)))
        k = np.arange(n)
        lat = np.radians(30.0 + 4.0 * (k // side) / side)
        lon = np.radians(140.0 + 4.0 * (k % side) / side)
        position = geodetic_to_ecef(lat, lon, np.full(n, 9000.0))
        self.state = np.hstack([position, np.tile([150.0, -80.0, 0.0], (n, 1))])
        cov = np.diag([200.0**2] * 3 + [20.0**2] * 3)
        self.covariance = np.broadcast_to(cov, (n, 6, 6)).copy()
        self.n = n
        self.sensor_bit = np.uint64(1) << np.uint64(sensor_index)

    def table(self, t: float, confirmed_only: bool = False) -> TrackTable:
        n = self.n  # all confirmed: the same table either way
        return TrackTable(
            time=t,
            track_id=np.arange(1, n + 1, dtype=np.int64),
            state=self.state.copy(),
            covariance=self.covariance.copy(),
            quality=np.full(n, 9, np.int8),
            confirmed=np.ones(n, bool),
            last_update=np.full(n, t - 0.5),
            sensor_mask=np.full(n, self.sensor_bit, np.uint64),
            hits=np.full(n, 10, np.int32),
        )


def _nodes(tmp: Path, n_tracks: int, max_bytes: int) -> tuple[Node, Node]:
    scenario = load_scenario(SCENARIO)
    for code in ("USA", "JPN"):
        (tmp / f"{code}.toml").write_text(RELEASE_ALL.format(n=code))
    policies = load_policies(scenario, tmp)
    keys = exercise_keys(scenario, None)
    config = NodeConfig(max_envelope_bytes=max_bytes)
    usa = Node("USA", scenario, policies, keys["USA"], config)
    jpn = Node("JPN", scenario, policies, keys["JPN"], config)
    first_usa_sensor = next(i for i, s in enumerate(scenario.sensor) if s.nation == "USA")
    usa.tracker = _SyntheticTracks(n_tracks, first_usa_sensor)  # type: ignore[assignment]
    return usa, jpn


def _check_split(usa: Node, jpn: Node, n_tracks: int, bound: int) -> int:
    """Tick USA, deliver every envelope to JPN; returns the number of envelopes."""
    out = [o for o in usa.on_tick(10.0) if o.recipient == "JPN"]
    assert all(o.data for o in out)
    numbers: list[int] = []
    for o in out:
        assert len(o.data) <= bound
        batch = decode_payload(decode_envelope(o.data, bound))
        assert isinstance(batch, ReportBatch)
        # Each Outgoing's recorder items are exactly its envelope's reports, in order.
        assert [m.track_number for m in o.items] == [r.track_number for r in batch.reports]
        numbers += [r.track_number for r in batch.reports]
    assert len(numbers) == len(set(numbers)) == n_tracks
    for o in out:
        jpn.on_envelope(10.1, o.data)
    assert jpn.counts("rejected") == {} and jpn.counts("violation") == {}
    assert jpn.counters["accepted:track_report"] == n_tracks
    picture = jpn.picture(10.1)
    assert sorted(picture.track_number.tolist()) == sorted(numbers)
    return len(out)


def test_5000_tracks_go_in_several_envelopes_within_the_default_bound(tmp_path: Path) -> None:
    usa, jpn = _nodes(tmp_path, 5000, DEFAULT_MAX_ENVELOPE_BYTES)
    envelopes = _check_split(usa, jpn, 5000, DEFAULT_MAX_ENVELOPE_BYTES)
    assert envelopes >= 2
    assert usa.counters["sent:split_envelopes"] == envelopes


@pytest.mark.parametrize("bound", [4_000, 20_000, 65_000])
def test_tight_bounds_split_by_encoded_size(tmp_path: Path, bound: int) -> None:
    usa, jpn = _nodes(tmp_path, 300, bound)
    envelopes = _check_split(usa, jpn, 300, bound)
    # Packed by size, not by a guessed count: no two neighbouring envelopes would have fitted
    # in one, so there are few of them (reports here are ~300 bytes each).
    assert envelopes <= 300 * 330 // (bound - 600) + 2


def test_a_batch_that_fits_stays_one_envelope(tmp_path: Path) -> None:
    usa, jpn = _nodes(tmp_path, 50, DEFAULT_MAX_ENVELOPE_BYTES)
    assert _check_split(usa, jpn, 50, DEFAULT_MAX_ENVELOPE_BYTES) == 1
    assert usa.counters["sent:split_envelopes"] == 0


def test_envelope_overhead_bound_covers_the_widest_envelope() -> None:
    from kizuna.messages import Envelope, encode_envelope

    for payload_len in (0, 200, 70_000, 2_000_000):
        env = Envelope(
            version=1,
            sender="USA",
            recipient="JPN",
            sequence=2**64 - 1,
            time_sent=1.0,
            kind="report_batch",
            payload=bytes(payload_len),
            signature=bytes(64),
        )
        bound = envelope_overhead_bound("USA", "JPN", "report_batch") + payload_len
        assert len(encode_envelope(env)) <= bound
