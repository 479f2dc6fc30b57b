"""``industry40.erp``: a simulated ERP (the original system's SAP side), seeded like the rest.

Every ``min_interval..max_interval`` seconds it draws one document by ``weights``: a new
ProductionSchedule (V0600) or OperationsSchedule (V0701) of 1..``max_requests`` requests, dropped
into the inbox folder (written aside, then renamed in, as a well-behaved writer does) or POSTed to
the HTTP inbox (this process's HTTP app, in-process: also under virtual time; or ``http_url``, over
the network, when the inbox is another process); an earlier schedule
sent again unchanged (``resend``: the plant must not make its orders twice); or a Change (new
quantity), Cancel or Get of an earlier request, through the folder. What it sent is reported, so a
run can be compared with what the plant did.
"""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from forge_b2mml import build_schedule, wrap_verb
from lxml import etree

from forge_core import Component
from industry40.settings import ErpParams


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Erp(Component):
    Params = ErpParams
    params: ErpParams

    async def start(self) -> None:
        self.counts: Counter[str] = Counter()
        self.sent: list[bytes] = []  # schedules sent (for resend)
        self.requests: list[dict[str, Any]] = []  # every request sent: schedule_id + the request dict
        self.refused: list[str] = []  # HTTP answers other than 202
        self.number = 0
        runtime = self.ctx.services.get("runtime")
        base = getattr(getattr(runtime, "manifest", None), "plant_dir", None) or Path.cwd()
        inbox = Path(self.params.inbox)
        self.inbox = inbox if inbox.is_absolute() else Path(base) / inbox
        if self.params.enabled:
            self.ctx.spawn(self._run(), name="erp")

    async def _run(self) -> None:
        p, rnd, clock = self.params, self.ctx.random, self.ctx.clock
        await clock.sleep(p.first_after)
        kinds = list(p.weights)
        while True:
            kind = rnd.choices(kinds, weights=[p.weights[k] for k in kinds])[0]
            if kind in ("resend", "change", "cancel", "get") and not self.requests:
                kind = "folder"
            await getattr(self, f"_{kind}")()
            self.counts[kind] += 1
            await clock.sleep(rnd.uniform(p.min_interval, p.max_interval))

    # -- documents ---------------------------------------------------------------------------------
    def _schedule(self) -> bytes:
        p, rnd, now = self.params, self.ctx.random, self.ctx.clock.time()
        self.number += 1
        schedule_id = f"PS-{self.ctx.name}-{self.number:05d}"
        requests = []
        for i in range(rnd.randint(1, p.max_requests)):
            request = {"request_id": f"PR-{self.number:05d}-{i + 1}", "description": "simulated ERP request",
                       "start_time": _iso(now), "end_time": _iso(now + 86_400), "priority": rnd.randint(1, 5),
                       "request_state": "Released", "process_segment_id": "ASSEMBLY",
                       "material_definition_id": rnd.choice(p.products),
                       "quantity": rnd.randint(p.min_quantity, p.max_quantity), "unit": "EA"}
            requests.append(request)
            self.requests.append({"schedule_id": schedule_id, **request})
        xml = build_schedule(requests, version=p.version, schedule_id=schedule_id, published=_iso(now))
        self.sent.append(xml)
        return xml

    def _drop(self, name: str, data: bytes) -> None:
        self.inbox.mkdir(parents=True, exist_ok=True)
        tmp = self.inbox / f".{name}.part"  # hidden: the drop folder skips it until renamed
        tmp.write_bytes(data)
        os.replace(tmp, self.inbox / name)

    async def _folder(self) -> None:
        self._drop(f"schedule-{self.number + 1:05d}.xml", self._schedule())

    async def _http(self) -> None:
        xml = self._schedule()
        url = self.params.http_url
        if url is None:  # the inbox is in this process: its handlers, in-process (virtual time too)
            transport = httpx.ASGITransport(app=self.ctx.http.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://plant") as client:
                answer = await client.post(self.params.http_path, content=xml,
                                           headers={"Content-Type": "application/xml"})
        else:
            answer_or_none = await self._post(url.rstrip("/") + self.params.http_path, xml)
            if answer_or_none is None:
                return
            answer = answer_or_none
        if answer.status_code != 202:
            self.refused.append(f"{answer.status_code} {answer.text[:200]}")

    async def _post(self, url: str, xml: bytes) -> httpx.Response | None:
        """POST over the network as an ERP would: tried ``http_attempts`` times (the inbox's process may be
        restarting); the same document again is harmless (the ledger knows its requests)."""
        p = self.params
        async with httpx.AsyncClient(timeout=p.http_timeout) as client:
            for attempt in range(p.http_attempts):
                try:
                    return await client.post(url, content=xml, headers={"Content-Type": "application/xml"})
                except httpx.HTTPError as exc:
                    self.counts["http_retried"] += 1
                    self.ctx.log.warning("ERP: POST %s failed (%s), attempt %d of %d", url, exc, attempt + 1,
                                         p.http_attempts)
                    await self.ctx.clock.sleep(p.http_retry_after)
        self.counts["http_given_up"] += 1
        self.refused.append(f"no answer from {url}")
        return None

    async def _resend(self) -> None:
        self.number += 1
        self._drop(f"again-{self.number:05d}.xml", self.ctx.random.choice(self.sent))

    async def _verb(self, verb: str) -> None:
        p, rnd = self.params, self.ctx.random
        request = dict(rnd.choice(self.requests))
        if verb == "Change":
            request["quantity"] = rnd.randint(p.min_quantity, p.max_quantity)
        noun = build_schedule([request], version=p.version, schedule_id=request["schedule_id"],
                              published=_iso(self.ctx.clock.time()))
        self.number += 1
        bodid = f"{verb.upper()}-{self.ctx.name}-{self.number:05d}"
        doc = wrap_verb(verb, etree.tostring(etree.fromstring(noun)), version=p.version, bodid=bodid,
                        created=_iso(self.ctx.clock.time()), sender="ERP")
        self._drop(f"{bodid.lower()}.xml", doc)

    async def _change(self) -> None:
        await self._verb("Change")

    async def _cancel(self) -> None:
        await self._verb("Cancel")

    async def _get(self) -> None:
        await self._verb("Get")

    def report(self) -> dict[str, Any]:
        return {"enabled": self.params.enabled, "requests_sent": len(self.requests), "http_refused": len(self.refused),
                **dict(sorted(self.counts.items()))}
