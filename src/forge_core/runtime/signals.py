"""Running a plant on the real loop until SIGINT/SIGTERM or a duration ends it."""

from __future__ import annotations

import asyncio
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from forge_core.runtime.processes import ProcessRunner
    from forge_core.runtime.runtime import Runtime
    from forge_core.runtime.summary import RunSummary

__all__ = ["run_until_signalled"]

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def run_until_signalled(runtime: Runtime | ProcessRunner, duration: float | None, *,
                              on_started: object = None) -> RunSummary:
    """Run on the real loop; SIGINT/SIGTERM ask the runtime to stop and the run ends with its
    summary. A second signal is handled by Python's defaults (Ctrl-C twice interrupts at once)."""
    loop = asyncio.get_running_loop()
    signalled: list[str] = []

    def stop(sig: signal.Signals) -> None:
        signalled.append(sig.name)
        runtime.request_stop(sig.name)
        for s in _STOP_SIGNALS:
            loop.remove_signal_handler(s)

    for sig in _STOP_SIGNALS:
        loop.add_signal_handler(sig, stop, sig)
    try:
        try:
            await runtime.start()
        except BaseException:
            await runtime.stop()
            raise
        if signalled:  # a signal during start: the stop event did not exist yet
            runtime.request_stop(signalled[0])
        if callable(on_started):
            on_started(runtime)
        return await runtime.run(duration)
    finally:
        for sig in _STOP_SIGNALS:
            loop.remove_signal_handler(sig)
