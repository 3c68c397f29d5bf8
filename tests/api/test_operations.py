"""Operations, over real HTTP: slow clients are cut off at the protocol level, /metrics
needs a key and adds up every worker of `ledger serve --workers`, /docs loads nothing from
elsewhere, and every answer says `X-Content-Type-Options: nosniff`."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import re
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from pydantic import SecretStr

from tests.api.checks import problem
from tests.api.processes import DevProcess, create_charity, dev_env, poll
from tests.api.service import ADMIN_KEY, Service, serve, settings_for
from tests.support.anvil import AnvilNode

METRICS_TOKEN = "metrics-token-0123456789abcdefghijklmnopqrstuvwxyz"
TIMEOUT = 1.0  # LEDGER_HEADER_TIMEOUT and LEDGER_BODY_TIMEOUT of the service under test


@pytest.fixture(scope="module")
def ops(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """The service on the embedded chain and SQLite, with one-second client timeouts, a
    metrics token, a charity key and an auditor key."""
    tmp = tmp_path_factory.mktemp("ops")
    settings = settings_for(
        tmp,
        None,
        f"sqlite:///{tmp / 'ledger.db'}",
        header_timeout=TIMEOUT,
        body_timeout=TIMEOUT,
        metrics_token=SecretStr(METRICS_TOKEN),
    )
    with serve(settings) as service:
        yield service


@pytest.fixture(scope="module")
def keys(ops: Service) -> dict[str, str]:
    charity_id, charity_key = ops.charity()
    auditor = ops.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"})
    assert auditor.status_code == 201, auditor.text
    return {"charity_id": charity_id, "charity": charity_key, "auditor": auditor.json()["key"]}


# ------------------------------------------------------------- slow clients


def _connect(service: Service) -> socket.socket:
    host, port = service.base.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=10)


def _seconds_until_closed(sock: socket.socket, began: float, limit: float, trickle: bytes = b"") -> float:
    """Seconds from `began` until the server closes `sock` (reading and dropping what it
    answers), sending one byte of `trickle` every 0.2 s meanwhile; `limit` if it never does."""
    sock.settimeout(0.2)
    while time.monotonic() - began < limit:
        try:
            if trickle:
                sock.sendall(trickle[:1])
                trickle = trickle[1:]
            if sock.recv(65536) == b"":
                return time.monotonic() - began
        except TimeoutError:
            continue
        except (ConnectionResetError, BrokenPipeError):
            return time.monotonic() - began
    return limit


def _answer(sock: socket.socket) -> bytes:
    """One whole HTTP answer (with Content-Length) read off `sock`."""
    sock.settimeout(10)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before an answer: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        body += sock.recv(65536)
    return head


def test_a_connection_that_never_completes_its_request_head_is_closed(ops: Service) -> None:
    # Nothing at all (uvicorn arms its keep-alive timer only after a first answer).
    silent = _connect(ops)
    began = time.monotonic()
    took = _seconds_until_closed(silent, began, limit=8)
    assert TIMEOUT * 0.9 <= took < TIMEOUT + 2, took
    silent.close()

    # A request line, then a header a byte every 0.2 s (slowloris): the bytes do not
    # reset the clock, which runs from when the connection opened.
    trickling = _connect(ops)
    began = time.monotonic()
    trickling.sendall(b"GET /healthz HTTP/1.1\r\nHost: ledger\r\n")
    took = _seconds_until_closed(trickling, began, limit=8, trickle=b"X-Slow: " + b"a" * 60)
    assert TIMEOUT * 0.9 <= took < TIMEOUT + 2, took
    trickling.close()

    # After a whole request and its answer on a kept-alive connection, the next head has
    # the same time, from the answer; its first bytes stop uvicorn's keep-alive timer.
    kept = _connect(ops)
    kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: ledger\r\n\r\n")
    assert _answer(kept).startswith(b"HTTP/1.1 200")
    began = time.monotonic()
    kept.sendall(b"GET /healthz HT")
    took = _seconds_until_closed(kept, began, limit=8, trickle=b"TP/1.1\r\nHost: ledger\r\n")
    assert TIMEOUT * 0.9 <= took < TIMEOUT + 2, took
    kept.close()


def test_a_stalled_body_is_closed_and_a_slow_steady_request_is_answered(ops: Service) -> None:
    path = "/v1/donations/DN-0000-0000-0000-0000/ownership"
    body = b'{"receipt_secret": "0x' + b"ab" * 32 + b'", "donor_reference": "Wang Fang, receipt 0042"}'
    head = (
        f"POST {path} HTTP/1.1\r\nHost: ledger\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()

    stalled = _connect(ops)
    stalled.sendall(head + body[:20])
    began = time.monotonic()
    took = _seconds_until_closed(stalled, began, limit=8)
    assert TIMEOUT * 0.9 <= took < TIMEOUT + 2, took
    stalled.close()

    # The same request sent slowly but steadily, for longer than either timeout: the head
    # in two parts, then the body a few bytes every 0.3 s (about 3 s in all).
    steady = _connect(ops)
    steady.sendall(head[:30])
    time.sleep(0.5)
    steady.sendall(head[30:])
    began = time.monotonic()
    for offset in range(0, len(body), 10):
        time.sleep(0.3)
        steady.sendall(body[offset : offset + 10])
    assert time.monotonic() - began > 2 * TIMEOUT
    answer = _answer(steady)
    assert answer.startswith(b"HTTP/1.1 404"), answer  # the donation does not exist: a real answer
    steady.close()

    # And an ordinary client notices nothing.
    assert ops.get("/healthz").status_code == 200


# ------------------------------------------------------------- nosniff


def test_every_kind_of_answer_says_nosniff(ops: Service, keys: dict[str, str]) -> None:
    answers = {
        "json": ops.get("/v1/charities"),
        "problem": ops.get("/v1/donations/DN-0000-0000-0000-0000"),
        "unmatched": ops.get("/no/such/path"),
        "invalid": ops.post(
            "/v1/charities", ADMIN_KEY, content=b"{", headers={"content-type": "application/json"}
        ),
        "health": ops.get("/healthz"),
        "docs": ops.get("/docs"),
        "page": ops.get("/"),
    }
    assert answers["json"].status_code == 200
    problem(answers["problem"], 404, "not-found")
    assert answers["invalid"].status_code in (400, 422)
    with ops.client.stream(
        "GET",
        "/v1/audit/export",
        params={"format": "csv"},
        headers={"Authorization": f"Bearer {keys['auditor']}"},
    ) as export:
        assert export.status_code == 200
        assert "chunked" in export.headers.get("transfer-encoding", "")  # streamed, not buffered
        export.read()
        answers["export"] = export
    for what, answer in answers.items():
        # Exactly once, also where a route already set it (pages, evidence).
        assert answer.headers.get_list("x-content-type-options") == ["nosniff"], (what, answer.headers)


# ------------------------------------------------------------- /metrics


def test_metrics_need_the_admin_key_an_auditor_key_or_the_metrics_token(
    ops: Service, keys: dict[str, str]
) -> None:
    problem(ops.get("/metrics"), 401, "unauthenticated")
    problem(ops.get("/metrics", "not-the-token-0123456789abcdefghijklmnopqrstuvwxyz"), 401, "unauthenticated")
    problem(ops.get("/metrics", METRICS_TOKEN[:-1]), 401, "unauthenticated")
    wrong_scheme = ops.get("/metrics", headers={"Authorization": f"Basic {METRICS_TOKEN}"})
    problem(wrong_scheme, 401, "unauthenticated")
    problem(ops.get("/metrics", keys["charity"]), 403, "forbidden")
    for key in (METRICS_TOKEN, ADMIN_KEY, keys["auditor"]):
        answer = ops.get("/metrics", key)
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/plain; version=")
        assert "ledger_http_requests_total" in answer.text


def test_requests_are_counted_by_route_template_and_status(ops: Service) -> None:
    def count(text: str, route: str, status: str) -> float:
        line = f'ledger_http_requests_total{{method="GET",route="{route}",status="{status}"}} '
        found = [float(row[len(line) :]) for row in text.splitlines() if row.startswith(line)]
        return found[0] if found else 0.0

    before = ops.get("/metrics", METRICS_TOKEN).text
    for n in range(3):
        ops.get(f"/v1/donations/DN-0000-0000-0000-000{n}")
    ops.get("/no/such/path")
    after = ops.get("/metrics", METRICS_TOKEN).text
    route = "/v1/donations/{donation_id}"
    assert count(after, route, "404") - count(before, route, "404") == 3
    assert count(after, "unmatched", "404") - count(before, "unmatched", "404") == 1


def _worker_of(connection: http.client.HTTPConnection, workers: set[int]) -> int:
    """The pid of the worker process holding the server side of `connection` (Linux:
    the socket inode in /proc/net/tcp, found among the workers' file descriptors)."""
    assert connection.sock is not None
    client_port = connection.sock.getsockname()[1]
    server_port = connection.sock.getpeername()[1]
    inode = None
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port, remote_port = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        if (local_port, remote_port) == (server_port, client_port):
            inode = fields[9]
    assert inode is not None, "no server-side socket for this connection"
    for pid in workers:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if os.readlink(fd) == f"socket:[{inode}]":
                    return pid
            except FileNotFoundError:
                continue
    raise AssertionError(f"no worker holds socket {inode}")


def _get(port: int, path: str, workers: set[int], token: str | None = None) -> tuple[int, int, str]:
    """GET on a new connection: (worker pid that answered, status, body)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = connection.getresponse()
        body = response.read().decode()
        return _worker_of(connection, workers), response.status, body
    finally:
        connection.close()


def test_metrics_of_several_workers_add_up_whichever_worker_answers(
    postgres_url: str, tmp_path: Path
) -> None:
    """`ledger serve --workers 2`: requests answered by both workers are counted once each
    in every scrape, whichever worker answers the scrape. The workers' metrics folder is
    private, removed at exit, and one left by a killed supervisor is removed at start."""
    with AnvilNode() as node:
        env = dev_env(node.url, postgres_url, tmp_path, LEDGER_METRICS_TOKEN=METRICS_TOKEN)
        with DevProcess(env, tmp_path / "dev.log") as dev:  # deploys the ledger
            dev.start()
            create_charity(dev.base)  # so that the public list has something to list
        # What a killed `ledger serve` left behind: removed at the next start.
        gone = subprocess.Popen(["true"])
        gone.wait()
        stale = Path(tempfile.gettempdir()) / f"ledger-metrics-{gone.pid}-left"
        stale.mkdir()
        (stale / "counter_1.db").write_bytes(b"\0" * 8)
        command = ("serve", "--workers", "2", "--host", "127.0.0.1")
        with DevProcess(env, tmp_path / "serve.log", command) as served:
            served.start(wait=False)
            served.wait_healthy(timeout=180)  # two workers import web3 at once; slow on a busy machine
            started = r"Started server process \[(\d+)\]"
            poll(lambda: len(re.findall(started, served.log())) == 2, 120, f"two workers:\n{served.log()}")
            workers = {int(pid) for pid in re.findall(started, served.log())}
            assert not stale.exists()
            environ = Path(f"/proc/{min(workers)}/environ").read_bytes().split(b"\0")
            setting = next(v for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR="))
            metrics_dir = Path(setting.decode().split("=", 1)[1])
            assert metrics_dir.is_dir() and metrics_dir.stat().st_mode & 0o777 == 0o700
            # Public list requests on new connections until both workers have answered some.
            answered_by: dict[int, int] = {}
            for _ in range(200):
                pid, status, _ = _get(served.port, "/v1/charities", workers)
                assert status == 200
                answered_by[pid] = answered_by.get(pid, 0) + 1
                if len(answered_by) == 2 and min(answered_by.values()) >= 3:
                    break
            assert len(answered_by) == 2, answered_by
            total = sum(answered_by.values())
            # Scrapes on new connections until each worker has answered at least two.
            line = 'ledger_http_requests_total{method="GET",route="/v1/charities",status="200"} '
            scraped: dict[int, list[float]] = {}
            for _ in range(200):
                pid, status, text = _get(served.port, "/metrics", workers, METRICS_TOKEN)
                assert status == 200, text
                counts = [float(row[len(line) :]) for row in text.splitlines() if row.startswith(line)]
                scraped.setdefault(pid, []).append(counts[0] if counts else 0.0)
                if len(scraped) == 2 and min(len(seen) for seen in scraped.values()) >= 2:
                    break
            assert len(scraped) == 2, scraped
            assert {count for seen in scraped.values() for count in seen} == {float(total)}, (
                answered_by,
                scraped,
            )

            # The indexer's gauges are one series each (the writer's), not one per process.
            # The writer sets them when its first range is indexed, which on a busy machine
            # can come after the requests above (CI once scraped before it: no series).
            def indexer_series() -> list[str]:
                _, _, text = _get(served.port, "/metrics", workers, METRICS_TOKEN)
                return [row for row in text.splitlines() if row.startswith("ledger_indexer_indexed_block{")]

            poll(lambda: indexer_series() != [], 120, "the indexer's gauge in a scrape")
            for _ in range(4):  # whichever worker answers the scrape
                indexed = indexer_series()
                assert len(indexed) == 1 and 'pid="' not in indexed[0], indexed
            served.stop()
            assert served.process is not None and served.process.returncode == 0, served.log()
        assert not metrics_dir.exists()  # removed when the supervisor stopped


# ------------------------------------------------------------- /docs


class _References(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value for name, value in attrs if name in ("src", "href") and value]
        self._in_script = tag == "script" and not dict(attrs).get("src")

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts.append(data)


def test_the_api_docs_load_nothing_from_elsewhere(ops: Service) -> None:
    docs = ops.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?:|['\"]//", docs.text), docs.text
    found = _References()
    found.feed(docs.text)
    # Every script, stylesheet and icon, and the OpenAPI document the init script loads.
    urls = found.urls + re.findall(r"url: '([^']+)'", "".join(found.scripts))
    assert len(urls) == 4, urls
    for url in urls:
        assert url.startswith("/") and not url.startswith("//"), url
        asset = ops.get(url)
        assert asset.status_code == 200, (url, asset.status_code)
        assert len(asset.content) > 100, url
    assert not re.search(r"https?:|//", "".join(found.scripts)), found.scripts
    # Only this service's scripts and the init script, by its hash, may run.
    policy = dict(part.strip().split(" ", 1) for part in docs.headers["content-security-policy"].split(";"))
    digest = base64.b64encode(hashlib.sha256(found.scripts[0].encode()).digest()).decode()
    assert policy["script-src"] == f"'self' 'sha256-{digest}'"
    assert policy["default-src"] == "'none'" and policy["connect-src"] == "'self'"
    assert "unsafe" not in docs.headers["content-security-policy"]
    assert ops.get("/redoc").status_code == 404
    assert ops.get("/openapi.json").json()["info"]["title"] == "Charity ledger"
