"""The vendor's OpenAPI as JSON Schema validators of answers, with its documented defects patched.

The file is kept as published (shared/spec/workflows-v3.openapi.json); api-facts.md lists
what must be read differently: `"type": "uuid"` is a string of format uuid, the
overlapping `oneOf`s are `anyOf`s, and the discriminator names schemas the file does not
define. OpenAPI 3.0's `nullable` becomes a JSON Schema null type.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import urllib.parse
import uuid
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator, FormatChecker

SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "spec" / "workflows-v3.openapi.json"

FORMATS = FormatChecker(formats=())


def _is_uuid(value: object) -> bool:
    return not isinstance(value, str) or str(uuid.UUID(value)) == value.lower()


def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    # RFC 3339: a full date and time with an offset ("Z" needs Python 3.11's fromisoformat).
    moment = dt.datetime.fromisoformat(value[:-1] + "+00:00" if value[-1:] in "Zz" else value)
    return "T" in value.upper() and moment.tzinfo is not None


def _is_uri(value: object) -> bool:
    if not isinstance(value, str):
        return True
    parts = urllib.parse.urlsplit(value)
    return bool(parts.scheme and parts.netloc) and " " not in value


for _name, _check in (("uuid", _is_uuid), ("date-time", _is_date_time), ("uri", _is_uri)):
    FORMATS.checks(_name, raises=ValueError)(_check)


def _patched(node: Any) -> Any:
    """A JSON Schema reading of one OpenAPI 3.0 schema node (recursively)."""
    if isinstance(node, list):
        return [_patched(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _patched(value) for key, value in node.items() if key != "discriminator"}
    if out.get("type") == "uuid":
        out["type"], out["format"] = "string", "uuid"
    if "oneOf" in out:
        out["anyOf"] = out.pop("oneOf")
    if out.pop("nullable", False) is True and "type" in out:
        out["type"] = [out["type"], "null"]
    return out


@cache
def spec() -> dict[str, Any] | None:
    """The patched spec, or None when the shared spec folder is not beside the checkout."""
    if not SPEC_PATH.is_file():
        return None
    published = json.loads(SPEC_PATH.read_text(encoding="utf-8"))
    patched: dict[str, Any] = _patched(copy.deepcopy(published))
    return patched


def response_validator(method: str, path: str, status: int) -> Draft7Validator:
    """A validator of the JSON body the spec gives `method path` answering `status`."""
    document = spec()
    assert document is not None, f"no vendor OpenAPI at {SPEC_PATH}"
    response = document["paths"][path][method.lower()]["responses"][str(status)]
    [media] = response["content"].values()
    return _validator(media["schema"], document)


def schema_validator(name: str) -> Draft7Validator:
    """A validator of one named schema of `components/schemas`."""
    document = spec()
    assert document is not None, f"no vendor OpenAPI at {SPEC_PATH}"
    return _validator({"$ref": f"#/components/schemas/{name}"}, document)


def _validator(schema: dict[str, Any], document: dict[str, Any]) -> Draft7Validator:
    # $refs are "#/components/...": resolved against a root that carries the components
    # (under allOf, since draft 7 ignores the siblings of a $ref).
    root = {"allOf": [schema], "components": document["components"]}
    return Draft7Validator(root, format_checker=FORMATS)


def problems(validator: Draft7Validator, value: Any) -> list[str]:
    """Every way `value` breaks the schema, as `path: message` lines (empty: it conforms)."""
    found = []
    errors = list(validator.iter_errors(value))
    while errors:
        error = errors.pop(0)
        if error.context:  # anyOf: why each branch refused it
            errors.extend(error.context)
            continue
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        found.append(f"{where}: {error.message}")
    return found
