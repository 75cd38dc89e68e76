"""The error envelope of API.md, and the domain errors that operations raise.

Every error answer, whatever raised it (a view, webargs, flask-smorest, Werkzeug routing or an
unexpected exception), has the body ``{code, status, error, message, errors?}``. ``error`` is
the stable machine code clients branch on.
"""

from __future__ import annotations

from http import HTTPStatus

from werkzeug.exceptions import HTTPException

#: The machine code for an HTTP status when the raiser named none.
DEFAULT_ERROR_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "version_conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_failed",
    428: "precondition_required",
    429: "rate_limited",
    500: "internal_error",
}

DEFAULT_MESSAGES = {
    400: "The request could not be understood.",
    401: "Authentication required: send a valid bearer token.",
    403: "You are not allowed to do this.",
    404: "Not found.",
    405: "This method is not allowed on this path.",
    409: "The record changed in the meantime.",
    412: "The record changed since you read it (If-Match does not match its ETag).",
    413: "The request body is too large.",
    415: "Unsupported media type.",
    422: "The request is invalid; see errors for the fields.",
    428: 'This request must be conditional: send "If-Match" with the ETag you read.',
    429: "Too many attempts; try again later.",
    500: "Internal error; it has been logged.",
}


class APIError(HTTPException):
    """An error with a status, a machine code, a message and optional field errors.

    Operations raise these; the envelope handler turns them into the response.
    """

    def __init__(
        self,
        code: int,
        error: str | None = None,
        message: str | None = None,
        *,
        errors: dict | None = None,
        headers: dict | None = None,
    ):
        super().__init__(description=message)
        self.code = code
        self.error = error or DEFAULT_ERROR_CODES.get(code, HTTPStatus(code).phrase.lower())
        self.message = message or DEFAULT_MESSAGES.get(code, HTTPStatus(code).phrase)
        self.data = {"errors": errors} if errors else {}
        self.extra_headers = headers or {}

    @property
    def name(self) -> str:  # the HTTP reason phrase, e.g. "Not Found"
        return HTTPStatus(self.code).phrase


def validation_error(errors: dict, message: str | None = None, location: str = "json") -> APIError:
    """A 422 with field-level messages under ``errors[location]``."""
    return APIError(422, "validation_failed", message, errors={location: errors})


def not_found(what: str = "record") -> APIError:
    return APIError(404, "not_found", f"{what} not found")


def forbidden(message: str = "You are not allowed to do this.") -> APIError:
    return APIError(403, "forbidden", message)


def envelope(exc: HTTPException) -> tuple[dict, int, dict]:
    """The body, status and headers of the error answer for ``exc``."""
    code = exc.code or 500
    headers: dict = {}
    data = getattr(exc, "data", None) or {}
    if isinstance(exc, APIError):
        error, message = exc.error, exc.message
        headers.update(exc.extra_headers)
    else:
        error = DEFAULT_ERROR_CODES.get(code, HTTPStatus(code).phrase.lower().replace(" ", "_"))
        message = data.get("message") or DEFAULT_MESSAGES.get(code) or exc.description
    # API.md: every error has this body, ``errors`` included (empty where no field is at fault).
    body = {
        "code": code,
        "status": HTTPStatus(code).phrase,
        "error": error,
        "message": message,
        "errors": data.get("errors") or data.get("messages") or {},
    }
    headers.update(data.get("headers") or {})
    if code == 405 and hasattr(exc, "valid_methods") and exc.valid_methods:
        headers["Allow"] = ", ".join(exc.valid_methods)
    return body, code, headers
