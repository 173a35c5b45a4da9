"""One error hierarchy for services and client.

Each class carries a machine code (``error``) and an HTTP status. Services turn them into
``application/problem+json`` responses (RFC 9457); the client maps the code back to the same
class, so a script catches ``awe.NotFound`` whatever side raised it.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AweError",
    "CalibrationChanged",
    "ChecksumMismatch",
    "Conflict",
    "Forbidden",
    "InvalidObject",
    "InvalidQuery",
    "InvalidRequest",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "QCRefused",
    "RequestTimeout",
    "ServiceUnavailable",
    "Unauthorized",
    "error_class",
    "problem_body",
]


class AweError(Exception):
    error: ClassVar[str] = "internal_error"
    status_code: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []

    def __str__(self) -> str:
        return self.detail


class InvalidRequest(AweError):
    error = "invalid_request"
    status_code = 400
    title = "Invalid request"


class InvalidQuery(InvalidRequest):
    error = "invalid_query"
    title = "Invalid query"


class InvalidObject(InvalidRequest):
    error = "invalid_object"
    title = "Invalid object"


class Unauthorized(AweError):
    error = "unauthorized"
    status_code = 401
    title = "Not authenticated"


class Forbidden(AweError):
    error = "forbidden"
    status_code = 403
    title = "Not allowed"


class NotFound(AweError):
    error = "not_found"
    status_code = 404
    title = "Not found"


class MethodNotAllowed(AweError):
    """The path exists, the method does not (the response's Allow header lists those that
    do)."""

    error = "method_not_allowed"
    status_code = 405
    title = "Method not allowed"


class RequestTimeout(AweError):
    """The request's body stopped arriving: the connection is closed, nothing is kept."""

    error = "request_timeout"
    status_code = 408
    title = "Request timeout"


class Conflict(AweError):
    error = "conflict"
    status_code = 409
    title = "Conflict"


class QCRefused(Conflict):
    """A product is not made from an input whose QC flags its class refuses
    (``awecore.targets.REFUSED``)."""

    error = "qc_refused"
    title = "Refused by the QC policy"


class CalibrationChanged(Conflict):
    """A calibration chosen when the plan was made was invalidated, or its window no longer
    covers the moment, by the time the product is made: it is not used; plan again."""

    error = "calibration_changed"
    title = "A calibration changed since the plan was made"


class ChecksumMismatch(AweError):
    """A file's bytes are not the ones recorded for it (by the catalogue, or by the reader
    that asked for them). Not a :class:`Conflict`: nothing the caller sent is refused; the
    data itself is in question, and code that tolerates a taken name must not swallow it."""

    error = "checksum_mismatch"
    status_code = 409
    title = "Checksum mismatch"

    @classmethod
    def of(cls, name: str, expected: str, actual: str, what: str = "sha256") -> ChecksumMismatch:
        """The error for file ``name`` whose ``what`` (sha256 or size) should be
        ``expected`` and is ``actual``; both also travel in ``errors``."""
        return cls(f"{name}: {what} is {actual}, but {expected} was expected",
                   [{"field": what, "name": name, "expected": expected, "actual": actual}])

    @property
    def expected(self) -> str | None:
        return str(self.errors[0]["expected"]) if self.errors else None

    @property
    def actual(self) -> str | None:
        return str(self.errors[0]["actual"]) if self.errors else None


class PayloadTooLarge(AweError):
    error = "payload_too_large"
    status_code = 413
    title = "Payload too large"


class ServiceUnavailable(AweError):
    error = "service_unavailable"
    status_code = 503
    title = "Service unavailable"


def _all_subclasses(cls: type[AweError]) -> list[type[AweError]]:
    out = [cls]
    for sub in cls.__subclasses__():
        out.extend(_all_subclasses(sub))
    return out


def error_class(code: str, status: int) -> type[AweError]:
    """The exception class for a problem's ``error`` code (falls back on the status)."""
    by_code = {c.error: c for c in _all_subclasses(AweError)}
    if code in by_code:
        return by_code[code]
    by_status = {c.status_code: c for c in reversed(_all_subclasses(AweError))}
    return by_status.get(status, AweError)


def problem_body(exc: AweError, instance: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:awe:error:{exc.error}",
        "title": exc.title,
        "status": exc.status_code,
        "detail": exc.detail,
        "error": exc.error,
    }
    if exc.errors:
        body["errors"] = exc.errors
    if instance:
        body["instance"] = instance
    return body
