"""Releasability policy: loading (with clear errors), decisions, batch API, receive checks."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import pytest

from kizuna.errors import InputError
from kizuna.geo import geodetic_to_ecef
from kizuna.messages import Label, TrackReport, covariance_matrix, covariance_upper
from kizuna.security.labels import NationBits, classification_rank, combine, restrict
from kizuna.security.policy import (
    REASON_DEFAULT_DENY,
    REASON_LABEL,
    Area,
    Degradation,
    Policies,
    Policy,
)

JPN_POLICY = """\
nation = "JPN"
description = "test policy"

[area.home]
polygon = [[24.0, 122.0], [46.0, 122.0], [46.0, 150.0], [24.0, 150.0]]

[[rule]]
name = "usa-all"
to = ["USA"]

[[rule]]
name = "aus-no-sado"
to = ["AUS"]
action = "deny"
any_of_sensors = ["J-SADO"]

[[rule]]
name = "aus-air-home"
to = ["AUS"]
categories = ["air"]
area = "home"

[[rule]]
name = "aus-air-away"
to = ["AUS"]
categories = ["air"]
area = "home"
where = "outside"
degrade = { position_m = 1000, min_position_sigma_m = 2000, drop_velocity = true }
"""

AUS_POLICY = """\
nation = "AUS"
[[rule]]
name = "usa"
to = ["USA"]
[[rule]]
name = "jpn-not-oth"
to = ["JPN"]
exclude_sensors = ["A-OTH"]
"""

ALL = ("AUS", "JPN", "USA")
JPN_SENSORS = ("J-SADO", "J-KYO")
EVERYONE = Label("UNCLASSIFIED", ALL)


def ecef(lat: float, lon: float, alt: float = 10_000.0) -> tuple[float, float, float]:
    x = geodetic_to_ecef(np.radians(lat), np.radians(lon), alt).ravel()
    return (float(x[0]), float(x[1]), float(x[2]))


TOKYO = ecef(35.0, 139.0)
GUAM = ecef(13.5, 144.8)


def report(
    pos: tuple[float, float, float] = TOKYO,
    sensors: tuple[str, ...] = ("J-KYO",),
    category: str = "air",
    label: Label = EVERYONE,
    node: str = "JPN",
) -> TrackReport:
    return TrackReport(
        track_number=20001,
        node=node,
        time=10.0,
        state=(*pos, 200.0, -50.0, 0.0),
        covariance=covariance_upper(np.diag([400.0, 400.0, 400.0, 25.0, 25.0, 25.0])),
        quality=9,
        category=category,  # type: ignore[arg-type]
        identity="unknown",
        sensors=sensors,
        nations=("JPN",),
        label=label,
    )


@pytest.fixture()
def jpn() -> Policy:
    return Policy.parse(JPN_POLICY, "JPN.toml", own_sensors=JPN_SENSORS)


# --- labels ------------------------------------------------------------------------------------


def test_combine_takes_highest_level_and_intersection() -> None:
    a = Label("UNCLASSIFIED", ("USA", "JPN", "AUS"))
    b = Label("RESTRICTED", ("USA", "JPN"))
    c = Label("UNCLASSIFIED", ("JPN", "AUS"))
    assert combine([a, b]) == Label("RESTRICTED", ("JPN", "USA"))
    assert combine([a, b, c]) == Label("RESTRICTED", ("JPN",))
    assert combine([a]) == a
    with pytest.raises(ValueError):
        combine([])
    assert restrict(a, ["USA", "GBR"]) == Label("UNCLASSIFIED", ("USA",))
    assert classification_rank("SECRET") > classification_rank("UNCLASSIFIED")
    with pytest.raises(ValueError):
        classification_rank("COSMIC")


def test_nation_bits_match_label_algebra() -> None:
    bits = NationBits(["USA", "JPN", "AUS"])
    a = Label("UNCLASSIFIED", ("USA", "JPN", "AUS"))
    b = Label("UNCLASSIFIED", ("USA", "JPN"))
    c = Label("UNCLASSIFIED", ("JPN", "AUS"))
    masks = np.array([[bits.of_label(a), bits.of_label(b), bits.of_label(c)]])
    combined = NationBits.combine_masks(masks)
    assert bits.to_label(int(combined[0])) == combine([a, b, c])
    assert bits.releasable(combined, "JPN").tolist() == [True]
    assert bits.releasable(combined, "USA").tolist() == [False]


# --- scalar decisions --------------------------------------------------------------------------


def test_first_matching_rule_decides(jpn: Policy) -> None:
    d = jpn.decide(report(), "USA")
    assert d.release and d.rule == "usa-all" and not d.degraded
    assert d.report is not None
    # AUS may see the full-precision track in the home area, so the label keeps AUS.
    assert d.report.label.releasable_to == ALL

    d = jpn.decide(report(), "AUS")
    assert d.release and d.reason == "released by rule 'aus-air-home'"

    d = jpn.decide(report(sensors=("J-SADO", "J-KYO")), "AUS")
    assert not d.release and d.reason == "denied by rule 'aus-no-sado'"

    d = jpn.decide(report(category="ballistic"), "AUS")
    assert not d.release and d.reason == REASON_DEFAULT_DENY

    d = jpn.decide(report(), "GBR")
    assert not d.release and d.reason == REASON_LABEL


def test_degraded_release_and_its_label(jpn: Policy) -> None:
    d = jpn.decide(report(pos=GUAM), "AUS")
    assert d.release and d.degraded and d.report is not None
    out = d.report
    assert all(abs(v / 1000.0 - round(v / 1000.0)) < 1e-9 for v in out.state[:3])
    assert out.state[3:] == (0.0, 0.0, 0.0)
    p = covariance_matrix(out.covariance)
    assert np.linalg.eigvalsh(p[:3, :3]).min() >= 2000.0**2 * (1 - 1e-9)
    # Full precision went to USA only, so the degraded report may go to USA too, not beyond.
    assert out.label.releasable_to == ALL
    full = jpn.decide(report(pos=GUAM), "USA")
    assert full.report is not None
    assert full.report.label.releasable_to == ("JPN", "USA")


def test_label_restricts_before_rules(jpn: Policy) -> None:
    r = report(label=Label("RESTRICTED", ("JPN", "USA")))
    assert not jpn.decide(r, "AUS").release
    d = jpn.decide(r, "USA")
    assert d.report is not None and d.report.label == Label("RESTRICTED", ("JPN", "USA"))


def test_degradation_is_idempotent() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(5, 6, 6))
    p = a @ a.transpose(0, 2, 1) * 1e4
    x = rng.normal(size=(5, 6)) * 1e6
    d = Degradation(position_m=500.0, min_position_sigma_m=300.0, drop_velocity=True)
    x1, p1 = d.apply(x, p)
    x2, p2 = d.apply(x1, p1)
    assert np.allclose(x1, x2) and np.allclose(p1, p2)
    assert np.all(np.linalg.eigvalsh(p1[:, :3, :3])[:, 0] >= 300.0**2 * (1 - 1e-9))


def test_degrading_a_full_36_value_covariance_keeps_its_layout() -> None:
    r = msgspec.structs.replace(report(), covariance=list(np.diag([4.0] * 6).ravel()))
    out = Degradation(min_position_sigma_m=10.0).apply_report(r)
    assert len(out.covariance) == 36
    assert np.allclose(np.diag(covariance_matrix(out.covariance)), [100.0] * 3 + [4.0] * 3)


def test_polygon_across_the_antimeridian() -> None:
    area = Area(
        "dateline", np.array([10.0, 30.0, 30.0, 10.0]), np.array([170.0, 170.0, -170.0, -170.0])
    )
    inside = area.contains(
        np.array([20.0, 20.0, 20.0, 40.0]), np.array([179.0, -175.0, 160.0, 179.0])
    )
    assert inside.tolist() == [True, True, False, False]


# --- batch API ---------------------------------------------------------------------------------


def test_batch_matches_scalar(jpn: Policy) -> None:
    compiled = jpn.compile(list(JPN_SENSORS), ["USA", "JPN", "AUS"])
    cases = [
        report(),
        report(pos=GUAM),
        report(sensors=("J-SADO",)),
        report(category="ballistic"),
        report(label=Label("UNCLASSIFIED", ("JPN", "USA"))),
    ]
    bits = NationBits(["USA", "JPN", "AUS"])
    masks = [sum(1 << JPN_SENSORS.index(s) for s in r.sensors) for r in cases]
    out = compiled.decide_all(
        [r.state[:3] for r in cases],
        [r.category for r in cases],
        masks,
        [bits.of_label(r.label) for r in cases],
    )
    assert set(out) == {"USA", "AUS"}
    for nation, batch in out.items():
        for i, r in enumerate(cases):
            d = jpn.decide(r, nation)
            assert batch.release[i] == d.release
            assert batch.reason(i) == d.reason
            assert (batch.degrade[i] >= 0) == d.degraded
            if d.report is not None:
                assert bits.to_label(int(batch.label_mask[i])).releasable_to == (
                    d.report.label.releasable_to
                )
    assert sum(out["AUS"].withheld_counts().values()) == int((~out["AUS"].release).sum())


# --- receive side -------------------------------------------------------------------------------


def test_receive_check_accepts_honest_and_rejects_the_rest(jpn: Policy) -> None:
    policies = Policies([jpn, Policy.parse(AUS_POLICY, "AUS.toml")])
    honest = jpn.decide(report(pos=GUAM), "AUS").report
    assert honest is not None
    assert policies.check_received(honest, "JPN", "AUS").ok

    full = msgspec.structs.replace(report(pos=GUAM), label=honest.label)
    assert policies.check_received(full, "JPN", "AUS").reason == "precision exceeds sender policy"
    assert policies.check_received(honest, "AUS", "AUS").reason.startswith("report node")
    usa_only = jpn.decide(report(pos=GUAM), "USA").report
    assert usa_only is not None
    assert policies.check_received(usa_only, "JPN", "AUS").reason == "label excludes me"
    sado = report(sensors=("J-SADO",))
    assert policies.check_received(sado, "JPN", "AUS").reason.startswith("sender policy forbids")
    usa_full = jpn.decide(report(pos=GUAM), "USA").report
    assert usa_full is not None
    widened = msgspec.structs.replace(usa_full, label=Label("UNCLASSIFIED", ALL))
    assert policies.check_received(widened, "JPN", "USA").reason == (
        "label wider than sender policy allows"
    )
    assert policies.check_received(report(node="GBR"), "GBR", "USA").reason == (
        "no policy for sender"
    )


# --- loading -----------------------------------------------------------------------------------

BROKEN: list[tuple[str, str, str]] = [
    ("syntax", 'nation = "JPN"\n[[rule]\nto = "all"\n', "not valid TOML"),
    ("missing nation", '[[rule]]\nto = "all"\n', "nation"),
    ("bad nation", 'nation = "Japan"\n', "nation: not a nation code (got 'Japan'"),
    ("bad level", 'nation = "JPN"\nclassification = "TOP"\n', "classification: unknown level"),
    ("unknown key", 'nation = "JPN"\ncolour = "red"\n', "colour"),
    ("rule without to", 'nation = "JPN"\n[[rule]]\nname = "x"\n', "rule[0]"),
    ("bad to", 'nation = "JPN"\n[[rule]]\nto = ["usa"]\n', "JPN.toml:3: rule[0].to[0]"),
    ("to not list", 'nation = "JPN"\n[[rule]]\nto = "USA"\n', "rule[0].to"),
    (
        "bad category",
        'nation = "JPN"\n[[rule]]\nto = "all"\n\n[[rule]]\nto = "all"\ncategories = ["sea"]\n',
        "JPN.toml:7: rule[1].categories[0]: unknown category (got 'sea'",
    ),
    ("bad action", 'nation = "JPN"\n[[rule]]\nto = "all"\naction = "maybe"\n', "rule[0].action"),
    ("unknown area", 'nation = "JPN"\n[[rule]]\nto = "all"\narea = "moon"\n', "unknown area"),
    ("bad where", 'nation = "JPN"\n[[rule]]\nto = "all"\nwhere = "near"\n', "rule[0].where"),
    (
        "negative degrade",
        'nation = "JPN"\n[[rule]]\nto = "all"\ndegrade = { position_m = -5 }\n',
        "rule[0].degrade.position_m: must be a finite number >= 0",
    ),
    (
        "deny degrade",
        'nation = "JPN"\n[[rule]]\nto = "all"\naction = "deny"\n'
        "degrade = { drop_velocity = true }\n",
        "a deny rule cannot degrade",
    ),
    (
        "unknown degrade key",
        'nation = "JPN"\n[[rule]]\nto = "all"\ndegrade = { blur = 3 }\n',
        "blur",
    ),
    (
        "area unknown key",
        'nation = "JPN"\n[area.home]\nshape = [[1, 2], [3, 4]]\n',
        "area.home: Object contains unknown field `shape`",
    ),
    ("short polygon", 'nation = "JPN"\n[area.a]\npolygon = [[1, 2], [3, 4]]\n', "at least 3"),
    (
        "bad latitude",
        'nation = "JPN"\n[area.a]\npolygon = [[1, 2], [95, 4], [5, 6]]\n',
        "JPN.toml:3: area.a.polygon[1]: latitude out of range",
    ),
    (
        "polygon type",
        'nation = "JPN"\n[area.a]\npolygon = "square"\n',
        "JPN.toml:3: area.a.polygon: Expected `array`, got `str`",
    ),
    (
        "duplicate rule",
        'nation = "JPN"\n[[rule]]\nname = "a"\nto = "all"\n[[rule]]\nname = "a"\nto = "all"\n',
        "duplicate rule name",
    ),
    (
        "foreign sensor",
        'nation = "JPN"\n[[rule]]\nto = "all"\nexclude_sensors = ["A-OTH"]\n',
        "rule[0].exclude_sensors[0]: not a sensor of JPN in the scenario (got 'A-OTH'",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_policy_files_are_reported_clearly(text: str, expected: str, tmp_path: Path) -> None:
    path = tmp_path / "JPN.toml"
    path.write_text(text)
    with pytest.raises(InputError) as info:
        Policy.load(path, own_sensors=JPN_SENSORS)
    message = str(info.value)
    assert expected in message
    assert str(path) in message


def test_missing_policy_file_and_empty_dir(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read policy file"):
        Policy.load(tmp_path / "nope.toml")
    with pytest.raises(InputError, match="no policy files"):
        Policies.load_dir(tmp_path)


def test_load_dir_and_duplicate_nation(tmp_path: Path) -> None:
    (tmp_path / "JPN.toml").write_text(JPN_POLICY)
    (tmp_path / "AUS.toml").write_text(AUS_POLICY)
    policies = Policies.load_dir(tmp_path, {"JPN": JPN_SENSORS, "AUS": ["A-OTH"], "USA": []})
    assert set(policies.by_nation) == {"JPN", "AUS"}
    (tmp_path / "ZZZ.toml").write_text(AUS_POLICY)
    with pytest.raises(InputError, match="does not match the file name"):
        Policies.load_dir(tmp_path)
    with pytest.raises(InputError, match="second policy for the same nation"):
        Policies([Policy.parse(AUS_POLICY), Policy.parse(AUS_POLICY)])


# --- the shipped pacific-shield policies -------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def shipped(scenario: str, directory: Path) -> Policies:
    from kizuna.scenario import load_scenario

    s = load_scenario(ROOT / "scenarios" / f"{scenario}.toml")
    own = {n.code: [x.id for x in s.sensor if x.nation == n.code] for n in s.nation}
    return Policies.load_dir(directory, own)


def test_shipped_policies_load_against_their_scenarios() -> None:
    policies = shipped("pacific-shield", ROOT / "scenarios" / "policies")
    assert set(policies.by_nation) == {"USA", "JPN", "AUS"}
    small = shipped("small-bilateral", ROOT / "scenarios" / "policies" / "small-bilateral")
    assert set(small.by_nation) == {"USA", "JPN"}


def test_shipped_pacific_shield_policies_behave_as_documented() -> None:
    p = shipped("pacific-shield", ROOT / "scenarios" / "policies")
    darwin = ecef(-12.0, 131.0)
    oth = report(darwin, ("AUS-OTH",), node="AUS")
    assert p["AUS"].decide(oth, "USA").release
    assert p["AUS"].decide(oth, "JPN").reason == "denied by rule 'jpn-no-oth'"
    assert p["AUS"].decide(report(darwin, ("AUS-DARWIN-1",), node="AUS"), "JPN").release
    sado = report(TOKYO, ("JPN-SADO",))
    assert p["JPN"].decide(sado, "USA").release
    assert not p["JPN"].decide(sado, "AUS").release
    near = p["JPN"].decide(report(TOKYO, ("JPN-KYOGAMISAKI",)), "AUS")
    far = p["JPN"].decide(report(GUAM, ("JPN-DDG-SOJ",)), "AUS")
    assert near.release and not near.degraded
    assert far.release and far.degraded
    ir = report(TOKYO, ("USA-GEO-IR-1", "USA-SHARIKI"), "ballistic", node="USA")
    assert p["USA"].decide(ir, "JPN").degraded
    assert not p["USA"].decide(report(TOKYO, ("USA-SHARIKI",), node="USA"), "JPN").degraded


def test_batch_of_no_tracks(jpn: Policy) -> None:
    out = jpn.compile(list(JPN_SENSORS), ["USA", "JPN", "AUS"]).decide_all(
        np.zeros((0, 3)), [], np.zeros(0, np.uint64)
    )
    assert out["AUS"].release.shape == (0,) and out["AUS"].counts() == {}


def test_category_codes_decide_as_the_names_do(jpn: Policy) -> None:
    from kizuna.security.policy import category_codes

    compiled = jpn.compile(list(JPN_SENSORS), ["USA", "JPN", "AUS"])
    names = ["air", "ballistic", "cruise", "unknown", "air"]
    positions = [report(pos=GUAM if k % 2 else TOKYO).state[:3] for k in range(len(names))]
    masks = np.ones(len(names), np.uint64)
    by_name = compiled.decide_all(positions, np.asarray(names), masks)
    by_code = compiled.decide_all(positions, category_codes(names), masks)
    for nation, batch in by_name.items():
        assert (batch.rule == by_code[nation].rule).all()
        assert (batch.label_mask == by_code[nation].label_mask).all()
    with pytest.raises(ValueError, match="unknown category"):
        compiled.decide_all(positions[:1], category_codes(["spaceship"]), masks[:1])
