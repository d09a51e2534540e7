"""Live-mode transport security: Zenoh over mutual TLS with the coalition CA, and Zenoh access
control by certificate common name (a nation may publish only under its own key space).

Each test opens real Zenoh sessions on loopback and prints what it observed.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from kizuna.errors import InputError
from kizuna.runtime.zenoh_transport import Tls, TransportConfig, open_session
from kizuna.security.certificates import ca_path, cert_path, init_certificates
from test_live import free_port

NATIONS = ("USA", "JPN", "AUS")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    init_certificates([*NATIONS, "SIM", "VIEWER"], d)
    init_certificates(["USA"], d / "impostor")  # a USA certificate from another CA
    return d


class Sessions:
    def __init__(self) -> None:
        self.open: list[Any] = []

    def __call__(self, cfg: TransportConfig) -> Any:
        s = open_session(cfg)
        self.open.append(s)
        return s


@pytest.fixture
def sessions() -> Iterator[Sessions]:
    s = Sessions()
    yield s
    for session in s.open:
        session.close()


def wait_until(check: Any, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return bool(check())


def test_certificates_are_signed_by_the_ca_with_the_nation_as_common_name(pki: Path) -> None:
    ca = x509.load_pem_x509_certificate(ca_path(pki).read_bytes())
    for n in NATIONS:
        cert = x509.load_pem_x509_certificate(cert_path(pki, n).read_bytes())
        cert.verify_directly_issued_by(ca)
        cn = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
        assert cn == n
        assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    impostor = x509.load_pem_x509_certificate(cert_path(pki / "impostor", "USA").read_bytes())
    with pytest.raises((ValueError, TypeError, Exception)):
        impostor.verify_directly_issued_by(ca)
    assert (pki / "tls" / "USA.key.pem").stat().st_mode & 0o077 == 0


def test_missing_tls_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="kizuna keys init --tls"):
        Tls.from_dir(tmp_path, "USA")


def _listener(pki: Path, sessions: Sessions, acl: bool = True) -> tuple[str, list[str], Any]:
    endpoint = f"tls/127.0.0.1:{free_port()}"
    extra = {} if acl else {"access_control/enabled": False}
    usa = sessions(
        TransportConfig(
            listen=(endpoint,), tls=Tls.from_dir(pki, "USA"), nations=NATIONS, exercise="sec",
            extra=extra,
        )
    )  # fmt: skip
    got: list[str] = []
    usa.declare_subscriber("kizuna/sec/**", lambda s: got.append(str(s.key_expr)))
    return endpoint, got, usa


def test_valid_peer_cannot_publish_under_another_nations_key_space(
    pki: Path, sessions: Sessions
) -> None:
    endpoint, got, usa = _listener(pki, sessions)
    jpn = sessions(
        TransportConfig(
            connect=(endpoint,), tls=Tls.from_dir(pki, "JPN"), nations=NATIONS, exercise="sec"
        )
    )
    assert wait_until(lambda: len(usa.info.peers_zid()) == 1), "JPN could not connect over mTLS"
    # Until the subscription has propagated, puts may be dropped: retry the allowed one.
    assert wait_until(
        lambda: jpn.put("kizuna/sec/JPN/to/USA", b"own") or "kizuna/sec/JPN/to/USA" in got
    )
    jpn.put("kizuna/sec/USA/to/JPN", b"forged")
    jpn.put("kizuna/sec/USA/status", b"forged")
    jpn.put("kizuna/sec/sim/plots/USA", b"forged")
    jpn.put("kizuna/sec/JPN/status", b"own")
    assert wait_until(lambda: "kizuna/sec/JPN/status" in got)
    time.sleep(0.5)
    refused = [k for k in got if "/USA/" in k or "/sim/" in k]
    print(f"\nJPN certificate: delivered {sorted(set(got))}, refused under USA/sim: {refused}")
    assert refused == []


def test_without_access_control_the_same_forgery_gets_through(
    pki: Path, sessions: Sessions
) -> None:
    """The control for the test above: the refusal is access control's doing."""
    endpoint, got, usa = _listener(pki, sessions, acl=False)
    jpn = sessions(
        TransportConfig(
            connect=(endpoint,), tls=Tls.from_dir(pki, "JPN"), nations=NATIONS, exercise="sec",
            extra={"access_control/enabled": False},
        )
    )  # fmt: skip
    assert wait_until(lambda: len(usa.info.peers_zid()) == 1)
    assert wait_until(
        lambda: jpn.put("kizuna/sec/USA/to/JPN", b"forged") or "kizuna/sec/USA/to/JPN" in got
    )


