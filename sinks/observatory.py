"""The matching observatory in ClickHouse: written by the worker's matcher, read by the API and the board."""

from __future__ import annotations

import time
from datetime import date

DAILY_COLUMNS = ["day", "ranker", "group_kind", "group_value", "queries", "hits_at_10", "precision_at_10",
                 "ndcg_at_10", "outcomes", "auc", "version"]
EXPOSURE_COLUMNS = ["day", "recommendations", "vacancies_shown", "max_share", "gini", "hires", "hires_attributed",
                    "version"]


def write_matching(client, daily: list[list], exposure: list[list]) -> None:
    """Rows of whole days (``Matcher.daily_rows`` / ``exposure_rows``): a newer version replaces a day's."""
    version = time.time_ns()
    if daily:
        client.insert("matching_daily", [[*r, version] for r in daily], column_names=DAILY_COLUMNS)
    if exposure:
        client.insert("matching_exposure", [[*r, version] for r in exposure], column_names=EXPOSURE_COLUMNS)


def matching_metrics(client, lo: date, hi: date, group_kind: str = "all") -> list[dict]:
    """Per day and ranker: precision@10, NDCG@10, AUC and counts (newest version of each row)."""
    rows = client.query(
        """
        SELECT day, ranker, group_value, argMax(queries, version), argMax(hits_at_10, version),
               argMax(precision_at_10, version), argMax(ndcg_at_10, version), argMax(outcomes, version),
               argMax(auc, version)
        FROM matching_daily
        WHERE day BETWEEN {lo:Date} AND {hi:Date} AND group_kind = {kind:String}
        GROUP BY day, ranker, group_value ORDER BY day, ranker, group_value
        """, parameters={"lo": lo, "hi": hi, "kind": group_kind}).result_rows
    names = ("day", "ranker", "group", "queries", "hits_at_10", "precision_at_10", "ndcg_at_10", "outcomes", "auc")
    # A day with good outcomes only, or rejections only, has no AUC (null, not 0): the queries are its good ones.
    return [dict(zip(names, (r[0].isoformat(), *r[1:8], r[8] if 0 < r[3] < r[7] else None), strict=True))
            for r in rows]


def matching_exposure(client, lo: date, hi: date) -> list[dict]:
    rows = client.query(
        """
        SELECT day, argMax(recommendations, version), argMax(vacancies_shown, version), argMax(max_share, version),
               argMax(gini, version), argMax(hires, version), argMax(hires_attributed, version)
        FROM matching_exposure WHERE day BETWEEN {lo:Date} AND {hi:Date}
        GROUP BY day ORDER BY day
        """, parameters={"lo": lo, "hi": hi}).result_rows
    names = ("day", "recommendations", "vacancies_shown", "max_share", "gini", "hires", "hires_attributed")
    return [dict(zip(names, (r[0].isoformat(), *r[1:]), strict=True)) for r in rows]
