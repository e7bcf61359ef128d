"""Project rules: CLI help everywhere, settings documented, the data's path respected by imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lmis.cli import app
from lmis.settings import settings_table

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schemas", "simulator", "streams", "sinks", "dashboards", "alerts", "briefing", "lmis")


def commands(typer_app, prefix=()):
    import typer.main

    group = typer.main.get_command(typer_app)
    stack = [(prefix, group)]
    while stack:
        path, cmd = stack.pop()
        yield path
        for name, sub in getattr(cmd, "commands", {}).items():
            stack.append(((*path, name), sub))


@pytest.mark.parametrize("path", list(commands(app)), ids=lambda p: " ".join(p) or "lmis")
def test_every_command_has_help(path):
    res = CliRunner().invoke(app, [*path, "--help"])
    assert res.exit_code == 0, res.output
    assert "Usage" in res.output


def test_readme_documents_every_setting():
    assert settings_table() in (ROOT / "docs" / "operations.md").read_text("utf-8"), "run `lmis settings --markdown`"


def imports_of(package: str) -> dict[str, set[str]]:
    out = {}
    for py in (ROOT / package).rglob("*.py"):
        tree = ast.parse(py.read_text("utf-8"))
        names = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
        out[str(py.relative_to(ROOT))] = names & set(PACKAGES) - {package}
    return out


ALLOWED = {
    "schemas": set(),
    "simulator": {"schemas"},
    "sinks": {"schemas"},
    "streams": {"schemas", "sinks"},
    "dashboards": {"schemas", "sinks"},
    "alerts": {"schemas", "sinks"},
    "briefing": {"schemas", "sinks", "dashboards", "alerts"},
    "lmis": {"schemas", "simulator", "streams", "sinks", "dashboards", "alerts", "briefing"},
}


@pytest.mark.parametrize("package", PACKAGES)
def test_dependencies_follow_the_datas_path(package):
    for path, used in imports_of(package).items():
        assert used <= ALLOWED[package], f"{path} imports {used - ALLOWED[package]}"


def test_nothing_imports_the_cli():
    for package in PACKAGES:
        for py in (ROOT / package).rglob("*.py"):
            if py.name == "cli.py":
                continue
            for node in ast.walk(ast.parse(py.read_text("utf-8"))):
                if isinstance(node, ast.Import):
                    assert all(a.name != "lmis.cli" for a in node.names), py
                elif isinstance(node, ast.ImportFrom):
                    assert node.module != "lmis.cli", py
                    assert not (node.module == "lmis" and any(a.name == "cli" for a in node.names)), py


def test_the_compiled_reader_is_built_wherever_rust_is():
    """It is optional (the worker reads in Python without it), so its tests skip where it is missing: where
    Rust 1.74 or newer is installed, as in CI, `make` must have built it and they must run."""
    import importlib.util
    import shutil
    import subprocess

    rustc = shutil.which("rustc") or shutil.which(str(Path.home() / ".cargo" / "bin" / "rustc"))
    if rustc is None:
        return
    version = subprocess.run([rustc, "--version"], capture_output=True, text=True, check=True).stdout.split()[1]
    major, minor = (int(x) for x in version.split(".")[:2])
    if (major, minor) >= (1, 74):
        assert importlib.util.find_spec("lmis_native") is not None, f"rustc {version} is installed: run make"


def test_the_worker_runs_where_the_compiled_reader_was_never_built():
    """As on a machine without Rust: the module cannot be imported at all, and the worker's modules load and
    classify a message the Python way (its row as a tuple, for clickhouse-connect to encode)."""
    import subprocess
    import sys

    script = """
import sys
sys.modules["lmis_native"] = None  # what an interpreter without the built module sees: ImportError
import lmis.worker, streams.kafka_records as kafka_records, streams.native as native
from streams.processing import Record, classify_batch
from simulator.engine import SimConfig, Simulator
from datetime import date
m = next(iter(Simulator(SimConfig(seed=1, start=date(2026, 3, 2), days=1, scale=0.001)).messages()))
out = classify_batch([Record(m.topic, 0, 0, m.emit_ms, None, m.value)])
(run,) = out.runs
print(native.available(), kafka_records.install(), run.n_encoded, len(run.rows), type(run.rows[0]).__name__)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False", "0", "1", "tuple"]


def test_commands_called_as_functions_get_every_parameter():
    """`lmis demo` calls `simulate` as a function: a parameter it leaves out would be typer's OptionInfo, not
    its default (a demo once failed so at its first step)."""
    import inspect

    from lmis import cli

    tree = ast.parse((ROOT / "lmis" / "cli.py").read_text("utf-8"))
    commands = {name: inspect.signature(getattr(cli, name)).parameters for name in ("simulate",)}
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)
             and n.func.id in commands]
    assert calls
    for call in calls:
        assert {k.arg for k in call.keywords} == set(commands[call.func.id]), call.lineno
