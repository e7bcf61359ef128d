"""The one way to ClickHouse: a clickhouse-connect ``Client`` for ``chdb://`` (embedded) or ``http(s)://``.

Only one process may open a chDB folder; LMIS's worker owns it, and other commands go through the worker's
HTTP API while it runs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import clickhouse_connect
from clickhouse_connect.driver.client import Client

MIGRATIONS_TABLE = "lmis_migrations"
# The embedded engine's allocator (jemalloc, chdb's own; it reads JE_MALLOC_CONF when chdb loads) hands
# freed pages back after 250 ms instead of ClickHouse's 5 s. Measured on the bench's backlog: the worker's
# peak ~120 MB lower at the same speed; at 0 ms, 20 % slower (docs/benchmarks.md, stop 24). An operator's
# JE_MALLOC_CONF wins.
EMBEDDED_ALLOCATOR_CONF = "dirty_decay_ms:250"


class ClickHouseLocked(RuntimeError):
    """The embedded ClickHouse folder is open in another process."""


class StoreUnavailable(RuntimeError):
    """The embedded ClickHouse folder cannot be opened (permissions, a damaged or foreign store)."""


def private_folder(path: Path) -> None:
    """Create ``path`` readable by its owner only (0700), with files made 0600 from now on in this process
    (the umask): the store holds the ministry's unpublished figures."""
    os.umask(0o077)
    path.mkdir(parents=True, exist_ok=True)
    if path.stat().st_mode & 0o077:
        for root, dirs, files in os.walk(path):  # made by an earlier version, open to others
            for name in dirs:
                os.chmod(os.path.join(root, name), 0o700)
            for name in files:
                os.chmod(os.path.join(root, name), 0o600)
        path.chmod(0o700)


def connect(dsn: str, database: str | None = None) -> Client:
    """A client for ``dsn``; creates the folder of an embedded ``chdb://`` store and ``database`` if given."""
    if database:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", database):
            raise ValueError(f"not a database name: {database!r}")
        connect(dsn).command(f"CREATE DATABASE IF NOT EXISTS {database}")
    extra = {"database": database} if database else {}
    if dsn.startswith("chdb://"):
        path = dsn[len("chdb://"):]
        if path:
            try:
                private_folder(Path(path))
            except PermissionError as exc:
                raise StoreUnavailable(f"cannot open the embedded ClickHouse at {path}: {exc.strerror} "
                                       f"(user {os.getuid()}); run LMIS as the folder's owner") from None
        os.environ.setdefault("JE_MALLOC_CONF", EMBEDDED_ALLOCATOR_CONF)  # before chdb loads (no effect after)
        try:
            return clickhouse_connect.get_client(dsn=dsn, **extra)
        except Exception as exc:
            if _locked_elsewhere(Path(path)):
                raise ClickHouseLocked(
                    f"the embedded ClickHouse at {path} is open in another process (only one may open it); "
                    "while `lmis worker` runs, use its HTTP API") from exc
            raise StoreUnavailable(_why_not_opened(Path(path), exc)) from exc
    return clickhouse_connect.get_client(dsn=dsn, connect_timeout=10, send_receive_timeout=300, **extra)


def limit_reads(client: Client, max_memory_mb: int = 512, max_seconds: int = 60,
                max_result_rows: int = 5_000_000) -> Client:
    """Bound every query of ``client`` (the API's, a command's): the engine's memory and time for one query,
    and the rows of its result -- past a limit the query fails with a clear error, the process goes on."""
    for name, value in (("max_memory_usage", max_memory_mb * 2**20), ("max_execution_time", max_seconds),
                        ("max_result_rows", max_result_rows), ("result_overflow_mode", "throw")):
        client.set_client_setting(name, value)
    return client


def too_large(exc: BaseException) -> bool:
    """Whether a query failed on a limit of :func:`limit_reads` (rows, memory or time)."""
    text = str(exc)
    return any(code in text for code in ("TOO_MANY_ROWS_OR_BYTES", "MEMORY_LIMIT_EXCEEDED", "TIMEOUT_EXCEEDED"))


def is_embedded(client: Client) -> bool:
    """Whether ``client`` runs the embedded engine in this process (``chdb://``) rather than a server's."""
    return type(client).__name__ == "ChdbClient"


def release_memory(client: Client) -> None:
    """Hand the embedded engine's freed memory back to the system. Its allocator (jemalloc) keeps freed pages
    for reuse: measured on the bench's store, ~200 MB more resident after whole-day rollups of the live day,
    released in ~20 ms. A server manages its own memory: nothing is done there."""
    if is_embedded(client):
        client.command("SYSTEM JEMALLOC PURGE")


def as_utc(value: datetime) -> datetime:
    """A time read back from a ``DateTime64(3, 'UTC')`` column, made tz-aware.

    clickhouse-connect returns naive datetimes when the column's zone is the server's (UTC here); they are
    UTC instants.
    """
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _why_not_opened(folder: Path, exc: Exception) -> str:
    """What to tell a person the embedded engine could not open (it says only "BAD_ARGUMENTS")."""
    for root, dirs, files in os.walk(folder):
        for name in [*dirs, *files]:
            entry = os.path.join(root, name)
            if not os.access(entry, os.R_OK | os.W_OK):
                return (f"cannot open the embedded ClickHouse at {folder}: this user ({os.getuid()}) may not read and "
                        f"write {entry}; run LMIS as the folder's owner")
    return (f"cannot open the embedded ClickHouse at {folder} ({str(exc).strip()[:300]}): a damaged store, or one "
            "written by another ClickHouse version; move it aside to start a new one")


def _locked_elsewhere(folder: Path) -> bool:
    """Whether another process holds the embedded server's lock on ``<folder>/status``."""
    import fcntl

    status = folder / "status"
    if not status.exists():
        return False
    with open(status, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(f, fcntl.LOCK_UN)
    return False


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    def statements(self) -> list[str]:
        body = "\n".join(line for line in self.sql.splitlines() if not line.strip().startswith("--"))
        return [s.strip() for s in re.split(r";\s*(?:\n|$)", body) if s.strip()]


def migrations() -> list[Migration]:
    found = []
    for entry in resources.files("sinks").joinpath("migrations").iterdir():
        m = re.fullmatch(r"(\d{4})_(\w+)\.sql", entry.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), entry.read_text("utf-8")))
    found.sort(key=lambda x: x.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version: {versions}")
    return found


def migrate(client: Client) -> list[int]:
    """Apply the migrations not applied yet, in order; returns the versions applied now.

    Each statement is idempotent (``IF NOT EXISTS``), so a migration interrupted half-way is re-run whole.
    """
    client.command(
        f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} (version UInt32, name String, "
        "applied_at DateTime64(3, 'UTC') DEFAULT now64(3)) ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query(f"SELECT version FROM {MIGRATIONS_TABLE} FINAL").result_rows}
    applied = []
    for m in migrations():
        if m.version in done:
            continue
        for stmt in m.statements():
            client.command(stmt)
        client.insert(MIGRATIONS_TABLE, [[m.version, m.name]], column_names=["version", "name"])
        applied.append(m.version)
    return applied


def applied_versions(client: Client) -> list[int]:
    return sorted(r[0] for r in client.query(f"SELECT version FROM {MIGRATIONS_TABLE} FINAL").result_rows)
