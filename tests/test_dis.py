"""DIS gateway: the sample PDUs decode to the right entity and position; ours decode in opendis."""

from __future__ import annotations

import json
import struct
from datetime import datetime
from pathlib import Path

import numpy as np
import pymap3d
import pytest
from opendis.PduFactory import createPdu
from typer.testing import CliRunner

from kizuna.errors import InputError
from kizuna.gateways import dis
from kizuna.gateways.picture import from_columns

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
JAVA = FIXTURES / "open-dis_open-dis-java"
PYTHON = FIXTURES / "open-dis_open-dis-python"
needs_fixtures = pytest.mark.skipif(
    not PYTHON.is_dir(), reason=f"DIS sample files not found at {FIXTURES} (../shared/fixtures)"
)

ESPDUS = [
    PYTHON / "EntityStatePdu-26.raw",
    JAVA / "dis7_EntityStatePdu-articulated_parts.raw",
    JAVA / "dis_EntityStatePdu-vrf-articulated-parameters.raw",
]


def by_hand(raw: bytes) -> tuple[tuple[int, int, int], tuple[float, float, float]]:
    """Entity ID and location read straight from the IEEE 1278.1 layout (independent of opendis):
    entity ID at bytes 12..17 (3 × uint16), location at 48..71 (3 × float64), big-endian."""
    ident = struct.unpack_from(">HHH", raw, 12)
    loc = struct.unpack_from(">ddd", raw, 48)
    return ident, loc


@needs_fixtures
@pytest.mark.parametrize("path", ESPDUS, ids=lambda p: p.name)
def test_sample_entity_states_decode_to_the_right_entity_and_position(path: Path) -> None:
    raw = path.read_bytes()
    decoded = dis.decode_file(path)
    assert decoded.rejections == []
    (e,) = decoded.entities
    ident, loc = by_hand(raw)
    assert (e.site, e.application, e.entity) == ident
    assert (e.x, e.y, e.z) == loc
    # On the Earth's surface, within a few km (they are ground vehicles).
    _, _, alt = pymap3d.ecef2geodetic(e.x, e.y, e.z)
    assert -500 < alt < 5000


@needs_fixtures
def test_known_values_of_the_open_dis_python_sample() -> None:
    (e,) = dis.decode_file(PYTHON / "EntityStatePdu-26.raw").entities
    assert (e.site, e.application, e.entity) == (42, 4, 26)
    assert e.protocol_version == 6
    assert e.marking == "26"
    assert (e.kind, e.domain, e.country) == (1, 1, 39)
    lat, lon, _ = pymap3d.ecef2geodetic(e.x, e.y, e.z)
    assert lat == pytest.approx(42.9, abs=0.2) and lon == pytest.approx(20.87, abs=0.2)


@needs_fixtures
def test_fire_and_detonation_are_counted_not_used() -> None:
    for name in (
        "dis7_FirePdu_MunitionDescriptor.raw",
        "dis7_DetonationPdu_Descriptors_VariableParameters.raw",
    ):
        decoded = dis.decode_file(JAVA / name)
        assert decoded.entities == []
        assert decoded.rejection_counts() == {"PDU type not used": 1}


@needs_fixtures
def test_bundled_pdus_in_one_datagram() -> None:
    data = (
        b"".join(p.read_bytes() for p in ESPDUS)
        + (JAVA / "dis7_FirePdu_MunitionDescriptor.raw").read_bytes()
    )
    decoded = dis.decode_datagram(data, "bundle")
    assert [e.entity for e in decoded.entities] == [26, 1, 4]
    assert decoded.rejections[0].offset == sum(len(p.read_bytes()) for p in ESPDUS)


def test_malformed_pdus_are_rejections() -> None:
    good = dis.encode_entity_states(_picture()).pdus[0]
    cases = {
        b"\x07\x01": "truncated PDU header",
        bytes([9]) + good[1:]: "unsupported protocol version",
        good[:8] + (9999).to_bytes(2, "big") + good[10:]: "PDU length invalid",
        good[:100]: "PDU length invalid",
        good[:8] + (100).to_bytes(2, "big") + good[10:100]: "Entity State PDU too short",
        good[:19] + b"\x05" + good[20:]: "Entity State PDU too short",
        good[:48] + struct.pack(">d", float("nan")) + good[56:]: "non-finite position or velocity",
    }
    for data, reason in cases.items():
        decoded = dis.decode_datagram(data, "t")
        assert decoded.entities == []
        assert [r.reason.split(":")[0] for r in decoded.rejections] == [reason], data


