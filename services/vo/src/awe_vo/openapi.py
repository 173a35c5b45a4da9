"""The VO service's OpenAPI says what its protocols really take and answer.

The handlers read their DALI parameters from the raw request (names case-insensitive, by
query string or urlencoded POST body, see ``votable.vo_params``), so FastAPI sees none and
would publish operations without parameters; and the kit's rewrite
(``awecore.server.openapi``) describes every error as a JSON problem document, while the VO
protocols answer errors as DALI error documents (VOTables with ``QUERY_STATUS=ERROR``).
This rewrites the VO operations once more, after the kit:

* each operation's parameters with their real types and limits (GET: the query string;
  POST: an urlencoded body), required where the protocol requires them; their names are
  case-insensitive (``x-dali-case-insensitive``);
* each success response with its media type (VOTable, DataLink VOTable, VOSI and UWS XML,
  text, FITS, PNG) and the UWS redirects (303 with a Location);
* each error: a DALI error document, or a problem document where the kit's middleware
  answers before the VO handler (a NUL in the URL, a body over the limit or too slow, the
  database unreachable); 405 (a wrong method) is always a problem document;
* anonymous access: the bearer token is optional (``security: [{}, {HTTPBearer: []}]``).

So a client generator or a fuzzer (``tests/test_schemathesis_vo.py``) sees the contract.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from .services.datalink import DATALINK_TYPE
from .votable import VOTABLE

__all__ = ["install_vo_openapi"]

XML = "application/xml"
_TEXT = "text/plain"
_FITS = "application/fits"
_PROBLEM = {"schema": {"$ref": "#/components/schemas/Problem"}}
_DALI = {"schema": {"type": "string", "description":
                    "A DALI error document: a VOTable whose results RESOURCE has an INFO "
                    "QUERY_STATUS=ERROR with the message"}}
_ERRORS = {
    "400": "The caller's mistake (a missing or malformed parameter, an ADQL syntax error, "
           "an unknown table or column, a value out of range)",
    "401": "An unknown, expired or revoked token (no token is fine: anonymous)",
    "403": "The token's user may not do this",
    "404": "No such job or object visible to the caller, or nothing of the kind yet",
    "408": "The query ran longer than the statement timeout (narrow it), or the request "
           "body stopped arriving",
    "413": "The request body is larger than the limit",
    "503": "A dependency (the catalog's database, storage) is unavailable",
}
#: errors that only the kit's middleware gives (a problem document, never a DALI error)
_PROBLEM_ONLY = frozenset({"405"})


def _p(kind: str, description: str, **schema: Any) -> dict[str, Any]:
    return {"description": description, "schema": {"type": kind, **schema}}


def _many(description: str) -> dict[str, Any]:
    """A parameter that may be repeated (SIA, DataLink, SODA: one value per constraint)."""
    return {"description": description, "schema": {"type": "array", "items": {"type": "string"}},
            "explode": True}


_FORMAT = _p("string", "The answer's format: votable (the default and only one)",
             examples=["votable", "application/x-votable+xml"])
_MAXREC = _p("integer", "The most rows to return (more are cut, QUERY_STATUS=OVERFLOW)",
             minimum=0)
_TAP = {
    "REQUEST": _p("string", "doQuery (the default; the only request served)",
                  examples=["doQuery"]),
    "LANG": _p("string", "The query language: ADQL (ADQL-2.0, ADQL-2.1)",
               examples=["ADQL"]),
    "QUERY": _p("string", "The ADQL query (tables in /tap/tables)", maxLength=100_000,
                examples=["SELECT TOP 5 obs_id, s_ra, s_dec FROM ivoa.obscore",
                          "SELECT ra, dec, mag FROM awe.sources WHERE CONTAINS("
                          "POINT('ICRS', ra, dec), CIRCLE('ICRS', 10, 20, 0.1)) = 1",
                          "SELECT COUNT(*) AS n FROM TAP_SCHEMA.tables"]),
    "MAXREC": _MAXREC,
    "RESPONSEFORMAT": _FORMAT,
    "FORMAT": _p("string", "The same as RESPONSEFORMAT (TAP 1.0)"),
}
_SYNC_REQUIRED = ("LANG", "QUERY")
_SIA = {
    "POS": _many("A region: CIRCLE ra dec r, RANGE ra1 ra2 dec1 dec2, or POLYGON ra dec ... "
                 "(degrees); repeated: any of them"),
    "BAND": _many("Wavelength interval in metres: 'low high' (either may be -Inf/+Inf)"),
    "TIME": _many("Time interval in MJD: 'low high'"),
    "FOV": _many("Field of view interval in degrees"),
    "SPATRES": _many("Spatial resolution interval in degrees"),
    "EXPTIME": _many("Exposure time interval in seconds"),
    "TIMERES": _many("Time resolution interval in seconds"),
    "SPECRP": _many("Spectral resolving power interval"),
    "POL": _many("Polarisation states (no product here has any: matches none)"),
    "ID": _many("A publisher's dataset identifier (obs_publisher_did)"),
    "COLLECTION": _many("A collection name"),
    "FACILITY": _many("A facility name"),
    "INSTRUMENT": _many("An instrument name"),
    "DPTYPE": _many("A data product type (image)"),
    "CALIB": {**_many("A calibration level, 0 to 4"),
              "schema": {"type": "array", "items": {"type": "integer", "minimum": 0,
                                                    "maximum": 4}}},
    "TARGET": _many("A target name"),
    "FORMAT": _many("A file format (MIME type)"),
    "MAXREC": _MAXREC,
    "RESPONSEFORMAT": _FORMAT,
}
_SCS = {
    "RA": _p("number", "Right ascension of the centre (ICRS, degrees)", minimum=0,
             maximum=360),
    "DEC": _p("number", "Declination of the centre (ICRS, degrees)", minimum=-90,
              maximum=90),
    "SR": _p("number", "Search radius (degrees)", minimum=0, maximum=10),
    "VERB": _p("integer", "Columns: 1 fewest, 2 the usual, 3 all", minimum=1, maximum=3),
    "MAXREC": _MAXREC,
    "RESPONSEFORMAT": _FORMAT,
}
_DATALINK = {
    "ID": {**_many("Identifiers (ivo://awe.<site>/obj?<oid>, or the oid), up to 1000"),
           "schema": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                      "maxItems": 1000}},
    "RESPONSEFORMAT": _FORMAT,
}
_SODA = {
    "ID": _p("string", "The image's identifier (ivo://awe.<site>/obj?<oid>, or the oid)"),
    "CIRCLE": _many("ra dec radius (degrees); one region per request"),
    "POLYGON": _many("ra1 dec1 ra2 dec2 ra3 dec3 ... (degrees)"),
    "POS": _many("A region as SIA's POS (CIRCLE, RANGE, POLYGON)"),
    "RESPONSEFORMAT": _p("string", "application/fits (the default and only one)"),
}
_JOB = {"name": "job_id", "in": "path", "required": True,
        "description": "The job's identifier (from the Location of POST /tap/async)",
        "schema": {"type": "string"}}
_OID = {"name": "oid", "in": "path", "required": True,
        "description": "The object's identifier (an oid, or ivo://awe.<site>/obj?<oid>)",
        "schema": {"type": "string"}}


def _params(specs: dict[str, dict[str, Any]], required: tuple[str, ...] = ()
            ) -> dict[str, dict[str, Any]]:
    return {name: {**spec, "required": name in required} for name, spec in specs.items()}


#: what each VO operation takes: (method, path) -> (DALI parameters, success responses)
_OPS: dict[tuple[str, str], tuple[dict[str, dict[str, Any]], dict[str, Any]]] = {}


def _ok(kind: str, what: str) -> dict[str, Any]:
    return {"200": {"description": what, "content": {kind: {"schema": {"type": "string"}}}}}


def _redirect(what: str) -> dict[str, Any]:
    return {"303": {"description": what, "headers": {"Location": {
        "description": "where to look next", "schema": {"type": "string"}}}}}


def _both(path: str, params: dict[str, dict[str, Any]], ok: dict[str, Any]) -> None:
    for method in ("get", "post"):
        _OPS[(method, path)] = (params, ok)


_both("/tap/sync", _params(_TAP, _SYNC_REQUIRED), _ok(VOTABLE, "The result (a VOTable)"))
_OPS[("post", "/tap/async")] = (
    _params({**_TAP, "PHASE": _p("string", "RUN starts the job at once", enum=["RUN"])},
            _SYNC_REQUIRED),
    _redirect("The job was created: its URL"))
_OPS[("get", "/tap/async/{job_id}")] = (
    _params({"WAIT": _p("number", "Block up to this many seconds (at most 30) while the "
                                  "job runs")}),
    _ok(XML, "The UWS job document"))
_OPS[("post", "/tap/async/{job_id}")] = (
    _params({"ACTION": _p("string", "DELETE", enum=["DELETE"])}, ("ACTION",)),
    _redirect("The job is deleted: the job list"))
_OPS[("delete", "/tap/async/{job_id}")] = ({}, _redirect("The job is deleted: the job list"))
_OPS[("post", "/tap/async/{job_id}/phase")] = (
    _params({"PHASE": _p("string", "RUN (a PENDING job) or ABORT", enum=["RUN", "ABORT"])},
            ("PHASE",)),
    _redirect("The job's URL"))
_OPS[("post", "/tap/async/{job_id}/parameters")] = (
    _params(_TAP), _redirect("The job's URL (parameters change only while PENDING)"))
_OPS[("post", "/tap/async/{job_id}/executionduration")] = (
    _params({"EXECUTIONDURATION": _p("integer", "Seconds (the service keeps its own limit)",
                                     minimum=0)}),
    _redirect("The job's URL"))
_OPS[("post", "/tap/async/{job_id}/destruction")] = (
    _params({"DESTRUCTION": _p("string", "An ISO 8601 time (the service keeps its own)",
                               format="date-time")}),
    _redirect("The job's URL"))
for _tail, _kind, _what in (
        ("/phase", _TEXT, "PENDING, QUEUED, EXECUTING, COMPLETED, ERROR or ABORTED"),
        ("/parameters", XML, "The UWS parameters document"),
        ("/results", XML, "The UWS results document"),
        ("/results/result", VOTABLE, "The result VOTable (once COMPLETED)"),
        ("/error", VOTABLE, "The DALI error document (once in ERROR)"),
        ("/executionduration", _TEXT, "Seconds"), ("/destruction", _TEXT, "An ISO 8601 time"),
        ("/quote", _TEXT, "An ISO 8601 time, or empty"), ("/owner", _TEXT, "The owner")):
    _OPS[("get", f"/tap/async/{{job_id}}{_tail}")] = ({}, _ok(_kind, _what))
_OPS[("get", "/tap/async")] = ({}, _ok(XML, "The UWS job list (your jobs)"))
for _tail, _what in (("capabilities", "VOSI capabilities"),
                     ("availability", "VOSI availability"), ("tables", "VOSI tables")):
    _OPS[("get", f"/tap/{_tail}")] = ({}, _ok(XML, _what))
_OPS[("get", "/sia/capabilities")] = ({}, _ok("text/xml", "VOSI capabilities of SIA v2"))
_both("/scs", _params(_SCS, ("RA", "DEC", "SR")), _ok(VOTABLE, "The sources (a VOTable)"))
_both("/sia/query", _params(_SIA), _ok(VOTABLE, "ObsCore rows (a VOTable)"))
_both("/datalink", _params(_DATALINK, ("ID",)), _ok(DATALINK_TYPE, "The links (a VOTable)"))
_both("/soda", _params(_SODA, ("ID",)), _ok(_FITS, "The cutout, or the whole image (FITS)"))
_FILE = {"200": {"description": "The file", "content": {
    _FITS: {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}
_OPS[("get", "/datalink/file/{oid}")] = ({}, _FILE)
_OPS[("get", "/datalink/weight/{oid}")] = ({}, _FILE)
_OPS[("get", "/datalink/preview/{oid}")] = ({}, _ok("image/png", "A PNG preview"))


#: the longest text parameter in a URL: the HTTP server refuses a request line over 16 KiB
#: (as text/plain, before the service sees it), and a URL-encoded character may take three
GET_TEXT = 4000


def _as_query(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    schema = spec["schema"]
    if schema.get("type") == "string" and schema.get("maxLength", GET_TEXT) > GET_TEXT:
        schema = {**schema, "maxLength": GET_TEXT}
    description = spec["description"]
    if name == "QUERY":
        description += f" (longer than {GET_TEXT} characters: POST it)"
    out = {"name": name, "in": "query", "x-dali-case-insensitive": True,
           "required": spec["required"], "description": description, "schema": schema}
    if "explode" in spec:
        out["style"], out["explode"] = "form", True
    return out


_DALI_NOTE = ("Parameter names are case-insensitive (DALI): ``query``, ``QUERY`` and "
              "``Query`` are one parameter, and giving one twice is an error. GET takes them "
              "in the query string, POST in an urlencoded body (or the query string). "
              "Errors are DALI error documents (a VOTable, QUERY_STATUS=ERROR).")


def _as_body(params: dict[str, dict[str, Any]]) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object", "description": "DALI parameters (names case-insensitive)",
        "properties": {n: {**s["schema"], "description": s["description"]}
                       for n, s in params.items()}}
    required = [n for n, s in params.items() if s["required"]]
    if required:
        schema["required"] = required
    encoding = {n: {"style": "form", "explode": True} for n, s in params.items()
                if "explode" in s}
    media: dict[str, Any] = {"schema": schema}
    if encoding:
        media["encoding"] = encoding
    return {"required": bool(required),
            "content": {"application/x-www-form-urlencoded": media}}


def _errors(op: dict[str, Any], method: str) -> None:
    responses: dict[str, Any] = op["responses"]
    codes = set(_ERRORS) - ({"413"} if method != "post" else set())
    for code in sorted(codes):
        responses[code] = {"description": _ERRORS[code],
                           "content": {VOTABLE: _DALI, "application/problem+json": _PROBLEM}}
    for code in _PROBLEM_ONLY:
        responses.setdefault(code, {"description": "A wrong method"})
        responses[code]["content"] = {"application/problem+json": _PROBLEM}
    responses.pop("422", None)


def describe(doc: dict[str, Any]) -> None:
    """Rewrite the VO operations of ``doc`` (the kit's schema) in place."""
    for (method, path), (params, ok) in _OPS.items():
        op = doc["paths"].get(path, {}).get(method)
        if op is None:
            continue
        path_params = [p for p in op.get("parameters", []) if p.get("in") == "path"]
        for p in path_params:
            p.update(_JOB if p["name"] == "job_id" else _OID if p["name"] == "oid" else {})
        if method == "post" and params:
            op["parameters"] = path_params
            op["requestBody"] = _as_body(params)
        else:
            op["parameters"] = path_params + [_as_query(n, s) for n, s in params.items()]
            op.pop("requestBody", None)
        if not op["parameters"]:
            op.pop("parameters")
        op["responses"] = {code: r for code, r in op.get("responses", {}).items()
                           if not code.startswith("2")}
        op["responses"].update(ok)
        _errors(op, method)
        op["security"] = [{}, {"HTTPBearer": []}]
        if params:
            op["description"] = _DALI_NOTE
    _links(doc)


#: the job id in the Location of a created job (a link's runtime expression, with the
#: regular expression extension schemathesis and other tools read)
_JOB_FROM_LOCATION = "$response.header.Location#regex:/tap/async/([0-9a-f]+)$"
#: what a client may do with a job it created: the links of POST /tap/async's 303
_JOB_LINKS = (("get", ""), ("post", ""), ("delete", ""), ("get", "/phase"), ("post", "/phase"),
              ("get", "/parameters"), ("post", "/parameters"), ("get", "/results"),
              ("get", "/results/result"), ("get", "/error"))


def _links(doc: dict[str, Any]) -> None:
    """OpenAPI links from the created job to its resources (for stateful testing)."""
    create = doc["paths"].get("/tap/async", {}).get("post")
    if create is None:
        return
    links: dict[str, Any] = {}
    for method, tail in _JOB_LINKS:
        target = doc["paths"].get(f"/tap/async/{{job_id}}{tail}", {}).get(method)
        if target is not None and "operationId" in target:
            name = f"{method}_job{tail.replace('/', '_')}"
            links[name] = {"operationId": target["operationId"],
                           "parameters": {"job_id": _JOB_FROM_LOCATION}}
    create["responses"]["303"]["links"] = links


def install_vo_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` the kit's schema with the VO operations described."""
    kit: Callable[[], dict[str, Any]] = app.openapi
    done: list[bool] = []

    def openapi() -> dict[str, Any]:
        doc = kit()
        if not done:
            describe(doc)
            done.append(True)
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
