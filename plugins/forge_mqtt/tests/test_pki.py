"""forge_mqtt.pki: the test PKI's layout, what each certificate says, idempotence, rotation,
revocation, and its command line (scripts/certs.py)."""

from __future__ import annotations

import datetime as dt
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from forge_mqtt.pki import CA_NAME, Pki, main

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "certs.py"


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def usage(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return Pki.create(tmp_path_factory.mktemp("pki"), ["edge-1", "analytics-0"], expired=["edge-1"],
                      revoked=["edge-9"], wrong_ca=["edge-1"])


def test_the_layout_is_fixed(pki: Pki) -> None:
    files = sorted(p.relative_to(pki.root).as_posix() for p in pki.root.rglob("*") if p.is_file())
    assert files == ["ca.key", "ca.pem", "clients/analytics-0.key", "clients/analytics-0.pem", "clients/edge-1.key",
                     "clients/edge-1.pem", "crl.pem", "expired/edge-1.key", "expired/edge-1.pem",
                     "revoked/edge-9.key", "revoked/edge-9.pem", "server.key", "server.pem", "wrong-ca/ca.key",
                     "wrong-ca/ca.pem", "wrong-ca/edge-1.key", "wrong-ca/edge-1.pem"]
    assert pki.clients() == ["analytics-0", "edge-1"]
    for key in pki.root.rglob("*.key"):
        assert stat.S_IMODE(key.stat().st_mode) == 0o600, key


def test_certificates_say_who_they_are_and_who_signed_them(pki: Pki) -> None:
    ca = pki.ca.load()
    assert cn(ca) == CA_NAME and ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    server = pki.server.load()
    server.verify_directly_issued_by(ca)
    assert cn(server) == "localhost" and usage(server) == [ExtendedKeyUsageOID.SERVER_AUTH]
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    client = pki.client("edge-1").load()
    client.verify_directly_issued_by(ca)
    assert cn(client) == "edge-1" and usage(client) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert not client.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    now = dt.datetime.now(dt.UTC)
    assert client.not_valid_before_utc < now < client.not_valid_after_utc
    expired = pki.expired("edge-1").load()
    expired.verify_directly_issued_by(ca)
    assert expired.not_valid_after_utc < now


def test_the_wrong_ca_has_the_real_ones_name_but_not_its_key(pki: Pki) -> None:
    real, other = pki.ca.load(), pki.wrong_ca_root.load()
    assert real.subject == other.subject
    impostor = pki.wrong_ca("edge-1").load()
    assert impostor.issuer == real.subject  # by name it claims the real CA...
    with pytest.raises(Exception):  # ...whose key did not sign it  # noqa: B017
        impostor.verify_directly_issued_by(real)
    impostor.verify_directly_issued_by(other)


def test_the_revoked_certificate_is_in_the_crl(pki: Pki) -> None:
    crl = x509.load_pem_x509_crl(pki.crl.read_bytes())
    assert crl.is_signature_valid(pki.ca.load().public_key())
    revoked = pki.revoked("edge-9").load()
    assert crl.get_revoked_certificate_by_serial_number(revoked.serial_number) is not None
    assert crl.get_revoked_certificate_by_serial_number(pki.client("edge-1").load().serial_number) is None
    assert crl.next_update_utc is not None and crl.next_update_utc > dt.datetime.now(dt.UTC) + dt.timedelta(days=29)


def test_create_keeps_what_exists_and_adds_what_is_missing(tmp_path: Path) -> None:
    first = Pki.create(tmp_path, ["edge-1"])
    ca, client = first.ca.cert.read_bytes(), first.client("edge-1").cert.read_bytes()
    again = Pki.create(tmp_path, ["edge-1", "edge-2"])
    assert again.ca.cert.read_bytes() == ca and again.client("edge-1").cert.read_bytes() == client
    again.client("edge-2").load().verify_directly_issued_by(again.ca.load())


def test_issue_rotates_a_client_and_revoke_lists_the_old_one(tmp_path: Path) -> None:
    pki = Pki.create(tmp_path, ["edge-1"])
    old = pki.client("edge-1").load()
    old_key = pki.client("edge-1").key.read_bytes()
    pki.issue("edge-1")
    new = pki.client("edge-1").load()
    assert new.serial_number != old.serial_number and pki.client("edge-1").key.read_bytes() != old_key
    new.verify_directly_issued_by(pki.ca.load())
    pki.revoke(old)
    pki.revoke(old)  # once in the list
    assert pki.revoked_serials() == {old.serial_number}
    pki.refresh_crl(crl_days=2)
    crl = x509.load_pem_x509_crl(pki.crl.read_bytes())
    assert {r.serial_number for r in crl} == {old.serial_number}
    assert crl.next_update_utc is not None and crl.next_update_utc < dt.datetime.now(dt.UTC) + dt.timedelta(days=3)


def test_a_certificate_of_another_ca_cannot_be_revoked(pki: Pki) -> None:
    with pytest.raises(ValueError, match="was not issued by"):
        pki.revoke(pki.wrong_ca("edge-1").cert)


@pytest.mark.parametrize("bad", ["", "a/b", "edge+", "edge#", " edge", ".."])
def test_a_cn_that_would_break_acl_patterns_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="certificate CN"):
        Pki.create(tmp_path, [bad])


def test_command_line_create_issue_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "certs"
    assert main(["create", str(root), "edge-1", "--server-name", "broker.plant", "--server-name", "10.0.0.5",
                 "--expired", "edge-1"]) == 0
    assert "clients: edge-1" in capsys.readouterr().out
    names = Pki(root).server.load().extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["broker.plant"]
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.5"]
    old = Pki(root).client("edge-1").load().serial_number
    assert main(["issue", str(root), "edge-1"]) == 0
    assert Pki(root).client("edge-1").load().serial_number != old
    assert main(["revoke", str(root), "edge-1"]) == 0
    assert "reload the broker" in capsys.readouterr().out
    assert Pki(root).revoked_serials() == {Pki(root).client("edge-1").load().serial_number}
    assert main(["revoke", str(root), "nobody"]) == 1
    assert "certs.py revoke" in capsys.readouterr().out


def test_the_script_runs(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "create", str(tmp_path / "c"), "edge-1"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert Pki(tmp_path / "c").client("edge-1").exists
