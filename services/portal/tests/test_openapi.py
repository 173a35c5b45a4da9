"""The portal's OpenAPI document describes its pages as they are (what the Schemathesis
test of ``tests/test_schemathesis_portal.py`` reads): HTML pages and HTML error pages, the
sign-in redirect, forms with their urlencoded fields and CSRF token, files in their own
media types; the operations routes keep the kit's problem documents; static files are no
API and are left out."""

from __future__ import annotations

from typing import Any

from awe_portal.main import create_app


def _doc() -> dict[str, Any]:
    doc: dict[str, Any] = create_app().openapi()
    return doc


def test_pages_answer_html_and_errors_are_pages() -> None:
    paths = _doc()["paths"]
    assert not any(p.startswith("/static") for p in paths)
    for path in ("/objects", "/query", "/objects/{oid}", "/qc", "/timeline", "/make"):
        responses = paths[path]["get"]["responses"]
        assert list(responses["200"]["content"]) == ["text/html"], path
        assert "303" in responses, path  # not signed in: to the sign-in page
        for code in ("400", "403", "404", "405"):
            assert list(responses[code]["content"]) == ["text/html"], (path, code)
    preview = paths["/objects/{oid}/preview.png"]["get"]["responses"]
    assert list(preview["200"]["content"]) == ["image/png"]
    assert set(preview["404"]["content"]) == {"text/html", "image/svg+xml"}
    assert list(paths["/objects/{oid}/prov.json"]["get"]["responses"]["200"]["content"]) \
        == ["application/json"]
    health = paths["/health"]["get"]["responses"]
    assert list(health["503"]["content"]) == ["application/problem+json"]


def test_the_worlds_objects_are_open_and_the_rest_needs_a_user() -> None:
    """Issue 15: the viewer's pages answer an anonymous visitor (their 303 is only for a
    session whose token was revoked); QC, Timeline and Make send them to sign in."""
    paths = _doc()["paths"]
    for path in ("/objects", "/objects/counts", "/query", "/objects/{oid}",
                 "/objects/{oid}/lineage", "/objects/{oid}/preview.png",
                 "/objects/{oid}/download", "/objects/{oid}/prov.json",
                 "/objects/{oid}/openlineage.json"):
        why = paths[path]["get"]["responses"]["303"]["description"]
        assert "no longer accepted" in why and "not signed in is answered" in why, path
    for path, method in (("/qc", "get"), ("/make", "get"), ("/timeline", "get"),
                         ("/qc/verdict", "post"), ("/timeline/window", "post")):
        why = paths[path][method]["responses"]["303"]["description"]
        assert "not signed in" in why and "answered" not in why, path


def test_forms_are_urlencoded_with_their_fields_and_the_csrf_token() -> None:
    paths = _doc()["paths"]
    for path, fields in (("/qc/verdict", {"oid", "is_valid", "comment"}),
                         ("/timeline/window", {"oid", "timestamp_start", "timestamp_end"}),
                         ("/make", {"cls", "chip", "night"}), ("/signin", {"token", "next"})):
        body = paths[path]["post"]["requestBody"]["content"]
        schema = body["application/x-www-form-urlencoded"]["schema"]
        assert fields | {"csrf_token"} <= set(schema["properties"]), path
    make = {p["name"] for p in paths["/make"]["get"]["parameters"]}
    assert {"cls", "chip", "filter", "night", "raw", "plan"} <= make
