"""Whole-plant check on fencing epochs: no machine applied a command whose epoch no leader held.

Run once per plant run over the merged summary (``forge_plant_checks``), so it sees every
machine and the lease's grant history even when each runs in its own process.

What it compares (issue 11 §1): each machine reports ``accepted_epochs``, the epochs of the
commands it accepted over all its lives in the run (with its odometer's ``received:<epoch>``
counters, which survive its SIGKILLs in the distributed profile); the monitor reports ``granted_epochs``, what
the lease backend ever granted (``LeaseBackend.grants``), read every few seconds, and
``announced_epochs``, epochs leaders announced on ``forge/leader/+`` after its last read. An
accepted epoch must be a granted one, or an announced one above every granted epoch (elected
after the last read). A forged ``"epoch": 10**12`` that a machine obeyed fails the check even when
signing is off, which is what it is for: a second line behind the signatures.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forge_core import Check

if TYPE_CHECKING:
    from forge_core.runtime import RunSummary

NAME = "fleet: no command applied with an epoch no leader held"


def _ints(value: Any) -> set[int]:
    return {v for v in value if isinstance(v, int)} if isinstance(value, list) else set()


def _accepted(report: dict[str, Any]) -> set[int]:
    """The epochs a machine accepted: its ``accepted_epochs`` (the plant's ledger: every life in one
    process) and the ``received:<epoch>`` counters of its odometer (on its own disk, so in the
    distributed profile the lives a SIGKILL ended without a summary count too)."""
    epochs = _ints(report.get("accepted_epochs"))
    odometer = report.get("odometer")
    counts = odometer.get("counts") if isinstance(odometer, dict) else None
    for key in counts if isinstance(counts, dict) else ():
        name, _, epoch = str(key).partition(":")
        if name == "received" and epoch.isdigit():
            epochs.add(int(epoch))
    return epochs


def epoch_checks(summary: RunSummary) -> list[Check]:
    machines = {name: _accepted(r) for name, r in sorted(summary.reports.items())
                if isinstance(r, dict) and "accepted_epochs" in r}
    monitors = [r for r in summary.reports.values() if isinstance(r, dict) and "granted_epochs" in r]
    if not machines:
        return []  # no pasta machine in this run (a subset, or another plant using the plugin)
    accepted = set().union(*machines.values())
    if not monitors or not any(m.get("grant_history_reads") or m.get("announced_epochs") for m in monitors):
        return [Check(NAME, True, f"not run: no grant history reported (the monitor was absent, killed or never "
                                  f"reached the lease backend); machines accepted epochs {sorted(accepted)}",
                      "plant")]
    granted = set().union(*(_ints(m.get("granted_epochs")) for m in monitors))
    announced = set().union(*(_ints(m.get("announced_epochs")) for m in monitors))
    newest_granted = max(granted, default=0)
    truncated = any(m.get("grant_history_truncated") for m in monitors)
    oldest_kept = min(granted, default=0)

    def held(epoch: int) -> bool:
        return epoch in granted or (epoch in announced and epoch > newest_granted)

    bad = {name: sorted(e for e in epochs if not held(e) and not (truncated and e < oldest_kept))
           for name, epochs in machines.items()}
    bad = {name: epochs for name, epochs in bad.items() if epochs}
    if bad:
        detail = "; ".join(f"{name} applied epochs {epochs}" for name, epochs in bad.items())
        return [Check(NAME, False, f"{detail}; leaders held {sorted(granted | announced)}", "plant")]
    # a count and the span, not the list: after a chaos day it is hundreds of numbers (the reports have them)
    detail = (f"{len(machines)} machines accepted {len(accepted)} epochs ({min(accepted, default=0)}.."
              f"{max(accepted, default=0)}), all granted ({len(granted)} grants on record)")
    if truncated:
        detail += f"; epochs below {oldest_kept} are older than the grant history kept and were not judged"
    return [Check(NAME, True, detail, "plant")]
