"""The distributed Industry 4.0 plant end to end: real Mosquitto, Kafka and PostgreSQL; every component
instance its own OS process (``--profile distributed``); chaos in the parent stops, degrades and
flaps factories and SIGKILLs the MMS leader and the PMS leader, reviving them 8-16 s later; the test
SIGKILLs each ERP process mid-exchange (the parent restarts it): the ERP link twice, the HTTP inbox
just before a schedule is POSTed to it, the drop folder's process twice (once while a file may be
being picked up, once leaving a claimed file in ``processing/``, as a kill between claim and import
does) and the exporter while the ERP's orders complete. Chaos does not kill these: each runs as one
instance, and chaos kills only a replica whose service another live replica carries on.

While it runs, the test is a user without Forge: a plain MQTT client beats as ``factory/9``, curl
posts and reads orders, a ten-line grpcio client reports statuses, and each edge gets bad input
(malformed heartbeats and order events on MQTT, malformed REST bodies, invalid gRPC reports). The ERP
exchange runs too, each piece a process: the simulated ERP sends schedules, re-sends, Change/Cancel/Get
by folder and HTTP, and the test, as an ERP's operator, drops a B2MML schedule into ``inbox/``, POSTs
one with curl, and sends a malformed one both ways.
Results come from the merged ``--json`` summary, a raw paho subscriber on ``#`` (what the factories
really send and receive), the PMS's REST answers and the PostgreSQL tables afterwards.

The run happens once, for every test module here (each checks one part of what it left):
test_chaos_run.py the plant's own checks and the completions on the wire, test_failover.py the orders of
a stopped factory, test_plain_clients.py the plain MQTT, HTTP and gRPC users, test_erp_exchange.py the
ERP exchange and its killed processes. The helper modules beside this file (i40_run: the run;
i40_clients: the plain users; i40_erp: the ERP's operator) are put on ``sys.path`` for them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # i40_*.py: importable by the tests (importlib mode)

if TYPE_CHECKING:
    from i40_run import Run


@pytest.fixture(scope="session")
def run(tmp_path_factory: pytest.TempPathFactory, kafka_server: Any, postgres_server: Any) -> Iterator[Run]:
    """The one distributed run of the plant, shared by every test module here (a run takes ~3 min)."""
    from i40_run import run_plant  # here, not at the top: it skips (importorskip) without paho, forge_kafka...

    yield from run_plant(tmp_path_factory, kafka_server, postgres_server)
