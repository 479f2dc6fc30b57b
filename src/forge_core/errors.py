"""Every error Forge raises on purpose, each naming what is at fault and where.

The CLI prints a :class:`ForgeError` as its message alone, without a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class ForgeError(Exception):
    """Base of all deliberate Forge errors."""


class PluginError(ForgeError):
    """A plugin failed to load, to register, or answered a hook wrongly.

    Laid out as pluggy lays out its own: plugin, hook, then what is wrong and the fix.
    """

    def __init__(self, message: str, *, plugin: str | None = None, hook: str | None = None) -> None:
        self.plugin = plugin
        self.hook = hook
        self.detail = message
        where = []
        if plugin:
            where.append(f"plugin {plugin!r}")
        if hook:
            where.append(f"hook {hook!r}")
        prefix = (", ".join(where) + ": ") if where else ""
        super().__init__(prefix + message)


class DuplicateRegistration(PluginError):
    """Two plugins registered the same name in one registry."""


class UnknownRegistration(ForgeError, KeyError):
    """A name no active plugin registered (a component type, transport type, tactic, command).

    Also a :class:`KeyError`, as a registry lookup always was.
    """

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        owner = name.split(".", 1)[0] if "." in name else name
        self.message = (f"unknown {kind} {name!r}: no active plugin registers it (a plugin named {owner!r} "
                        f"would, if installed and listed under the plant's `plugins:`); registered: "
                        f"{', '.join(known) or 'none'}")
        super().__init__(self.message)

    def __str__(self) -> str:  # KeyError's own would quote the message
        return self.message


class MissingPlugin(ForgeError):
    """Something the manifest names is provided by a plugin that is not installed."""

    def __init__(self, what: str, package: str | None) -> None:
        self.package = package
        hint = f": pip install {package}" if package else ""
        super().__init__(f"{what} is not provided by any installed plugin{hint}")


@dataclass(frozen=True)
class ManifestProblem:
    """One problem in a manifest: where it is and what is wrong."""

    path: str  # e.g. "components.oven.params.interval"
    message: str
    file: str = ""
    line: int | None = None

    def __str__(self) -> str:
        at = self.file or "manifest"
        if self.line is not None:
            at += f":{self.line}"
        where = f" at {self.path}" if self.path else ""
        return f"{at}{where}: {self.message}"


@dataclass
class ManifestError(ForgeError):
    """A manifest has one or more problems; all of them are listed."""

    problems: list[ManifestProblem] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.__str__())

    def __str__(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''} in manifest"
        return head + ":\n" + "\n".join(f"  - {p}" for p in self.problems)


class UnknownMessageType(ForgeError):
    """A message type has no registered schema."""

    def __init__(self, type_: str, known: list[str] | None = None) -> None:
        self.type = type_
        listing = ""
        if known is not None:
            listing = "; registered types: " + (", ".join(sorted(known)) or "none")
        super().__init__(f"message type {type_!r} has no registered schema{listing}")


class MessageRejected(ForgeError):
    """A message failed validation; it went to the dead-letter channel instead."""

    def __init__(self, message: str, *, errors: list[dict[str, str]] | None = None) -> None:
        self.errors = errors or []
        super().__init__(message)


class DecodeError(ForgeError):
    """Bytes from a transport could not be turned into an envelope."""


class TransportError(ForgeError):
    """A transport failed in a way that will not fix itself."""


class TransportNotReady(TransportError):
    """The transport cannot reach its broker yet: retry later (it is not broken)."""


class TransportClosed(TransportError):
    """The transport was closed; it does not publish or deliver any more."""


class Redeliver(ForgeError):
    """Raised by a handler: "not handled yet, give me this again later" (e.g. the database is
    unreachable). The bus does not dead-letter the message (or batch): it hands the exception to
    the transport, which does not acknowledge it. On Kafka the records are delivered again, from
    the first one not handled, until a delivery returns, and never dead-lettered (the partition
    waits meanwhile: raise it only for a failure that passes, never for a message that can never
    be handled). The in-memory transport, and MQTT for QoS 1, deliver it again up to their
    ``max_redeliveries`` (MQTT QoS 0: not at all), then report it undeliverable (an
    ``undeliverable`` dead letter)."""


class SchemaError(ForgeError):
    """A JSON Schema file or document is itself invalid."""


class SettingsError(ForgeError):
    """Settings or params failed their declaration; every problem is listed with its dotted path.

    The one error class of :mod:`forge_core.settings`, whatever declared the settings (a
    transport, a component or a tactic): ``problems`` is a list of ``(path, message)``.
    """

    def __init__(self, problems: list[tuple[str, str]], *, model: str = "") -> None:
        self.problems = problems
        self.model = model
        what = f" ({model})" if model else ""
        lines = "\n".join(f"  - {path or '<root>'}: {message}" for path, message in problems)
        count = len(problems)
        super().__init__(f"{count} invalid setting{'s' if count != 1 else ''}{what}:\n{lines}")
