"""The test PKI's certificates are OPC UA application certificates, and CertificateTrust refuses each bad
one with the status code the peer is told."""

from __future__ import annotations

import asyncio

import pytest
from asyncua import ua
from asyncua.common.utils import ServiceError
from cryptography import x509

from forge_opcua.certificates import CLIENT_URI, SERVER_URI, issue_certificate
from forge_opcua.security import CertificateTrust, describe, load_certificates


def test_application_certificates_carry_uri_usages_and_hosts(opcua_pki) -> None:
    server = opcua_pki.server.load()
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.UniformResourceIdentifier) == [SERVER_URI]
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    usage = server.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and usage.key_encipherment and usage.data_encipherment
    usages = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usages) == [x509.ExtendedKeyUsageOID.SERVER_AUTH]
    assert describe(opcua_pki.client.load()) == "CN=forge-source issued by CN=Forge Test CA"
    assert oct(opcua_pki.client.private_key.stat().st_mode)[-3:] == "600"


def test_trust_checks_period_chain_and_uri(opcua_pki) -> None:
    trust = CertificateTrust(load_certificates([opcua_pki.ca.certificate]), who="test")
    assert trust.check(opcua_pki.client.load(), CLIENT_URI) is None
    assert trust.check(opcua_pki.server.load(), SERVER_URI) is None
    assert trust.check(opcua_pki.rogue_client.load(), CLIENT_URI) == ua.StatusCodes.BadCertificateUntrusted
    assert trust.check(opcua_pki.expired_client.load(), CLIENT_URI) == ua.StatusCodes.BadCertificateTimeInvalid
    assert trust.check(opcua_pki.client.load(), "urn:other") == ua.StatusCodes.BadCertificateUriInvalid
    assert CertificateTrust([], who="t").check(opcua_pki.client.load(), CLIENT_URI) == \
        ua.StatusCodes.BadCertificateUntrusted


def test_a_peer_certificate_may_be_trusted_itself_and_directories_load(opcua_pki, tmp_path) -> None:
    pinned = CertificateTrust(load_certificates([opcua_pki.server.certificate]), who="t")
    assert pinned.check(opcua_pki.server.load(), SERVER_URI) is None
    assert pinned.check(opcua_pki.client.load(), CLIENT_URI) == ua.StatusCodes.BadCertificateUntrusted
    other = issue_certificate(opcua_pki.ca, tmp_path / "more", "other", "urn:x", client=True)
    (tmp_path / "more" / "other.der").write_bytes(other.load().public_bytes(
        __import__("cryptography.hazmat.primitives.serialization", fromlist=["Encoding"]).Encoding.DER))
    loaded = load_certificates([tmp_path / "more"])
    assert len(loaded) == 2 and loaded[0] == loaded[1]  # the .der and the .pem of one certificate


def test_a_refusal_raises_the_status_and_is_counted(opcua_pki) -> None:
    trust = CertificateTrust(load_certificates([opcua_pki.ca.certificate]), who="test")
    description = ua.ApplicationDescription(ApplicationUri=CLIENT_URI)
    with pytest.raises(ServiceError) as refused:
        asyncio.run(trust(opcua_pki.rogue_client.load(), description))
    assert refused.value.code == ua.StatusCodes.BadCertificateUntrusted and trust.refused == 1
    asyncio.run(trust(opcua_pki.client.load(), description))
    assert trust.refused == 1
