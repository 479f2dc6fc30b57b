"""The hooks of a plant's life after registration: load (validate the manifest), connect (a transport
ready), run (started, per message, crashes, status, leadership, backpressure, the dashboard) and
shutdown (stopping, whole-plant checks, stopped). The plugin API; see docs/hooks.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from forge_core.hookspecs.markers import spec as _spec

if TYPE_CHECKING:
    from forge_core.checks import Check
    from forge_core.dashboard.panels import Panel
    from forge_core.errors import ManifestProblem
    from forge_core.manifest import Manifest
    from forge_core.messages.deadletter import DeadLetter
    from forge_core.runtime.runtime import Runtime
    from forge_core.runtime.summary import RunSummary
    from forge_core.tactics.heartbeat_status import StatusChange
    from forge_core.transport.base import Transport

# ---------------------------------------------------------------------------------------------
# Plant loading hooks
# ---------------------------------------------------------------------------------------------


@_spec
def forge_validate_manifest(manifest: Manifest) -> list[ManifestProblem] | None:
    """Check a loaded manifest beyond its schema (cross-field rules a plugin knows).

    Called by ``forge validate`` and before every run, after schema checks passed.

    :param manifest: the loaded ``Manifest`` (profile applied).
    :returns: a list of :class:`forge_core.ManifestProblem` (or None); the lists of all
        implementations are concatenated and reported together with the core's problems.

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------------------------
# Connect hooks
# ---------------------------------------------------------------------------------------------


@_spec
def forge_transport_ready(name: str, transport: Transport) -> None:
    """A transport of the plant has connected.

    Called once per transport, after ``connect()`` succeeded, before components start.

    :param name: the transport's name in the manifest.
    :param transport: the connected transport.
    :returns: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


# ---------------------------------------------------------------------------------------------
# Run hooks
# ---------------------------------------------------------------------------------------------


@_spec
def forge_plant_started(runtime: Runtime) -> None:
    """Every selected component has started.

    :param runtime: the running :class:`forge_core.runtime.Runtime`.
    :returns: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@_spec(firstresult=True)
def forge_infer_message_type(topic: str, payload: Any) -> str | None:
    """Give the type of a plain JSON message that has no type header and no manifest binding.

    Called per such message, on the receiving side, before validation.

    :param topic: the topic it arrived on.
    :param payload: the decoded JSON body.
    :returns: a registered message type, or None to pass; the first non-None answer wins. When
        no plugin answers, the message is dead-lettered as ``decode_error``.

    .. versionadded:: 0.1
    """


@_spec
def forge_message_dead_lettered(letter: DeadLetter) -> None:
    """A message went to the dead-letter channel.

    Called once per dead letter, after it is counted and before it is published on
    ``forge/deadletter/<reason>``.

    :param letter: the :class:`forge_core.DeadLetter` (reason, errors with
        JSON pointers, topic, transport, component, the envelope or the raw body).
    :returns: nothing; every implementation is called; an exception is logged, not raised.

    .. versionadded:: 0.1
    """


