"""The optional matcher never takes the official numbers down: a checkpoint it cannot read is set aside and it
learns again; a matcher process that dies is started again, with back-off, and the health says so meanwhile.
Repeated warnings are logged once per interval."""

from __future__ import annotations

import logging
import pickle
import time

from streams.logs import OncePerInterval
from streams.matching import Matcher
from streams.matching_process import MatchingProcess
from streams.matching_service import MatchingService


def test_a_checkpoint_that_cannot_be_read_is_set_aside_and_the_matcher_starts_fresh(tmp_path):
    path = tmp_path / "matching" / "matcher.pkl"
    path.parent.mkdir()
    path.write_bytes(pickle.dumps(Matcher())[:100])  # truncated, as by a full disk
    fresh = Matcher()
    service = MatchingService.restore(None, path, fresh)
    assert service.matcher is fresh and not service.restored
    assert not path.exists()
    (aside,) = path.parent.glob("matcher.pkl.bad-*")
    assert aside.stat().st_size == 100  # kept for a look
    path.write_bytes(pickle.dumps({"not": "a matcher"}))
    assert MatchingService.restore(None, path, Matcher()).restored is False


def test_a_matcher_process_that_dies_is_started_again_with_backoff(tmp_path):
    # No broker at this address: the child starts, then fails reading Kafka, as with a broker gone too long.
    matching = MatchingProcess(None, tmp_path / "m.pkl", Matcher(), {"bootstrap_servers": ["127.0.0.1:9"]})
    matching.start()
    try:
        deadline = time.monotonic() + 120
        while matching.failed is None:
            assert time.monotonic() < deadline, "the child did not fail"
            time.sleep(0.2)
        assert matching.tick() == 0 and matching.restarts == 1  # restarted at once the first time
        assert matching.tick() == 0  # a child that does not answer (still reaching the broker) holds nothing up
        while matching.failed is None:
            assert time.monotonic() < deadline, "the restarted child did not fail"
            time.sleep(0.2)
        assert matching.summary()["failed"] and matching.summary()["restarts"] == 1
        assert matching.supervise() and matching.restarts == 2  # its 5 s have passed (bootstrapping takes longer)
        matching.failed = "failed again at once"
        assert not matching.supervise() and matching.restarts == 2, "the next restart waits 10 s"
    finally:
        matching.stop()


def test_a_repeated_warning_is_logged_once_per_interval():
    once = OncePerInterval(interval_s=60)

    def record(msg: str, level: int = logging.WARNING) -> logging.LogRecord:
        return logging.LogRecord("aiokafka.conn", level, __file__, 1, msg, ("x",), None)

    assert once.filter(record("Unable to connect to %s"))
    assert not any(once.filter(record("Unable to connect to %s")) for _ in range(150))
    assert once.filter(record("another problem: %s"))
    assert all(once.filter(record("fetched %s", logging.INFO)) for _ in range(3))  # information is never held back
