"""A test PKI for an MQTT broker with mutual TLS: a CA, the broker's certificate, one certificate per
client (CN = its MQTT client id), a revocation list, and the bad certificates refusal tests need.

Made with ``cryptography`` (extra ``forge-mqtt[pki]``; the test extra has it). ``scripts/certs.py``
is its command line. Keys are ECDSA P-256, written unencrypted with mode 0600: for tests, trials and
small plants whose hosts are trusted; a production plant uses its own PKI with the same file layout
(docs/security.md, "Certificates").

The layout under the root directory is fixed, so brokers, plants and tests find files by name::

    ca.pem  ca.key                  the CA ("Forge test CA"); its key signs everything below
    server.pem  server.key          the broker: CN and subjectAltName localhost, 127.0.0.1 (+ --server-name)
    crl.pem                         the CA's certificate revocation list (empty until a revoke)
    clients/<cn>.pem  <cn>.key      a client whose certificate CN (the broker's user name) is <cn>
    expired/<cn>.pem  <cn>.key      signed by the CA, validity ended a day ago       (refusal tests)
    revoked/<cn>.pem  <cn>.key      signed by the CA, listed in crl.pem              (refusal tests)
    wrong-ca/ca.pem  ca.key         another CA with the same name as the real one    (refusal tests)
    wrong-ca/<cn>.pem  <cn>.key     a client signed by that other CA                 (refusal tests)

:meth:`Pki.create` is idempotent: what exists is kept (the CA above all, so adding a client later
signs it with the same CA), what is missing is made. :meth:`Pki.issue` replaces a client's key and
certificate (rotation), :meth:`Pki.revoke` lists a certificate in ``crl.pem``, :meth:`Pki.refresh_crl`
re-signs the list before its next-update time (a broker refuses every client once its CRL expired).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CA_NAME", "KeyPair", "Pki"]

CA_NAME = "Forge test CA"
_CLOCK_SKEW = dt.timedelta(hours=1)  # certificates start an hour back: hosts' clocks differ a little


@dataclass(frozen=True)
class KeyPair:
    """A PEM certificate and its PEM private key."""

    cert: Path
    key: Path

    def load(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert.read_bytes())

    @property
    def exists(self) -> bool:
        return self.cert.is_file() and self.key.is_file()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _check_cn(cn: str) -> str:
    # The CN becomes the broker's user name and client id, and ACL patterns put it into topics (%u, %c):
    # MQTT wildcards and topic separators there would widen or break every pattern; a file name too.
    if not cn or any(c in cn for c in "/+#\\\0") or cn in (".", "..") or cn != cn.strip():
        raise ValueError(f"certificate CN {cn!r}: must be a non-empty client id without '/', '+', '#', '\\' "
                         "or surrounding spaces (it becomes a topic level in the ACL patterns and a file name)")
    return cn


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@dataclass(frozen=True)
class _Ca:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey


def _make_ca(pair: KeyPair, days: int) -> _Ca:
    key, now = _new_key(), _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(CA_NAME)).issuer_name(_name(CA_NAME))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - _CLOCK_SKEW).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(pair.key, _key_pem(key), private=True)
    _write(pair.cert, cert.public_bytes(serialization.Encoding.PEM))
    return _Ca(cert, key)


def _load_ca(pair: KeyPair) -> _Ca:
    key = serialization.load_pem_private_key(pair.key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{pair.key}: not an EC private key (this PKI makes P-256 keys)")
    return _Ca(pair.load(), key)


def _issue(ca: _Ca, pair: KeyPair, cn: str, *, server_names: Iterable[str] = (), days: int = 0,
           not_before: dt.datetime | None = None, not_after: dt.datetime | None = None) -> x509.Certificate:
    key, now = _new_key(), _now()
    names = list(server_names)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if names else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(ca.cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - _CLOCK_SKEW)
        .not_valid_after(not_after or now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=True, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
    )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([_general_name(n) for n in names]),
                                        critical=False)
    cert = builder.sign(ca.key, hashes.SHA256())
    _write(pair.key, _key_pem(key), private=True)
    _write(pair.cert, cert.public_bytes(serialization.Encoding.PEM))
    return cert


def _general_name(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


@dataclass(frozen=True)
class Pki:
    """The files of a test PKI under ``root`` (see the module's docstring for the layout)."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def ca(self) -> KeyPair:
        return KeyPair(self.root / "ca.pem", self.root / "ca.key")

    @property
    def server(self) -> KeyPair:
        return KeyPair(self.root / "server.pem", self.root / "server.key")

    @property
    def crl(self) -> Path:
        return self.root / "crl.pem"

    @property
    def wrong_ca_root(self) -> KeyPair:
        return KeyPair(self.root / "wrong-ca" / "ca.pem", self.root / "wrong-ca" / "ca.key")

    def _pair(self, folder: str, cn: str) -> KeyPair:
        _check_cn(cn)
        return KeyPair(self.root / folder / f"{cn}.pem", self.root / folder / f"{cn}.key")

    def client(self, cn: str) -> KeyPair:
        return self._pair("clients", cn)

    def expired(self, cn: str) -> KeyPair:
        return self._pair("expired", cn)

    def revoked(self, cn: str) -> KeyPair:
        return self._pair("revoked", cn)

    def wrong_ca(self, cn: str) -> KeyPair:
        return self._pair("wrong-ca", cn)

    def clients(self) -> list[str]:
        """The CNs under ``clients/``, sorted."""
        return sorted(p.stem for p in (self.root / "clients").glob("*.pem"))

    # -- making it -----------------------------------------------------------------------------------------
    @classmethod
    def create(cls, root: Path | str, clients: Iterable[str] = (), *,
               server_names: Iterable[str] = ("localhost", "127.0.0.1"), expired: Iterable[str] = (),
               revoked: Iterable[str] = (), wrong_ca: Iterable[str] = (), days: int = 365, ca_days: int = 3650,
               crl_days: int = 30) -> Pki:
        """Make whatever of the layout is missing under ``root`` and return it; existing files are kept.

        ``clients``: CNs of valid client certificates; ``expired`` / ``revoked`` / ``wrong_ca``: CNs of
        the bad ones. ``server_names``: host names and IP addresses in the broker's certificate (the
        first is its CN); clients check the broker's address against them.
        """
        pki = cls(Path(root))
        ca = _load_ca(pki.ca) if pki.ca.exists else _make_ca(pki.ca, ca_days)
        if not pki.server.exists:
            names = list(server_names)
            if not names:
                raise ValueError("server_names: the broker's certificate needs at least one host name or address")
            _issue(ca, pki.server, names[0], server_names=names, days=days)
        for cn in clients:
            if not pki.client(cn).exists:
                _issue(ca, pki.client(cn), cn, days=days)
        for cn in expired:
            if not pki.expired(cn).exists:
                now = _now()
                _issue(ca, pki.expired(cn), cn, not_before=now - dt.timedelta(days=30),
                       not_after=now - dt.timedelta(days=1))
        if not pki.crl.is_file():
            pki._write_crl(ca, [], crl_days)
        for cn in revoked:
            if not pki.revoked(cn).exists:
                pki.revoke(_issue(ca, pki.revoked(cn), cn, days=days), crl_days=crl_days)
        wrong = list(wrong_ca)
        if wrong:
            other = _load_ca(pki.wrong_ca_root) if pki.wrong_ca_root.exists else _make_ca(pki.wrong_ca_root, ca_days)
            for cn in wrong:
                if not pki.wrong_ca(cn).exists:
                    _issue(other, pki.wrong_ca(cn), cn, days=days)
        return pki

    def issue(self, cn: str, *, days: int = 365) -> KeyPair:
        """A new key and certificate for client ``cn`` (replacing any: rotation). The old certificate
        stays valid until it expires or is revoked: revoke it first if its key may be compromised."""
        pair = self.client(cn)
        _issue(_load_ca(self.ca), pair, cn, days=days)
        return pair

    def revoke(self, cert: x509.Certificate | Path, *, crl_days: int = 30) -> None:
        """List ``cert`` (a certificate or its PEM file) in ``crl.pem``, re-signed for ``crl_days``."""
        if isinstance(cert, Path):
            cert = x509.load_pem_x509_certificate(cert.read_bytes())
        ca = _load_ca(self.ca)
        try:  # by signature, not by name: another CA may bear the same name
            cert.verify_directly_issued_by(ca.cert)
        except (ValueError, TypeError, InvalidSignature):
            raise ValueError(f"certificate of {cert.subject.rfc4514_string()} (serial {cert.serial_number:x}) was not "
                             f"issued by {self.ca.cert}") from None
        entries = self._revoked_entries()
        if cert.serial_number not in {e.serial_number for e in entries}:
            entries.append(x509.RevokedCertificateBuilder().serial_number(cert.serial_number)
                           .revocation_date(_now()).build())
        self._write_crl(ca, entries, crl_days)

    def refresh_crl(self, *, crl_days: int = 30) -> None:
        """Re-sign ``crl.pem`` with the same entries and a next update ``crl_days`` ahead."""
        self._write_crl(_load_ca(self.ca), self._revoked_entries(), crl_days)

    def revoked_serials(self) -> set[int]:
        return {e.serial_number for e in self._revoked_entries()}

    def _revoked_entries(self) -> list[x509.RevokedCertificate]:
        if not self.crl.is_file():
            return []
        return list(x509.load_pem_x509_crl(self.crl.read_bytes()))

    def _write_crl(self, ca: _Ca, entries: list[x509.RevokedCertificate], crl_days: int) -> None:
        now = _now()
        builder = (x509.CertificateRevocationListBuilder().issuer_name(ca.cert.subject)
                   .last_update(now - _CLOCK_SKEW).next_update(now + dt.timedelta(days=crl_days)))
        for entry in entries:
            builder = builder.add_revoked_certificate(entry)
        crl = builder.sign(ca.key, hashes.SHA256())
        _write(self.crl, crl.public_bytes(serialization.Encoding.PEM))


# -- the command line (scripts/certs.py, python -m forge_mqtt.pki) ------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="certs.py", description="A test PKI for Mosquitto with mutual TLS (layout: forge_mqtt.pki, "
                                     "docs/security.md). Keys are unencrypted, mode 0600.")
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="make what is missing: CA, broker certificate, CRL, client "
                                           "certificates (existing files are kept)")
    create.add_argument("root", type=Path, help="directory of the PKI")
    create.add_argument("clients", nargs="*", metavar="CN", help="client ids (certificate CN = client id)")
    create.add_argument("--server-name", action="append", dest="server_names", metavar="NAME",
                        help="host name or IP address of the broker (repeatable; default localhost and 127.0.0.1)")
    create.add_argument("--expired", action="append", default=[], metavar="CN", help="an expired client (tests)")
    create.add_argument("--revoked", action="append", default=[], metavar="CN", help="a revoked client (tests)")
    create.add_argument("--wrong-ca", action="append", default=[], metavar="CN",
                        help="a client signed by another CA of the same name (tests)")
    create.add_argument("--days", type=int, default=365, help="validity of the certificates (default 365)")
    issue = sub.add_parser("issue", help="a new key and certificate for a client (rotation; replaces its files)")
    issue.add_argument("root", type=Path)
    issue.add_argument("cn", help="client id")
    issue.add_argument("--days", type=int, default=365)
    revoke = sub.add_parser("revoke", help="list clients/<CN>.pem (or --cert FILE) in crl.pem")
    revoke.add_argument("root", type=Path)
    revoke.add_argument("cn", nargs="?", help="client id")
    revoke.add_argument("--cert", type=Path, help="a certificate file to revoke instead")
    crl = sub.add_parser("crl", help="re-sign crl.pem with a new next-update time")
    crl.add_argument("root", type=Path)
    for command in (create, revoke, crl):
        command.add_argument("--crl-days", type=int, default=30, help="days until the CRL's next update (default 30)")
    args = parser.parse_args(argv)
    try:
        if args.command == "create":
            pki = Pki.create(args.root, args.clients, server_names=args.server_names or ("localhost", "127.0.0.1"),
                             expired=args.expired, revoked=args.revoked, wrong_ca=args.wrong_ca, days=args.days,
                             crl_days=args.crl_days)
            print(f"{pki.root}: CA {pki.ca.cert.name}, broker {pki.server.cert.name}, clients: "
                  f"{', '.join(pki.clients()) or '(none)'}")
        elif args.command == "issue":
            pair = Pki(args.root).issue(args.cn, days=args.days)
            print(f"issued {pair.cert} and {pair.key}")
        elif args.command == "revoke":
            pki = Pki(args.root)
            if (args.cn is None) == (args.cert is None):
                parser.error("revoke: give a client id or --cert FILE")
            target = args.cert or pki.client(args.cn).cert
            pki.revoke(target, crl_days=args.crl_days)
            print(f"revoked {target}; {len(pki.revoked_serials())} certificate(s) in {pki.crl}: reload the broker "
                  "(SIGHUP) to apply it to new connections")
        else:
            Pki(args.root).refresh_crl(crl_days=args.crl_days)
            print(f"re-signed {Pki(args.root).crl} for {args.crl_days} days")
    except (OSError, ValueError) as exc:
        print(f"certs.py {args.command}: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
