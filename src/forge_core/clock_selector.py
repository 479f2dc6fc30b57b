"""The virtual loop's selector (:mod:`forge_core.clock`): a wait advances virtual time instead."""

from __future__ import annotations

import selectors
from typing import Any


class _VirtualSelector(selectors.BaseSelector):
    """A selector that never waits: a wait of ``timeout`` advances virtual time instead.

    The loop registers its self-pipe here; nothing is ever reported ready, which is fine for a
    single-threaded simulation (``call_soon_threadsafe`` from other threads is not supported).
    """

    def __init__(self, loop_time: list[float]) -> None:
        self._now = loop_time
        self._keys: dict[Any, selectors.SelectorKey] = {}

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        key = selectors.SelectorKey(fileobj, _fd(fileobj), events, data)
        self._keys[fileobj] = key
        return key

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._keys.pop(fileobj)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None:
            raise VirtualClockStalled(_STALLED)
        if timeout > 0:
            self._now[0] += timeout
        return []

    def close(self) -> None:
        self._keys.clear()

    def get_map(self) -> Any:
        return dict(self._keys)


def _fd(fileobj: Any) -> int:
    return fileobj if isinstance(fileobj, int) else fileobj.fileno()


class VirtualClockStalled(RuntimeError):
    """The virtual loop had nothing to do and no timer to jump to."""


_STALLED = ("virtual clock stalled: nothing is scheduled and nothing is ready; "
            "a simulated run needs a deadline (run_until/advance) to end")
