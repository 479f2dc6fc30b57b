"""The multi-process runner: one OS process per component instance, SIGKILL and revive, restart
with backoff, crash-loop give-up, SIGTERM to the parent stops every child with a merged summary."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from forge_core.plant import load_plant
from forge_core.runtime.processes import ProcessRunner
from tests.conftest import MACHINE_PLUGIN

PLUGIN = MACHINE_PLUGIN.replace("@hookimpl", '''
class Exiter(Component):
    """Its process dies at once: a crash the parent must see."""

    async def start(self):
        import os
        os._exit(3)


@hookimpl
def forge_plant_checks(summary):
    from forge_core import Check

    return [Check("plant: instances seen", True, ", ".join(sorted(summary.components)))]


@hookimpl''', 1).replace('registry.add("test.machine", Machine)',
                         'registry.add("test.machine", Machine)\n    registry.add("test.exiter", Exiter)')

MANIFEST = """
version: 1
plant: {name: procs}
local_plugins: [machines.py]
schemas: [schemas]
transports: {bus: {type: memory}}
components:
  m1: {type: test.machine, params: {interval: 0.2}, replicas: 2}
  m2: {type: test.machine, params: {interval: 0.2}}
runtime:
  processes: per_component
  health: {port: false}
  restart: {initial_backoff: 0.2, max_backoff: 0.4, max_restarts: 2, window: 60.0}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: false}
