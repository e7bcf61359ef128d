"""The matcher's state and its bookkeeping: applied offsets, checkpoints, the observatory's touched days.

Run inside the matcher's process (``streams.matching_process``, which reads Kafka and feeds ``apply``) and,
in tests, as an observer of ``TrendPipeline``. Offsets applied are skipped, so a replay after a crash is
never learned twice. The state (model, seekers, open vacancies, metrics) is pickled to a file every
``checkpoint_seconds`` together with the last offset read per partition, atomically: a restart restores
both and reads on from there. One lock serialises learning and requests.
"""

from __future__ import annotations

import logging
import os
import pickle
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sinks.observatory import write_matching
from streams.matching import Matcher, Recommendation, seoul_day
from streams.processing import Accepted

log = logging.getLogger("lmis.matching")
MATCHING_EVENTS = frozenset({"seeker.registered", "vacancy.submitted", "vacancy.updated", "vacancy.closed",
                             "application.outcome"})


class MatchingService:
    def __init__(self, client, checkpoint_path: Path, matcher: Matcher | None = None,
                 checkpoint_seconds: float = 30.0):
        self.client = client
        self.path = checkpoint_path
        self.checkpoint_seconds = checkpoint_seconds
        self.lock = threading.Lock()
        self.matcher = matcher or Matcher()
        self.touched_days: set[str] = set()
        self.last_checkpoint = time.monotonic()
        self.restored = False

    @classmethod
    def restore(cls, client, checkpoint_path: Path, fresh: Matcher, checkpoint_seconds: float = 30.0):
        """The last checkpoint if there is one (its settings replaced by ``fresh``'s), else ``fresh``."""
        service = cls(client, checkpoint_path, fresh, checkpoint_seconds)
        for stale in checkpoint_path.parent.glob(f"{checkpoint_path.stem}.*.tmp"):
            stale.unlink(missing_ok=True)  # left by a matcher killed while writing (GBs each at scale)
        if checkpoint_path.exists():
            try:
                with open(checkpoint_path, "rb") as f:
                    matcher: Matcher = pickle.load(f)
                if not isinstance(matcher, Matcher):
                    raise TypeError(f"holds a {type(matcher).__name__}, not a Matcher")
            except Exception as exc:  # noqa: BLE001 -- a bad checkpoint must not take the worker down
                # Set aside (kept for a look), and the matcher learns again from the topics' start.
                aside = checkpoint_path.with_name(f"{checkpoint_path.name}.bad-{int(time.time())}")
                checkpoint_path.rename(aside)
                log.error("the matcher's checkpoint %s cannot be read (%s): set aside as %s; the matcher "
                          "rebuilds from Kafka", checkpoint_path, exc, aside.name)
                return service
            for name in ("exposure_share", "max_candidates", "recommend_on_registration", "negatives"):
                setattr(matcher, name, getattr(fresh, name))
            service.matcher = matcher
            service.restored = True
            log.info("matching state restored: %d seekers, %d vacancies, %d outcomes learned",
                     len(matcher.seekers), len(matcher.vacancies), matcher.learned)
        return service

    # --- fed by the pipeline (tests) or the matcher's process
    def observe(self, accepted: list[Accepted]) -> None:
        """The pipeline's accepted events, in consumption order (as an observer of ``TrendPipeline``)."""
        self.apply([(a.record.topic, a.record.partition, a.record.offset, a.event, a.row[3]) for a in accepted])

    def apply(self, accepted: list[tuple[str, int, int, object, int]], slice_size: int = 256,
              after_slice: Callable[[], None] | None = None) -> None:
        """``(topic, partition, offset, event, occurred_ms)`` in consumption order, in slices: a request waits
        for a slice, not a whole batch (``after_slice`` answers it)."""
        for start in range(0, len(accepted), slice_size):
            self._apply(accepted[start:start + slice_size])
            if after_slice is not None:
                after_slice()

    def _apply(self, accepted: list[tuple[str, int, int, object, int]]) -> None:
        m = self.matcher
        with self.lock:
            for topic, partition, offset, event, occurred_ms in accepted:
                tp = (topic, partition)
                if offset <= m.positions.get(tp, -1):
                    continue  # applied before a crash or rebalance: never learned twice
                m.positions[tp] = offset
                if event.event_type in MATCHING_EVENTS:  # type: ignore[attr-defined]
                    m.apply(event, occurred_ms)
                    if event.event_type == "application.outcome" or (  # type: ignore[attr-defined]
                            event.event_type == "seeker.registered"  # type: ignore[attr-defined]
                            and m.recommend_on_registration):
                        self.touched_days.add(seoul_day(occurred_ms))

    # --- checkpoints and the observatory
    def checkpoint(self, force: bool = False) -> bool:
        if not force and time.monotonic() - self.last_checkpoint < self.checkpoint_seconds:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A file of this process's own: a matcher whose worker was killed may still be finishing a
        # checkpoint while its successor writes one.
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            with self.lock:  # pickled straight to the file: the state once more in memory was ~0.1-0.2 GB
                pickle.dump(self.matcher, f, protocol=pickle.HIGHEST_PROTOCOL)
            size = f.tell()
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)  # atomic: a crash leaves the previous checkpoint whole
        self.last_checkpoint = time.monotonic()
        log.debug("matching checkpoint: %d bytes", size)
        return True

    def observatory_rows(self, redo: set[str] = frozenset()) -> tuple[set[str], list[list], list[list]]:
        """The days whose metrics changed since the last call (and ``redo``): their daily and exposure rows."""
        with self.lock:
            days, self.touched_days = self.touched_days | redo, set()
            if not days:
                return days, [], []
            daily = self.matcher.daily_rows(days)
            exposure = [r for r in self.matcher.exposure_rows() if r[0].isoformat() in days]
        return days, daily, exposure

    def write_observatory(self) -> int:
        """The days whose metrics changed since the last write, into ClickHouse."""
        days, daily, exposure = self.observatory_rows()
        try:
            write_matching(self.client, daily, exposure)
        except Exception:
            with self.lock:
                self.touched_days |= days  # written next time
            raise
        return len(days)

    # --- requests (any thread)
    def recommend_vacancies(self, seeker_id: str, k: int) -> list[Recommendation]:
        with self.lock:
            return self.matcher.recommend_vacancies(seeker_id, k)

    def recommend_seekers(self, vacancy_id: str, k: int) -> list[Recommendation]:
        with self.lock:
            return self.matcher.recommend_seekers(vacancy_id, k)

    def summary(self) -> dict:
        """Counters (read without the lock: cheap, and sent to the worker after every batch)."""
        m = self.matcher
        return {"seekers": len(m.seekers), "open_vacancies": m.open_count, "outcomes_learned": m.learned,
                "unresolved_outcomes": m.unresolved, "parked_outcomes": m.parked_count,
                "event_time": seoul_day(m.clock_ms) if m.clock_ms else None,
                "precision_at_10": {k: round(v.precision_at_10, 4) for k, v in list(m.metrics.items())}}
