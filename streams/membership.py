"""One active worker per consumer group, and a worker that waits for its broker.

Each worker keeps its counts in its own store; a second worker in the same group would take part of the
partitions into *its* store, and the first would never see those messages. So a worker names itself after its
store (``worker_identity``): the Kafka client id ``lmis-worker-<store tag>`` and the static group member
``<group>-worker``. Before it joins, ``ensure_sole_worker`` refuses to start while a worker with another store
is a member of the group. Its own previous run (killed, its membership not yet expired) has the same client id
and is replaced at once by the static membership -- which is also why a restarted worker reads within seconds
instead of waiting for the group to rebalance.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("lmis.worker")


class AnotherWorker(RuntimeError):
    """A worker with another store is an active member of the consumer group."""


@dataclass(frozen=True)
class WorkerIdentity:
    client_id: str  # the Kafka client id: names the store
    group_instance_id: str  # the static member id: one per group


def worker_identity(group_id: str, store: str) -> WorkerIdentity:
    """The identity of the worker of ``group_id`` whose counts live in ``store`` (its ClickHouse DSN)."""
    tag = hashlib.sha256(store.encode()).hexdigest()[:12]
    return WorkerIdentity(client_id=f"lmis-worker-{tag}", group_instance_id=f"{group_id}-worker")


def other_workers(members: list[tuple[str, str]], me: WorkerIdentity) -> list[str]:
    """The members (client id, host) of the group that are not this worker's store, as shown to a person."""
    return [f"{client} at {host}" for client, host in members if client != me.client_id]


def group_members(admin: Any, group_id: str) -> list[tuple[str, str]]:
    """(client id, host) of the group's members, read with kafka-python's admin client."""
    info = admin.describe_groups([group_id])[group_id]
    return [(m["client_id"], m["client_host"]) for m in info.get("members", [])]


def ensure_sole_worker(connect_admin: Callable[[], Any], group_id: str, me: WorkerIdentity,
                       wait_s: float = 15.0, retry_s: float = 1.0) -> None:
    """Wait for the broker (saying so), then raise :class:`AnotherWorker` if a worker with another store is in
    the group. ``wait_s``: how long to give a member that is leaving (a worker stopping) before refusing."""
    delay, waiting_since = retry_s, None
    while True:
        try:
            admin = connect_admin()
            break
        except Exception as exc:  # noqa: BLE001 -- the broker not up yet: wait, and say so once in a while
            if waiting_since is None or time.monotonic() - waiting_since > 60:
                log.warning("waiting for Kafka: %s", exc)
                waiting_since = time.monotonic()
            time.sleep(delay)
            delay = min(delay * 2, 15.0)
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                others = other_workers(group_members(admin, group_id), me)
            except Exception as exc:  # noqa: BLE001 -- no coordinator yet (a new broker): no member either
                if time.monotonic() >= deadline:
                    log.warning("could not describe consumer group %r (%s); joining it", group_id, exc)
                    return
                time.sleep(retry_s)
                continue
            if not others:
                return
            if time.monotonic() >= deadline:
                raise AnotherWorker(
                    f"consumer group {group_id!r} already has an active worker with another store "
                    f"({'; '.join(others)}): a second one would take part of the partitions into its own store. "
                    f"Stop that worker first, or give this one its own group (LMIS_CONSUMER_GROUP).")
            time.sleep(retry_s)
    finally:
        admin.close()
