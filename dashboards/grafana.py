"""Grafana renderer: the board definitions as Grafana dashboards (grafana-foundation-sdk), a provisioning
folder for the docker-compose stack, and a push through the HTTP API (grafana-client).

No Grafana server can run on the development machines: this module is proven by contract tests (the
SQL runs on ClickHouse with the plugin's macros expanded, the JSON loads back into the SDK's models, the
push is replayed against a recording of the documented API).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from grafana_foundation_sdk.builders import barchart, dashboard, stat, table, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as model

from dashboards.boards import BOARDS, Board, Panel, label_namespace, labels

DATASOURCE_UID = "lmis-clickhouse"
DATASOURCE = model.DataSourceRef(type_val="grafana-clickhouse-datasource", uid=DATASOURCE_UID)
FOLDER_UID = "lmis"
FORMAT = {"time_series": 0, "table": 1}  # the plugin's Format enum
QUERY_TYPE = {"time_series": "timeseries", "table": "table"}


class ClickHouseQuery(variants.Dataquery):
    """A target of the ClickHouse data source plugin in SQL-editor mode (the SDK has no ClickHouse type)."""

    def __init__(self, ref_id: str, raw_sql: str, fmt: str):
        self.ref_id, self.raw_sql, self.fmt = ref_id, raw_sql, fmt

    def to_json(self) -> dict[str, Any]:
        return {"refId": self.ref_id, "datasource": {"type": DATASOURCE.type_val, "uid": DATASOURCE.uid},
                "editorType": "sql", "rawSql": self.raw_sql.strip(), "format": FORMAT[self.fmt],
                "queryType": QUERY_TYPE[self.fmt]}


class ClickHouseQueryBuilder(cogbuilder.Builder[variants.Dataquery]):
    def __init__(self, query: ClickHouseQuery):
        self._query = query

    def build(self) -> ClickHouseQuery:
        return self._query


def _panel(p: Panel, x: int, y: int) -> cogbuilder.Builder:
    if p.kind == "timeseries":
        b = timeseries.Panel().line_width(2).fill_opacity(10)
    elif p.kind == "stat":
        b = stat.Panel()
    elif p.kind == "bar":
        b = barchart.Panel()
    else:  # table and the region grid: a table coloured by change
        b = table.Panel()
    columns = labels("ko")["column"]
    b = (b.title(p.ko).description(p.description or p.en).datasource(DATASOURCE).unit(p.unit)
         .grid_pos(model.GridPos(h=p.height, w=p.width, x=x, y=y))
         .with_target(ClickHouseQueryBuilder(ClickHouseQuery("A", p.sql, p.format)))
         .no_value("—"))
    for name, _ in p.columns:  # Korean column headers
        if name in columns:
            b = b.override_by_name(name, [model.DynamicConfigValue(id_val="displayName", value=columns[name])])
    # In a column of persons, NULL is a suppressed count of 1 or 2: shown as "<3" (elsewhere, missing: "—").
    suppressed = model.SpecialValueMap(options=model.DashboardSpecialValueMapOptions(
        match=model.SpecialValueMatch.NULL, result=model.ValueMappingResult(text="<3")))
    for name in p.person_columns:
        b = b.override_by_name(name, [model.DynamicConfigValue(id_val="mappings", value=[suppressed])])
    mappings = []
    if p.label_column:
        names = labels("ko")[label_namespace(p.label_column)]
        mappings.append(model.ValueMap(options={k: model.ValueMappingResult(text=v) for k, v in names.items()}))
    return b.mappings(mappings)


def to_dashboard(board: Board) -> model.Dashboard:
    b = (dashboard.Dashboard(board.ko).uid(board.uid).tags(list(board.tags)).timezone("Asia/Seoul")
         .refresh(f"{max(board.refresh_seconds, 5)}s").time(f"now-{board.default_days}d", "now")
         .description(board.en).editable())
    for v in board.variables:
        b = b.with_variable(
            dashboard.QueryVariable(v.name).label(v.ko).datasource(DATASOURCE)
            .query(f"SELECT value AS __value, label_ko AS __text FROM ({v.options_sql})")
            .multi(v.multi).include_all(v.include_all)
            .current(model.VariableOption(selected=True, text="All", value="$__all")))
    x = y = row_height = 0
    for p in board.panels:
        if x + p.width > 24:
            x, y, row_height = 0, y + row_height, 0
        b = b.with_panel(_panel(p, x, y))
        x += p.width
        row_height = max(row_height, p.height)
    return b.build()


def dashboard_json(board: Board) -> dict[str, Any]:
    return json.loads(JSONEncoder(sort_keys=True).encode(to_dashboard(board)))


def load_back(doc: dict[str, Any]) -> model.Dashboard:
    """The SDK's model of a dashboard JSON (to prove what we generate is what the SDK understands)."""
    return model.Dashboard.from_json(doc)


