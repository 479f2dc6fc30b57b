"""forge_b2mml: validate + map a 1,000-request schedule, export 1,000 responses; lxml vs xmlschema.

Usage: python benchmarks/bench_b2mml.py [--requests 1000] [--repeat 5] [--version V0600|V0701]

Prints, for the same bytes in one run: a bare ``lxml.etree.fromstring`` parse (the raw limit),
the hardened parse, lxml XSD validation, xmlschema XSD validation, validate+map (the import
path), and building + validating 1,000 single-response performance documents with each backend;
documents per second and each as a ratio of the raw parse. Schemas are compiled before timing
(the plugin compiles them once per process).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from forge_b2mml.export import build_performance
from forge_b2mml.mapping import to_messages
from forge_b2mml.samples import SAMPLE_COMPLETION, SAMPLE_REQUEST, build_schedule
from forge_b2mml.validate import Document, schema_for, validate_element
from forge_b2mml.xml import parse
from lxml import etree

LIMIT = 200 * 1024 * 1024


def best_of(repeat: int, fn: Callable[[], object]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--version", choices=["V0600", "V0701"], default="V0600")
    args = ap.parse_args()
    v = args.version
    noun = "ProductionSchedule" if v == "V0600" else "OperationsSchedule"
    perf_noun = "ProductionPerformance" if v == "V0600" else "OperationsPerformance"
    requests = [dict(SAMPLE_REQUEST, request_id=f"PR-{i:05d}", segment_id=f"SR-{i:05d}",
                     material_requirement_id=f"MR-{i:05d}") for i in range(args.requests)]
    data = build_schedule(requests, version=v)
    t0 = time.perf_counter()
    schema_for(v, noun, "lxml"), schema_for(v, perf_noun, "lxml")
    t1 = time.perf_counter()
    schema_for(v, noun, "xmlschema"), schema_for(v, perf_noun, "xmlschema")
    t2 = time.perf_counter()
    print(f"B2MML {v} {noun}: {args.requests} requests, {len(data) / 1024:.0f} KiB; schema compile once: "
          f"lxml {t1 - t0:.2f} s, xmlschema {t2 - t1:.2f} s")

    def validate_map(backend: str) -> Callable[[], object]:
        def run() -> object:
            root = parse(data, max_bytes=LIMIT)
            assert validate_element(root, v, noun, backend) == []  # type: ignore[arg-type]
            messages = to_messages(Document(v, root, None, noun))
            assert len(messages) == args.requests
            return messages
        return run

    rows: list[tuple[str, float, int]] = [
        ("bare lxml.etree.fromstring (raw limit)", best_of(args.repeat, lambda: etree.fromstring(data)), 1),
        ("hardened parse (forge_b2mml.xml.parse)", best_of(args.repeat, lambda: parse(data, max_bytes=LIMIT)), 1),
    ]
    root = parse(data, max_bytes=LIMIT)
    rows.append(("parse + XSD validate, lxml", best_of(args.repeat, lambda: validate_element(
        parse(data, max_bytes=LIMIT), v, noun, "lxml")), 1))
    rows.append(("parse + XSD validate, xmlschema", best_of(max(1, args.repeat // 2), lambda: validate_element(
        parse(data, max_bytes=LIMIT), v, noun, "xmlschema")), 1))
    rows.append(("parse + validate + map, lxml", best_of(args.repeat, validate_map("lxml")), 1))
    rows.append(("parse + validate + map, xmlschema", best_of(max(1, args.repeat // 2), validate_map("xmlschema")),
                 1))
    raw = rows[0][1]
    assert root is not None

    completions = [dict(SAMPLE_COMPLETION, order_id=f"O-{i:05d}", request_id=f"PR-{i:05d}")
                   for i in range(args.requests)]

    def export(backend: str) -> Callable[[], object]:
        def run() -> object:
            for i, c in enumerate(completions):
                body = build_performance([c], version=v, performance_id=f"PP-{i}", published="2024-05-02T14:05:00Z",
                                         validate=False)
                assert validate_element(etree.fromstring(body), v, perf_noun, backend) == []  # type: ignore[arg-type]
        return run

    bare_perf = build_performance([completions[0]], version=v, performance_id="PP-0", published="2024-05-02T14:05:00Z")
    raw_export = best_of(args.repeat, lambda: [etree.fromstring(bare_perf) for _ in completions])
    export_rows = [("bare lxml.etree.fromstring of each (raw limit)", raw_export),
                   ("build + validate, lxml", best_of(max(1, args.repeat // 2), export("lxml"))),
                   ("build + validate, xmlschema", best_of(1, export("xmlschema")))]

    print(f"\nimport: one {args.requests}-request document (best of {args.repeat})")
    print(f"{'':48} {'s/doc':>9} {'docs/s':>9} {'requests/s':>11} {'x raw':>8}")
    for name, seconds, _ in rows:
        print(f"{name:48} {seconds:9.4f} {1 / seconds:9.1f} {args.requests / seconds:11.0f} {seconds / raw:8.1f}")
    print(f"\nexport: {args.requests} single-response {perf_noun} documents")
    print(f"{'':48} {'s total':>9} {'docs/s':>9} {'x raw':>8}")
    for name, seconds in export_rows:
        print(f"{name:48} {seconds:9.3f} {args.requests / seconds:9.0f} {seconds / raw_export:8.1f}")
    lx, xs = rows[4][1], rows[5][1]
    ex_l, ex_x = export_rows[1][1], export_rows[2][1]
    print(f"\nlxml is {xs / lx:.1f}x faster than xmlschema on import (validate + map), {ex_x / ex_l:.1f}x on export")


if __name__ == "__main__":
    main()
