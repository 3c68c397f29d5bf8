"""HTTP caching of the public record reads, so that any HTTP cache or CDN in front of the
service can answer them: an ETag, a Cache-Control, and 304 Not Modified for a conditional
request whose tag still matches (RFC 9110 13.1.2, RFC 9111).

- A record (a donation's trace, a disbursement, a campaign, a charity) can still change:
  a trace gains allocations, totals move, a block that is not final yet may be reorganised.
  Its tag is the SHA-256 of the body (strong: equal bytes, equal tag, the idea of the
  feeds' tags in pages/feeds.py) and it may be reused for RECORD_SECONDS, then revalidated
  (`must-revalidate`), which costs the client a 304 instead of the body.
- An evidence document is addressed by its SHA-256: the bytes never change, so the tag is
  that hash and the body is streamed through untouched. It is not `immutable` all the same:
  a charity can withdraw a document (410), and cached copies should stop within
  DOCUMENT_SECONDS. The anchors-only JSON answer for a document not stored here is tagged
  like a record (it becomes the bytes once the file is uploaded).
- A request with credentials (Authorization, a cookie) may get an answer meant for that
  key (a restricted original): it is `private`, and every answer says `Vary:
  Authorization, Cookie` so that no shared cache hands it to anyone else. An answer that
  already sets its own Cache-Control (a restricted original: `private, no-store`) keeps it
  and gets no tag.

Pure ASGI, like core/http.py: only the record routes' 200 answers are buffered (to hash
them; they are small JSON), everything else passes through."""

from __future__ import annotations

import hashlib

from starlette.types import ASGIApp, Message, Receive, Scope, Send

RECORD_SECONDS = 10
DOCUMENT_SECONDS = 3600

RECORDS = frozenset(
    {
        "/v1/donations/{donation_id}",
        "/v1/disbursements/{disbursement_id}",
        "/v1/campaigns/{campaign_id}",
        "/v1/charities/{charity_id}",
        "/v1/evidence/{sha256}",
    }
)
DOCUMENT = "/v1/evidence/{sha256}"
VARY = b"Authorization, Cookie"
BODY_HEADERS = (b"content-length", b"content-type", b"content-disposition")


def not_modified(if_none_match: str | None, etag: str) -> bool:
    """If-None-Match (weak comparison: a `W/` prefix is ignored; `*` matches any)."""
    if if_none_match is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return "*" in tags or etag in tags


def cache_control(max_age: int, credentials: bool) -> bytes:
    scope = "private" if credentials else "public"
    return f"{scope}, max-age={max_age}, must-revalidate".encode()


class HttpCaching:
    """Tags the 200 answers of the routes in RECORDS and answers 304 for a matching tag."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        request_headers = dict(scope["headers"])
        if_none_match = request_headers.get(b"if-none-match", b"").decode("latin-1") or None
        credentials = b"authorization" in request_headers or b"cookie" in request_headers
        # "pass": the body goes through; "buffer": hashed first; "drop": a 304 was sent.
        mode = "pass"
        start: Message = {}
        chunks: list[bytes] = []

        async def answer(message: Message, etag: str, max_age: int) -> None:
            nonlocal mode
            headers = [
                (name, value)
                for name, value in message.get("headers", [])
                if name.lower() not in (b"etag", b"cache-control", b"vary")
            ]
            headers += [(b"etag", etag.encode()), (b"cache-control", cache_control(max_age, credentials))]
            headers.append((b"vary", VARY))
            if not_modified(if_none_match, etag):
                mode = "drop"
                headers = [(name, value) for name, value in headers if name.lower() not in BODY_HEADERS]
                await send({"type": "http.response.start", "status": 304, "headers": headers})
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                return
            await send({**message, "headers": headers})

        async def tagged(message: Message) -> None:
            nonlocal mode, start
            if message["type"] == "http.response.start":
                route = getattr(scope.get("route"), "path", None)
                headers = message.get("headers", [])
                if (
                    route not in RECORDS
                    or message["status"] != 200
                    or any(name.lower() == b"cache-control" for name, _ in headers)
                ):
                    await send(message)
                elif route == DOCUMENT and not _is_json(headers):
                    mode = "pass"  # the bytes of a hash: tagged by it, streamed untouched
                    await answer(
                        message, f'"{str(scope["path_params"]["sha256"]).lower()}"', DOCUMENT_SECONDS
                    )
                else:
                    mode, start = "buffer", message
                return
            if mode == "pass":
                await send(message)
            elif mode == "buffer":
                chunks.append(message.get("body", b""))
                if message.get("more_body", False):
                    return
                body = b"".join(chunks)
                await answer(start, '"' + hashlib.sha256(body).hexdigest()[:40] + '"', RECORD_SECONDS)
                if mode == "buffer":
                    await send({"type": "http.response.body", "body": body, "more_body": False})

        await self.app(scope, receive, tagged)


def _is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(
        name.lower() == b"content-type" and value.startswith(b"application/json") for name, value in headers
    )
