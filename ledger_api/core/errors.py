"""Errors as RFC 9457 problem details (`application/problem+json`).

Every error the service raises is a `Problem` with a stable `type` per kind; one handler
renders them, and request validation errors are rendered the same way. Nothing else ever
reaches the client: an unexpected exception becomes a plain 500 problem without details
(the traceback goes to the log, never to the response).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("ledger_api")

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "urn:charity-ledger:problem:"


class Problem(Exception):
    """An error with an HTTP status and a stable type name."""

    status = 400
    kind = "bad-request"
    title = "Bad request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    def body(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.kind,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        body.update(self.extra)
        return body


class Unauthenticated(Problem):
    status, kind, title = 401, "unauthenticated", "Authentication required"


class KeyExpired(Unauthenticated):
    """A key that was valid and has passed its expiry (`expired_at` says when)."""

    status, kind, title = 401, "key-expired", "API key expired"


class Forbidden(Problem):
    status, kind, title = 403, "forbidden", "Not allowed"


class NotFound(Problem):
    status, kind, title = 404, "not-found", "Not found"


class Conflict(Problem):
    status, kind, title = 409, "conflict", "Conflict"


class InvalidRequest(Problem):
    status, kind, title = 422, "invalid-request", "Invalid request"


class ContractRejected(Problem):
    """The contract would revert: the request was not signed and used no nonce."""

    status, kind, title = 409, "contract-rejected", "The ledger contract rejects this record"


class IdempotencyConflict(Problem):
    status, kind, title = 409, "idempotency-in-flight", "A request with this Idempotency-Key is in progress"


class IdempotencyMismatch(Problem):
    status, kind, title = 422, "idempotency-key-reused", "Idempotency-Key reused with a different request"


class ChainUnavailable(Problem):
    status, kind, title = 503, "chain-unavailable", "The chain node is unavailable"


class WriteTimeout(Problem):
    status, kind, title = 504, "transaction-pending", "The transaction was sent but is not mined yet"


class RequestTooLarge(Problem):
    """Answered by `core.limits.RequestLimits` before the route runs (never raised)."""

    status, kind, title = 413, "request-too-large", "Request body too large"


class ValidationIssue(BaseModel):
    """One thing wrong with a request (never the input itself)."""

    loc: list[str]
    msg: str
    type: str


class ProblemDetails(BaseModel):
    """An RFC 9457 problem, as every error is answered (`application/problem+json`)."""

    model_config = ConfigDict(extra="allow")  # a kind may add members (errors, max_body_size)

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[ValidationIssue] | None = None


# What routes may answer besides their success, for their OpenAPI `responses=`.
READ_ERRORS: tuple[type[Problem], ...] = (NotFound, InvalidRequest)
AUTH_ERRORS: tuple[type[Problem], ...] = (Unauthenticated, KeyExpired, Forbidden)
# A JSON body that cannot be parsed (400), is too large (413) or does not fit (422).
BODY_ERRORS: tuple[type[Problem], ...] = (Problem, RequestTooLarge, InvalidRequest)
WRITE_ERRORS: tuple[type[Problem], ...] = (
    Problem,
    *AUTH_ERRORS,
    NotFound,
    Conflict,
    ContractRejected,
    IdempotencyConflict,
    RequestTooLarge,
    InvalidRequest,
    IdempotencyMismatch,
    ChainUnavailable,
    WriteTimeout,
)


def problems(*kinds: type[Problem]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these problems: one entry per status, naming its kinds."""
    titles: dict[int, list[str]] = {}
    for kind in kinds:
        titles.setdefault(kind.status, []).append(f"{kind.title} (`{kind.kind}`)")
    return {
        status: {"model": ProblemDetails, "description": "; ".join(names)}
        for status, names in sorted(titles.items())
    }


def _problem_media_type(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """FastAPI documents every declared response as the route's media type (JSON); problem
    answers are `application/problem+json`, and the document says so."""
    problem = {"$ref": "#/components/schemas/ProblemDetails"}

    def document() -> dict[str, Any]:
        schema = openapi()  # built once and cached by FastAPI: fixed in place, once
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if content.get("application/json", {}).get("schema") == problem:
                        content[PROBLEM_JSON] = content.pop("application/json")
        return schema

    return document


def internal_error() -> Problem:
    """What an unexpected exception answers: nothing about it."""
    problem = Problem("an unexpected error occurred; it has been logged")
    problem.status, problem.kind, problem.title = 500, "internal-error", "Internal error"
    return problem


def problem_response(
    problem: Problem, request: Request | None = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    instance = request.url.path if request is not None else None
    return JSONResponse(
        problem.body(instance), status_code=problem.status, media_type=PROBLEM_JSON, headers=headers
    )


def _validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    errors = []
    for error in exc.errors():
        # Never echo the input back: it may be huge, binary, or personal data.
        errors.append(
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "msg": str(error.get("msg", "invalid")),
                "type": str(error.get("type", "value_error")),
            }
        )
    return errors


def install(app: FastAPI) -> None:
    app.openapi = _problem_media_type(app.openapi)  # type: ignore[method-assign]

    @app.exception_handler(Problem)
    async def _problem(request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc, request)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problem = InvalidRequest("the request does not match the schema", errors=_validation_errors(exc))
        return problem_response(problem, request)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        problem = Problem(str(exc.detail))
        problem.status = exc.status_code
        problem.kind = {400: "bad-request", 404: "not-found", 405: "method-not-allowed"}.get(
            exc.status_code, "http-error"
        )
        problem.title = str(exc.detail)
        return problem_response(problem, request, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem_response(internal_error(), request)
