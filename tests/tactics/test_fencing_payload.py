"""Signed JSON commands: the signature travels in the body's ``signature`` field and covers the
rest of the body, so it survives a bridge that re-serialises the JSON (issue 11 §1)."""

from __future__ import annotations

import json

from forge_core.tactics import FencedReceiver, command_body, sign_payload, verify_payload

KEY = b"plant-key-0123456789"


def test_signature_covers_the_body_without_itself_and_survives_reserialisation() -> None:
    signed = sign_payload(KEY, "scheduler", 7, {"title": "SwapBlade", "machineId": 1, "bladeType": "A", "epoch": 7})
    assert set(signed) == {"title", "machineId", "bladeType", "epoch", "signature"}
    assert command_body(signed) == b'{"bladeType":"A","epoch":7,"machineId":1,"title":"SwapBlade"}'
    # what a bridge or a plain client sends on: other key order, other spacing
    wire = json.loads(json.dumps(dict(reversed(list(signed.items()))), indent=2))
    assert verify_payload(KEY, "scheduler", 7, wire)


def test_tampered_unsigned_or_misdirected_commands_are_forged_and_leave_the_fence() -> None:
    rx = FencedReceiver(keys={"scheduler": KEY})
    good = sign_payload(KEY, "scheduler", 3, {"title": "AssignBlade", "machineId": 0, "bladeType": "A", "epoch": 3})
    forgeries = [
        {k: v for k, v in good.items() if k != "signature"},                      # unsigned
        {**good, "bladeType": "B"},                                               # body changed
        {**good, "epoch": 10**12},                                                # same signature, other body
        {**good, "signature": 12345},                                             # not even a string
        {**good, "signature": "é" * 64},                                          # non-ASCII
        sign_payload(b"guessed-key-000000000", "scheduler", 10**12, {**good, "epoch": 10**12}),
        "not a JSON object",
        {**good, "x": float("nan")},                                              # cannot be canonical JSON
    ]
    for forged in forgeries:
        epoch = forged.get("epoch", 3) if isinstance(forged, dict) else 3
        assert not rx.accept_payload(epoch, "scheduler", forged), forged
    assert not rx.accept_payload(10**12, "scheduler", good)  # the true body under a forged header epoch
    assert rx.forged == len(forgeries) + 1 and rx.newest == {}
    assert not verify_payload(KEY, "other-lease", 3, good)  # signed for one lease only
    assert rx.accept_payload(3, "scheduler", good)
    assert rx.newest == {"scheduler": 3} and rx.accepted_epochs == {"scheduler": {3}}


def test_a_lease_without_a_key_keeps_the_unsigned_behaviour() -> None:
    rx = FencedReceiver()
    assert rx.accept_payload(5, "scheduler", {"title": "SwapBlade"})
    assert not rx.accept_payload(4, "scheduler", {"title": "SwapBlade"})
    assert rx.forged == 0 and rx.rejected == 1