"""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie not yet reaped by its parent counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def up(child) -> bool:
    """Every life of ``child`` got as far as running its component (a SIGTERM before that kills it
    while Python is still importing, without a summary)."""
    return child.log_path.read_text(errors="replace").count("running plant") == len(child.lives)


async def until(predicate, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def test_children_are_os_processes_killed_revived_and_restarted(plant_dir):
    path = plant_dir(MANIFEST, plugin=PLUGIN)
    plugins, manifest = load_plant(path / "plant.yaml")

    async def scenario():
        runner = ProcessRunner(manifest, plugins, plant_path=path, stop_timeout=10)
        await runner.start()
        children = runner.children
        await until(lambda: all(map(up, children.values())), timeout=60)
        assert sorted(children) == ["m1-0", "m1-1", "m2"]
        pids = {name: c.pid for name, c in children.items()}
        assert len(set(pids.values())) == 3 and os.getpid() not in pids.values()
        assert runner.runtime.instances() == ["m1-0", "m1-1", "m2"]

        await runner.runtime.kill("m1-1")  # chaos: SIGKILL, no restart until revive
        assert children["m1-1"].state == "killed" and not alive(pids["m1-1"])
        assert children["m1-1"].lives[-1].code == -signal.SIGKILL
        runner.runtime.revive("m1-1")
        await until(lambda: children["m1-1"].pid not in (None, pids["m1-1"]))

        os.kill(pids["m2"], signal.SIGKILL)  # a crash: the parent restarts it after the backoff
        await until(lambda: children["m2"].restarts == 1 and children["m2"].pid not in (None, pids["m2"]))
        await until(lambda: all(map(up, children.values())), timeout=60)
        await asyncio.sleep(1.0)  # let the new lives publish
        summary = await runner.stop()
        return summary

    summary = asyncio.run(scenario())
    assert summary.components == {"m1-0": "stopped", "m1-1": "stopped", "m2": "stopped"}, summary.extra
    assert summary.restarts == {"m2": 1}
    assert summary.checks_passed, [c for c in summary.checks if not c.passed]
    assert summary.published["test.reading"] > 10
    procs = summary.extra["processes"]
    assert procs["m1-1"]["kills"] == 1 and len(procs["m1-1"]["pids"]) == 2
    assert not any(alive(pid) for p in procs.values() for pid in p["pids"])


def test_a_child_that_keeps_dying_is_given_up(plant_dir):
    manifest = MANIFEST.replace("m2: {type: test.machine, params: {interval: 0.2}}", "m2: {type: test.exiter}")
    path = plant_dir(manifest, plugin=PLUGIN)
    plugins, loaded = load_plant(path / "plant.yaml")

    async def scenario():
        runner = ProcessRunner(loaded, plugins, plant_path=path, stop_timeout=10)
        await runner.start()
        await until(lambda: runner.children["m2"].state == "failed", timeout=60)
        await until(lambda: up(runner.children["m1-0"]) and up(runner.children["m1-1"]), timeout=60)
        return await runner.stop()

    summary = asyncio.run(scenario())
    assert summary.failed == ["m2"]
    assert summary.extra["processes"]["m2"]["exit_codes"] == [3, 3, 3]  # max_restarts 2: the third exit gives up
    assert summary.extra["processes"]["m2"]["last_error"] == "exited with code 3"
    assert summary.components["m1-0"] == "stopped"


def test_sigterm_to_forge_run_stops_every_child_and_prints_one_summary(plant_dir):
    path = plant_dir(MANIFEST, plugin=PLUGIN)
    parent = subprocess.Popen([sys.executable, "-m", "forge_core.cli", "run", str(path), "--json"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        logs = path / ".forge" / "processes"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not all(
                (logs / f"{n}.log").exists() and "running plant" in (logs / f"{n}.log").read_text(errors="replace")
                for n in ("m1-0", "m1-1", "m2")):
            time.sleep(0.1)
        time.sleep(2.0)
        parent.send_signal(signal.SIGTERM)
        out, err = parent.communicate(timeout=60)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 0, err[-3000:]
    summary = json.loads(out)
    assert summary["components"] == {"m1-0": "stopped", "m1-1": "stopped", "m2": "stopped"}
    assert summary["stop_reason"] == "SIGTERM"
    assert summary["published"]["test.reading"] > 5
    pids = [pid for p in summary["extra"]["processes"].values() for pid in p["pids"]]
    assert len(pids) == 3 and not any(alive(pid) for pid in pids)


@pytest.mark.parametrize("only", ["m1-1", "m1"])
def test_only_runs_in_process_even_with_per_component(plant_dir, only):
    path = plant_dir(MANIFEST, plugin=PLUGIN)
    result = subprocess.run([sys.executable, "-m", "forge_core.cli", "run", str(path), "--only", only, "--json",
                             "--duration", "1s", "--data-dir", str(path / "d")], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout)
    assert sorted(summary["components"]) == (["m1-1"] if only == "m1-1" else ["m1-0", "m1-1"])
    assert "processes" not in summary["extra"]


def test_a_killed_instance_s_checks_are_listed_as_not_run_never_absent(plant_dir):
    """Issue 11 §5: a life SIGKILLed by chaos writes no summary; its checks say when it was killed."""
    path = plant_dir(MANIFEST, plugin=PLUGIN)
    plugins, manifest = load_plant(path / "plant.yaml")

    async def scenario():
        runner = ProcessRunner(manifest, plugins, plant_path=path, stop_timeout=10)
        await runner.start()
        await until(lambda: all(map(up, runner.children.values())), timeout=60)
        before = time.time()
        await runner.runtime.kill("m1-1")  # dead at the end: never revived
        return before, await runner.stop()

    before, summary = asyncio.run(scenario())
    assert summary.components["m1-1"] == "killed"
    mine = [c for c in summary.checks if c.component == "m1-1"]
    assert mine, f"m1-1's checks are absent: {[(c.component, c.name) for c in summary.checks]}"
    sibling = {c.name for c in summary.checks if c.component == "m1-0"}
    assert {c.name for c in mine} == (sibling or {"checks"})
    for check in mine:
        assert check.detail.startswith("not run: killed at "), check
        at = check.detail.removeprefix("not run: killed at ").split(" ")[0]
        from datetime import datetime
        assert before - 1 <= datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() <= time.time()
    assert summary.not_run == mine and summary.to_dict()["checks_not_run"] == len(mine)
    # the whole-plant checks ran once, in the parent, over the merged summary; never in a child
    seen = [c for c in summary.checks if c.name == "plant: instances seen"]
    assert [(c.component, c.detail) for c in seen] == [("plant", "m1-0, m1-1, m2")], seen


LETTERS_PLUGIN = PLUGIN.replace("@hookimpl\ndef forge_register_components(registry):", '''
class Letterer(Component):
    """Puts ``count`` dead letters on its process's channel at start, from one topic each."""

    params_schema = {"type": "object", "properties": {"count": {"type": "integer"}}}

    async def start(self):
        from forge_core import DeadLetter

        for i in range(self.params["count"]):
            self.ctx.bus.dead_letters.put(DeadLetter("refused", "test letter", f"junk/{self.name}/{i}", "bus",
                                                     self.ctx.clock.time(), [], self.name, None, "x"))


