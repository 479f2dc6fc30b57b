"""New order ids: drawn from the replica's stream, the first one not stored yet.

Under a virtual clock the stream is seeded (the day replays). A replica revived in the same runtime goes
on with its instance's stream (the scheduler keeps one per instance across lives), but one started on a
database with its earlier orders (a new process, a reused file) draws again the ids stored from it: its
first creation used to test them one ``SELECT`` each, ~a thousand after a day of kills.
:meth:`IdDraw.fresh` tests one id, and when that one is taken, tests the next
:data:`AHEAD` ids of the stream in one statement; the ids drawn ahead and not used yet are kept and
handed out in the stream's order (each tested again when its turn comes), so the ids chosen are the
ones a test per id chose.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from sqlalchemy import Connection

from forge_sched.orders import statements as st
from forge_sched.orders.plain import execute

__all__ = ["AHEAD", "IdDraw", "v4_hex"]

#: how many ids of the stream one statement tests once an id was found taken
AHEAD = st.IDS_AHEAD


def v4_hex(bits: int) -> str:
    """``uuid.UUID(int=bits, version=4).hex`` without the UUID object (the simulation draws one per
    order, and a revived replica hundreds)."""
    bits &= ~(0xC000 << 48)
    bits |= 0x8000 << 48
    bits &= ~(0xF000 << 64)
    bits |= 4 << 76
    return f"{bits:032x}"


class IdDraw:
    def __init__(self, new_id: Callable[[], str]) -> None:
        self.new_id = new_id
        self._ahead: deque[str] = deque()  # drawn from the stream, not handed out yet, oldest first

    def _next(self) -> str:
        return self._ahead.popleft() if self._ahead else self.new_id()

    def fresh(self, conn: Connection) -> str:
        """The stream's next id that no stored order has (in ``conn``'s transaction)."""
        oid = self._next()
        if execute(conn, st.P_ID_TAKEN, {"id": oid}).fetchone() is None:
            return oid
        while True:  # taken: the stream replays stored ids; test the next ones together
            while len(self._ahead) < AHEAD:
                self._ahead.append(self.new_id())
            ahead = self._ahead  # exactly AHEAD ids: it only ever grows here, to AHEAD
            taken = {row[0] for row in execute(conn, st.P_IDS_TAKEN, {f"i{n}": i for n, i in enumerate(ahead)})}
            while ahead and ahead[0] in taken:
                ahead.popleft()
            if ahead:
                return ahead.popleft()
