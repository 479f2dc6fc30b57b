"""Tactic kinds forge_mms declares: ``status_reporter`` (with ``bus``) and ``risk`` (with ``rules``)."""
