"""The local Prometheus Alertmanager: routes, groups, repeats, inhibits, silences and delivers LMIS's alerts.

``make setup`` builds it from the Go module proxy into ``LMIS_ALERTMANAGER_BINARY``'s folder (outside git,
like Kafka's jars); ``lmis stack up`` starts it on loopback with a configuration generated from the
settings (:func:`config`), ``lmis stack down`` stops it. In production ``LMIS_ALERTMANAGER_URL`` points at the
site's own Alertmanager and none is started; :func:`config` (``lmis alerts config``) is what to give it.

State lives under ``<data_dir>/alertmanager``: the configuration, its notification log and silences, its
output and pid.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import httpx
import yaml

from lmis.settings import Settings
from lmis.stack import StackError, pid_alive, port_free, stop

VERSION = "0.28.1"  # the newest that builds under `go install` (later tags lack their web UI bundle)
MODULE = f"github.com/prometheus/alertmanager/cmd/alertmanager@v{VERSION}"

# The labels an LMIS alert carries (alerts.model.Alert.labels); Alertmanager groups and inhibits by them.
GROUP_BY = ["alertname", "class", "region", "source"]


def root(s: Settings) -> Path:
    return (s.data_dir / "alertmanager").resolve()


def local_url(s: Settings) -> str:
    return f"http://127.0.0.1:{s.alertmanager_port}"


def url(s: Settings) -> str:
    """The Alertmanager the worker posts to: the site's (``LMIS_ALERTMANAGER_URL``) or the local one."""
    return (s.alertmanager_url or local_url(s)).rstrip("/")


def _receiver(name: str, s: Settings, to: str | None) -> dict:
    receiver: dict = {"name": name}
    if to and s.smtp_host:
        email = {
            "to": to, "from": s.smtp_from, "smarthost": f"{s.smtp_host}:{s.smtp_port}",
            "require_tls": s.smtp_starttls, "send_resolved": True,
            "headers": {"Subject": '[LMIS {{ .Status | toUpper }}] {{ .CommonLabels.alertname }}'
                                   '{{ if .CommonLabels.region_name }} · {{ .CommonLabels.region_name }}{{ end }}'
                                   ' · {{ .Alerts | len }}'},
            "text": "{{ range .Alerts }}[{{ .Status }}] {{ .Annotations.summary_ko }}\n"
                    "{{ .Annotations.summary_en }}\n"
                    "{{ range .Labels.SortedPairs }}  {{ .Name }}: {{ .Value }}\n{{ end }}\n{{ end }}",
        }
        if s.smtp_username:
            email["auth_username"] = s.smtp_username
            email["auth_password_file"] = str(root(s) / "smtp-password")
        receiver["email_configs"] = [email]
    if s.alert_webhook_url:
        receiver["webhook_configs"] = [{"url": s.alert_webhook_url, "send_resolved": True}]
    return receiver


def config(s: Settings) -> dict:
    """Alertmanager's configuration from the settings: data faults to ops (``LMIS_ALERT_OPS_EMAIL_TO``, else
    ``LMIS_ALERT_EMAIL_TO``), labour-market signals to ``LMIS_ALERT_EMAIL_TO``; both to the webhook; critical
    alerts repeated sooner; labour-market alerts inhibited by a data fault in the same event family."""
    group = {"group_wait": f"{s.alert_group_wait_seconds}s", "group_interval": f"{s.alert_group_interval_seconds}s"}
    repeat = f"{s.alert_repeat_hours}h"
    critical = f"{max(1, s.alert_repeat_hours // 4)}h"
    return {
        "route": {
            "receiver": "labour-market", "group_by": GROUP_BY, **group, "repeat_interval": repeat,
            "routes": [
                {"matchers": ['class="data_fault"'], "receiver": "ops",
                 "routes": [{"matchers": ['severity="critical"'], "repeat_interval": critical}]},
                {"matchers": ['class="labour_market"'], "receiver": "labour-market",
                 "routes": [{"matchers": ['severity="critical"'], "repeat_interval": critical}]},
            ],
        },
        "receivers": [_receiver("ops", s, s.alert_ops_email_to or s.alert_email_to),
                      _receiver("labour-market", s, s.alert_email_to)],
        "inhibit_rules": [{"source_matchers": ['class="data_fault"'], "target_matchers": ['class="labour_market"'],
                           "equal": ["family"]}],
    }