def test_an_envelope_for_one_ally_is_not_delivered_to_another(
    pki: Path, sessions: Sessions
) -> None:
    """Egress control: USA's envelope for AUS reaches AUS's certificate but not JPN's, even
    though JPN subscribes to it; Status reaches everyone, including the read-only viewer."""
    endpoint, _, usa = _listener(pki, sessions)
    heard: dict[str, list[str]] = {"JPN": [], "AUS": [], "VIEWER": []}
    for who in heard:
        peer = sessions(
            TransportConfig(
                connect=(endpoint,), tls=Tls.from_dir(pki, who), nations=NATIONS, exercise="sec"
            )
        )
        peer.declare_subscriber(
            "kizuna/sec/USA/**", lambda s, who=who: heard[who].append(str(s.key_expr))
        )
    assert wait_until(lambda: len(usa.info.peers_zid()) == 3)

    def delivered() -> bool:
        usa.put("kizuna/sec/USA/to/AUS", b"for AUS only")
        usa.put("kizuna/sec/USA/status", b"status")
        return "kizuna/sec/USA/to/AUS" in heard["AUS"] and all(
            "kizuna/sec/USA/status" in h for h in heard.values()
        )

    assert wait_until(delivered)
    time.sleep(0.5)
    print(f"\nwho heard what: { {k: sorted(set(v)) for k, v in heard.items()} }")
    assert "kizuna/sec/USA/to/AUS" not in heard["JPN"]
    assert "kizuna/sec/USA/to/AUS" not in heard["VIEWER"]


def test_impostor_with_a_certificate_from_another_ca_cannot_connect(
    pki: Path, sessions: Sessions
) -> None:
    endpoint, got, usa = _listener(pki, sessions)
    impostor = sessions(
        TransportConfig(
            connect=(endpoint,), tls=Tls.from_dir(pki / "impostor", "USA"), nations=NATIONS,
            exercise="sec",
        )
    )  # fmt: skip
    # A genuine JPN peer connects to the same listener in the same time (the control).
    jpn = sessions(
        TransportConfig(
            connect=(endpoint,), tls=Tls.from_dir(pki, "JPN"), nations=NATIONS, exercise="sec"
        )
    )
    assert wait_until(lambda: len(jpn.info.peers_zid()) == 1)
    time.sleep(1.0)
    for _ in range(5):
        impostor.put("kizuna/sec/USA/status", b"impostor")
        time.sleep(0.1)
    print(f"\nimpostor peers {impostor.info.peers_zid()}, listener peers {usa.info.peers_zid()}")
    assert impostor.info.peers_zid() == []
    assert len(usa.info.peers_zid()) == 1
    assert "kizuna/sec/USA/status" not in got


def test_plain_tcp_peer_cannot_reach_a_tls_listener(pki: Path, sessions: Sessions) -> None:
    endpoint, _, usa = _listener(pki, sessions)
    plain = sessions(TransportConfig(connect=("tcp/" + endpoint.split("/", 1)[1],)))
    time.sleep(2.0)
    assert plain.info.peers_zid() == [] and usa.info.peers_zid() == []


def test_keys_init_tls_writes_ca_and_certificates(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from kizuna.cli import app

    result = CliRunner().invoke(
        app, ["keys", "init", "--nations", "USA,JPN", "--out", str(tmp_path), "--tls"]
    )
    assert result.exit_code == 0, result.output
    for name in ("USA", "JPN", "SIM", "VIEWER"):
        assert cert_path(tmp_path, name).exists()
    assert (tmp_path / "keyring.json").exists() and ca_path(tmp_path).exists()
    again = CliRunner().invoke(
        app, ["keys", "init", "--nations", "USA,JPN", "--out", str(tmp_path), "--tls"]
    )
    assert isinstance(again.exception, InputError)  # refuses to overwrite without --force


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["sim", "--scenario", "S"], "--live"),
        (["sim", "--scenario", "S", "--live", "--speed", "0"], "--speed"),
        (["node", "--scenario", "S", "--nation", "USA", "--tls", "NOPE"], "TLS file not found"),
        (["node", "--scenario", "S", "--nation", "USA", "--tls", "PKI",
          "--connect", "tcp/127.0.0.1:1"], "not tls/"),
        (["status", "--scenario", "S", "--exercise", "a/b"], "exercise id"),
    ],
)  # fmt: skip
def test_live_commands_refuse_bad_options(
    args: list[str], needle: str, pki: Path, tmp_path: Path
) -> None:
    from typer.testing import CliRunner

    from kizuna.cli import app
    from test_live import TRILATERAL

    filled = [
        str(TRILATERAL) if a == "S" else str(pki) if a == "PKI" else str(tmp_path) if a == "NOPE"
        else a
        for a in args
    ]  # fmt: skip
    result = CliRunner().invoke(app, filled)
    assert isinstance(result.exception, InputError), result.output
    assert needle in str(result.exception)
