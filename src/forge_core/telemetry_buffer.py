"""A histogram kept locally and handed to OpenTelemetry in one go.

OpenTelemetry's ``Histogram.record`` costs ~5-20 µs a value (a timestamp, the current context, the
exemplar filter, the attribute copy and hashing per reader and view, two locks). A component that
times something per message, a few hundred thousand times a simulated day, spends more on that than on
the message. :class:`BufferedHistogram` keeps the values in a list (an append a value) and hands them to
the histogram at :meth:`~BufferedHistogram.flush`: the owner calls it once per interval (e.g. with its
status row) and at stop, and it flushes itself when ``limit`` values wait.

What the histogram's readers then hold is what ``record`` of every value would have given them: the
count, the sum, the bucket counts, min and max of every value (exemplars come from the first value of
each flush only). Until a flush the values are not in the histogram: a reader collecting meanwhile sees
them at its next collection.

The hand-over adds each flush's values to the SDK's explicit-bucket aggregations directly (bucketed with
the aggregation's own boundaries, under its locks). That reaches into ``opentelemetry-sdk``'s internals,
so it is taken only on the SDK releases it is tested with (:data:`TESTED_SDK`: the minor releases whose
private shapes tests/test_telemetry_buffer.py checks against ``record``); on any other release every
value goes through ``record``, and the first flush says so in one log line (``forge.telemetry``,
INFO). Where the internals are not what this module expects even so (a view that drops the instrument
or aggregates it otherwise, the API's proxy or no-op histogram), every value goes through ``record``
too: the same figures at the old cost. :attr:`BufferedHistogram.merged` says which path the last flush
took.
"""

from __future__ import annotations

import logging
import math
from bisect import bisect_left
from collections.abc import Mapping
from typing import Any

from opentelemetry.metrics import Histogram, NoOpHistogram

__all__ = ["TESTED_SDK", "BufferedHistogram"]

log = logging.getLogger("forge.telemetry")

#: ``opentelemetry-sdk`` (major, minor) releases the direct hand-over is tested with; any other takes ``record``.
TESTED_SDK: tuple[tuple[int, int], ...] = ((1, 45),)

try:  # the SDK's pieces the direct hand-over needs; without them every value goes through record()
    from opentelemetry.sdk.metrics._internal._view_instrument_match import _hash_attributes
    from opentelemetry.sdk.metrics._internal.aggregation import _ExplicitBucketHistogramAggregation
    from opentelemetry.sdk.version import __version__ as SDK_VERSION
except ImportError:  # pragma: no cover - another SDK (or none)
    _hash_attributes = None  # type: ignore[assignment]
    _ExplicitBucketHistogramAggregation = None  # type: ignore[assignment,misc]
    SDK_VERSION = ""

_gate: bool | None = None  # the version check's verdict, made at the first flush that needs it


def _release(version: str) -> tuple[int, int] | None:
    """``"1.45.2"`` -> ``(1, 45)``; None for what is not a release number."""
    parts = version.split(".")
    try:
        return int(parts[0]), int(parts[1])
    except (IndexError, ValueError):
        return None


def direct_allowed() -> bool:
    """Whether the installed SDK is one the direct hand-over is tested with (:data:`TESTED_SDK`); decided
    once, logged once when it is not."""
    global _gate
    if _gate is None:
        _gate = _hash_attributes is not None and _release(SDK_VERSION) in TESTED_SDK
        if not _gate:
            tested = ", ".join(f"{major}.{minor}" for major, minor in TESTED_SDK)
            log.info("BufferedHistogram: opentelemetry-sdk %s is not a release its direct hand-over is tested "
                     "with (%s); values go through Histogram.record (same figures, ~5-20 us a value)",
                     SDK_VERSION or "(not installed)", tested)
    return _gate


