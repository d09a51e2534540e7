"""A small coalition CA and per-party TLS certificates for live Zenoh (mutual TLS).

``kizuna keys init --tls`` writes, next to the Ed25519 signing keys::

    DIR/tls/ca.cert.pem            the coalition CA certificate (every party trusts it)
    DIR/tls/ca.key.pem             the CA private key (0600; keep it offline after set-up)
    DIR/tls/<NAME>.cert.pem        a certificate whose common name is NAME (a nation code,
                                   "SIM" for the live simulator, "VIEWER" for kizuna status)
    DIR/tls/<NAME>.key.pem         its private key (0600)

The common name is what Zenoh access control matches (``cert_common_names``), so a certificate
*is* a nation's right to publish under its key space. Keys are ECDSA P-256 (accepted by rustls,
Zenoh's TLS stack); certificates are X.509 v3 with the extensions rustls/webpki require: CA
basic constraints and key usage on the CA; on leaves, ``CA:FALSE``, digital-signature key usage,
server+client extended key usage, and subject alternative names ``localhost`` and 127.0.0.1
(webpki rejects certificates without SANs even when names are not checked).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kizuna.errors import InputError

TLS_DIR = "tls"
_VALID_DAYS = 365


def ca_path(directory: str | Path) -> Path:
    return Path(directory) / TLS_DIR / "ca.cert.pem"


def ca_key_path(directory: str | Path) -> Path:
    return Path(directory) / TLS_DIR / "ca.key.pem"


def cert_path(directory: str | Path, name: str) -> Path:
    return Path(directory) / TLS_DIR / f"{name}.cert.pem"


def cert_key_path(directory: str | Path, name: str) -> Path:
    return Path(directory) / TLS_DIR / f"{name}.key.pem"


def _write_private(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, data)
    finally:
        os.close(fd)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Kizuna notional coalition"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def make_ca(
    common_name: str = "Kizuna coalition CA", now: dt.datetime | None = None
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    key = ec.generate_private_key(ec.SECP256R1())
    name = _name(common_name)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def make_leaf(
    common_name: str,
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    now: dt.datetime | None = None,
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """A client+server certificate for ``common_name`` signed by the CA."""
    start = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(minutes=5)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=_VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.DNSName(common_name.lower()),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def init_certificates(
    names: Iterable[str], out_dir: str | Path, *, overwrite: bool = False
) -> list[Path]:
    """The CA and one certificate per name (nations, plus "SIM" and "VIEWER") in ``DIR/tls``."""
    d = Path(out_dir) / TLS_DIR
    wanted = list(dict.fromkeys(names))
    targets = [ca_path(out_dir), ca_key_path(out_dir)]
    targets += [p for n in wanted for p in (cert_path(out_dir, n), cert_key_path(out_dir, n))]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise InputError.single(
            str(existing[0]), "", "already exists; refusing to overwrite", None, "--force"
        )
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError.single(str(d), "", f"cannot create directory: {exc.strerror}") from None
    ca_key, ca_cert = make_ca()
    _write_private(ca_key_path(out_dir), ca_key)
    ca_path(out_dir).write_bytes(_pem(ca_cert))
    written = [ca_path(out_dir), ca_key_path(out_dir)]
    for n in wanted:
        key, cert = make_leaf(n, ca_key, ca_cert)
        _write_private(cert_key_path(out_dir, n), key)
        cert_path(out_dir, n).write_bytes(_pem(cert))
        written += [cert_path(out_dir, n), cert_key_path(out_dir, n)]
    return written


def init_certificates_command(
    signing_files: list[Path], out_dir: str | Path, force: bool, console: object
) -> list[Path]:
    """``kizuna keys init --tls``: certificates for the nations just given keys, SIM, VIEWER."""
    from rich.console import Console
    from rich.table import Table

    nations = sorted({p.name.split(".")[0] for p in signing_files if p.name.endswith(".key.pem")})
    written = init_certificates([*nations, "SIM", "VIEWER"], out_dir, overwrite=force)
    if isinstance(console, Console):
        table = Table(title=f"TLS certificates in {Path(out_dir) / TLS_DIR}")
        table.add_column("file")
        table.add_column("what")
        for p in written:
            what = "private key (0600)" if p.name.endswith(".key.pem") else "certificate"
            table.add_row(str(p), ("CA " if p.name.startswith("ca.") else "") + what)
        console.print(table)
    return written