def _picture() -> object:
    lat = np.array([35.0, 36.0, 20.0])
    lon = np.array([139.0, 130.0, 150.0])
    alt = np.array([9000.0, 200.0, 120_000.0])
    x, y, z = pymap3d.geodetic2ecef(lat, lon, alt)
    return from_columns(
        "USA",
        {
            "time": np.full(3, 90.5),
            "track_number": np.array([10001, 123456, 30003]),
            "x": x, "y": y, "z": z,
            "vx": np.array([100.0, 0.0, -2000.0]), "vy": np.array([50.0, 0.0, 1000.0]),
            "vz": np.array([-10.0, 0.0, 500.0]),
            "category": ["air", "cruise", "ballistic"],
            "identity": ["friend", "hostile", "hostile"],
        },
        datetime.fromisoformat("2026-05-01T10:15:00+00:00"),
    )  # fmt: skip


def test_our_entity_states_decode_with_opendis() -> None:
    pic = _picture()
    enc = dis.encode_entity_states(pic, site=7, application=8, exercise_id=3)  # type: ignore[arg-type]
    assert enc.skipped == {"track number outside the 16-bit entity number": 1}
    assert len(enc.pdus) == 2
    c = pic.columns  # type: ignore[attr-defined]
    for raw, row in zip(enc.pdus, [0, 2], strict=True):
        p = createPdu(raw)
        assert type(p).__name__ == "EntityStatePdu"
        assert p.protocolVersion == 7 and p.exerciseID == 3 and p.length == len(raw) == 144
        assert (p.entityID.siteID, p.entityID.applicationID) == (7, 8)
        assert p.entityID.entityID == int(c["track_number"][row])
        assert p.entityLocation.x == c["x"][row] and p.entityLocation.z == c["z"][row]
        assert p.entityLinearVelocity.x == pytest.approx(c["vx"][row])
        assert p.marking.charactersString() == f"KZ{int(c['track_number'][row])}"
        assert p.deadReckoningParameters.deadReckoningAlgorithm == 2
        # 15 min 90.5 s past the hour, absolute (lowest bit set).
        assert p.timestamp & 1 == 1
        assert (p.timestamp >> 1) * 3600 / 2**31 == pytest.approx(15 * 60 + 90.5, abs=1e-5)
    first, second = (createPdu(r) for r in enc.pdus)
    assert (first.forceId, first.entityType.entityKind, first.entityType.domain) == (1, 1, 2)
    assert (second.forceId, second.entityType.entityKind, second.entityType.category) == (2, 2, 2)


def test_udp_round_trip() -> None:
    enc = dis.encode_entity_states(_picture())  # type: ignore[arg-type]
    with dis.DisReceiver() as rx:
        assert dis.send_pdus(enc.pdus, "127.0.0.1", rx.port) == 2
        decoded = rx.receive(count=2, timeout_s=5.0)
    assert [e.entity for e in decoded.entities] == [10001, 30003]
    assert decoded.rejections == []


@needs_fixtures
def test_cli_decode() -> None:
    from kizuna.cli import app

    res = CliRunner().invoke(app, ["dis", "decode", str(PYTHON / "EntityStatePdu-26.raw")])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout.splitlines()[0])
    assert (row["site"], row["application"], row["entity"]) == (42, 4, 26)
    res = CliRunner().invoke(
        app, ["dis", "decode", str(JAVA / "dis7_FirePdu_MunitionDescriptor.raw")]
    )
    assert res.exit_code == 2
    res = CliRunner().invoke(
        app,
        ["dis", "send", "--recording", "/nonexistent", "--nation", "USA", "--to", "127.0.0.1:3000"],
    )
    assert isinstance(res.exception, InputError)


def test_entity_states_as_plots_from_a_site() -> None:
    from kizuna.gateways.asterix import Site

    enc = dis.encode_entity_states(_picture())  # type: ignore[arg-type]
    entities = [e for raw in enc.pdus for e in dis.decode_datagram(raw).entities]
    site = Site(0, 0, 2, 35.5, 138.5, 50.0, sigma_range_m=30.0)
    plots = dis.to_plot_batch(entities, site, 12.0)
    assert len(plots) == 2 and list(plots.truth_id) == [10001, 30003]
    assert np.all(plots.sensor_index == 2) and np.all(plots.time == 12.0)
    # Back from (range, azimuth, elevation) at the site to the entity's ECEF position.
    x, y, z = pymap3d.aer2ecef(
        np.degrees(plots.azimuth_rad), np.degrees(plots.elevation_rad), plots.range_m,
        35.5, 138.5, 50.0,
    )  # fmt: skip
    truth = np.array([[e.x, e.y, e.z] for e in entities])
    assert np.allclose(np.stack([x, y, z], axis=1), truth, atol=1e-3)
    assert len(dis.to_plot_batch([], site, 0.0)) == 0
