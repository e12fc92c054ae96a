"""Print a Locust ``*_stats.csv`` as a Markdown table: throughput, p50/p95/p99, error rate."""

from __future__ import annotations

import csv
import sys
from pathlib import Path


def main(prefix: str, label: str) -> int:
    with Path(f"{prefix}_stats.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        print(f"no statistics in {prefix}_stats.csv")
        return 1
    print(f"\n{label}")
    print("| request | requests | req/s | p50 ms | p95 ms | p99 ms | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        count, failures = int(r["Request Count"]), int(r["Failure Count"])
        name = "**all**" if r["Name"] == "Aggregated" else r["Name"]
        rate = 100.0 * failures / count if count else 0.0
        print(
            f"| {name} | {count} | {float(r['Requests/s']):.1f} | {r['50%']} | {r['95%']} "
            f"| {r['99%']} | {failures} ({rate:.2f}%) |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1], " ".join(sys.argv[2:])))
