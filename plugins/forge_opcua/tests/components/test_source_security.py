"""Basic256Sha256 SignAndEncrypt against the simulated PLC with certificates from a test CA: accepted
with the right ones; refused, with an error naming who refused which certificate and why, otherwise."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.servers


def server_security(pki) -> dict:
    return {"policies": ["Basic256Sha256_SignAndEncrypt"], "cert_file": str(pki.server.certificate),
            "key_file": str(pki.server.private_key), "trusted": [str(pki.ca.certificate)]}


def client_security(pki, client=None, trusted=None, **extra) -> dict:
    client = client or pki.client
    return {"policy": "Basic256Sha256", "mode": "SignAndEncrypt", "cert_file": str(client.certificate),
            "key_file": str(client.private_key), "trusted": [str(trusted or pki.ca.certificate)], **extra}


def test_sign_and_encrypt_with_trusted_certificates(kit, tmp_path, opcua_pki) -> None:
    async def scenario() -> None:
        async with kit.plc_server(security=server_security(opcua_pki)) as plc:
            components = {"secure": kit.source(plc.endpoint, nodes=[kit.node("M1.State")],
                                               security=client_security(opcua_pki))}
            async with kit.real_plant(tmp_path, components) as plant:
                change = await plant.until(lambda: plant.messages("opcua.data_change"), what="a value")
                assert change[0]["value"] == "running"
                status = plant.messages("opcua.source_status")[-1]
                assert status["connected"] and status["security"] == "Basic256Sha256/SignAndEncrypt"
                assert plant.component("secure").session.client.security_policy.Mode == 3  # SignAndEncrypt
            assert plc.trust is not None and plc.trust.refused == 0

    kit.run(scenario())


@pytest.mark.parametrize(("case", "expected"), [
    ("rogue", "the server refused this source's certificate {cert} (CN=rogue-source issued by CN=Rogue CA): "
              "it does not chain to a trusted certificate (BadCertificateUntrusted)"),
    ("expired", "the server refused this source's certificate {cert} (CN=expired-source issued by "
                "CN=Forge Test CA): it is outside its validity period (BadCertificateTimeInvalid)"),
    ("wrong uri", "the server refused this source's certificate {cert} (CN=forge-source issued by "
                  "CN=Forge Test CA): it does not name the application URI its owner announced "
                  "(BadCertificateUriInvalid)"),
    ("untrusted server", "this source refused the server's certificate: it does not chain to a trusted "
                         "certificate (BadCertificateUntrusted; trusted: ['{rogue_ca}'])"),
    ("no such endpoint", "the server offers no Basic256Sha256/Sign endpoint"),
    ("missing file", "security.key_file: /nonexistent/key.pem does not exist"),
])
def test_refused_with_a_clear_error(kit, tmp_path, opcua_pki, case, expected) -> None:
    pki = opcua_pki
    security = {
        "rogue": client_security(pki, pki.rogue_client),
        "expired": client_security(pki, pki.expired_client),
        "wrong uri": client_security(pki, application_uri="urn:someone:else"),
        "untrusted server": client_security(pki, trusted=pki.rogue_ca.certificate),
        "no such endpoint": client_security(pki, mode="Sign"),
        "missing file": {**client_security(pki), "key_file": "/nonexistent/key.pem"},
    }[case]
    cert = security["cert_file"]

    async def scenario() -> None:
        async with kit.plc_server(security=server_security(pki)) as plc, kit.real_plant(
                tmp_path, {"src": kit.source(plc.endpoint, nodes=[kit.node("M1.State")], security=security)}) \
                as plant:
            supervisor = plant.runtime.supervisors["src"]
            await plant.until(lambda: supervisor.last_error, what="the start to fail")
            assert f"opcua.source 'src' ({plc.endpoint}): " in supervisor.last_error
            assert expected.format(cert=cert, rogue_ca=pki.rogue_ca.certificate) in supervisor.last_error
            assert plant.messages("opcua.data_change") == []
            if case in ("rogue", "expired", "wrong uri"):
                assert plc.trust is not None and plc.trust.refused >= 1

    kit.run(scenario())


def test_a_client_without_security_is_told_the_server_has_no_open_endpoint(kit, tmp_path, opcua_pki) -> None:
    async def scenario() -> None:
        async with kit.plc_server(security=server_security(opcua_pki)) as plc, kit.real_plant(
                tmp_path, {"open": kit.source(plc.endpoint, nodes=[kit.node("M1.State")])}) as plant:
            supervisor = plant.runtime.supervisors["open"]
            await plant.until(lambda: supervisor.last_error, what="the start to fail")
            assert (f"opcua.source 'open' ({plc.endpoint}): the server offers no None endpoint (set security to "
                    "one it offers)") in supervisor.last_error
            assert plant.messages("opcua.data_change") == []

    kit.run(scenario())
