"""Which components and instances one process runs (``--only``), on the selection functions alone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from forge_core.errors import ForgeError
from forge_core.runtime.selection import select_components, selected_instances


def manifest() -> SimpleNamespace:
    def spec(name: str, replicas: int = 1, group: str | None = None) -> SimpleNamespace:
        return SimpleNamespace(name=name, replicas=replicas, group=group)

    return SimpleNamespace(name="plant", components={"sched": spec("sched"), "m": spec("m", 3, "line"),
                                                     "chaos": spec("chaos", 1, "line")})


def test_everything_without_only_and_in_manifest_order():
    m = manifest()
    assert select_components(m, None) == (["sched", "m", "chaos"], {})
    assert selected_instances(m, ["sched", "m", "chaos"], {}) == ["sched", "m-0", "m-1", "m-2", "chaos"]


def test_groups_comma_lists_and_single_replicas():
    m = manifest()
    assert select_components(m, ["line"]) == (["m", "chaos"], {})
    assert select_components(m, ["chaos, sched"]) == (["sched", "chaos"], {})
    names, replicas = select_components(m, ["m-2,m-0"])
    assert (names, replicas) == (["m"], {"m": [2, 0]})
    assert selected_instances(m, names, replicas) == ["m-2", "m-0"]
    assert select_components(m, ["m-1", "m"]) == (["m"], {})  # the whole component wins over one instance


def test_an_unknown_name_is_refused_with_what_the_plant_has():
    with pytest.raises(ForgeError, match=r"--only names 'm-3'.*components: sched, m, chaos; instances: m-0, m-1, "
                                         r"m-2; groups: line, sched"):
        select_components(manifest(), ["m-3"])
