"""``runtime.http.ports`` / ``runtime.grpc.ports``: a fixed port per component instance.

One process serves one HTTP and one gRPC port (``runtime.http.port``, ``runtime.grpc.port``). With
``processes: per_component`` every instance is its own process on one host, so replicas cannot share
a fixed port. ``ports`` maps an instance to its own port::

    runtime:
      http: {port: 0, ports: {pms: 8101, bridge: 8110}}   # pms-0 8101, pms-1 8102, bridge 8110
      grpc: {ports: {pms-0: 50051, pms-1: 50052}}

A key is an instance (``pms-1``; a component without replicas is its own instance) or a replicated
component, whose replicas get consecutive ports from the one given (``pms: 8101`` -> ``pms-0`` 8101,
``pms-1`` 8102). Why a map and not "a base port plus the instance's index among the processes": an
instance's port must not move when a component is added, removed, put in ``in_parent`` or starts
serving HTTP, since firewall rules, load balancers and grpcurl scripts name it. With a map it moves
only when that entry is edited, and adding a replica gives it the next port.

The map applies to every process that runs exactly one instance: each child of a ``per_component``
run, and ``forge run --only pms-1`` on a host of its own (docs/deploy.md), so the two deployments
bind the same ports. Any other process (the whole plant, the ``per_component`` parent with its
``in_parent`` components, ``--only a,b``) and an instance not in the map use ``port``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from forge_core.manifest.model import DocPath, Issue, instance_names

__all__ = ["SERVERS", "expand_ports", "port_for", "port_issues"]

#: the runtime's servers that take a per-instance map, with the name a message gives them
SERVERS = {"http": "HTTP", "grpc": "gRPC"}


def expand_ports(ports: Mapping[str, int], replicas: Mapping[str, int]) -> dict[str, int]:
    """Instance -> port: a replicated component's key gives its replicas consecutive ports.
    ``replicas`` is component -> replica count. Keys naming nothing are left out (validation reports them)."""
    out: dict[str, int] = {}
    for key, port in ports.items():
        count = replicas.get(key)
        if count is not None and count > 1:
            out.update({f"{key}-{i}": port + i for i in range(count)})
        elif count is not None or _instance_of(key, replicas) is not None:
            out[key] = port
    return out


def port_for(ports: Mapping[str, int], default: int, instances: Iterable[str]) -> int:
    """The port a process running ``instances`` (instance names) binds: its own when it runs exactly
    one instance the expanded map names, else ``default``."""
    names = list(instances)
    return ports.get(names[0], default) if len(names) == 1 else default


def _instance_of(key: str, replicas: Mapping[str, int]) -> str | None:
    """The component of replica instance ``key`` (``pms-1`` -> ``pms``), or None."""
    name, _, index = key.rpartition("-")
    return name if index.isdigit() and int(index) < replicas.get(name, 0) and replicas[name] > 1 else None


def _instances(replicas: Mapping[str, int], components: Iterable[str]) -> list[str]:
    return [inst for name in components for inst in instance_names(name, replicas[name])]


def port_issues(runtime: Any, components: Any) -> list[Issue]:
    """What is wrong with ``runtime.http.ports`` / ``runtime.grpc.ports`` in a manifest document (the
    schema passed or not): keys that name no instance, an in_parent component, an instance given twice,
    replica ranges past 65535, and under ``per_component`` two processes on one port (HTTP, gRPC and
    health share the host's TCP ports, so an HTTP port equal to a gRPC port collides too, and a fixed
    ``runtime.health.port`` is bound by every process)."""
    runtime = runtime if isinstance(runtime, dict) else {}
    components = components if isinstance(components, dict) else {}
    replicas = {name: _replicas(spec) for name, spec in components.items()}
    in_parent_raw = runtime.get("in_parent")
    in_parent = {n for n in in_parent_raw if isinstance(n, str)} if isinstance(in_parent_raw, list) else set()
    issues: list[Issue] = []
    expanded: dict[str, dict[str, int]] = {}
    for server, label in SERVERS.items():
        section = runtime.get(server)
        ports = section.get("ports") if isinstance(section, dict) else None
        if not isinstance(ports, dict):
            continue
        where: DocPath = ("runtime", server, "ports")
        known = _instances(replicas, components)
        given: dict[str, str] = {}  # instance -> the key that gave it its port
        for key, port in ports.items():
            path: DocPath = (*where, key)
            if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                continue  # the schema names it
            component = key if key in replicas else _instance_of(str(key), replicas)
            if component is None:
                issues.append(
                    Issue(
                        path,
                        f"{key!r} is not a component instance of this plant; instances: "
                        f"{', '.join(known) or 'none'} (a replicated component's name gives "
                        "its replicas consecutive ports)",
                    )
                )
                continue
            if component in in_parent:
                issues.append(
                    Issue(
                        path,
                        f"{key!r} runs in the supervising parent (runtime.in_parent), which "
                        f"serves on runtime.{server}.port; give it no port of its own here",
                    )
                )
                continue
            last = port + max(replicas[key], 1) - 1 if key in replicas else port
            if last > 65535:
                issues.append(
                    Issue(
                        path,
                        f"{key!r} has {replicas[key]} replicas: ports {port}-{last} go past "
                        "65535; give a lower first port",
                    )
                )
                continue
            for inst in expand_ports({key: port}, replicas):
                if inst in given:
                    issues.append(
                        Issue(
                            path,
                            f"instance {inst!r} is given {'an' if label == 'HTTP' else 'a'} {label} port by both "
                            f"{given[inst]!r} and {key!r}; keep one",
                        )
                    )
                given.setdefault(inst, str(key))
        expanded[server] = expand_ports(
            {k: p for k, p in ports.items() if isinstance(p, int) and not isinstance(p, bool) and 1 <= p <= 65535},
            replicas,
        )
    if runtime.get("processes") == "per_component":
        issues += _collisions(runtime, replicas, in_parent, expanded)
    return issues


def _replicas(spec: Any) -> int:
    count = spec.get("replicas", 1) if isinstance(spec, dict) else 1
    return count if isinstance(count, int) and not isinstance(count, bool) and count >= 1 else 1


def _collisions(
    runtime: dict[str, Any], replicas: dict[str, int], in_parent: set[str], expanded: dict[str, dict[str, int]]
) -> list[Issue]:
    """Two processes of one host that would bind one port: each child's HTTP and gRPC port, and the
    parent's (runtime.http.port / runtime.grpc.port) when it runs in_parent components. A process binds
    a port only once a component serves there, which no manifest says, so any process that could is counted."""
    processes = _instances(replicas, [n for n in replicas if n not in in_parent])
    if in_parent:
        processes.append("the parent")
    binders: dict[int, list[tuple[str, str, DocPath]]] = {}
    for server in SERVERS:
        section = runtime.get(server)
        base = section.get("port", 0) if isinstance(section, dict) else 0
        base = base if isinstance(base, int) and not isinstance(base, bool) else 0
        ports = expanded.get(server, {})
        raw = section.get("ports") if isinstance(section, dict) else None
        for process in processes:
            port = ports.get(process, base)
            if port == 0:
                continue  # a free port, picked by the system
            key = _key_for(process, raw, replicas) if process in ports else None
            path: DocPath = ("runtime", server, "ports", key) if key is not None else ("runtime", server, "port")
            binders.setdefault(port, []).append((process, server, path))
    # the health server takes no per-instance map: every process of the plant serves /health on
    # runtime.health.port, so a fixed one is bound by each child (and the parent with in_parent ones)
    health = runtime.get("health", True)
    health_port = health.get("port", 0) if isinstance(health, dict) else 0
    if isinstance(health_port, int) and not isinstance(health_port, bool) and health_port != 0:
        for process in processes:
            binders.setdefault(health_port, []).append((process, "health", ("runtime", "health", "port")))
    labels = {**SERVERS, "health": "health"}
    issues: list[Issue] = []
    for port, who in sorted(binders.items()):
        if len(who) < 2:
            continue
        names = ", ".join(f"{process} ({labels[server]})" for process, server, _ in who)
        fields = sorted({".".join(map(str, path)) for _, _, path in who})
        fix = "give each instance its own port under runtime.http.ports / runtime.grpc.ports, or 0 for a free one"
        if any(server == "health" for _, server, _ in who):
            fix = (
                "runtime.health.port is served by every process of a per_component plant: set it to 0 "
                "(each process a free port) or give HTTP and gRPC other ports"
            )
        issues.append(
            Issue(
                who[-1][2],
                f"port {port} would be bound by {len(who)} processes of this per_component "
                f"plant: {names} (from {', '.join(fields)}); {fix}",
            )
        )
    return issues


def _key_for(instance: str, ports: Any, replicas: Mapping[str, int]) -> str | None:
    """The key of ``ports`` that gave ``instance`` its port (itself, or its replicated component)."""
    if isinstance(ports, dict) and instance in ports:
        return instance
    component = _instance_of(instance, replicas)
    return component if isinstance(ports, dict) and component in ports else None