class Layout:
    def __init__(self, s: Settings):
        self.root = root(s)
        self.config = self.root / "alertmanager.yml"
        self.pid = self.root / "alertmanager.pid"
        self.out = self.root / "alertmanager.out"
        self.storage = self.root / "storage"


def write_config(s: Settings) -> Layout:
    from sinks.clickhouse import private_folder

    lay = Layout(s)
    private_folder(lay.root)  # the configuration may name a password file
    if s.smtp_username and s.smtp_password:
        secret = lay.root / "smtp-password"
        secret.write_text(s.smtp_password.get_secret_value())
        secret.chmod(0o600)
    lay.config.write_text("# Written by `lmis stack up` from the LMIS_* settings; edit those instead.\n"
                          + yaml.safe_dump(config(s), sort_keys=False, allow_unicode=True))
    return lay


def running_pid(s: Settings) -> int | None:
    lay = Layout(s)
    try:
        pid = int(lay.pid.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if pid_alive(pid) else None


def healthy(base: str, timeout: float = 2.0) -> bool:
    try:
        return httpx.get(f"{base}/-/ready", timeout=timeout).status_code == 200
    except httpx.HTTPError:
        return False


def up(s: Settings, timeout: float = 30.0, log=print) -> int | None:
    """Start the local Alertmanager (none when ``LMIS_ALERTMANAGER_URL`` names the site's). Its pid."""
    if s.alertmanager_url:
        log(f"Alertmanager: the site's at {s.alertmanager_url} (none started here)")
        return None
    if (pid := running_pid(s)) is not None:
        return pid
    binary = s.alertmanager_binary
    if not binary.exists():
        raise StackError(f"Alertmanager is not built ({binary}): `make alertmanager` builds it with Go "
                         f"(go install {MODULE})")
    if not port_free("127.0.0.1", s.alertmanager_port):
        raise StackError(f"port 127.0.0.1:{s.alertmanager_port} is taken by another program; free it or set "
                         "LMIS_ALERTMANAGER_PORT")
    lay = write_config(s)
    lay.storage.mkdir(exist_ok=True)
    out = open(lay.out, "ab")
    proc = subprocess.Popen(
        [str(binary), f"--config.file={lay.config}", f"--storage.path={lay.storage}",
         f"--web.listen-address=127.0.0.1:{s.alertmanager_port}", "--cluster.listen-address=",
         f"--web.external-url={local_url(s)}", "--log.level=warn"],
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    lay.pid.write_text(str(proc.pid))
    deadline = time.monotonic() + timeout
    while not healthy(local_url(s), timeout=1.0):
        if proc.poll() is not None:
            lay.pid.unlink(missing_ok=True)
            tail = lay.out.read_text(errors="replace").splitlines()[-15:]
            raise StackError("Alertmanager exited during start-up:\n" + "\n".join(tail))
        if time.monotonic() > deadline:
            down(s)
            raise StackError(f"Alertmanager did not become ready within {timeout:.0f}s (log {lay.out})")
        time.sleep(0.2)
    log(f"Alertmanager {VERSION} is up on {local_url(s)} (pid {proc.pid}, config {lay.config})")
    return proc.pid


def down(s: Settings, timeout: float = 10.0, log=print) -> bool:
    """Stop the local Alertmanager. False if it was not running."""
    return stop("Alertmanager", running_pid(s), Layout(s).pid, timeout, log)
