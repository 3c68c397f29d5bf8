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
- same key while the first is still running: 409; once the first has been running for
  longer than any request can (STALE_AFTER: its process died mid-way), the key answers
  a stored 409 "outcome unknown" instead, for as long as answers are kept, so that a
  write whose transaction may have been signed is never sent twice.
Keys are per caller: two callers may use the same key without meeting.

The rows are kept by `core/idempotency_store.py` (claim, finish, load, expire), their
answers sealed with the caller's own API key, so only the caller that made the request
can replay them. A route may also name fields that are never replayed at all
(`WITHHOLD_HEADER`): a newly issued API key is shown once, and its replay says so instead
of showing it again. Answers are kept IDEMPOTENCY_TTL (the outbox worker deletes older
rows).

The body is never held whole in memory: it is fingerprinted as it streams in and spooled
(in memory up to SPOOL_IN_MEMORY, then to a temporary file) for the route to read. A
multipart body is fingerprinted without its boundary, which clients pick at random for
every request: the same files sent again are the same request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import tempfile
from collections.abc import AsyncIterator
from typing import IO, Any

from cryptography.exceptions import InvalidTag
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledger_api.core import idempotency_store as store
from ledger_api.core.errors import (
    Conflict,
    IdempotencyConflict,
    IdempotencyMismatch,
    InvalidRequest,
    Problem,
    Unauthenticated,
    internal_error,
    problem_response,
)
from ledger_api.core.idempotency_store import Slot
from ledger_api.core.security import authenticate

HEADER = b"idempotency-key"
MAX_KEY = 255
# A response header a route sets to name top-level JSON fields (comma-separated) that are
# shown once and never replayed; the middleware removes it before the answer leaves.
WITHHOLD_HEADER = b"x-ledger-withhold-on-replay"
SPOOL_IN_MEMORY = 1024 * 1024


class IdempotencyOutcomeUnknown(Conflict):
    kind, title = "idempotency-outcome-unknown", "The first request with this key never finished"


class IdempotencyUnreadable(Conflict):
    kind, title = "idempotency-answer-unreadable", "The stored answer cannot be read with this key"


class Fingerprint:
    """HMAC-SHA-256 of method, path, query and body, keyed with the caller's API key and
    fed the body chunk by chunk; in a multipart body every `--<boundary>` is replaced by a
    fixed marker first. The result does not depend on how the body was cut into chunks
    (tests/api/test_limits.py checks it). Keyed, because a body may carry personal details
    (a private recipient's name and ID number): a plain hash of a short body could be
    reversed by trying names and ID numbers; without the caller's key (which the service
    keeps only hashed) it cannot."""

    REPLACEMENT = b"--<boundary>"

    def __init__(self, method: str, path: str, query: bytes, content_type: bytes, key: bytes = b"") -> None:
        self._hash = hmac.new(key, b"\n".join([method.encode(), path.encode(), query, b""]), hashlib.sha256)
        self._marker = _boundary_marker(content_type)
        self._pending = b""

    def update(self, chunk: bytes) -> None:
        if self._marker is None:
            self._hash.update(chunk)
            return
        buffer = self._pending + chunk
        # A marker that starts before `safe` ends inside the buffer; one that starts at or
        # after it may continue in the next chunk, so that tail waits.
        safe = len(buffer) - (len(self._marker) - 1)
        position = 0
        while True:
            found = buffer.find(self._marker, position)
            if found == -1 or found >= safe:
                break
            self._hash.update(buffer[position:found] + self.REPLACEMENT)
            position = found + len(self._marker)
        end = max(position, safe)
        self._hash.update(buffer[position:end])
        self._pending = buffer[end:]

    def hexdigest(self) -> str:
        if self._marker is not None and self._pending:
            self._hash.update(self._pending.replace(self._marker, self.REPLACEMENT))
            self._pending = b""
        return self._hash.hexdigest()


