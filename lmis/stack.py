"""The local stack: a real Apache Kafka 4.4 broker (KRaft, broker+controller in one JVM) on loopback.

State lives under ``<data_dir>/kafka``: ``server.properties``, the KRaft log (formatted once), the broker's
output and its pid. Production points ``LMIS_KAFKA_BOOTSTRAP`` at a real cluster instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from lmis.settings import Settings
from schemas.events import DLQ_TOPIC, TOPICS

POM = Path(__file__).resolve().parent.parent / "stack" / "kafka-pom.xml"


class StackError(RuntimeError):
    """Something the user must fix, said plainly."""


@dataclass
class Layout:
    root: Path

    @property
    def props(self) -> Path:
        return self.root / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.root / "kraft-log"

    @property
    def out(self) -> Path:
        return self.root / "broker.out"

    @property
    def pid(self) -> Path:
        return self.root / "broker.pid"


def layout(s: Settings) -> Layout:
    return Layout((s.data_dir / "kafka").resolve())


def _host_port(bootstrap: str) -> tuple[str, int]:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    return host or "127.0.0.1", int(port)


def event_topics() -> list[str]:
    return [*TOPICS.values(), DLQ_TOPIC]


def fetch_jars(s: Settings) -> Path:
    """Download Kafka and a logging binding from Maven Central into the jar cache (idempotent)."""
    target = s.kafka_jars
    if (target / ".complete").exists():
        return target
    if not shutil.which("mvn"):
        raise StackError("Kafka's jars are missing and Maven (mvn) is not installed: apt-get install maven")
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mvn", "-q", "-f", str(POM), "dependency:copy-dependencies", "-DincludeScope=runtime",
                    f"-DoutputDirectory={target}"], check=True)
    (target / ".complete").touch()
    return target


def _java() -> str:
    java = shutil.which("java")
    if not java:
        raise StackError("Java is not installed; Kafka 4.4 needs Java 17 or newer: "
                         "apt-get install openjdk-17-jre-headless")
    out = subprocess.run([java, "-version"], capture_output=True, text=True).stderr
    try:
        major = int(out.split('"')[1].split(".")[0])
    except (IndexError, ValueError):
        major = 17
    if major < 17:
        raise StackError(f"Kafka 4.4 needs Java 17 or newer; found: {out.splitlines()[0]}")
    return java


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not reaped) is not running
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def running_pid(s: Settings) -> int | None:
    lay = layout(s)
    if not lay.pid.exists():
        return None
    try:
        pid = int(lay.pid.read_text().strip())
    except ValueError:
        return None
    return pid if pid_alive(pid) else None


def port_free(host: str, port: int) -> bool:
    """Whether a server could listen on ``host:port`` now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def write_properties(s: Settings) -> Layout:
    from sinks.clickhouse import private_folder

    lay = layout(s)
    private_folder(s.data_dir.resolve())
    lay.root.mkdir(parents=True, exist_ok=True)
    host, port = _host_port(s.kafka_bootstrap)
    cport = s.kafka_controller_port
    retention_ms = s.topic_retention_hours * 3_600_000 if s.topic_retention_hours >= 0 else -1
    lay.props.write_text("\n".join([
        "# Written by `lmis stack up`; edit the LMIS_* settings instead.",
        "process.roles=broker,controller",
        "node.id=1",
        f"controller.quorum.voters=1@{host}:{cport}",
        f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{cport}",
        f"advertised.listeners=PLAINTEXT://{host}:{port}",
        "controller.listener.names=CONTROLLER",
        "inter.broker.listener.name=PLAINTEXT",
        "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        f"log.dirs={lay.log_dir}",
        f"num.partitions={s.topic_partitions}",
        "offsets.topic.replication.factor=1",
        "transaction.state.log.replication.factor=1",
        "transaction.state.log.min.isr=1",
        "share.coordinator.state.topic.replication.factor=1",
        "share.coordinator.state.topic.min.isr=1",
        "min.insync.replicas=1",
        "default.replication.factor=1",
        "group.initial.rebalance.delay.ms=0",
        "auto.create.topics.enable=false",
        # Record timestamps are the sources' emission times; a simulated stream may lie ahead of the clock.
        "log.message.timestamp.after.max.ms=9223372036854775807",
        f"log.retention.ms={retention_ms}",
        "",
    ]))
    return lay


