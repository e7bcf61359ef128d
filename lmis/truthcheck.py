"""Compare what ClickHouse holds with a simulator truth file (used by tests, in their own process)."""

from __future__ import annotations

import json
import sys
from datetime import date


def compare(client, truth: dict) -> dict:
    from sinks.readers import measure_cells, measure_rows

    days = [date.fromisoformat(d) for m in truth["counts"].values() for d in m]
    lo, hi = min(days), date.fromisoformat(truth["last_day"])
    mismatches: dict[str, list] = {}
    for measure, by_day in truth["counts"].items():
        expected = {(d, cell): n for d, cells in by_day.items() for cell, n in cells.items()}
        got = measure_cells(client, measure, lo, hi)
        if got != expected:
            diff = sorted((k, expected.get(k), got.get(k)) for k in set(expected) | set(got)
                          if expected.get(k) != got.get(k))
            mismatches[measure] = [list(map(str, x)) for x in diff[:5]] + [f"{len(diff)} cells differ"]
    first = date.fromisoformat(truth["first_full_day"])
    for stock in ("open_openings", "open_vacancies"):
        rows = measure_rows(client, [f"stock.{stock}"], first, hi, ("region",))
        got = {(d.isoformat(), r): int(v) for d, r, _, v in rows if v}
        expected = {(d, r): n for d, regions in truth["stocks"][stock].items() for r, n in regions.items()
                    if date.fromisoformat(d) >= first}
        if got != expected:
            mismatches[f"stock.{stock}"] = [f"{len(set(got.items()) ^ set(expected.items()))} differ"]
    return {"measures": len(truth["counts"]), "mismatches": mismatches}


if __name__ == "__main__":  # python -m lmis.truthcheck DSN TRUTH.json
    from sinks.clickhouse import connect

    print(json.dumps(compare(connect(sys.argv[1]), json.loads(open(sys.argv[2]).read()))))
