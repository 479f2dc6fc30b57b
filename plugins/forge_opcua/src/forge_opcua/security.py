"""Security policies and certificate trust for the source (client) and the simulated PLC (server).

asyncua accepts any peer certificate unless a validator is installed (``Client.certificate_validator``,
``Server.set_certificate_validator``); :class:`CertificateTrust` is that validator on both sides: the
peer's certificate must be in its validity period, chain to one of the trusted certificates
(a CA, or the peer's own certificate), and name the application URI the peer announces. A refusal
raises the OPC UA status asyncua turns into the service fault the other side sees
(BadCertificateTimeInvalid, BadCertificateUntrusted, BadCertificateUriInvalid) and is logged
with the certificate's subject and issuer.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from pathlib import Path

from asyncua import Client, Server, ua
from asyncua.common.utils import ServiceError
from asyncua.crypto import security_policies
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import verification

from forge_opcua.settings import ClientSecurity, ServerSecurity

__all__ = ["CertificateTrust", "SecurityError", "configure_client", "configure_server", "describe", "load_certificates"]

log = logging.getLogger("forge.opcua.security")

_REFUSALS = {
    ua.StatusCodes.BadCertificateTimeInvalid: "is outside its validity period",
    ua.StatusCodes.BadCertificateUntrusted: "does not chain to a trusted certificate",
    ua.StatusCodes.BadCertificateUriInvalid: "does not name the application URI its owner announced",
    ua.StatusCodes.BadCertificateInvalid: "is malformed",
    ua.StatusCodes.BadSecurityChecksFailed: "failed the security checks",
    ua.StatusCodes.BadSecurityPolicyRejected: "uses a security policy the other side rejected",
    ua.StatusCodes.BadCertificateUseNotAllowed: "may not be used for this purpose",
}


class SecurityError(Exception):
    """A certificate or policy was refused; the message names which side refused what."""


def load_certificates(paths: Iterable[str | Path]) -> list[x509.Certificate]:
    """Certificates from PEM (one or many per file) or DER files, or from every .pem/.der file of a
    directory (files there that hold no certificate, such as keys, are skipped)."""
    certificates: list[x509.Certificate] = []
    for path in map(Path, paths):
        in_directory = path.is_dir()
        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".pem", ".der")) if in_directory else [path]
        for file in files:
            data = file.read_bytes()
            try:
                if b"-----BEGIN CERTIFICATE-----" in data:
                    certificates.extend(x509.load_pem_x509_certificates(data))
                elif b"-----BEGIN" in data:
                    raise ValueError("a PEM file without a certificate (a key?)")
                else:
                    certificates.append(x509.load_der_x509_certificate(data))
            except ValueError as exc:
                if not in_directory:
                    raise SecurityError(f"{file}: not a PEM or DER certificate ({exc})") from None
    return certificates


def describe(cert: x509.Certificate) -> str:
    """``CN=forge-source issued by CN=Forge Test CA``: who it is, who vouches for it."""
    return f"{_common_name(cert.subject)} issued by {_common_name(cert.issuer)}"


def _common_name(name: x509.Name) -> str:
    found = name.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return f"CN={found[0].value!s}" if found else name.rfc4514_string()


class CertificateTrust:
    """An asyncua certificate validator: validity period, chain to ``trusted``, application URI."""

    def __init__(self, trusted: list[x509.Certificate], *, who: str) -> None:
        self.trusted = trusted
        self.who = who  # "the PLC simulator", "opcua.source 'line1'": who refuses, for the log
        self.refused = 0
        self._fingerprints = {c.fingerprint(hashes.SHA256()) for c in trusted}
        self._store = verification.Store(trusted) if trusted else None

    async def __call__(self, cert: x509.Certificate, application: ua.ApplicationDescription) -> None:
        code = self.check(cert, application.ApplicationUri)
        if code is not None:
            self.refused += 1
            log.warning("%s refused the certificate of %s (%s): it %s", self.who, application.ApplicationUri,
                        describe(cert), _REFUSALS[code])
            raise ServiceError(code)

    def check(self, cert: x509.Certificate, application_uri: str | None) -> int | None:
        """None if ``cert`` is acceptable, else the OPC UA status code of the refusal."""
        now = dt.datetime.now(dt.UTC)
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            return ua.StatusCodes.BadCertificateTimeInvalid
        if not self._chains(cert):
            return ua.StatusCodes.BadCertificateUntrusted
        try:
            uris = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value \
                .get_values_for_type(x509.UniformResourceIdentifier)
        except x509.ExtensionNotFound:
            return ua.StatusCodes.BadCertificateInvalid
        if application_uri and application_uri not in uris:
            return ua.StatusCodes.BadCertificateUriInvalid
        return None

    def _chains(self, cert: x509.Certificate) -> bool:
        if cert.fingerprint(hashes.SHA256()) in self._fingerprints:
            return True  # the peer's own certificate is trusted (a self-signed application certificate)
        if self._store is None:
            return False
        policy = verification.ExtensionPolicy
        verifier = (verification.PolicyBuilder().store(self._store)
                    .extension_policies(ca_policy=policy.webpki_defaults_ca(), ee_policy=policy.permit_all())
                    .build_client_verifier())
        try:
            verifier.verify(cert, [])
        except verification.VerificationError:
            return False
        return True


async def configure_client(client: Client, security: ClientSecurity, *, who: str) -> CertificateTrust | None:
    """Apply ``security`` to a fresh asyncua ``Client`` before ``connect()`` (asks the server for its
    endpoints when a policy is set); returns the server-certificate validator it installed."""
    client.application_uri = security.application_uri
    if security.policy == "None":
        return None
    _files_exist("security", cert_file=security.cert_file, key_file=security.key_file, trusted=security.trusted)
    policy = getattr(security_policies, f"SecurityPolicy{security.policy}")
    mode = getattr(ua.MessageSecurityMode, security.mode)
    try:
        await client.set_security(policy, security.cert_file or "", security.key_file or "",
                                  security.key_password, None, mode)
    except ua.UaError as exc:
        raise SecurityError(f"the server offers no {security.policy}/{security.mode} endpoint ({exc})") from exc
    if not security.verify_server:
        log.warning("%s does not verify the server's certificate (verify_server: false)", who)
        return None
    trust = CertificateTrust(load_certificates(security.trusted), who=who)
    client.certificate_validator = trust
    return trust


async def configure_server(server: Server, security: ServerSecurity, *, who: str) -> CertificateTrust | None:
    """Endpoints, certificate and client-certificate validation of an asyncua ``Server`` (before start)."""
    server.set_security_policy([getattr(ua.SecurityPolicyType, name if name != "None" else "NoSecurity")
                                for name in security.policies])
    await server.set_application_uri(security.application_uri)
    if security.cert_file is None or security.key_file is None:
        return None
    _files_exist("security", cert_file=security.cert_file, key_file=security.key_file, trusted=security.trusted)
    await server.load_certificate(security.cert_file)
    await server.load_private_key(security.key_file)
    trust = CertificateTrust(load_certificates(security.trusted), who=who)
    server.set_certificate_validator(trust)
    return trust


def _files_exist(section: str, **files: str | list[str] | None) -> None:
    for field, value in files.items():
        for path in value if isinstance(value, list) else [value] if value else []:
            if not Path(path).exists():
                raise SecurityError(f"{section}.{field}: {path} does not exist")


def refusal_text(code: int) -> str:
    return _REFUSALS.get(code, "was refused")