def _format_once(s: Settings, lay: Layout, java: str, jars: Path) -> None:
    if (lay.log_dir / "meta.properties").exists():
        return
    cluster_id = subprocess.run([java, "-cp", f"{jars}/*", "kafka.tools.StorageTool", "random-uuid"],
                                capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
    res = subprocess.run([java, "-cp", f"{jars}/*", "kafka.tools.StorageTool", "format", "-t", cluster_id,
                          "-c", str(lay.props)], capture_output=True, text=True)
    if res.returncode != 0:
        raise StackError(f"formatting Kafka's storage failed:\n{res.stdout}\n{res.stderr}")


def up(s: Settings, timeout: float = 90.0, log=print) -> int:
    """Start the broker, wait until it serves, create the topics. Returns the broker's pid."""
    if (pid := running_pid(s)) is not None:
        raise StackError(f"the local Kafka broker is already running (pid {pid}); `lmis stack down` stops it")
    java = _java()
    jars = fetch_jars(s)
    host, port = _host_port(s.kafka_bootstrap)
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise StackError(f"the local broker binds to loopback only; LMIS_KAFKA_BOOTSTRAP={s.kafka_bootstrap} "
                         "points elsewhere (a remote cluster needs no `stack up`)")
    for p in (port, s.kafka_controller_port):
        if not port_free(host, p):
            raise StackError(f"port {host}:{p} is taken by another program; free it or set "
                             f"{'LMIS_KAFKA_BOOTSTRAP' if p == port else 'LMIS_KAFKA_CONTROLLER_PORT'}")
    lay = write_properties(s)
    _format_once(s, lay, java, jars)
    out = open(lay.out, "ab")
    proc = subprocess.Popen(
        [java, f"-Xmx{s.kafka_heap}", f"-Xms{s.kafka_heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true",
         "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn", "-cp", f"{jars}/*", "kafka.Kafka", str(lay.props)],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )
    lay.pid.write_text(str(proc.pid))
    log(f"Kafka 4.4 starting on {host}:{port} (pid {proc.pid}, log {lay.out})")
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            lay.pid.unlink(missing_ok=True)
            tail = lay.out.read_text(errors="replace").splitlines()[-25:]
            raise StackError("the Kafka broker exited during start-up:\n" + "\n".join(tail))
        try:
            ensure_topics(s)
            break
        except Exception as exc:  # noqa: BLE001 - not up yet
            if time.monotonic() > deadline:
                down(s)
                raise StackError(f"Kafka did not become healthy within {timeout:.0f}s: {exc}") from exc
            time.sleep(0.5)
    log(f"Kafka is up; topics: {', '.join(event_topics())}")
    return proc.pid


def _admin(s: Settings):
    from kafka.admin import KafkaAdminClient

    return KafkaAdminClient(**s.kafka_client_options(), client_id="lmis-stack", request_timeout_ms=5000)


def ensure_topics(s: Settings) -> dict[str, int]:
    """Create missing topics with the configured partitions and retention; return partitions per topic."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = _admin(s)
    try:
        existing = set(admin.list_topics())
        wanted = []
        for t in event_topics():
            if t in existing:
                continue
            hours = s.dlq_retention_hours if t == DLQ_TOPIC else s.topic_retention_hours
            retention = str(hours * 3_600_000 if hours >= 0 else -1)
            wanted.append(NewTopic(t, num_partitions=s.topic_partitions, replication_factor=1,
                                   topic_configs={"retention.ms": retention}))
        if wanted:
            try:
                admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass
        meta = admin.describe_topics(event_topics())
        return {m["name"]: len(m["partitions"]) for m in meta}
    finally:
        admin.close()


def stop(name: str, pid: int | None, pid_file: Path, timeout: float, log=print) -> bool:
    """Stop a server of the stack: SIGTERM, then SIGKILL after ``timeout``. False if it was not running."""
    if pid is None:
        pid_file.unlink(missing_ok=True)
        return False
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.1)
    if pid_alive(pid):
        log(f"{name} (pid {pid}) did not stop within {timeout:.0f}s; killing it")
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        _reap(pid)
    pid_file.unlink(missing_ok=True)
    log(f"{name} stopped")
    return True


def down(s: Settings, timeout: float = 30.0, log=print) -> bool:
    """Stop the broker cleanly (SIGTERM, then SIGKILL after ``timeout``). False if it was not running."""
    return stop("Kafka", running_pid(s), layout(s).pid, timeout, log)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def status(s: Settings) -> dict:
    pid = running_pid(s)
    info: dict = {"running": pid is not None, "pid": pid, "bootstrap": s.kafka_bootstrap, "topics": {}}
    if pid is None:
        return info
    try:
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(**s.kafka_client_options(), request_timeout_ms=5000)
        try:
            for t in event_topics():
                parts = consumer.partitions_for_topic(t) or set()
                tps = [TopicPartition(t, p) for p in sorted(parts)]
                ends = consumer.end_offsets(tps) if tps else {}
                info["topics"][t] = {"partitions": len(tps), "messages": sum(ends.values())}
        finally:
            consumer.close()
    except Exception as exc:  # noqa: BLE001
        info["error"] = str(exc)
    return info
