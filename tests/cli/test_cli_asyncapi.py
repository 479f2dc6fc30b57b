"""``forge asyncapi``: the document on stdout or in a file, --check against the official schema,
--serve over HTTP, errors naming the plant and profile."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from forge_core.asyncapi import document_errors

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_yaml_to_stdout_and_json_to_a_file(invoke, tmp_path: Path) -> None:
    result = invoke("asyncapi", EXAMPLES / "industry40", "--check")
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.stdout)
    assert doc["asyncapi"] == "3.0.0" and document_errors(doc) == []
    out = tmp_path / "api.json"
    result = invoke("asyncapi", EXAMPLES / "industry40", "--profile", "distributed", "--format", "json", "-o", out)
    assert result.exit_code == 0, result.output
    doc = json.loads(out.read_text())
    assert doc["x-forge-profile"] == "distributed" and set(doc["servers"]) == {"factories", "mqtt", "kafka"}


def test_unknown_plant_and_profile_fail_with_the_reason(invoke, tmp_path: Path) -> None:
    result = invoke("asyncapi", tmp_path / "nowhere")
    assert result.exit_code == 1 and "no plant manifest" in result.output and "nowhere" in result.output
    result = invoke("asyncapi", EXAMPLES / "oee_line", "-p", "cluster")
    assert result.exit_code == 1
    assert "unknown profile 'cluster'; defined profiles: embedded, distributed, chaos" in result.output


def test_serve_answers_over_http(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "forge_core.cli", "asyncapi", str(EXAMPLES / "pasta_plant"),
                             "--serve", "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
                    page = response.read().decode()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
                assert time.monotonic() < deadline, "forge asyncapi --serve did not answer"
                time.sleep(0.5)
        assert "<h1>pasta_plant</h1>" in page and "productionPlan/assignBlade" in page
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/asyncapi.json", timeout=5) as response:
            assert json.loads(response.read())["info"]["title"] == "pasta_plant"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
