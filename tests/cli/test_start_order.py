"""forge_core.cli.start_order: a handler subscribed in start() must find the state it reads made, since a
broker may deliver a backlog before start() returns (the rule ``forge check-plugin`` applies)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from forge_core.cli.layout import check_plugin
from forge_core.cli.start_order import late_state

REPO = Path(__file__).resolve().parents[2]


def problems_of(tmp_path: Path, source: str) -> list[str]:
    module = tmp_path / "component.py"
    module.write_text(textwrap.dedent(source))
    return [str(p) for p in late_state(module)]


def test_state_set_after_the_subscription_and_read_through_a_property_is_named(tmp_path: Path) -> None:
    found = problems_of(tmp_path, """
        class Scheduler:
            async def start(self):
                self.table = {}
                await self.ctx.subscribe("beats", self.on_beat)
                self.elector = make_elector()

            @property
            def leading(self):
                return self.elector.is_leader

            def on_beat(self, envelope):
                self.table[1] = envelope
                if self._soon():
                    pass

            def _soon(self):
                return self.leading
        """)
    assert found == ["line 6: Scheduler.start() sets self.elector after subscribing on_beat (line 5), which reads it "
                     "(on_beat -> _soon -> leading -> self.elector); a broker may deliver before start() returns: "
                     "set it before subscribing"]


MADE_IN_TIME = {
    "set before subscribing": """
class C:
    async def start(self):
        self.count = 0
        await ctx.subscribe("a", self.on_a)

    def on_a(self, envelope):
        return self.count
""",
    "set in __init__": """
class C:
    def __init__(self):
        self.count = 0

    async def start(self):
        await ctx.subscribe("a", self.on_a)
        self.count = 1

    def on_a(self, envelope):
        return self.count
""",
    "a class attribute": """
class C:
    count = 0

    async def start(self):
        await ctx.subscribe("a", self.on_a)
        self.count = 1

    def on_a(self, envelope):
        return self.count
""",
    "not read by the handler": """
class C:
    async def start(self):
        await ctx.subscribe("a", self.on_a)
        self.count = 1

    def on_a(self, envelope):
        return 1
""",
    "set before its own handler's subscription": """
class C:
    async def start(self):
        await ctx.subscribe("a", self.on_a)
        self.count = 1
        await ctx.subscribe("b", self.on_b)

    def on_a(self, envelope):
        return 1

    def on_b(self, envelope):
        return self.count
""",
}


@pytest.mark.parametrize("case", list(MADE_IN_TIME))
def test_state_made_in_time_or_never_read_by_a_handler_passes(tmp_path: Path, case: str) -> None:
    assert problems_of(tmp_path, MADE_IN_TIME[case]) == []
    late = MADE_IN_TIME[case].replace("return 1", "return self.count")  # a read: caught when it is late
    if case in ("not read by the handler", "set before its own handler's subscription"):
        assert problems_of(tmp_path, late) != []


HELPERS_LATE = {
    "subscribed in a helper, set after it in start()": ("""
class C:
    async def start(self):
        await self._subscribe_all()
        self.table = {}

    async def _subscribe_all(self):
        await self.ctx.subscribe("a", self.on_a)

    def on_a(self, envelope):
        return self.table
""", "line 5: C.start() sets self.table after subscribing on_a (line 4, in _subscribe_all), which reads it "
     "(on_a -> self.table); a broker may deliver before start() returns: set it before subscribing"),
    "set in a helper start() calls after subscribing": ("""
class C:
    async def start(self):
        await self.ctx.subscribe("a", self.on_a)
        self._make_state()

    def _make_state(self):
        self.table = {}

    def on_a(self, envelope):
        return self.table
""", "line 5: C.start() sets self.table in _make_state after subscribing on_a (line 4), which reads it "
     "(on_a -> self.table); a broker may deliver before start() returns: set it before subscribing"),
    "both in one helper, two helpers deep, in that order": ("""
class C:
    async def start(self):
        await self._open()

    async def _open(self):
        await self._wire()

    async def _wire(self):
        await self.ctx.subscribe("a", self.on_a)
        self.table = {}

    def on_a(self, envelope):
        return self.table
""", "line 4: C.start() sets self.table in _open -> _wire after subscribing on_a (line 4, in _open -> _wire), "
     "which reads it (on_a -> self.table); a broker may deliver before start() returns: set it before subscribing"),
}


@pytest.mark.parametrize("case", list(HELPERS_LATE))
def test_a_helper_start_calls_is_read_in_its_place(tmp_path: Path, case: str) -> None:
    source, problem = HELPERS_LATE[case]
    assert problems_of(tmp_path, source) == [problem]


def test_a_helper_that_makes_the_state_before_subscribing_passes_and_recursion_ends(tmp_path: Path) -> None:
    assert problems_of(tmp_path, """
        class C:
            async def start(self):
                self._make_state()
                await self._subscribe_all()
                self.later = 1

            def _make_state(self):
                self.table = {}
                self._make_state()  # calls itself: read once

            async def _subscribe_all(self):
                await self.ctx.subscribe("a", self.on_a)
                self.sub_made = True
                await self._subscribe_all()

            def on_a(self, envelope):
                return self.table
        """) == []


def test_a_module_that_does_not_parse_gives_nothing(tmp_path: Path) -> None:
    assert problems_of(tmp_path, "class Broken(:\n") == []


def test_the_plugin_check_reports_it_with_the_file(tmp_path: Path) -> None:
    """check_plugin applies the rule to every module of the package (the rest of the layout is
    tests/test_plugin_layout.py's)."""
    pkg = tmp_path / "forge_demo" / "src" / "forge_demo"
    (pkg / "components").mkdir(parents=True)
    (pkg / "components" / "late.py").write_text(textwrap.dedent("""
        class Late:
            async def start(self):
                await self.ctx.subscribe("a", self.on_a)
                self.seen = []

            def on_a(self, envelope):
                self.seen.append(envelope)
        """))
    found = [str(p) for p in check_plugin(tmp_path / "forge_demo")]
    assert any("src/forge_demo/components/late.py" in p and "self.seen" in p for p in found), found


def test_no_component_of_the_core_plugins_or_example_plants_breaks_it() -> None:
    roots = [REPO / "src", *sorted((REPO / "plugins").glob("*/src")), *sorted((REPO / "examples").glob("*/src"))]
    found = [f"{module.relative_to(REPO)}: {problem}" for root in roots for module in sorted(root.rglob("*.py"))
             for problem in late_state(module)]
    assert not found, "\n".join(found)


def test_the_repository_check_sees_a_component_of_each_kind() -> None:
    """The scan above reads these (each subscribes in start()), so an empty answer means something."""
    for path in ("plugins/forge_sched/src/forge_sched/components/blade_scheduler.py",
                 "plugins/forge_b2mml/src/forge_b2mml/components/exporter.py",
                 "examples/pasta_plant/src/pasta_plant/components/chaos.py"):
        assert "subscribe(" in (REPO / path).read_text(), path
