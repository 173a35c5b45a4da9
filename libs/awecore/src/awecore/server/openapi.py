"""The OpenAPI every service publishes says what it really answers.

FastAPI documents the 2xx and a 422 no service sends; the services answer problem
documents (``awecore.server.problems``) with 400, 401, 403, 404, 405, 408, 409, 413, 503.
This rewrites the generated schema once: a ``Problem`` schema, the problem responses each
operation can give, oids declared as UUIDs and a query node's ``node`` marked required (it
picks the node's kind: a body without it is refused), so that a client generator or a
fuzzer (``tests/test_schemathesis.py``) sees the contract the services keep.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

__all__ = ["PROBLEM_SCHEMA", "install_openapi"]

PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "description": "An error (RFC 9457): ``error`` is the machine code the client maps "
                   "back to its exception class (awecore.errors).",
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "description": "urn:awe:error:<error>"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string", "description": "what went wrong, for a person"},
        "error": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {"type": "array", "items": {"type": "object"}},
    },
}
_OPERATIONS = frozenset({"/livez", "/readyz", "/health", "/metrics"})
_WHY = {
    "400": "Bad input: a value out of range or of the wrong kind, a NUL character",
    "401": "No token, or an unknown, expired or revoked one",
    "403": "The token's user may not do this",
    "404": "No such path or object (or not visible to the caller)",
    "405": "The path does not take this method (the Allow header lists those it takes)",
    "408": "The request body stopped arriving; the connection is closed",
    "413": "The request body is larger than the limit",
    "503": "A dependency (the database, a service) is unavailable; see Retry-After",
}
#: parameters and properties that hold an object id
_OID_NAMES = frozenset({"oid", "src", "dst"})


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/problem+json": {
        "schema": {"$ref": "#/components/schemas/Problem"}}}}


def _responses(path: str, method: str, op: dict[str, Any]) -> None:
    responses: dict[str, Any] = op.setdefault("responses", {})
    responses.pop("422", None)
    codes = ["400", "405", "503"]
    if path not in _OPERATIONS:
        codes += ["401", "403", "404"]
    if method in ("post", "put", "patch"):
        codes += ["408", "413"]
    for code in codes:
        responses.setdefault(code, _problem(_WHY[code]))
    for code, response in responses.items():
        if code[0] in "45":  # declared by a handler, with its own description
            response.update(_problem(response.get("description") or _WHY.get(code, "")))
    for param in op.get("parameters", []):
        schema = param.get("schema", {})
        if param.get("name") in _OID_NAMES and schema.get("type") == "string":
            schema["format"] = "uuid"


def _schemas(schemas: dict[str, Any]) -> None:
    for schema in schemas.values():
        props = schema.get("properties", {})
        node = props.get("node", {})
        if "const" in node or "enum" in node:  # the discriminator of the query's tree
            required = schema.setdefault("required", [])
            if "node" not in required:
                required.insert(0, "node")
        oid = props.get("oid")
        if oid is not None and oid.get("type") == "string":
            oid["format"] = "uuid"
    schemas["Problem"] = PROBLEM_SCHEMA


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) the rewritten schema."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(title=app.title, version=app.version, summary=app.summary,
                              description=app.description, routes=app.routes)
            for path, item in doc.get("paths", {}).items():
                for method, op in item.items():
                    _responses(path, method, op)
            _schemas(doc.setdefault("components", {}).setdefault("schemas", {}))
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
