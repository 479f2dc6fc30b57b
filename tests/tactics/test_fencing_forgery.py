"""Forged and runaway epochs (issue 11 §1): with a plant key, a forger without it can neither get a
command accepted nor make a receiver refuse the true leader's commands; without a key, one
forged epoch locks the receiver out (the defect, pinned so the difference stays visible)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from forge_core.tactics import FencedReceiver, sign_command

KEY = b"plant-key-from-the-environment"
LEASE = "scheduler"

# One step: the true leader sends a command (possibly after a leader change: epoch rises), or a
# forger sends one with any epoch (runaway ones included), any body, and a signature made with a
# key it guessed, or copied from a genuine command of another body/epoch, or none.
leader_step = st.tuples(st.just("leader"), st.integers(0, 3), st.binary(max_size=40))
forger_step = st.tuples(
    st.just("forger"),
    st.integers(0, 2**63),
    st.binary(max_size=40),
    st.one_of(st.none(), st.binary(min_size=1, max_size=32), st.just(b"copy"), st.text(max_size=64)),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(leader_step, forger_step), max_size=60))
def test_a_forger_without_the_key_neither_locks_out_the_leader_nor_is_obeyed(steps: list[tuple]) -> None:
    receiver = FencedReceiver(keys={LEASE: KEY})
    epoch = 1
    last_genuine: tuple[int, bytes, str] | None = None
    for step in steps:
        if step[0] == "leader":
            _, rise, body = step
            epoch += rise
            signature = sign_command(KEY, LEASE, epoch, body)
            assert receiver.accept(epoch, LEASE, body=body, signature=signature), (
                f"the true leader's command at epoch {epoch} was refused (newest {receiver.newest})")
            last_genuine = (epoch, body, signature)
        else:
            _, forged_epoch, body, sig = step
            if sig == b"copy":  # a genuine signature lifted onto another command
                if last_genuine is None:
                    continue
                g_epoch, g_body, signature = last_genuine
                if (forged_epoch, body) == (g_epoch, g_body):
                    continue  # a byte-for-byte replay is the leader's own command, not a forgery
            elif isinstance(sig, bytes):
                signature = sign_command(sig, LEASE, forged_epoch, body) if sig != KEY else "00"
            else:
                signature = sig
            before = dict(receiver.newest)
            assert not receiver.accept(forged_epoch, LEASE, body=body, signature=signature)
            assert receiver.newest == before, "a forged command moved the fence"
    assert receiver.accepted_epochs.get(LEASE, set()) <= set(range(1, epoch + 1))


def test_without_a_key_one_forged_epoch_locks_the_receiver_out() -> None:
    receiver = FencedReceiver()
    assert receiver.accept(10**12, LEASE)  # the forged SwapBlade
    assert not receiver.accept(3, LEASE)  # the true leader's next command: "stale"


def test_signature_binds_lease_epoch_and_body() -> None:
    receiver = FencedReceiver(keys={LEASE: KEY})
    sig = sign_command(KEY, LEASE, 5, b'{"machineId": 0}')
    assert not receiver.accept(6, LEASE, body=b'{"machineId": 0}', signature=sig)
    assert not receiver.accept(5, LEASE, body=b'{"machineId": 1}', signature=sig)
    assert not receiver.accept(5, LEASE, body=None, signature=None)
    assert receiver.forged == 3 and receiver.newest == {}
    assert receiver.accept(5, LEASE, body=b'{"machineId": 0}', signature=sig)
    assert receiver.accept(5, "other")  # a lease without a key keeps the unsigned behaviour
