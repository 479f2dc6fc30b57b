"""status_reporter.grpc with tls: true against a TLS server on 127.0.0.1 (certificates made with
openssl for the test: a CA, a server certificate for IP 127.0.0.1, a client certificate)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import grpc
import pytest
from forge_core.testing import which_or_skip

from forge_sched.grpc import GrpcStatusReporter, StatusReportUnavailable
from forge_sched.settings import GrpcStatusReporterSettings


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run([which_or_skip("openssl"), *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("pki")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2", "-subj", "/CN=forge test CA",
            cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        openssl("req", *ec, "-keyout", f"{who}.key", "-out", f"{who}.csr", "-subj", f"/CN={who}", cwd=d)
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{who}.pem", "-days", "2", "-extfile", f"{who}.ext", cwd=d)
    return d


def server_credentials(pki: Path, *, client_auth: bool) -> grpc.ServerCredentials:
    return grpc.ssl_server_credentials([((pki / "server.key").read_bytes(), (pki / "server.pem").read_bytes())],
                                       root_certificates=(pki / "ca.pem").read_bytes(),
                                       require_client_auth=client_auth)


def test_tls_and_mutual_tls(pki, scheduler, serve, arun) -> None:
    def reporter(port: int, **tls) -> GrpcStatusReporter:
        return GrpcStatusReporter(GrpcStatusReporterSettings(target=f"127.0.0.1:{port}", timeout=2, **tls))

    async def attempt(client: GrpcStatusReporter) -> object:
        try:
            return await client.report("factory-1", "DOWN", "tls", epoch=1, lease="mms")
        except StatusReportUnavailable as exc:
            return exc
        finally:
            await client.aclose()

    async def body() -> dict[str, object]:
        ca = str(pki / "ca.pem")
        mutual = {"tls": True, "ca_cert": ca, "client_cert": str(pki / "client.pem"),
                  "client_key": str(pki / "client.key")}
        async with serve(scheduler, credentials=server_credentials(pki, client_auth=False)) as port:
            tls = await attempt(reporter(port, tls=True, ca_cert=ca))
            plaintext = await attempt(reporter(port))
            untrusted = await attempt(reporter(port, tls=True))  # system roots do not know the test CA
        async with serve(scheduler, credentials=server_credentials(pki, client_auth=True)) as port:
            mtls = await attempt(reporter(port, **mutual))
            no_client_cert = await attempt(reporter(port, tls=True, ca_cert=ca))
        return {"tls": tls, "plaintext": plaintext, "untrusted": untrusted, "mtls": mtls,
                "no_client_cert": no_client_cert}

    got = arun(body)
    assert getattr(got["tls"], "accepted", False) and getattr(got["mtls"], "accepted", False), got
    for refused in ("plaintext", "untrusted", "no_client_cert"):
        assert isinstance(got[refused], StatusReportUnavailable), (refused, got[refused])
