"""`Idempotency-Key` for writes, as ASGI middleware so that a replay is the first
response byte for byte.

For a POST or DELETE with the header, from an authenticated caller:
- first time: a row (caller, key, fingerprint of method + path + query + body) is
  claimed before the request runs; a 2xx answer is stored with the row, and so is every
  answer after which a signed transaction may be on its way: a problem that names one
  (504 not mined yet, 503 queued for the node) and an unexpected error (500), whose
  outcome is unknown. A retry of those must not sign a second transaction: it gets the
  same answer (the caller follows the transaction, or uses a new key). Anything else
  deletes the row (a request that failed validation or was rejected is not remembered
  and may be retried with the same key);
- same key and same request again: the stored answer, with `Idempotent-Replayed: true`;
- same key, different request: 422;
- same key while the first is still running: 409.
Keys are per caller: two callers may use the same key without meeting.

A multipart body is fingerprinted without its boundary, which clients pick at random
for every request: the same files sent again are the same request.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger_api.core.errors import (
    IdempotencyConflict,
    IdempotencyMismatch,
    InvalidRequest,
    Problem,
    Unauthenticated,
    internal_error,
    problem_response,
)
from ledger_api.core.models import IdempotencyRecord
from ledger_api.core.security import authenticate

HEADER = b"idempotency-key"
MAX_KEY = 255


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "DELETE"):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        key_raw = headers.get(HEADER)
        if key_raw is None:
            await self.app(scope, receive, send)
            return
        runtime = scope["app"].state.runtime
        try:
            key = key_raw.decode("ascii")
            if not key or len(key) > MAX_KEY or not key.isprintable():
                raise ValueError
        except ValueError:
            await self._problem(
                scope,
                send,
                InvalidRequest(f"Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters"),
            )
            return
        admin = runtime.settings.admin_key.get_secret_value() if runtime.settings.admin_key else None
        authorization = headers.get(b"authorization")
        try:
            principal = authenticate(
                runtime.engine, admin, authorization.decode("latin-1") if authorization else None
            )
        except Unauthenticated:
            principal = None
        if principal is None:  # the route answers 401; nothing to remember
            await self.app(scope, receive, send)
            return

        body = await _read_body(receive)
        fingerprint = hashlib.sha256(
            b"\n".join(
                [
                    scope["method"].encode(),
                    scope["path"].encode(),
                    scope.get("query_string", b""),
                    _without_boundary(headers.get(b"content-type", b""), body),
                ]
            )
        ).hexdigest()
        engine = runtime.engine
        try:
            with engine.begin() as connection:
                connection.execute(
                    insert(IdempotencyRecord).values(
                        principal=principal.key_id, key=key, request_hash=fingerprint
                    )
                )
        except IntegrityError:
            with engine.connect() as connection:
                row = connection.execute(
                    select(
                        IdempotencyRecord.request_hash,
                        IdempotencyRecord.status_code,
                        IdempotencyRecord.headers,
                        IdempotencyRecord.body,
                    ).where(IdempotencyRecord.principal == principal.key_id, IdempotencyRecord.key == key)
                ).one_or_none()
            if row is None:  # released between our insert and this read: try again
                await self(scope, _replay(body, receive), send)
                return
            if row.request_hash != fingerprint:
                await self._problem(
                    scope, send, IdempotencyMismatch("this Idempotency-Key was used with a different request")
                )
            elif row.status_code is None:
                await self._problem(
                    scope, send, IdempotencyConflict("the first request with this key has not finished yet")
                )
            else:
                stored = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in json.loads(row.headers)]
                await send(
                    {
                        "type": "http.response.start",
                        "status": row.status_code,
                        "headers": [*stored, (b"idempotent-replayed", b"true")],
                    }
                )
                await send({"type": "http.response.body", "body": row.body or b""})
            return

        captured: dict[str, Any] = {"status": 500, "headers": [], "body": []}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            await send(message)

        where = (IdempotencyRecord.principal == principal.key_id) & (IdempotencyRecord.key == key)
        try:
            await self.app(scope, _replay(body, receive), capture)
        except Exception:
            # Rendered further out, as this 500: a transaction may have been signed before
            # the error, so the answer is remembered like any other outcome.
            answer = problem_response(internal_error(), Request(scope))
            with engine.begin() as connection:
                connection.execute(
                    update(IdempotencyRecord)
                    .where(where)
                    .values(
                        status_code=answer.status_code,
                        headers=json.dumps(
                            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in answer.raw_headers]
                        ),
                        body=bytes(answer.body),
                    )
                )
            raise
        except BaseException:
            with engine.begin() as connection:
                connection.execute(delete(IdempotencyRecord).where(where))
            raise
        with engine.begin() as connection:
            if _remember(captured["status"], b"".join(captured["body"])):
                connection.execute(
                    update(IdempotencyRecord)
                    .where(where)
                    .values(
                        status_code=captured["status"],
                        headers=json.dumps(
                            [(k.decode("latin-1"), v.decode("latin-1")) for k, v in captured["headers"]]
                        ),
                        body=b"".join(captured["body"]),
                    )
                )
            else:
                connection.execute(delete(IdempotencyRecord).where(where))

    async def _problem(self, scope: Scope, send: Send, problem: Problem) -> None:
        response = problem_response(problem)

        async def _receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        await response(scope, _receive, send)


def _remember(status: int, body: bytes) -> bool:
    """Whether an answer is the outcome of the request: a success, an unexpected error,
    or a server-side error that names the transaction the request signed (the write is
    under way). Refusals (4xx) and errors before anything was signed are not."""
    if 200 <= status < 300 or status == 500:
        return True
    if status < 500:
        return False
    try:
        problem = json.loads(body)
    except ValueError:
        return False
    return isinstance(problem, dict) and bool(problem.get("transaction"))


def _without_boundary(content_type: bytes, body: bytes) -> bytes:
    """A multipart body with its (random) boundary replaced by a fixed one."""
    media_type, _, parameters = content_type.partition(b";")
    if not media_type.strip().lower().startswith(b"multipart/"):
        return body
    for parameter in parameters.split(b";"):
        name, _, value = parameter.strip().partition(b"=")
        boundary = value.strip().strip(b'"')
        if name.strip().lower() == b"boundary" and boundary:
            return body.replace(b"--" + boundary, b"--<boundary>")
    return body


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, original: Receive) -> Receive:
    """The body already read, then whatever the client does next (a disconnect)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return await original()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return receive
