"""``make bench``: run the benchmarks, then write benchmarks/REPORT.md.

``python -m benchmarks [SUITE ...]`` runs some suites only; ``--report`` only rewrites the report.
"""

from __future__ import annotations

import argparse
import importlib

from benchmarks.report import write_report

SUITES = ["ingestion", "retrieval", "inference", "app_overhead", "widget_streams", "speculative"]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("suites", nargs="*", help=f"some of: {', '.join(SUITES)} (default: all)")
    parser.add_argument("--report", action="store_true", help="only rewrite REPORT.md from saved results")
    args = parser.parse_args()
    unknown = set(args.suites) - set(SUITES)
    if unknown:
        parser.error(f"unknown suites: {', '.join(sorted(unknown))}")
    if not args.report:
        for suite in args.suites or SUITES:
            importlib.import_module(f"benchmarks.{suite}").main([])
    print(f"wrote {write_report()}")


if __name__ == "__main__":
    main()
