from __future__ import annotations

import asyncio

from forge_core.tactics.failover import FailoverContext, FailoverPolicy, RoundRobinFailover


def test_round_robin_spreads_and_skips_unhealthy() -> None:
    async def main() -> None:
        policy = RoundRobinFailover(["a", "b", "c"])
        assert isinstance(policy, FailoverPolicy)
        d1 = await policy.on_down("a", FailoverContext(work=["blade-1", "blade-2"]))
        assert d1.target == "b" and d1.reassigned == ["blade-1", "blade-2"]
        d2 = await policy.on_down("b", FailoverContext(work=["blade-3"]))
        assert d2.target == "c"
        d3 = await policy.on_down("c", FailoverContext(work=["x"]))
        assert d3.target is None and d3.reassigned == [] and "no healthy target" in d3.note
        await policy.on_up("a", FailoverContext())
        await policy.on_up("d", FailoverContext())
        d4 = await policy.on_down("x", FailoverContext(work=[1]))
        assert d4.target in {"a", "d"}
        d5 = await policy.on_down("y", FailoverContext(work=[2]))
        assert {d4.target, d5.target} == {"a", "d"}

    asyncio.run(main())
