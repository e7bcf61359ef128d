"""The local stack against the real Kafka 4.4 broker (no mock broker anywhere)."""

from __future__ import annotations

import itertools
import json
import socket
from collections import Counter
from datetime import date
from pathlib import Path

import httpx
import pytest

from lmis.settings import Settings
from simulator.engine import SimConfig, Simulator
from simulator.output import send_kafka
from tests.conftest import run_lmis

pytestmark = pytest.mark.kafka


@pytest.fixture()
def stack_env(tmp_path):
    # Ports of their own so that a developer's running stack is left alone.
    return {"LMIS_DATA_DIR": str(tmp_path / "data"), "LMIS_KAFKA_BOOTSTRAP": "127.0.0.1:29092",
            "LMIS_KAFKA_CONTROLLER_PORT": "29093", "LMIS_ALERTMANAGER_PORT": "29094", "LMIS_TOPIC_PARTITIONS": "3"}


def test_up_produce_10000_consume_them_all_back_down(stack_env):
    from kafka import KafkaConsumer

    run_lmis("stack", "up", env=stack_env, timeout=300)
    try:
        again = run_lmis("stack", "up", env=stack_env, check=False)
        assert again.returncode != 0 and "already running" in again.stderr
        settings = Settings(data_dir=stack_env["LMIS_DATA_DIR"], kafka_bootstrap=stack_env["LMIS_KAFKA_BOOTSTRAP"])
        sim = Simulator(SimConfig(seed=4, start=date(2026, 5, 4), days=7, scale=0.01, warmup_days=30))
        sent = list(itertools.islice(sim.messages(), 10_000))
        assert len(sent) == 10_000
        assert send_kafka(sent, settings.kafka_client_options()) == 10_000

        consumer = KafkaConsumer(*{m.topic for m in sent}, **settings.kafka_client_options(),
                                 auto_offset_reset="earliest", enable_auto_commit=False,
                                 consumer_timeout_ms=15_000, group_id=None)
        got = []
        for record in consumer:
            got.append((record.topic, record.key.decode(), record.value, record.timestamp))
            if len(got) == len(sent):
                break
        consumer.close()
        # Every message back, byte for byte, with its emission time as the record timestamp.
        assert Counter(got) == Counter((m.topic, m.key, m.value, m.emit_ms) for m in sent)

        status = json.loads(run_lmis("stack", "status", "--json", env=stack_env).stdout)
        assert status["running"]
        # Alertmanager beside it, on its loopback port, with the configuration made from the settings.
        ready = httpx.get(f"http://127.0.0.1:{stack_env['LMIS_ALERTMANAGER_PORT']}/-/ready", timeout=5)
        assert ready.status_code == 200
        assert (Path(stack_env["LMIS_DATA_DIR"]) / "alertmanager" / "alertmanager.yml").exists()
        assert all(t["partitions"] == 3 for t in status["topics"].values())
        assert sum(t["messages"] for t in status["topics"].values()) == 10_000
    finally:
        run_lmis("stack", "down", env=stack_env, timeout=120)
    after = run_lmis("stack", "status", env=stack_env, check=False)
    assert after.returncode == 3 and "not running" in after.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{stack_env['LMIS_ALERTMANAGER_PORT']}/-/ready", timeout=5)


def test_restart_keeps_the_data(stack_env):
    run_lmis("stack", "up", env=stack_env, timeout=300)
    run_lmis("stack", "down", env=stack_env, timeout=120)
    run_lmis("stack", "up", env=stack_env, timeout=300)  # storage is formatted once, not again
    try:
        status = json.loads(run_lmis("stack", "status", "--json", env=stack_env).stdout)
        assert status["running"] and len(status["topics"]) == 6
    finally:
        run_lmis("stack", "down", env=stack_env, timeout=120)


def test_a_taken_port_is_reported_clearly(stack_env):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 29092))
        sock.listen()
        res = run_lmis("stack", "up", env=stack_env, check=False)
    assert res.returncode != 0
    assert "port 127.0.0.1:29092 is taken" in res.stderr


def test_missing_java_is_reported_clearly(stack_env):
    res = run_lmis("stack", "up", env={**stack_env, "PATH": "/nonexistent"}, check=False)
    assert res.returncode != 0
    assert "Java is not installed" in res.stderr
