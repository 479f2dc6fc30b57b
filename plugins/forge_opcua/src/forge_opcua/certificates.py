"""A test PKI for OPC UA: a CA and application instance certificates, made with ``cryptography``.

OPC UA application certificates (Part 6, 6.2.2) carry the application URI as a subjectAltName URI
(the peer compares it with the ApplicationUri it announces), the host names and addresses, key
usage digitalSignature + nonRepudiation + keyEncipherment + dataEncipherment, and the extended
key usage serverAuth and/or clientAuth. :func:`make_test_pki` writes a CA, a server and a client
certificate signed by it, and a second, untrusted CA with a client of its own, for refusal tests.

For tests and demos only: keys are written unencrypted.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["CertificateFiles", "TestPki", "issue_certificate", "make_ca", "make_test_pki"]

SERVER_URI = "urn:forge:opcua:plc-simulator"
CLIENT_URI = "urn:forge:opcua:source"


@dataclass(frozen=True)
class CertificateFiles:
    """A certificate and its private key, both PEM."""

    certificate: Path
    private_key: Path

    def load(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate.read_bytes())


@dataclass(frozen=True)
class TestPki:
    """What :func:`make_test_pki` wrote."""

    __test__ = False  # not a pytest test class

    ca: CertificateFiles
    server: CertificateFiles
    client: CertificateFiles
    rogue_ca: CertificateFiles
    rogue_client: CertificateFiles
    expired_client: CertificateFiles


def _key(size: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


def _write(directory: Path, stem: str, cert: x509.Certificate, key: rsa.RSAPrivateKey) -> CertificateFiles:
    directory.mkdir(parents=True, exist_ok=True)
    files = CertificateFiles(directory / f"{stem}.pem", directory / f"{stem}-key.pem")
    files.certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.private_key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                    serialization.NoEncryption()))
    files.private_key.chmod(0o600)
    return files


def make_ca(directory: Path, name: str = "Forge Test CA", *, days: int = 30) -> CertificateFiles:
    """A self-signed CA certificate (``<slug>.pem``, ``<slug>-key.pem`` in ``directory``)."""
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Forge")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return _write(directory, _slug(name), cert, key)


def issue_certificate(ca: CertificateFiles, directory: Path, name: str, application_uri: str, *,
                      server: bool = False, client: bool = False,
                      hosts: tuple[str, ...] | None = None,
                      not_before: dt.datetime | None = None, not_after: dt.datetime | None = None,
                      days: int = 30) -> CertificateFiles:
    """An OPC UA application instance certificate for ``application_uri``, signed by ``ca``; ``hosts``
    default to 127.0.0.1, localhost and this machine's name (asyncua warns when its own is missing)."""
    if not (server or client):
        raise ValueError("issue_certificate: say server=True, client=True or both")
    ca_cert = ca.load()
    ca_key = serialization.load_pem_private_key(ca.private_key.read_bytes(), password=None)
    if not isinstance(ca_key, rsa.RSAPrivateKey):
        raise ValueError(f"{ca.private_key}: an RSA key was expected")
    key = _key()
    now = dt.datetime.now(dt.UTC)
    start = not_before or now - dt.timedelta(minutes=5)
    end = not_after or now + dt.timedelta(days=days)
    names: list[x509.GeneralName] = [x509.UniformResourceIdentifier(application_uri)]
    for host in hosts if hosts is not None else ("127.0.0.1", "localhost", socket.gethostname()):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    usages = [oid for wanted, oid in ((server, ExtendedKeyUsageOID.SERVER_AUTH),
                                      (client, ExtendedKeyUsageOID.CLIENT_AUTH)) if wanted]
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                                     x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Forge")]))
            .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=True,
                                         data_encipherment=True, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return _write(directory, _slug(name), cert, key)


def make_test_pki(directory: Path, *, server_uri: str = SERVER_URI, client_uri: str = CLIENT_URI) -> TestPki:
    """A CA with a server and a client certificate; a rogue CA with a client of its own; and a
    client certificate of the right CA that expired yesterday."""
    ca = make_ca(directory, "Forge Test CA")
    rogue = make_ca(directory, "Rogue CA")
    yesterday = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    return TestPki(
        ca=ca,
        server=issue_certificate(ca, directory, "plc-simulator", server_uri, server=True),
        client=issue_certificate(ca, directory, "forge-source", client_uri, client=True),
        rogue_ca=rogue,
        rogue_client=issue_certificate(rogue, directory, "rogue-source", client_uri, client=True),
        expired_client=issue_certificate(ca, directory, "expired-source", client_uri, client=True,
                                         not_before=yesterday - dt.timedelta(days=2), not_after=yesterday),
    )


def _slug(name: str) -> str:
    return "-".join(name.lower().split())
