"""Which components and instances one process of a plant runs (``--only``).

A replica instance (``machine-1``) runs alone with its true replica index and replica count, so
``machineId`` and the group it shares with its siblings in other processes are the same as when the
whole plant runs in one process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from forge_core.errors import ForgeError

if TYPE_CHECKING:
    from forge_core.manifest import Manifest


def select_components(manifest: Manifest, only: Iterable[str] | None) -> tuple[list[str], dict[str, list[int]]]:
    """The components to run, in manifest order, and the replica indices of each replicated component
    of which ``only`` names single instances (``machine-1``): it runs just those.

    ``only`` names components, replica instances or groups (comma-separated items allowed); a name
    that is none of these is refused with what the plant has."""
    components = manifest.components
    replicas: dict[str, list[int]] = {}
    if not only:
        return list(components), replicas
    wanted = [name.strip() for item in only for name in item.split(",") if name.strip()]
    groups = {spec.group or spec.name for spec in components.values()}
    instances = {f"{name}-{i}": (name, i) for name, spec in components.items() if spec.replicas > 1
                 for i in range(spec.replicas)}
    unknown = [w for w in wanted if w not in components and w not in groups and w not in instances]
    if unknown:
        raise ForgeError(
            f"--only names {', '.join(map(repr, unknown))}, which is neither a component, a replica instance "
            f"nor a group of plant {manifest.name!r}; components: {', '.join(components)}; instances: "
            f"{', '.join(instances) or 'none'}; groups: {', '.join(sorted(groups))}"
        )
    whole = {name for name, spec in components.items() if name in wanted or (spec.group or name) in wanted}
    for w in wanted:
        if w in instances and instances[w][0] not in whole:
            replicas.setdefault(instances[w][0], []).append(instances[w][1])
    return [name for name in components if name in whole or name in replicas], replicas


def selected_instances(manifest: Manifest, only: list[str], replicas: dict[str, list[int]]) -> list[str]:
    """The instances a process runs: ``machine-1`` for a replica selected alone, every replica's name
    for a whole replicated component, the bare name otherwise."""
    names: list[str] = []
    for name in only:
        count = manifest.components[name].replicas
        indices = replicas.get(name, range(count))
        names += [name] if count == 1 else [f"{name}-{i}" for i in indices]
    return names