class BufferedHistogram:
    """``histogram``'s values, kept locally until :meth:`flush` (see the module).

    ``attributes``: on every value (one attribute set per buffer); ``limit``: values kept before
    :meth:`record` flushes by itself. Values that are not finite or negative are dropped at the flush and
    counted in :attr:`rejected` (``record`` would log and ignore each)."""

    def __init__(self, histogram: Histogram, attributes: Mapping[str, Any] | None = None, *,
                 limit: int = 4096) -> None:
        if limit < 1:
            raise ValueError(f"BufferedHistogram limit must be at least 1; got {limit!r}")
        self.histogram = histogram
        self.attributes: dict[str, Any] = dict(attributes or {})
        self.limit = limit
        self.values: list[float] = []
        #: values handed over, and their total, since the buffer was made
        self.count = 0
        self.total = 0.0
        self.rejected = 0
        #: whether the last flush added to the SDK's aggregations directly (False: value by value, or none yet)
        self.merged = False
        self._off = isinstance(histogram, NoOpHistogram)

    def record(self, value: float) -> None:
        """Keep ``value`` for the next flush (flushing now when ``limit`` values wait)."""
        values = self.values
        values.append(value)
        if len(values) >= self.limit:
            self.flush()

    def flush(self) -> int:
        """Hand the kept values to the histogram; returns how many it got."""
        values, self.values = self.values, []
        if not values or self._off:
            return 0
        fine = [v for v in values if math.isfinite(v) and v >= 0.0]
        self.rejected += len(values) - len(fine)
        if not fine:
            return 0
        aggregations = self._aggregations()
        self.merged = aggregations is not None
        if aggregations is None:
            record, attributes = self.histogram.record, self.attributes
            for value in fine:
                record(value, attributes)
        else:
            _merge(aggregations, fine)
        self.count += len(fine)
        self.total += math.fsum(fine)
        return len(fine)

    def _aggregations(self) -> list[tuple[Any, Any, dict[str, Any]]] | None:
        """Per reader and view: (the view match, our attribute set's key there, the attributes), each match's
        aggregation made if new and found to be an explicit-bucket one; None when the SDK's internals are
        not the expected ones (nothing is added then)."""
        if not direct_allowed():
            return None
        instrument: Any = self.histogram
        try:
            if not instrument._is_enabled():
                return None
            storages = instrument._measurement_consumer._reader_storages
            found = []
            for storage in list(storages.values()):
                for match in storage._get_or_init_view_instrument_match(instrument):
                    keys = match._view._attribute_keys
                    attributes = (self.attributes if keys is None else
                                  {k: v for k, v in self.attributes.items() if k in keys})
                    key = _hash_attributes(attributes)
                    with match._lock:
                        aggregation = match._get_or_create_aggregation(key, attributes)
                    if type(aggregation) is not _ExplicitBucketHistogramAggregation:
                        return None
                    aggregation._boundaries, aggregation._lock, aggregation._record_min_max  # noqa: B018
                    found.append((match, key, attributes))
        except (AttributeError, TypeError, KeyError):
            return None
        return found


def _merge(places: list[tuple[Any, Any, dict[str, Any]]], values: list[float]) -> None:
    """Add ``values`` to each place's explicit-bucket aggregation as its ``aggregate`` would, a value at a time."""
    total, low, high = math.fsum(values), min(values), max(values)
    counted: dict[tuple[float, ...], list[int]] = {}
    for match, key, attributes in places:
        # the view match's lock held from look-up to sum, as record() holds it: a delta collection swaps the
        # aggregations out under it, so the values land in this collection or the next, never in a discarded one
        with match._lock:
            aggregation = match._get_or_create_aggregation(key, attributes)
            bounds = aggregation._boundaries
            counts = counted.get(bounds)
            if counts is None:
                counts = counted[bounds] = [0] * (len(bounds) + 1)
                for value in values:
                    counts[bisect_left(bounds, value)] += 1
            with aggregation._lock:
                if aggregation._value is None:
                    aggregation._value = list(counts)
                else:
                    aggregation._value = [a + b for a, b in zip(aggregation._value, counts, strict=True)]
                aggregation._sum += total
                if aggregation._record_min_max:
                    aggregation._min = min(aggregation._min, low)
                    aggregation._max = max(aggregation._max, high)