@hookimpl
def forge_register_components(registry):
    registry.add("test.letterer", Letterer)''', 1)


def test_every_child_s_dead_letters_are_summed_in_the_parent_summary(plant_dir):
    """Issue 11 §3: the dead-letter accounting (recorded, dropped, quarantined, ...) of every process
    is in the merged summary, with a check that each letter is accounted for; before, only the
    reasons' counts were merged and the accounting of the children was lost."""
    manifest = MANIFEST.replace("m2: {type: test.machine, params: {interval: 0.2}}",
                                "letters: {type: test.letterer, params: {count: 7}, replicas: 2}")
    path = plant_dir(manifest, plugin=LETTERS_PLUGIN)
    plugins, loaded = load_plant(path / "plant.yaml")

    async def scenario():
        runner = ProcessRunner(loaded, plugins, plant_path=path, stop_timeout=10)
        await runner.start()
        await until(lambda: all(map(up, runner.children.values())), timeout=60)
        await asyncio.sleep(0.5)
        return await runner.stop()

    summary = asyncio.run(scenario())
    assert summary.dead_letters == {"refused": 14}
    merged = summary.extra["dead_letters"]
    assert merged["total"] == 14 and merged["by_process"]["letters-0"] == 7 and merged["by_process"]["letters-1"] == 7
    assert merged["quarantined"] + merged["offered"] == 14 and merged["published"] == 14, merged  # no SQL here
    assert merged["lives_without_summary"] == 0
    check = next(c for c in summary.checks if c.name == "every dead letter accounted for")
    assert check.passed, check


# runtime.http.ports / runtime.grpc.ports (forge_core.manifest.ports): each child its own fixed port
SERVING_PLUGIN = '''
import json
from pathlib import Path

import grpc
from forge_core import Component, hookimpl
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


class Echo:
    def __init__(self, name):
        self.name = name

    async def Say(self, request, context):
        return self.name.encode()


def add_echo(servicer, server):
    handler = grpc.unary_unary_rpc_method_handler(servicer.Say)
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.v1.Echo", {"Say": handler}),))


class Api(Component):
    """Serves its name over HTTP and gRPC and writes where it serves, as a component announces it."""

    async def start(self):
        async def who(request):
            return JSONResponse({"instance": self.name})

        await self.ctx.http.mount("/who", Starlette(routes=[Route("/", who)]))
        await self.ctx.grpc.add(add_echo, Echo(self.name), "test.v1.Echo")
        where = {"http": self.ctx.http.url, "grpc": self.ctx.grpc.target}
        Path(self.params["out"], f"{self.name}.json").write_text(json.dumps(where))


@hookimpl
def forge_register_components(registry):
    registry.add("test.api", Api)
