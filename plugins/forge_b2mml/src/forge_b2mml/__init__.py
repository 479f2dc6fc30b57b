"""forge-b2mml: the ISA-95 ERP adapter (B2MML V0600 and V0701, validated against MESA's XSDs).

"The Business To Manufacturing Markup Language (B2MML) is used courtesy of MESA International."
"""

from forge_b2mml.answers import action_of, build_answer
from forge_b2mml.export import ExportRejected, build_performance, read_performance
from forge_b2mml.mapping import duration_seconds, to_dict, to_messages
from forge_b2mml.samples import build_schedule, sample
from forge_b2mml.transactions import Ledger, LedgerMissing, acknowledge, read_acknowledgement, wrap_process, wrap_verb
from forge_b2mml.validate import Document, load, validate
from forge_b2mml.xml import B2mmlError, Problem, parse

__version__ = "0.1.0"

__all__ = ["B2mmlError", "Document", "ExportRejected", "Ledger", "LedgerMissing", "Problem", "__version__",
           "acknowledge", "action_of", "build_answer", "build_performance", "build_schedule", "duration_seconds",
           "load", "parse", "read_acknowledgement", "read_performance", "sample", "to_dict", "to_messages",
           "validate", "wrap_process", "wrap_verb"]
