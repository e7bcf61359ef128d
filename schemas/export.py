"""JSON Schema for every event type (``lmis schemas export``); a test fails when the files are stale."""

from __future__ import annotations

import json
from pathlib import Path

from schemas.events import EVENT_MODELS, KEY_FIELD, SUPPORTED_VERSIONS, topic_of

SCHEMA_DIR = Path(__file__).resolve().parent / "jsonschema"


def render() -> dict[str, str]:
    """File name -> content, for every event type and an index."""
    files: dict[str, str] = {}
    index = []
    for model in EVENT_MODELS:
        etype = model.model_fields["event_type"].annotation.__args__[0]
        schema = model.model_json_schema()
        schema["$id"] = f"urn:lmis:event:{etype}"
        schema["title"] = etype
        files[f"{etype}.json"] = json.dumps(schema, ensure_ascii=False, indent=2, sort_keys=True) + "\n"
        index.append({"event_type": etype, "topic": topic_of(etype), "key": KEY_FIELD[etype],
                      "schema_versions": list(SUPPORTED_VERSIONS[etype]), "schema": f"{etype}.json"})
    files["index.json"] = json.dumps({"events": index}, ensure_ascii=False, indent=2) + "\n"
    return files


def export(target: Path = SCHEMA_DIR) -> list[Path]:
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in render().items():
        path = target / name
        path.write_text(content, encoding="utf-8")
        written.append(path)
    for stale in target.glob("*.json"):
        if stale.name not in render():
            stale.unlink()
    return written


def stale_files(target: Path = SCHEMA_DIR) -> list[str]:
    """Names of schema files that differ from what the models say (missing, changed or extra)."""
    wanted = render()
    out = [n for n, c in wanted.items() if not (target / n).exists() or (target / n).read_text("utf-8") != c]
    out += [p.name for p in target.glob("*.json") if p.name not in wanted]
    return sorted(out)
