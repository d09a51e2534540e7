"""Per-nation Ed25519 signing keys and the public keyring the allies share.

``kizuna keys init`` writes, for each nation, into one directory::

    DIR/USA.key.pem      private key, PKCS#8 PEM, unencrypted, file mode 0600
    DIR/USA.pub.pem      public key, SubjectPublicKeyInfo PEM
    DIR/keyring.json     {"format": "kizuna-keyring", "version": 1,
                          "nations": {"USA": {"ed25519": "<base64 raw 32-byte public key>"}, ...}}

A node needs its own private key and the keyring. Ed25519 (RFC 8032) through ``cryptography``.

Transport security for live Zenoh (a coalition CA and per-nation TLS certificates) belongs next
to this: a later ``security/certs.py`` can write ``DIR/ca.pem`` and ``DIR/<NATION>.cert.pem``
and add ``"tls_cert"`` entries to each nation's keyring object — readers here ignore keys they
do not know, so existing keyrings stay valid.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from kizuna.errors import InputError

KEYRING_FILE = "keyring.json"
KEYRING_FORMAT = "kizuna-keyring"
_NATION_RE = re.compile(r"^[A-Z]{3}$")


def private_key_path(directory: str | Path, nation: str) -> Path:
    return Path(directory) / f"{nation}.key.pem"


def public_key_path(directory: str | Path, nation: str) -> Path:
    return Path(directory) / f"{nation}.pub.pem"


def raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True)
class Keyring:
    """Nation code → Ed25519 public key."""

    keys: Mapping[str, Ed25519PublicKey]
    source: str = "<keyring>"

    def __contains__(self, nation: object) -> bool:
        return nation in self.keys

    def get(self, nation: str) -> Ed25519PublicKey | None:
        return self.keys.get(nation)

    @property
    def nations(self) -> tuple[str, ...]:
        return tuple(sorted(self.keys))

    def to_json(self) -> str:
        body = {
            "format": KEYRING_FORMAT,
            "version": 1,
            "nations": {
                n: {"ed25519": base64.b64encode(raw_public(self.keys[n])).decode("ascii")}
                for n in self.nations
            },
        }
        return json.dumps(body, indent=2) + "\n"

    @classmethod
    def load(cls, path: str | Path) -> Keyring:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise InputError.single(str(p), "", f"cannot read keyring: {exc.strerror}") from None
        return cls.parse(text, str(p))

    @classmethod
    def parse(cls, text: str, source: str = "<keyring>") -> Keyring:
        try:
            body = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError.single(
                source, f"column {exc.colno}", f"not valid JSON: {exc.msg}", line=exc.lineno
            ) from None
        if not isinstance(body, dict) or body.get("format") != KEYRING_FORMAT:
            got = body.get("format") if isinstance(body, dict) else type(body).__name__
            raise InputError.single(source, "format", "not a Kizuna keyring", got, KEYRING_FORMAT)
        if body.get("version") != 1:
            raise InputError.single(
                source, "version", "unsupported keyring version", body.get("version"), "1"
            )
        nations = body.get("nations")
        if not isinstance(nations, dict) or not nations:
            raise InputError.single(
                source, "nations", "missing or empty", None, 'an object {"USA": {"ed25519": "..."}}'
            )
        keys: dict[str, Ed25519PublicKey] = {}
        for nation, entry in nations.items():
            where = f"nations.{nation}"
            if not _NATION_RE.match(str(nation)):
                raise InputError.single(
                    source, where, "not a nation code", nation, "three upper-case letters"
                )
            value = entry.get("ed25519") if isinstance(entry, dict) else None
            try:
                raw = base64.b64decode(str(value), validate=True)
                keys[nation] = Ed25519PublicKey.from_public_bytes(raw)
            except (binascii.Error, ValueError):
                raise InputError.single(
                    source,
                    f"{where}.ed25519",
                    "not an Ed25519 public key",
                    value,
                    "base64 of 32 bytes",
                ) from None
        return cls(keys, source)


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """Read a PKCS#8 PEM Ed25519 private key; InputError if missing, unreadable or not Ed25519."""
    p = Path(path)
    try:
        data = p.read_bytes()
        mode = p.stat().st_mode & 0o777
    except OSError as exc:
        raise InputError.single(str(p), "", f"cannot read private key: {exc.strerror}") from None
    if os.name == "posix" and mode & 0o077:
        # Like OpenSSH, refuse a private key others can read: it may already be compromised.
        raise InputError.single(
            str(p),
            "",
            "private key is readable by other users",
            oct(mode),
            f"0o600 (chmod 600 {p})",
        )
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise InputError.single(str(p), "", "not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError.single(str(p), "", "wrong key type", type(key).__name__, "Ed25519")
    return key


@dataclass(frozen=True)
class NationKeys:
    """What one node holds: its nation, its private key, and the alliance keyring."""

    nation: str
    private_key: Ed25519PrivateKey
    keyring: Keyring

    @classmethod
    def load(cls, directory: str | Path, nation: str) -> NationKeys:
        d = Path(directory)
        keyring = Keyring.load(d / KEYRING_FILE)
        key = load_private_key(private_key_path(d, nation))
        mine = keyring.get(nation)
        if mine is None or raw_public(mine) != raw_public(key.public_key()):
            raise InputError.single(
                str(d / KEYRING_FILE),
                f"nations.{nation}",
                "keyring does not hold this nation's public key",
                None,
                f"the public half of {private_key_path(d, nation).name}",
            )
        return cls(nation, key, keyring)


def derive_keys(nations: Iterable[str], seed: int | str) -> dict[str, Ed25519PrivateKey]:
    """Deterministic keys from a seed, for reproducible *simulated* exercises and tests only.

    Anyone who knows the seed has the keys: never use these on a real network.
    """
    return {
        n: Ed25519PrivateKey.from_private_bytes(
            hashlib.sha256(f"kizuna-exercise-key/{seed}/{n}".encode()).digest()
        )
        for n in nations
    }


def keyring_of(private_keys: Mapping[str, Ed25519PrivateKey]) -> Keyring:
    return Keyring({n: k.public_key() for n, k in private_keys.items()})


def _write_private(path: Path, data: bytes) -> None:
    # Create with 0600 from the start so the key is never world-readable, even briefly.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # in case the file already existed with wider permissions
        os.write(fd, data)
    finally:
        os.close(fd)


def init_keys(
    nations: Iterable[str],
    out_dir: str | Path,
    *,
    overwrite: bool = False,
    seed: int | str | None = None,
) -> list[Path]:
    """Generate a key pair per nation and the keyring in ``out_dir``; return the files written.

    Refuses to replace existing key files unless ``overwrite``. ``seed`` gives deterministic
    keys (:func:`derive_keys`) for simulations; by default keys come from the OS's CSPRNG.
    """
    codes = list(nations)
    if not codes:
        raise InputError.single("--nations", "", "no nations given", None, "e.g. USA,JPN,AUS")
    for n in codes:
        if not _NATION_RE.match(n):
            raise InputError.single(
                "--nations", "", "not a nation code", n, "three upper-case letters"
            )
    if len(set(codes)) != len(codes):
        raise InputError.single("--nations", "", "duplicate nation codes", ",".join(codes))
    d = Path(out_dir)
    targets = [private_key_path(d, n) for n in codes] + [public_key_path(d, n) for n in codes]
    targets.append(d / KEYRING_FILE)
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise InputError.single(
            str(existing[0]),
            "",
            "already exists; refusing to overwrite keys",
            None,
            "a new directory, or --force",
        )
    try:
        d.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError.single(str(d), "", f"cannot create directory: {exc.strerror}") from None
    keys = (
        {n: Ed25519PrivateKey.generate() for n in codes}
        if seed is None
        else derive_keys(codes, seed)
    )
    written: list[Path] = []
    for n in codes:
        key = keys[n]
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_private(private_key_path(d, n), pem)
        public_key_path(d, n).write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        written += [private_key_path(d, n), public_key_path(d, n)]
    (d / KEYRING_FILE).write_text(keyring_of(keys).to_json(), encoding="utf-8")
    written.append(d / KEYRING_FILE)
    return written


def init_keys_command(
    nations: str | None,
    scenario: str | None,
    out: str,
    force: bool,
    console: object,
) -> list[Path]:
    """``kizuna keys init``: nations from ``--nations A,B,C`` or a scenario's nation list."""
    from rich.console import Console
    from rich.table import Table

    if (nations is None) == (scenario is None):
        raise InputError.single(
            "kizuna keys init",
            "",
            "give exactly one of --nations or --scenario",
            None,
            "--nations USA,JPN,AUS or --scenario FILE",
        )
    if scenario is not None:
        from kizuna.scenario import load_scenario

        codes = [n.code for n in load_scenario(scenario).nation]
    else:
        codes = [c.strip() for c in (nations or "").split(",") if c.strip()]
    written = init_keys(codes, out, overwrite=force)
    if isinstance(console, Console):
        table = Table(title=f"Ed25519 keys in {out}")
        table.add_column("file")
        table.add_column("what")
        table.add_column("mode")
        for p in written:
            what = (
                "private key (keep secret)"
                if p.name.endswith(".key.pem")
                else "public key"
                if p.name.endswith(".pub.pem")
                else "keyring: nation → public key (share with allies)"
            )
            table.add_row(str(p), what, oct(p.stat().st_mode & 0o777))
        console.print(table)
    return written