def export_provisioning(out: Path) -> list[Path]:
    """A Grafana provisioning folder: data source (read-only ClickHouse user from the environment),
    dashboard provider, and one JSON file per board. docker-compose mounts it."""
    written = []
    (out / "datasources").mkdir(parents=True, exist_ok=True)
    (out / "dashboards").mkdir(parents=True, exist_ok=True)
    (out / "dashboards" / "lmis").mkdir(parents=True, exist_ok=True)
    datasource = {"apiVersion": 1, "datasources": [{
        "name": "LMIS ClickHouse", "uid": DATASOURCE_UID, "type": "grafana-clickhouse-datasource",
        "isDefault": True, "editable": False,
        "jsonData": {"host": "${CLICKHOUSE_HOST}", "port": 8123, "protocol": "http", "defaultDatabase": "lmis",
                     "username": "${CLICKHOUSE_READER_USER}", "readOnly": True},
        "secureJsonData": {"password": "${CLICKHOUSE_READER_PASSWORD}"}}]}
    provider = {"apiVersion": 1, "providers": [{
        "name": "lmis", "orgId": 1, "folder": "LMIS", "folderUid": FOLDER_UID, "type": "file",
        "disableDeletion": True, "allowUiUpdates": False,
        "options": {"path": "/etc/grafana/provisioning/dashboards/lmis"}}]}
    for path, doc in ((out / "datasources" / "lmis.yaml", datasource), (out / "dashboards" / "lmis.yaml", provider)):
        path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        written.append(path)
    for board in BOARDS:
        path = out / "dashboards" / "lmis" / f"{board.uid}.json"
        path.write_text(json.dumps(dashboard_json(board), ensure_ascii=False, indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def _comparable(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in ("id", "version")}


def push(url: str, token: str, folder: str = "LMIS", api=None) -> dict[str, str]:
    """Create or update the folder and every board (stable UIDs, overwrite). Unchanged boards are left
    alone, so a second push changes nothing. Returns {uid: created|updated|unchanged}."""
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaClientError

    api = api or GrafanaApi.from_url(url, credential=token)
    try:
        api.folder.get_folder(FOLDER_UID)
    except GrafanaClientError as exc:
        if exc.status_code != 404:
            raise
        api.folder.create_folder(folder, uid=FOLDER_UID)
    result = {}
    for board in BOARDS:
        ours = dashboard_json(board)
        try:
            current = api.dashboard.get_dashboard(board.uid)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            current = None
        if current and _comparable(current["dashboard"]) == _comparable(ours) \
                and current.get("meta", {}).get("folderUid") == FOLDER_UID:
            result[board.uid] = "unchanged"
            continue
        api.dashboard.update_dashboard({"dashboard": ours, "folderUid": FOLDER_UID, "overwrite": True,
                                        "message": "lmis dashboards push"})
        result[board.uid] = "updated" if current else "created"
    return result


__all__ = ["dashboard_json", "export_provisioning", "load_back", "push", "to_dashboard"]
