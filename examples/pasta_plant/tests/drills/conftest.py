"""Fault drills on the distributed pasta plant (issue 11, "Done means"), with their figures asserted.

One run of ``forge run examples/pasta_plant --profile distributed`` (every component instance its
own OS process; Mosquitto with the plant's ACL and one password per role, persistence on; one
Apache Kafka broker of its own so it can be restarted; PostgreSQL), with the plant's own random
chaos off and this scripted schedule driven from the test once every machine cuts:

1. Mosquitto stopped and started again, twice in a row (persistent sessions survive);
2. the Kafka broker stopped and started again, twice in a row;
3. forged ``SwapBlade``/``AssignBlade`` with epoch 10**12: without credentials, with the
   ``machine`` role, and with the ``bridge`` role (the commander's password, not the plant's key);
4. SIGKILL of every process kind once (machine-1, the leading scheduler, bridge, production,
   sorting, storage_monitor, machine_health, monitor); the parent restarts each;
5. a malformed flood into MQTT with the ``machine`` role's credentials (~300 msg/s for 10 s).

Then SIGINT, and the figures from the merged ``--json`` summary, the children's own summaries
(``.forge/processes/<instance>.<life>.json``), PostgreSQL and a ``monitor``-role wiretap on ``#``:
every check passed; 0 heartbeats lost and 0 duplicated between the broker and the batches table;
0 forged commands obeyed; no DOWN on ``forge/status/<id>`` for a machine that was not killed; no
machine assigned twice; every dead letter of the flood accounted for. The printed table is the
drill's report (``-s``):


Split by job: pasta_drill_attackers.py (the wiretap, the forgers, the flood), pasta_drill_run.py (the
plant's processes and the scripted fault schedule), pasta_drill_figures.py (the figures and what is wrong
with each, the printed report); test_drills.py runs the drill once and asserts one figure a test. The
helper modules are put on ``sys.path`` here.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # pasta_drill_*.py: importable (importlib mode)