@_spec
def forge_component_crashed(name: str, error: BaseException, restarts: int, gave_up: bool) -> None:
    """A component's start, run loop or background task raised.

    Called by the supervisor before it restarts the component (with backoff) or gives up.

    :param name: the component instance's name.
    :param error: the exception.
    :param restarts: how many times it crashed within the restart window, this one included.
    :param gave_up: True when the crash loop limit was reached and it will not be restarted.
    :returns: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@_spec
def forge_heartbeat_payload(component: str) -> dict[str, Any] | None:
    """Add fields to a heartbeat before a ``forge.heartbeat`` emitter publishes it.

    Called once per beat, by every ``forge.heartbeat`` component.

    :param component: the emitting component instance's name.
    :returns: a dict of extra payload fields, or None; the dicts of all implementations are
        merged into the payload in registration order (later plugins win on a clash). An
        exception is logged and that plugin's fields are left out.

    .. versionadded:: 0.1
    """


@_spec
def forge_source_status_changed(change: StatusChange, monitor: str) -> None:
    """A monitored source was discovered or changed status (UP / DEGRADED / DOWN).

    Called by a ``forge.heartbeat_monitor`` after it publishes ``forge.status`` for the change.

    :param change: the :class:`forge_core.tactics.StatusChange` (source, old,
        new, at, reason); ``old`` is None when the source was just discovered.
    :param monitor: the monitor component instance's name.
    :returns: nothing; every implementation is called; an exception is logged, not raised.

    .. versionadded:: 0.1
    """


@_spec
def forge_leadership_changed(lease: str, holder: str, epoch: int, leading: bool) -> None:
    """A component won or lost a leader lease (``ctx.elector``).

    Called on every election (``leading=True``) and deposition, release on shutdown included,
    before the component's own ``on_elected``/``on_deposed``.

    :param lease: the lease name.
    :param holder: the component instance that won or lost it.
    :param epoch: the term's epoch (fencing token).
    :param leading: True when elected, False when deposed.
    :returns: nothing; every implementation is called; an exception is logged, not raised.

    .. versionadded:: 0.1
    """


@_spec
def forge_backpressure_changed(component: str, old_interval: float, new_interval: float, depth: int) -> None:
    """A component's backpressure controller switched its sampling interval.

    Called on every switch, slow on a queue above the high watermark and fast again after the
    depth stayed under the low watermark for the settling time.

    :param component: the component instance's name.
    :param old_interval: the interval before, seconds.
    :param new_interval: the interval now, seconds.
    :param depth: the queue depth that caused the switch.
    :returns: nothing; every implementation is called; an exception is logged, not raised.

    .. versionadded:: 0.1
    """


@_spec
def forge_dashboard_panel(runtime: Runtime) -> Panel | None:
    """The plant's own panel on the web dashboard (``forge run --dashboard``, docs/dashboard.md).

    Called on the plant's loop each time the dashboard pushes its state to an open page (every
    ``settings.dashboard.interval``, 1 s by default; never while no page is open), so it must be
    quick and must not block: read what components already keep (a live view's snapshot), do no I/O.

    :param runtime: the running :class:`forge_core.runtime.Runtime` (``runtime.supervisors[name].instance``
        is a component instance of this process; check its type before reading it).
    :returns: a :class:`forge_core.dashboard.Panel` (a title, fields, tables of plain values), or None
        when this plugin has nothing to show for this plant. A hook that raises or returns anything
        else is shown as an error panel naming its plugin; the other panels still show.

    .. versionadded:: 0.2
    """


# ---------------------------------------------------------------------------------------------
# Shutdown hooks
# ---------------------------------------------------------------------------------------------


@_spec
def forge_plant_stopping(runtime: Runtime) -> None:
    """The plant is about to stop (SIGINT/SIGTERM, end of ``--duration`` or of a simulation).

    Called before components stop, while transports are still connected.

    :param runtime: the runtime.
    :returns: nothing; every implementation is called.

    .. versionadded:: 0.1
    """


@_spec
def forge_plant_checks(summary: RunSummary) -> list[Check] | None:
    """Checks over the whole plant's run, once every instance has reported.

    Called once per run with the merged summary: at the end of a one-process run, and in the
    parent of a multi-process run (``--profile`` with ``runtime.processes: per_component``) after
    every child's summary was merged — never in a child, whose summary covers only itself. This is
    where checks that count from both ends belong (messages sent by one process against effects
    recorded by another), since no single component sees both.

    :param summary: the merged :class:`forge_core.runtime.RunSummary` (``reports`` holds every
        instance's ``report()``; a SIGKILLed life reported nothing, so count from what survives it).
    :returns: the checks (their ``component`` defaults to ``"plant"``), or None. A hook that raises
        becomes one failing check naming its plugin; the others still run.

    .. versionadded:: 0.2
    """


@_spec
def forge_plant_stopped(summary: RunSummary) -> None:
    """The plant has stopped; transports are closed.

    :param summary: the :class:`forge_core.runtime.RunSummary` printed by ``forge run``.
    :returns: nothing; every implementation is called.

    .. versionadded:: 0.1
    """