def _boundary_marker(content_type: bytes) -> bytes | None:
    media_type, _, parameters = content_type.partition(b";")
    if not media_type.strip().lower().startswith(b"multipart/"):
        return None
    for parameter in parameters.split(b";"):
        name, _, value = parameter.strip().partition(b"=")
        boundary = value.strip().strip(b'"')
        if name.strip().lower() == b"boundary" and boundary:
            return b"--" + boundary
    return None


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
            await self.app(scope, receive, _without_withhold(send))
            return
        runtime = scope["app"].state.mirror
        try:
            key = key_raw.decode("ascii")
            if not key or len(key) > MAX_KEY or not key.isprintable():
                raise ValueError
        except ValueError:
            await _problem(
                scope,
                send,
                InvalidRequest(f"Idempotency-Key must be 1 to {MAX_KEY} printable ASCII characters"),
            )
            return
        admin = runtime.settings.admin_key.get_secret_value() if runtime.settings.admin_key else None
        authorization = headers.get(b"authorization")
        token = authorization.decode("latin-1") if authorization else None
        try:
            principal = authenticate(runtime.engine, admin, token)
        except Unauthenticated:
            principal = None
        if principal is None or token is None:  # the route answers 401; nothing to remember
            await self.app(scope, receive, _without_withhold(send))
            return
        bearer = token.partition(" ")[2].strip()

        fingerprint = Fingerprint(
            scope["method"],
            scope["path"],
            scope.get("query_string", b""),
            headers.get(b"content-type", b""),
            bearer.encode(),
        )
        spool: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
        try:
            async for chunk in _chunks(receive):
                fingerprint.update(chunk)
                spool.write(chunk)
            spool.seek(0)
            slot = Slot(principal.key_id, bearer, key)
            await self._once(scope, receive, send, runtime.engine, slot, fingerprint.hexdigest(), spool)
        finally:
            spool.close()

    async def _once(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        engine: Any,
        slot: Slot,
        request_hash: str,
        spool: IO[bytes],
    ) -> None:
        if not store.claim(engine, slot, request_hash):
            await self._answer_again(scope, send, engine, slot, request_hash)
            return

        captured: dict[str, Any] = {"status": 500, "headers": [], "body": [], "withhold": []}
        settled = False

        def settle() -> None:
            """Remember the answer (or forget the key) before its last byte leaves, so that
            a client that has its answer finds it stored when it retries."""
            nonlocal settled
            settled = True
            body = b"".join(captured["body"])
            if _remember(captured["status"], body):
                stored = _withheld(body, captured["withhold"]) if captured["withhold"] else body
                store.finish(engine, slot, captured["status"], captured["headers"], stored)
            else:
                store.release(engine, slot)

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                kept = []
                for name, value in message.get("headers", []):
                    if name.lower() == WITHHOLD_HEADER:
                        captured["withhold"] = [f.strip() for f in value.decode("latin-1").split(",")]
                    else:
                        kept.append((name, value))
                captured["headers"] = kept
                message = {**message, "headers": kept}
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
                if not message.get("more_body", False):
                    settle()
            await send(message)

        try:
            await self.app(scope, _replay(spool, receive), capture)
        except Exception:
            if not settled:
                # Rendered further out, as this 500: a transaction may have been signed
                # before the error, so the answer is remembered like any other outcome.
                answer = problem_response(internal_error(), Request(scope))
                store.finish(engine, slot, answer.status_code, answer.raw_headers, bytes(answer.body))
            raise
        except BaseException:
            if not settled:
                store.release(engine, slot)
            raise
        if not settled:  # the app ended without a complete answer (the client left)
            settle()

    async def _answer_again(
        self,
        scope: Scope,
        send: Send,
        engine: Any,
        slot: Slot,
        request_hash: str,
    ) -> None:
        record = store.load(engine, slot)
        if record is None:  # forgotten between our insert and this read: the caller may retry
            await _problem(scope, send, IdempotencyConflict("the request with this key just ended; retry"))
            return
        if record.request_hash != request_hash:
            await _problem(
                scope, send, IdempotencyMismatch("this Idempotency-Key was used with a different request")
            )
            return
        answer = record.answer
        if answer is None:
            if not record.stale:
                await _problem(
                    scope, send, IdempotencyConflict("the first request with this key has not finished yet")
                )
                return
            answer = _give_up(engine, slot, scope)
        try:
            body = slot.unseal(answer.sealed_body)
        except InvalidTag:
            await _problem(
                scope,
                send,
                IdempotencyUnreadable(
                    "the answer stored for this key was sealed with another credential; use a new key"
                ),
            )
            return
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [
                    *answer.headers,
                    (b"content-length", str(len(body)).encode()),
                    (b"idempotent-replayed", b"true"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _give_up(engine: Any, slot: Slot, scope: Scope) -> store.Answer:
    """A row its request never answered: "outcome unknown" becomes its answer, once."""
    problem = IdempotencyOutcomeUnknown(
        "the first request with this Idempotency-Key never finished (the service stopped while it"
        " ran); a transaction it signed may still be mined: check the charity's records before"
        " you retry with a new key"
    )
    answer = problem_response(problem, Request(scope))
    return store.give_up(engine, slot, answer.status_code, answer.raw_headers, bytes(answer.body))


def _withheld(body: bytes, fields: list[str]) -> bytes:
    """The answer as it is replayed: the named fields emptied, and said so."""
    try:
        answer = json.loads(body)
    except ValueError:
        return body
    if not isinstance(answer, dict):
        return body
    withheld = [field for field in fields if field in answer]
    for field in withheld:
        answer[field] = None
    answer["withheld_on_replay"] = withheld
    return json.dumps(answer, ensure_ascii=False, separators=(",", ":")).encode()


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


def _without_withhold(send: Send) -> Send:
    """`send`, with the internal withhold header taken out of the answer."""

    async def forward(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != WITHHOLD_HEADER]
            message = {**message, "headers": headers}
        await send(message)

    return forward


async def _problem(scope: Scope, send: Send, problem: Problem) -> None:
    response = problem_response(problem, Request(scope))

    async def _receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    await response(scope, _receive, send)


async def _chunks(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        yield message.get("body", b"")
        if not message.get("more_body", False):
            return


def _replay(spool: IO[bytes], original: Receive) -> Receive:
    """The spooled body, in slices, then whatever the client does next (a disconnect)."""
    done = False

    async def receive() -> Message:
        nonlocal done
        if done:
            return await original()
        chunk = spool.read(64 * 1024)
        more = len(chunk) == 64 * 1024
        if not more:
            done = True
        return {"type": "http.request", "body": chunk, "more_body": more}

    return receive
