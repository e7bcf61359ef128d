"""The insured stock's anchor: snapshots of the employment-insurance database (피보험자 수 by region and
industry at the end of a day), which the rollup carries forward with the acquisitions and losses of the
feed (``stock.insured``). No event carries the stock itself: the EI database counts it monthly.

A snapshot is a CSV file with a header ``as_of,region,industry,insured``; ``lmis simulate --insured-stock``
writes the simulator's, and the worker loads ``LMIS_INSURED_STOCK_FILE`` when it starts.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from schemas.codes import code_list

COLUMNS = ("as_of", "region", "industry", "insured")


def read_snapshot(path: Path) -> list[tuple[date, str, str, int]]:
    """The rows of a snapshot file; a clear error naming the line, field and value for a bad one."""
    regions = {c.code for c in code_list("regions")}
    industries = {c.code for c in code_list("industries")}
    rows = []
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: the header must be {','.join(COLUMNS)}, not {','.join(reader.fieldnames or ())}")
        for n, r in enumerate(reader, start=2):
            try:
                as_of, insured = date.fromisoformat(r["as_of"]), int(r["insured"])
            except ValueError as exc:
                raise ValueError(f"{path}:{n}: {exc}") from None
            if r["region"] not in regions:
                raise ValueError(f"{path}:{n}: region {r['region']!r} is not a 시도 code")
            if r["industry"] not in industries:
                raise ValueError(f"{path}:{n}: industry {r['industry']!r} is not a KSIC section")
            if insured < 0:
                raise ValueError(f"{path}:{n}: insured {insured} is negative")
            rows.append((as_of, r["region"], r["industry"], insured))
    return rows


def write_snapshot(path: Path, rows: Iterable[tuple[date, str, str, int]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows((d.isoformat(), region, industry, n) for d, region, industry, n in rows)


def load_snapshot(client, rows: list[tuple[date, str, str, int]]) -> int:
    """Store a snapshot's rows (idempotent: the same rows again replace themselves)."""
    if rows:
        client.insert("insured_stock_base", [list(r) for r in rows], column_names=list(COLUMNS))
    return len(rows)


def anchors(client) -> list[date]:
    """The days with a snapshot, oldest first."""
    return [d for (d,) in client.query("SELECT DISTINCT as_of FROM insured_stock_base ORDER BY as_of").result_rows]