'''

SERVING = """
version: 1
plant: {name: ports}
local_plugins: [machines.py]
transports: {bus: {type: memory}}
components:
  api: {type: test.api, replicas: 3, params: {out: "{plant_dir}"}}
runtime:
  processes: per_component
  health: {port: false}
  http: {port: 0, ports: {api-0: HTTP0, api-1: HTTP1}}
  grpc: {ports: {api-0: GRPC0, api-1: GRPC1}}
storage: {url: "sqlite:///{plant_dir}/plant.db", migrate_on_start: false}
"""


def free_ports(count: int) -> list[int]:
    """Ports free right now: bound to 0 together (so distinct), then released for the children."""
    import socket

    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


async def answers(http: str, grpc_target: str) -> tuple[int, str, str, int]:
    """(GET /health status, GET /who's instance, test.v1.Echo/Say's answer, gRPC health of the server)."""
    import grpc
    import httpx
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    async with httpx.AsyncClient(timeout=10) as client:
        health = (await client.get(f"{http}/health")).status_code
        who = (await client.get(f"{http}/who/")).json()["instance"]
    async with grpc.aio.insecure_channel(grpc_target) as channel:
        said = (await channel.unary_unary("/test.v1.Echo/Say")(b"", timeout=10)).decode()
        status = (await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""),
                                                                   timeout=10)).status
    return health, who, said, status


def test_each_child_serves_http_and_grpc_on_its_configured_port(plant_dir):
    """api-0 and api-1 bind the ports the manifest gives them; api-2, not in the maps, a free port (0)
    and says which (what a component announces, e.g. forge-sched's sched.endpoint, is the bound one).
    With runtime.metrics.listen each child's /metrics is on that same one HTTP server."""
    pytest.importorskip("grpc")
    http0, http1, grpc0, grpc1 = free_ports(4)
    manifest = (SERVING.replace("HTTP0", str(http0)).replace("HTTP1", str(http1))
                .replace("GRPC0", str(grpc0)).replace("GRPC1", str(grpc1))
                .replace("  health: {port: false}", '  health: {port: false}\n  metrics: {listen: "127.0.0.1:0"}'))
    path = plant_dir(manifest, plugin=SERVING_PLUGIN)
    plugins, loaded = load_plant(path / "plant.yaml")
    from grpc_health.v1 import health_pb2

    async def scenario():
        runner = ProcessRunner(loaded, plugins, plant_path=path, stop_timeout=10)
        await runner.start()
        try:
            await until(lambda: all((path / f"api-{i}.json").exists() for i in range(3)), timeout=90)
            where = {f"api-{i}": json.loads((path / f"api-{i}.json").read_text()) for i in range(3)}
            got = {name: await answers(w["http"], w["grpc"]) for name, w in where.items()}
            import httpx

            async with httpx.AsyncClient(timeout=10) as client:
                metrics = (await client.get(f"http://127.0.0.1:{http0}/metrics")).text
            pids = {name: c.pid for name, c in runner.children.items()}
        finally:
            summary = await runner.stop()
        return where, got, pids, summary, metrics

    where, got, pids, summary, metrics = asyncio.run(scenario())
    assert "# TYPE forge_" in metrics, metrics[:500]  # Forge's own instruments, not some other server
    assert where["api-0"] == {"http": f"http://127.0.0.1:{http0}", "grpc": f"127.0.0.1:{grpc0}"}
    assert where["api-1"] == {"http": f"http://127.0.0.1:{http1}", "grpc": f"127.0.0.1:{grpc1}"}
    free_http, free_grpc = int(where["api-2"]["http"].rsplit(":", 1)[1]), int(where["api-2"]["grpc"].rsplit(":", 1)[1])
    assert 0 not in (free_http, free_grpc) and not {free_http, free_grpc} & {http0, http1, grpc0, grpc1}
    for name, (health, who, said, status) in got.items():  # each port is answered by its own instance
        assert (health, who, said, status) == (200, name, name, health_pb2.HealthCheckResponse.SERVING), name
    assert len(set(pids.values())) == 3  # three OS processes
    assert summary.checks_passed, [c for c in summary.checks if not c.passed]


def test_only_one_instance_binds_its_port_in_process_and_the_whole_plant_the_base_port(plant_dir):
    """--only api-1 (a host of its own, docs/deploy.md) binds api-1's ports, as its per_component child
    does; the whole plant in one process binds runtime.http.port (0 here: a free one)."""
    pytest.importorskip("grpc")
    http0, http1, grpc0, grpc1 = free_ports(4)
    manifest = (SERVING.replace("HTTP0", str(http0)).replace("HTTP1", str(http1))
                .replace("GRPC0", str(grpc0)).replace("GRPC1", str(grpc1)))
    path = plant_dir(manifest, plugin=SERVING_PLUGIN)
    plugins, loaded = load_plant(path / "plant.yaml")
    from forge_core.runtime import Runtime

    async def scenario(only):
        runtime = Runtime(loaded, plugins, only=only)
        await runtime.start()
        try:
            return runtime.http.url, runtime.grpc.target
        finally:
            await runtime.stop()

    assert asyncio.run(scenario(["api-1"])) == (f"http://127.0.0.1:{http1}", f"127.0.0.1:{grpc1}")
    url, target = asyncio.run(scenario(None))
    assert not {int(url.rsplit(":", 1)[1]), int(target.rsplit(":", 1)[1])} & {http0, http1, grpc0, grpc1}
