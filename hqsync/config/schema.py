"""JSON Schemas of the configuration kinds, for editors (yaml-language-server).

Each resource file can point at its kind's schema with a first-line comment
``# yaml-language-server: $schema=<path>/Rule.schema.json``; a file that mixes
kinds can use ``resource.schema.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter

from hqsync.atomicfile import write_output
from hqsync.config import models

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "hqsync": models.Project,
    "ExternalService": models.ExternalService,
    "Site": models.Site,
    "Rule": models.Rule,
    "SiteTemplate": models.SiteTemplate,
}


def build_schemas() -> dict[str, dict[str, Any]]:
    """Return each schema by file name, ``<kind>.schema.json``."""
    schemas: dict[str, dict[str, Any]] = {}
    for name, model in SCHEMA_MODELS.items():
        schema = model.model_json_schema()
        schemas[f"{name}.schema.json"] = _with_header(schema, name)
    resource = TypeAdapter(models.Resource).json_schema()
    resource["title"] = "hqsync resource"
    schemas["resource.schema.json"] = _with_header(resource, "resource")
    return schemas


def _with_header(schema: dict[str, Any], name: str) -> dict[str, Any]:
    description = (
        "The hqsync project file hqsync.yaml."
        if name == "hqsync"
        else f"An hqsync {name} document."
    )
    header = {"$schema": SCHEMA_DIALECT}
    return {**header, "description": schema.pop("description", description), **schema}


def render_schema(schema: dict[str, Any]) -> str:
    """Serialise a schema the way it is committed: sorted keys, two-space indent."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_schemas(out_dir: Path) -> list[Path]:
    """Write every schema into ``out_dir`` and return the paths written."""
    written: list[Path] = []
    for file_name, schema in build_schemas().items():
        path = out_dir / file_name
        write_output(path, render_schema(schema))
        written.append(path)
    return written
