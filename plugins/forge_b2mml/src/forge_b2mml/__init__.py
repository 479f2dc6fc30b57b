"""forge-b2mml: the ISA-95 ERP adapter (B2MML V0600 and V0701, validated against MESA's XSDs).

"The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA International."
"""

from typing import TYPE_CHECKING

from forge_core.plugin import lazy_exports

if TYPE_CHECKING:
    from forge_b2mml.answers import action_of, build_answer
    from forge_b2mml.export import ExportRejected, build_performance, read_performance
    from forge_b2mml.mapping import duration_seconds, to_dict, to_messages
    from forge_b2mml.samples import build_schedule, sample
    from forge_b2mml.transactions import (
        Ledger,
        LedgerMissing,
        acknowledge,
        read_acknowledgement,
        wrap_process,
        wrap_verb,
    )
    from forge_b2mml.validate import Document, load, validate
    from forge_b2mml.xml import B2mmlError, Problem, parse

# Imported on first use: the entry point loads this package with its plugin module, and listing the
# plugins (forge --help) must not import the client libraries and models behind these names.
__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "action_of": "forge_b2mml.answers:action_of",
        "build_answer": "forge_b2mml.answers:build_answer",
        "ExportRejected": "forge_b2mml.export:ExportRejected",
        "build_performance": "forge_b2mml.export:build_performance",
        "read_performance": "forge_b2mml.export:read_performance",
        "duration_seconds": "forge_b2mml.mapping:duration_seconds",
        "to_dict": "forge_b2mml.mapping:to_dict",
        "to_messages": "forge_b2mml.mapping:to_messages",
        "build_schedule": "forge_b2mml.samples:build_schedule",
        "sample": "forge_b2mml.samples:sample",
        "Ledger": "forge_b2mml.transactions:Ledger",
        "LedgerMissing": "forge_b2mml.transactions:LedgerMissing",
        "acknowledge": "forge_b2mml.transactions:acknowledge",
        "read_acknowledgement": "forge_b2mml.transactions:read_acknowledgement",
        "wrap_process": "forge_b2mml.transactions:wrap_process",
        "wrap_verb": "forge_b2mml.transactions:wrap_verb",
        "Document": "forge_b2mml.validate:Document",
        "load": "forge_b2mml.validate:load",
        "validate": "forge_b2mml.validate:validate",
        "B2mmlError": "forge_b2mml.xml:B2mmlError",
        "Problem": "forge_b2mml.xml:Problem",
        "parse": "forge_b2mml.xml:parse",
    },
)

__version__ = "0.1.0"

__all__ = [
    "B2mmlError",
    "Document",
    "ExportRejected",
    "Ledger",
    "LedgerMissing",
    "Problem",
    "__version__",
    "acknowledge",
    "action_of",
    "build_answer",
    "build_performance",
    "build_schedule",
    "duration_seconds",
    "load",
    "parse",
    "read_acknowledgement",
    "read_performance",
    "sample",
    "to_dict",
    "to_messages",
    "validate",
    "wrap_process",
    "wrap_verb",
]
