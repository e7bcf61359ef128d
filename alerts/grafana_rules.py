"""The labour-market spikes as Grafana alert rules, for a site that alerts from Grafana as well.

One rule per signal measure, one alert instance per 시도 and the nation (Grafana's multi-dimensional rules:
a row per region). Each rule's SQL judges the last complete Asia/Seoul day before the evaluation time as
:class:`alerts.detectors.SpikeDetector` does: the median of the same weekday over the 8 weeks before
(holidays and month edges left out, each day at its month's seasonal level), a spread of 1.4826 × MAD
and at least √expected, a robust score alerting beyond ±4 when the day is at least 10 and 25 % away.
Simpler than the worker's detectors: it does not judge holidays and month edges, nor shifts or layoffs
(those are the worker's alone).

``lmis alerts export`` writes them as a provisioning file beside the dashboards'; ``lmis alerts push`` puts
them through Grafana's alerting provisioning API. Their SQL is run on the embedded engine by the tests,
with the data source plugin's macros expanded as Grafana does.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import yaml

from alerts.judge import RULES
from alerts.model import SIGNAL_MEASURES
from schemas.calendar import holidays_between, month_factor

DATASOURCE_UID = "lmis-clickhouse"
FOLDER_UID = "lmis"
GROUP = "lmis-labour-market"
WEEKS = 8


def _holidays_sql() -> str:
    days = holidays_between(date(2020, 1, 1), date(2030, 12, 31))
    return "[" + ", ".join(f"toDate('{d.isoformat()}')" for d in days) + "]"


def spike_sql(measure: str) -> str:
    """Rows of (region, value): each 시도's and the nation's ('') robust score on the judged day, 0 where it
    is too small to matter or cannot be judged."""
    m = measure.replace("'", "")
    feed = SIGNAL_MEASURES[measure][2]
    months = ", ".join(str(month_factor(feed, date(2026, k, 1))) for k in range(1, 13))
    return f"""
WITH toDate($__toTime, 'Asia/Seoul') - 1 AS judged, {_holidays_sql()} AS holidays, [{months}] AS months,
     months[toMonth(judged)] AS level
SELECT region, if(judgeable AND length(base) >= 4
                  AND abs(observed - expected) >= greatest({RULES.min_size}, {RULES.spike_min_share} * expected),
                  round((observed - expected) / sigma, 3), 0) AS value
FROM (
    SELECT region, observed, base, judgeable,
           arrayReduce('quantileExactInclusive(0.5)', base) AS plain,
           plain * level AS expected,
           greatest(1.4826 * level * arrayReduce('quantileExactInclusive(0.5)', arrayMap(x -> abs(x - plain), base)),
                    sqrt(expected), 1) AS sigma
    FROM (
        SELECT r AS region, sumIf(v, day = judged) AS observed,
               groupArrayIf(v / months[toMonth(day)],
                            day < judged AND toDayOfWeek(day) = toDayOfWeek(judged) AND NOT has(holidays, day)
                               AND toDayOfMonth(day) != 1 AND day != toLastDayOfMonth(day)) AS base,
               NOT has(holidays, judged) AND toDayOfMonth(judged) != 1 AND judged != toLastDayOfMonth(judged)
                   AS judgeable
        FROM (
            SELECT day, r, sum(value) AS v
            FROM daily_region_measures
            ARRAY JOIN [region, ''] AS r
            WHERE measure = '{m}' AND day BETWEEN judged - {WEEKS * 7} AND judged
              AND (day, version) IN (SELECT day, max(version) FROM rollup_log
                                     WHERE day BETWEEN judged - {WEEKS * 7} AND judged GROUP BY day)
            GROUP BY day, r
        )
        GROUP BY region
    )
)
ORDER BY region
""".strip()


def rules() -> list[dict[str, Any]]:
    """The rules in Grafana's provisioning format (one per measure)."""
    out = []
    for measure, (ko, en, family) in SIGNAL_MEASURES.items():
        uid = "lmis-spike-" + measure.replace(".", "-").replace("_", "-")
        out.append({
            "uid": uid, "title": f"{ko} 급변 / {en}: spike", "condition": "C", "for": "0s",
            "noDataState": "OK", "execErrState": "Error",
            "data": [
                {"refId": "A", "datasourceUid": DATASOURCE_UID, "relativeTimeRange": {"from": 86400, "to": 0},
                 "model": {"refId": "A", "editorType": "sql", "format": 1, "queryType": "table",
                           "rawSql": spike_sql(measure),
                           "datasource": {"type": "grafana-clickhouse-datasource", "uid": DATASOURCE_UID}}},
                {"refId": "C", "datasourceUid": "__expr__", "relativeTimeRange": {"from": 0, "to": 0},
                 "model": {"refId": "C", "type": "threshold", "expression": "A",
                           "conditions": [{"evaluator": {"type": "outside_range",
                                                         "params": [-RULES.spike_threshold, RULES.spike_threshold]}}],
                           "datasource": {"type": "__expr__", "uid": "__expr__"}}},
            ],
            "labels": {"class": "labour_market", "severity": "warning", "measure": measure, "family": family,
                       "system": "lmis", "alertname": "LabourMarketSpike"},
            "annotations": {"summary": f"{ko} 급변 {{{{ $labels.region }}}} / {en} spike in {{{{ $labels.region }}}}: "
                                       "robust score {{ $values.A }}",
                            "description": "alerts/grafana_rules.py; docs/alerts.md"},
        })
    return out


def provisioning() -> dict[str, Any]:
    return {"apiVersion": 1, "groups": [{"orgId": 1, "name": GROUP, "folder": "LMIS", "interval": "1h",
                                         "rules": rules()}]}


def export(out: Path) -> Path:
    """Write ``<out>/alerting/lmis.yaml`` (the provisioning folder docker-compose mounts)."""
    path = out / "alerting" / "lmis.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(provisioning(), allow_unicode=True, sort_keys=False))
    return path


def push(url: str, token: str, api=None) -> dict[str, str]:
    """Create or update each rule through Grafana's alerting provisioning API (editable in the UI
    afterwards). Returns {uid: created|updated|unchanged}."""
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaClientError

    api = api or GrafanaApi.from_url(url, credential=token)
    result = {}
    for rule in rules():
        ours = {**rule, "folderUID": FOLDER_UID, "ruleGroup": GROUP, "orgID": 1}
        try:
            current = api.alertingprovisioning.get_alertrule(rule["uid"])
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            current = None
        if current is None:
            api.alertingprovisioning.create_alertrule(ours, disable_provenance=True)
            result[rule["uid"]] = "created"
        elif all(current.get(k) == v for k, v in ours.items()):
            result[rule["uid"]] = "unchanged"
        else:
            api.alertingprovisioning.update_alertrule(rule["uid"], ours, disable_provenance=True)
            result[rule["uid"]] = "updated"
    return result
