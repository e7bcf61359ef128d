"""The worker's read-only HTTP API (FastAPI): indicators and health, reading through ``sinks``.

Served by the worker that owns ClickHouse (``lmis worker``), on loopback unless told otherwise, with an
optional bearer token. ``/openapi.json`` documents it.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Annotated, Literal

from clickhouse_connect.driver.exceptions import DatabaseError
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.encoders import jsonable_encoder
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, Field
from starlette.middleware.gzip import GZipMiddleware

from dashboards import panels
from dashboards.boards import BOARDS, labels
from schemas.calendar import holiday_name, holidays_between
from sinks.alert_log import as_json as alert_json
from sinks.alert_log import history as alert_history
from sinks.briefing_log import get as briefing_row
from sinks.briefing_log import listing as briefing_listing
from sinks.clickhouse import too_large
from sinks.disclosure import SUPPRESSED, UNSUPPRESSED, suppress_indicator_rows, suppress_revisions
from sinks.indicators import definitions
from sinks.observatory import matching_exposure, matching_metrics
from sinks.published import revisions
from sinks.readers import (
    DIMENSIONS,
    RequestError,
    TooLarge,
    dead_letter_counts,
    duplicate_count,
    engine_memory_bytes,
    indicator_table,
)
from sinks.readers import check_range as check_days

WEB = Path(__file__).resolve().parent / "web"
# Public holidays the time axes mark (the years whose lunar holidays are known).
HOLIDAYS = {d.isoformat(): holiday_name(d) for d in holidays_between(date(2020, 1, 1), date(2030, 12, 31))}
BoardUid = Literal[tuple(b.uid for b in BOARDS)]  # type: ignore[valid-type]
PanelId = Literal[tuple(dict.fromkeys(p.id for b in BOARDS for p in b.panels))]  # type: ignore[valid-type]

CSV_OR_JSON = {200: {"description": "rows", "content": {"application/json": {}, "text/csv": {}}},
               400: {"description": "bad parameters"},
               403: {"description": "raw=true without the API token as a bearer token"},
               413: {"description": "more rows than a request may return: narrow it (the message says how)"}}


def check_range(lo: date, hi: date) -> None:
    """At most ``MAX_DAYS`` days of 2000-2100, in order; else 400."""
    try:
        check_days(lo, hi)
    except RequestError as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None


BY_PATTERN = rf"^day(,({'|'.join(DIMENSIONS)}))*$"


def _codes_pattern(codes: tuple[str, ...]) -> str:
    alternatives = "|".join(codes)
    return rf"^(({alternatives})(,({alternatives}))*)?$"


def parse_by(by: str) -> tuple[str, ...]:
    parts = [p.strip() for p in by.split(",") if p.strip()]
    if not parts or parts[0] != "day":
        raise ValueError("`by` must start with `day`, e.g. day,region")
    extra = tuple(dict.fromkeys(parts[1:]))  # a repeated breakdown counts once
    unknown = [p for p in extra if p not in DIMENSIONS]
    if unknown:
        raise ValueError(f"unknown breakdown {unknown[0]!r}; use day and any of {', '.join(DIMENSIONS)}")
    return extra


def rows_to_csv(rows: list[dict]) -> str:
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


SESSION_COOKIE = "lmis_session"
OPEN_PATHS = frozenset({"/api/session", "/static/login.js", "/static/login.css"})
# Scripts only from the worker itself (no inline script can run); styles inline too (the board's own, uPlot's).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


class SessionRequest(BaseModel):
    token: str = Field(max_length=1024)


K = Annotated[int, Query(ge=1, le=100, description="how many (1-100)")]
NOT_FOUND = {404: {"description": "unknown or no longer active"}, 503: {"description": "matching not running"}}


def recommendation_items(items) -> list[dict]:
    return [{"rank": i + 1, "id": r.id, "score": round(r.score, 6), "reasons": r.reasons}
            for i, r in enumerate(items)]


def create_api(client_factory: Callable[[], object], token: str | None = None,
               health: Callable[[], dict] | None = None, matching=None, max_rows: int = 50_000,
               briefing: Callable[[object, date, str], dict] | None = None) -> FastAPI:
    """``matching``: the worker's ``MatchingService`` (recommendations need its model in memory); ``max_rows``:
    the most rows a request returns (more: 413). The client's queries should be bounded too
    (``sinks.clickhouse.limit_reads``). ``briefing(client, day, lang)``: a day's briefing rendered now (a
    ``briefings`` row), for previews."""
    api = FastAPI(title="LMIS API", version="1", description="Exact employment-trend indicators (read-only).")
    # Panels, tables and the board's code travel compressed (JSON of a year's series: ~10 × smaller).
    api.add_middleware(GZipMiddleware, minimum_size=1024)
    executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lmis-api")
    client = client_factory()

    @api.exception_handler(DatabaseError)
    async def query_limit(request: Request, exc: DatabaseError) -> JSONResponse:
        if too_large(exc):  # a query stopped by its limits (limit_reads): the caller asked for too much
            return JSONResponse({"detail": "the request needs more than one query may read or use; ask for "
                                           "fewer days or fewer breakdowns"}, status_code=413)
        raise exc

    async def in_thread(fn, *args):
        return await asyncio.get_running_loop().run_in_executor(executor, fn, *args)

    # One large read at a time: each may use the engine's per-query memory limit, and two at once would
    # double what the worker holds; the health and the board's panels are never queued behind one.
    large_reads = asyncio.Semaphore(1)

    session = None if token is None else hmac.new(token.encode(), b"lmis board session", hashlib.sha256).hexdigest()

    def bearer(request: Request) -> bool:
        """The API token itself in the request (not the board's session)."""
        header = request.headers.get("authorization", "")
        return token is not None and secrets.compare_digest(header.encode(), f"Bearer {token}".encode())

    def allowed(request: Request) -> bool:
        """The bearer token, or the board's session cookie (given for the token by ``/api/session``)."""
        if token is None:
            return True
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return bearer(request) or secrets.compare_digest(cookie.encode(), str(session).encode())

    def authorised(request: Request) -> None:
        if not allowed(request):
            raise HTTPException(status_code=401, detail="missing or wrong bearer token",
                                headers={"WWW-Authenticate": "Bearer"})

    def disclosed(request: Request, rows: list[dict], raw: bool, suppress: Callable[[list[dict]], list[dict]]
                  ) -> tuple[list[dict], str]:
        """The rows as published (small counts of persons suppressed), or exact for an authorised internal
        caller who asked: the API token itself in the request (not the board's session), with ``raw=true``."""
        if not raw:
            return suppress(rows), SUPPRESSED
        if not bearer(request):
            raise HTTPException(status_code=403, detail="raw=true (exact small counts of persons) needs the API "
                                                        "token (LMIS_API_TOKEN) as a bearer token")
        return rows, UNSUPPRESSED

    def published(body: dict | str, disclosure: str, media_type: str | None = None) -> Response:
        headers = {"X-LMIS-Disclosure": "unsuppressed" if disclosure == UNSUPPRESSED else "suppressed"}
        if isinstance(body, str):
            return PlainTextResponse(body, media_type=media_type, headers=headers)
        return JSONResponse({**body, "disclosure": disclosure}, headers=headers)

    @api.middleware("http")
    async def guard(request: Request, call_next):
        """With a token set, everything but the login page needs it -- the board's page and code and the API's
        documents too; every answer carries a strict Content-Security-Policy."""
        path = request.url.path
        if not allowed(request) and path not in OPEN_PATHS:
            if path == "/":
                response = HTMLResponse((WEB / "login.html").read_text("utf-8"))
            else:
                response = JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401,
                                        headers={"WWW-Authenticate": "Bearer"})
        else:
            response = await call_next(request)
        if not path.startswith(("/docs", "/redoc")):  # FastAPI's own pages load their scripts from a CDN
            response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @api.post("/api/session", status_code=204, responses={400: {"description": "not a JSON body"},
                                                          401: {"description": "wrong token"}})
    async def open_session(request: Request, body: SessionRequest) -> Response:
        """The board's session: the API token once, for a cookie (HttpOnly, SameSite=Strict) that the board's
        requests carry. Without a token set, nothing is needed."""
        if token is not None and not secrets.compare_digest(body.token.encode(), token.encode()):
            raise HTTPException(status_code=401, detail="wrong token")
        response = Response(status_code=204)
        if session is not None:
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict",
                                secure=request.url.scheme == "https", path="/")
        return response

    @api.get("/api/health", dependencies=[Depends(authorised)])
    async def get_health(
        store: Annotated[bool, Query(description="also count dead letters and duplicates in ClickHouse "
                                                 "(false: the worker's counters only, for frequent polling)")] = True,
    ) -> dict:
        """Is the worker alive; the pipeline's counters."""
        body = {"status": "ok"}
        if health:
            body.update(health())
        if store:
            body["dead_letters_by_reason"] = await in_thread(dead_letter_counts, client)
            body["duplicates"] = await in_thread(duplicate_count, client)
            body["engine_memory_mb"] = round(await in_thread(engine_memory_bytes, client) / 2**20, 1)
        return body

    @api.get("/api/indicators", dependencies=[Depends(authorised)], responses=CSV_OR_JSON)
    async def get_indicators(
        request: Request,
        from_: Annotated[date, Query(alias="from", description="first day (Asia/Seoul), YYYY-MM-DD")],
        to: Annotated[date, Query(description="last day (Asia/Seoul), YYYY-MM-DD")],
        by: Annotated[str, Query(description="day, then any of region, industry, occupation, age_band, sex, "
                                             "size_band; comma separated", pattern=BY_PATTERN)] = "day",
        format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json",
        raw: Annotated[bool, Query(description="exact small counts of persons (with the API token only)")] = False,
    ):
        """Counts and indicators per day and breakdown -- the same numbers as `lmis indicators`. Counts of 1
        or 2 persons, and the figures computed from them, are null (suppressed)."""
        try:
            dims = parse_by(by)
        except ValueError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        check_range(from_, to)
        try:
            async with large_reads:
                rows = await in_thread(indicator_table, client, from_, to, dims, max_rows)
        except TooLarge as exc:
            raise HTTPException(status_code=413, detail=str(exc)) from None
        rows, disclosure = disclosed(request, rows, raw, suppress_indicator_rows)
        if format == "csv":
            return published(rows_to_csv(rows), disclosure, "text/csv")
        return published({"from": from_.isoformat(), "to": to.isoformat(), "by": ["day", *dims], "rows": rows},
                         disclosure)

    @api.get("/api/revisions", dependencies=[Depends(authorised)], responses=CSV_OR_JSON)
    async def get_revisions(
        request: Request,
        from_: Annotated[date, Query(alias="from", description="first day (Asia/Seoul), YYYY-MM-DD")],
        to: Annotated[date, Query(description="last day (Asia/Seoul), YYYY-MM-DD")],
        format: Annotated[Literal["json", "csv"], Query(description="json or csv")] = "json",
        raw: Annotated[bool, Query(description="exact small counts of persons (with the API token only)")] = False,
    ):
        """Each day's counts per measure and region ('' national) as published when the day ended (event
        time), as final once the allowed lateness had passed, and now: every revision, explained by when
        it happened. null: not published (yet), or a count of 1 or 2 persons (suppressed)."""
        check_range(from_, to)
        async with large_reads:
            rows = await in_thread(revisions, client, from_, to)
        rows, disclosure = disclosed(request, rows, raw, suppress_revisions)
        if format == "csv":
            return published(rows_to_csv(rows), disclosure, "text/csv")
        return published({"from": from_.isoformat(), "to": to.isoformat(), "rows": rows}, disclosure)

    @api.get("/api/alerts", dependencies=[Depends(authorised)], responses={400: {"description": "bad range"}})
    async def get_alerts(
        state: Annotated[Literal["firing", "resolved", "all"], Query(description="firing, resolved or all")] = "all",
        cls: Annotated[Literal["data_fault", "labour_market", "all"],
                       Query(alias="class", description="data_fault, labour_market or all")] = "all",
        from_: Annotated[date | None, Query(alias="from", description="first day (Asia/Seoul), YYYY-MM-DD")] = None,
        to: Annotated[date | None, Query(description="last day (Asia/Seoul), YYYY-MM-DD")] = None,
        limit: Annotated[int, Query(ge=1, le=5000, description="at most this many, newest first (1-5000)")] = 500,
    ) -> JSONResponse:
        """Alerts, newest first: each episode of a condition (its fingerprint and the event time it was first
        seen) as last judged -- firing or resolved, its class, severity, cells, observed against expected with
        the interval, and its summary in Korean and English. ``inhibited_by``: the data fault that explains a
        labour-market alert away (not delivered)."""
        check_range(from_ or to or date(2000, 1, 1), to or from_ or date(2000, 1, 1))
        rows = await in_thread(alert_history, client, from_, to, None if state == "all" else state,
                               None if cls == "all" else cls, limit)
        return JSONResponse({"alerts": [alert_json(r) for r in rows]})

    @api.get("/api/briefings", dependencies=[Depends(authorised)], responses={400: {"description": "bad range"}})
    async def get_briefings(
        from_: Annotated[date | None, Query(alias="from", description="first day (Asia/Seoul), YYYY-MM-DD")] = None,
        to: Annotated[date | None, Query(description="last day (Asia/Seoul), YYYY-MM-DD")] = None,
        limit: Annotated[int, Query(ge=1, le=1000, description="at most this many, newest first (1-1000)")] = 100,
    ) -> JSONResponse:
        """The daily briefings kept (one per day, as rendered at 08:00 event time): the day, language, subject,
        how many recipients, when it was sent (null: not yet or not to be: no recipients), attempts and the
        last error. Each one's page: ``/api/briefings/{day}``."""
        check_range(from_ or to or date(2000, 1, 1), to or from_ or date(2000, 1, 1))
        rows = await in_thread(briefing_listing, client, from_, to, limit)
        return JSONResponse({"briefings": [
            {"day": r["day"].isoformat(), "lang": r["lang"], "subject": r["subject"],
             "recipients": len([a for a in r["recipients"].split(",") if a.strip()]),
             "instant": r["instant"].isoformat(), "sent_at": r["sent_at"].isoformat() if r["sent_at"] else None,
             "attempts": r["attempts"] or 0, "last_error": r["last_error"] or None} for r in rows]})

    @api.get("/api/briefings/{day}", dependencies=[Depends(authorised)], response_class=HTMLResponse,
             responses={404: {"description": "no briefing kept for the day"}})
    async def get_briefing(day: Annotated[date, PathParam(description="the day (Asia/Seoul), YYYY-MM-DD")]
                           ) -> HTMLResponse:
        """A kept briefing as a standalone page (as sent: charts inline, no scripts)."""
        row = await in_thread(briefing_row, client, day)
        if row is None:
            raise HTTPException(status_code=404, detail=f"no briefing kept for {day}")
        return HTMLResponse(row["page"])

    @api.get("/api/briefings/{day}/preview", dependencies=[Depends(authorised)],
             responses={404: {"description": "no data for the day"}, 503: {"description": "not served here"}})
    async def preview_briefing(
        day: Annotated[date, PathParam(description="the day (Asia/Seoul), YYYY-MM-DD")],
        lang: Annotated[Literal["ko", "en"], Query(description="ko or en")] = "ko",
        format: Annotated[Literal["html", "eml"], Query(description="html (the page) or eml (the e-mail)")] = "html",
    ) -> Response:
        """A day's briefing rendered now from the current numbers (not kept, not sent)."""
        if briefing is None:
            raise HTTPException(status_code=503, detail="briefings are rendered by the worker")
        async with large_reads:
            row = await in_thread(briefing, client, day, lang)
        if row is None:
            raise HTTPException(status_code=404, detail=f"no data for {day}")
        if format == "eml":
            return Response(row["message"], media_type="message/rfc822")
        return HTMLResponse(row["page"])

    def matcher():
        if matching is None:
            raise HTTPException(status_code=503, detail="matching is not running here: it lives in the worker "
                                                        "(LMIS_MATCHING_ENABLED=true)")
        return matching


    @api.get("/api/recommendations/seeker/{seeker_id}", dependencies=[Depends(authorised)], responses=NOT_FOUND)
    async def recommend_for_seeker(
        seeker_id: Annotated[str, PathParam(pattern=r"^S[0-9a-f]{16}$", description="pseudonymous seeker id")],
        k: K = 10,
    ) -> dict:
        """Top-k open vacancies for a job seeker: score and the three features that contributed most.
        Exposure control applies: a vacancy already in its share of today's recommendations is skipped."""
        service = matcher()
        try:
            items = await in_thread(service.recommend_vacancies, seeker_id, k)
        except KeyError:
            raise HTTPException(status_code=404, detail=f"no active job seeker {seeker_id}") from None
        except RuntimeError as exc:  # the matcher's process failed or is gone (the health says which)
            raise HTTPException(status_code=503, detail=f"matching is not available: {exc}") from None
        return {"seeker_id": seeker_id, "vacancies": recommendation_items(items)}

    @api.get("/api/recommendations/vacancy/{vacancy_id}", dependencies=[Depends(authorised)], responses=NOT_FOUND)
    async def recommend_for_vacancy(
        vacancy_id: Annotated[str, PathParam(pattern=r"^V[0-9a-f]{16}$", description="pseudonymous vacancy id")],
        k: K = 10,
    ) -> dict:
        """Top-k active job seekers for an open vacancy, with scores and reasons."""
        service = matcher()
        try:
            items = await in_thread(service.recommend_seekers, vacancy_id, k)
        except KeyError:
            raise HTTPException(status_code=404, detail=f"no open vacancy {vacancy_id}") from None
        except RuntimeError as exc:
            raise HTTPException(status_code=503, detail=f"matching is not available: {exc}") from None
        return {"vacancy_id": vacancy_id, "seekers": recommendation_items(items)}

    @api.get("/api/matching", dependencies=[Depends(authorised)], responses={400: {"description": "bad range"}})
    async def get_matching(
        from_: Annotated[date, Query(alias="from", description="first day (Asia/Seoul), YYYY-MM-DD")],
        to: Annotated[date, Query(description="last day (Asia/Seoul), YYYY-MM-DD")],
        group: Annotated[Literal["all", "age_band", "sex", "region"],
                         Query(description="metrics for all seekers or by their age band, sex or region")] = "all",
    ) -> dict:
        """The matching observatory: precision@10, NDCG@10 and AUC per day for the model and the random and
        rule-based baselines (progressive validation), exposure (Gini) and hires at recommended vacancies."""
        check_range(from_, to)
        metrics = await in_thread(matching_metrics, client, from_, to, group)
        exposure = await in_thread(matching_exposure, client, from_, to)
        return {"from": from_.isoformat(), "to": to.isoformat(), "group": group, "metrics": metrics,
                "exposure": exposure, "live": matching.summary() if matching else None}

    def boards_doc() -> dict:
        out = []
        for b in BOARDS:
            variables = []
            for v in b.variables:
                options = [{"value": r[0], "label_ko": r[1], "label_en": r[2]}
                           for r in client.query(v.options_sql).result_rows]
                variables.append({"name": v.name, "ko": v.ko, "en": v.en, "options": options})
            out.append({"uid": b.uid, "ko": b.ko, "en": b.en, "default_days": b.default_days,
                        "time_basis": b.time_basis,
                        "refresh_seconds": max(5, b.refresh_seconds), "variables": variables,
                        "panels": [{"id": p.id, "ko": p.ko, "en": p.en, "kind": p.kind, "format": p.format,
                                    "width": p.width, "label_column": p.label_column, "persons": list(p.person_columns),
                                    "y_unit": p.y_unit, "time_axis": p.time_axis,
                                    "columns": [{"name": n, "kind": k} for n, k in p.columns]} for p in b.panels]})
        return {"boards": out, "latest_day": panels.latest_day(client).isoformat()}

    @api.get("/api/boards", dependencies=[Depends(authorised)])
    async def get_boards() -> dict:
        """The boards, their variables (with options) and panels; the latest day with data."""
        return await in_thread(boards_doc)

    @api.get("/api/labels", dependencies=[Depends(authorised)])
    async def get_labels(lang: Annotated[Literal["ko", "en"], Query(description="ko or en")] = "ko") -> dict:
        """Korean or English labels of every code a panel shows, and the definition of every published
        figure (meaning, formula, source)."""
        return {"lang": lang, "labels": labels(lang), "definitions": definitions(lang), "holidays": HOLIDAYS}

    @api.get("/api/boards/{board_uid}/panels/{panel_id}", dependencies=[Depends(authorised)],
             responses={304: {"description": "not modified: the If-None-Match ETag is current"},
                        400: {"description": "bad parameters"}, 404: {"description": "no such board or panel"}})
    async def get_panel(
        board_uid: Annotated[BoardUid, PathParam(description="a board's UID")],
        panel_id: Annotated[PanelId, PathParam(description="a panel of that board")],
        from_: Annotated[date, Query(alias="from", description="first day (Asia/Seoul), YYYY-MM-DD")],
        to: Annotated[date, Query(description="last day (Asia/Seoul), YYYY-MM-DD")],
        region: Annotated[str, Query(description="시도 codes, comma separated; empty: all",
                                     pattern=_codes_pattern(panels.VARIABLE_CODES["region"]))] = "",
        industry: Annotated[str, Query(description="KSIC sections, comma separated; empty: all",
                                       pattern=_codes_pattern(panels.VARIABLE_CODES["industry"]))] = "",
        occupation: Annotated[str, Query(description="KSCO sub-major groups, comma separated; empty: all",
                                         pattern=_codes_pattern(panels.VARIABLE_CODES["occupation"]))] = "",
        if_none_match: Annotated[str, Header(description="the ETag of the data the caller holds")] = "",
    ) -> Response:
        """One panel's data: its SQL run with the plugin's macros for this range and these variables.
        Counts of persons below 3 come back as null (suppressed). With the ETag of what the caller holds
        (If-None-Match), 304 when nothing changed: the board's refresh moves only what did."""
        try:
            board, panel = panels.find(board_uid, panel_id)
        except panels.PanelError as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from None
        check_range(from_, to)
        variables = {"region": region, "industry": industry, "occupation": occupation}
        chosen = {k: [x for x in v.split(",") if x] for k, v in variables.items()
                  if any(var.name == k for var in board.variables)}
        try:
            data = await in_thread(panels.run, client, board, panel, from_, to, chosen)
        except panels.PanelError as exc:
            raise HTTPException(status_code=400, detail=str(exc)) from None
        response = JSONResponse(jsonable_encoder(data))
        etag = f'"{hashlib.sha256(response.body).hexdigest()[:32]}"'
        cache = {"ETag": etag, "Cache-Control": "no-cache"}  # kept, but asked again each time
        if etag in (t.strip() for t in if_none_match.split(",")):
            return Response(status_code=304, headers=cache)
        response.headers.update(cache)
        return response

    @api.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def board_page() -> HTMLResponse:
        return HTMLResponse((WEB / "index.html").read_text("utf-8"))

    @api.get("/static/login.js", include_in_schema=False)
    async def login_js():
        return FileResponse(WEB / "static" / "login.js", media_type="text/javascript")

    @api.get("/static/login.css", include_in_schema=False)
    async def login_css():
        return FileResponse(WEB / "static" / "login.css", media_type="text/css")

    @api.get("/static/board.js", include_in_schema=False)
    async def board_js():
        bundle = WEB / "dist" / "board.js"
        if not bundle.exists():
            return PlainTextResponse("document.body.textContent = 'The board is not built: run make board-assets';",
                                     media_type="text/javascript")
        return FileResponse(bundle, media_type="text/javascript")

    return api
