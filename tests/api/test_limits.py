"""What one anonymous request can make the service do, against `ledger dev` as a real
process: nested JSON is a 422 (it used to segfault the process, and the chain and the
indexer with it), bodies past a route's limit are a 413 before anything reads them (no
authentication, no idempotency row, no spooling; the process's memory stays flat), and an
upload is authenticated before its body is read."""

from __future__ import annotations

import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, func, select

from ledger_api.core.idempotency import Fingerprint
from ledger_api.core.limits import MAX_JSON_DEPTH, json_depth
from ledger_api.core.models import IdempotencyRecord
from tests.api.processes import DevProcess, create_campaign, create_charity
from tests.api.service import ADMIN_KEY

DONATION = "DN-7K3M-9QX2-P4TA-B5C8"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevProcess]:
    """`ledger dev` on its embedded chain and a SQLite file, as its own process."""
    tmp = tmp_path_factory.mktemp("limits")
    env = {
        "LEDGER_DATABASE_URL": f"sqlite:///{tmp / 'ledger.db'}",
        "LEDGER_KEYSTORE_PATH": str(tmp / "keystore"),
        "LEDGER_EVIDENCE_PATH": str(tmp / "evidence"),
        "LEDGER_ADMIN_KEY": ADMIN_KEY,
    }
    with DevProcess(env, tmp / "dev.log") as process:
        process.start()
        yield process


def alive(dev: DevProcess) -> None:
    assert dev.process is not None and dev.process.poll() is None, dev.log()
    assert httpx.get(f"{dev.base}/healthz", timeout=30).status_code == 200


def peak_rss_kib(dev: DevProcess) -> int:
    """The process's peak resident memory so far (VmHWM), in KiB."""
    assert dev.process is not None
    for line in Path(f"/proc/{dev.process.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def raw_exchange(dev: DevProcess, head: str, body: bytes = b"", timeout: float = 5.0) -> tuple[int, bytes]:
    """Send a request head (and maybe part of a body) on a raw socket, then read the answer
    without sending anything more: (status, whole answer). A server that waits for the
    rest of the body times out here."""
    with socket.create_connection(("127.0.0.1", dev.port), timeout=timeout) as connection:
        connection.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer or len(answer) < answer.index(b"\r\n\r\n") + 4 + _length(answer):
                chunk = connection.recv(65536)
                if not chunk:
                    break
                answer += chunk
        except TimeoutError:
            raise AssertionError(f"no answer within {timeout} s: {answer!r}") from None
    return int(answer.split(b" ", 2)[1]), answer


def _length(answer: bytes) -> int:
    for line in answer.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def test_deeply_nested_json_is_a_422_and_the_process_lives(dev: DevProcess) -> None:
    """195 kB of nested brackets, anonymous: the body is parsed before anything else, and
    it used to crash CPython's C JSON decoder (web3's py_ecc raises the recursion limit to
    100,000), taking the chain and the indexer down with the API. Now: a 413 where the
    route takes less, a clear 422 where it takes that much (a batch takes 6 MiB), and the
    process serves on."""
    headers = {"content-type": "application/json"}
    deepest = b"[" * 100_000 + b"]" * 100_000
    small = httpx.post(f"{dev.base}/v1/donations/{DONATION}/ownership", content=deepest, headers=headers)
    assert small.status_code == 413, small.text
    for depth in (100_000, 5_000, 1_025, MAX_JSON_DEPTH + 1):
        body = b"[" * depth + b"]" * depth
        for wrapped in (body, b'{"donations": ' + body + b"}"):
            response = httpx.post(
                f"{dev.base}/v1/donations/batch", content=wrapped, headers=headers, timeout=30
            )
            assert response.status_code == 422, (depth, response.text)
            assert f"nested deeper than {MAX_JSON_DEPTH} levels" in response.json()["detail"]
        alive(dev)
    # Within the bound the body reaches the route (which wants a key).
    assert httpx.post(f"{dev.base}/v1/donations/batch", json={"donations": []}, timeout=30).status_code == 401
    assert "Segmentation" not in dev.log() and "RecursionError" not in dev.log()


def test_the_recursion_limit_is_sane_once_the_app_is_built() -> None:
    """Whatever web3, py_ecc and py-evm set on import, the process that serves requests
    runs at RECURSION_LIMIT, where the C JSON decoder stops with RecursionError instead of
    overflowing its stack (run in a child process: a crash must not take the tests down)."""
    program = """
import json, sys
import web3, py_ecc, eth  # each raises the limit when imported
from ledger_api.app import create_app
from ledger_api.core.config import Settings
from ledger_api.core.limits import RECURSION_LIMIT
from ledger_api.runtime import build_runtime
import tempfile, pathlib
tmp = pathlib.Path(tempfile.mkdtemp())
settings = Settings(
    database_url=f"sqlite:///{tmp / 'l.db'}", keystore_path=tmp / "k", evidence_path=tmp / "e"
)
create_app(build_runtime(settings, dev=True))
assert sys.getrecursionlimit() == RECURSION_LIMIT, sys.getrecursionlimit()
try:
    json.loads("[" * 100_000 + "]" * 100_000)
except RecursionError:
    print("RecursionError, as it should")
"""
    done = subprocess.run(
        [sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "RecursionError, as it should" in done.stdout


HOSTILE_NODE = """
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

BODY = b"[" * 100_000 + b"]" * 100_000


class Node(BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args):
        pass


server = HTTPServer(("127.0.0.1", 0), Node)
print(server.server_address[1], flush=True)
server.serve_forever()
"""


def test_ledger_index_survives_a_hostile_node(tmp_path: Path) -> None:
    """`ledger index` parses a node's answers (web3's HTTPProvider uses the standard
    library's JSON decoder): a node answering 195 kB of nested brackets used to crash it
    (SIGSEGV at web3's recursion limit of 100,000). The indexer process runs at the sane
    limit too: it stops with an error message, not a signal. The node is a stand-in (a
    real node does not answer this way; a hostile or compromised one can)."""
    node = subprocess.Popen([sys.executable, "-c", HOSTILE_NODE], stdout=subprocess.PIPE, text=True)
    try:
        assert node.stdout is not None
        port = int(node.stdout.readline())
        done = subprocess.run(
            [
                str(ROOT / ".venv" / "bin" / "ledger"),
                "index",
                "--once",
                "--rpc-url",
                f"http://127.0.0.1:{port}",
                "--database-url",
                f"sqlite:///{tmp_path / 'mirror.db'}",
                "--address",
                "0x" + "11" * 20,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        node.kill()
        node.wait()
    assert done.returncode > 0, (done.returncode, done.stderr[-2000:])
    assert "Segmentation" not in done.stderr
    assert "gave no usable answer (RecursionError)" in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and "decoder.py" not in done.stderr


def test_a_body_past_the_limit_is_refused_before_it_is_read(dev: DevProcess) -> None:
    """An announced size past the route's limit is a 413 at once: the server answers
    without waiting for a body that never comes (10 GB announced, nothing sent)."""
    for size in (50 * 1024 * 1024, 10 * 1024**3):
        status, answer = raw_exchange(
            dev,
            f"POST /v1/donations/{DONATION}/ownership HTTP/1.1\nHost: x\n"
            f"Content-Type: application/json\nContent-Length: {size}\n",
        )
        assert status == 413, answer
        assert b"application/problem+json" in answer and b"request-too-large" in answer
    alive(dev)


def test_a_streamed_body_past_the_limit_is_cut_off_and_memory_stays_flat(dev: DevProcess) -> None:
    """50 MB of `{}` with no Content-Length (chunked): refused once 64 KiB have arrived; the
    process's peak memory does not grow by the body's size (it took 160 MB to 1.5 GB)."""
    before = peak_rss_kib(dev)

    def chunks() -> Iterator[bytes]:
        piece = b"{}" * 32768  # 64 KiB
        for _ in range(800):
            yield piece

    try:
        response = httpx.post(
            f"{dev.base}/v1/donations/{DONATION}/ownership",
            content=chunks(),
            headers={"content-type": "application/json"},
            timeout=30,
        )
        assert response.status_code == 413, response.text
    except httpx.TransportError:
        pass  # the server may close while the client still sends: it did not read on
    grown = peak_rss_kib(dev) - before
    assert grown < 20 * 1024, f"peak memory grew by {grown} KiB"
    alive(dev)


def test_an_upload_is_authenticated_before_its_body_is_read(dev: DevProcess) -> None:
    """An anonymous (or badly keyed) evidence upload announcing 20 MB, of which only a few
    bytes are sent, is answered 401 at once: nothing was read, spooled or stored."""
    boundary = "b0undary"
    start = f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="a.pdf"\r\n\r\n'
    for authorization in ("", "Authorization: Bearer lk_aaaaaaaaaaaa_" + "A" * 43 + "\n"):
        status, answer = raw_exchange(
            dev,
            "POST /v1/disbursements/DB-7K3M-9QX2-P4TA-B5C8/evidence HTTP/1.1\nHost: x\n"
            f"{authorization}Content-Type: multipart/form-data; boundary={boundary}\n"
            f"Content-Length: {20 * 1024 * 1024}\n",
            start.encode(),
        )
        assert status == 401, answer
    evidence = Path(dev.env["LEDGER_EVIDENCE_PATH"])
    assert not evidence.exists() or not any(evidence.rglob("*")), list(evidence.rglob("*"))
    alive(dev)


def test_an_oversized_write_with_an_idempotency_key_leaves_no_row(dev: DevProcess) -> None:
    """The limit comes before the idempotency layer: a charity's too-large write with an
    Idempotency-Key is a 413, and the key stays free for the real request."""
    charity_id, key, _ = create_charity(dev.base)
    campaign_id = create_campaign(dev.base, charity_id, key)
    headers = {"Authorization": f"Bearer {key}", "Idempotency-Key": "big-1"}
    body = {"campaign_id": campaign_id, "amount": 100, "donor_reference": "x" * 100_000}
    too_big = httpx.post(f"{dev.base}/v1/donations", json=body, headers=headers, timeout=30)
    assert too_big.status_code == 413, too_big.text
    engine = create_engine(dev.env["LEDGER_DATABASE_URL"])
    with engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(IdempotencyRecord)).scalar_one()
    engine.dispose()
    assert rows == 0
    body["donor_reference"] = "Wang Fang"
    created = httpx.post(f"{dev.base}/v1/donations", json=body, headers=headers, timeout=60)
    assert created.status_code == 201, created.text


def test_an_upload_with_an_idempotency_key_is_not_held_in_memory(dev: DevProcess) -> None:
    """The idempotency layer fingerprints an upload as it streams and spools it: a 20 MB
    document does not raise the process's peak memory by its size (it was held whole, twice)."""
    charity_id, key, _ = create_charity(dev.base)
    campaign_id = create_campaign(dev.base, charity_id, key)
    auth = {"Authorization": f"Bearer {key}"}
    donated = httpx.post(
        f"{dev.base}/v1/donations",
        json={"campaign_id": campaign_id, "amount": 1000, "donor_reference": "d"},
        headers=auth,
        timeout=60,
    )
    assert donated.status_code == 201, donated.text
    paid = httpx.post(
        f"{dev.base}/v1/disbursements",
        json={"campaign_id": campaign_id, "amount": 500, "recipient": "CN-USCC-1", "purpose": "rice"},
        headers=auth,
        timeout=60,
    )
    assert paid.status_code == 201, paid.text
    document = random.Random(7).randbytes(20 * 1024 * 1024)
    before = peak_rss_kib(dev)
    uploaded = httpx.post(
        f"{dev.base}/v1/disbursements/{paid.json()['id']}/evidence",
        files=[("files", ("scan.bin", document, "application/octet-stream"))],
        headers={**auth, "Idempotency-Key": "scan-1"},
        timeout=120,
    )
    assert uploaded.status_code == 201, uploaded.text
    grown = peak_rss_kib(dev) - before
    assert grown < 12 * 1024, f"peak memory grew by {grown} KiB for a 20,480 KiB upload"


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(
        st.sampled_from([b"--xyz", b"--x", b"xyz", b"-", b"\r\n", b"data", b"--xyz--"]), max_size=40
    ),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=8),
)
def test_a_fingerprint_does_not_depend_on_how_the_body_was_cut(parts: list[bytes], cuts: list[int]) -> None:
    """Streaming the body in any chunks gives the fingerprint of the whole body with its
    multipart boundary replaced (what the middleware did when it held bodies whole)."""
    body = b"".join(parts)
    whole = Fingerprint("POST", "/p", b"", b"multipart/form-data; boundary=xyz")
    whole.update(body)
    streamed = Fingerprint("POST", "/p", b"", b"multipart/form-data; boundary=xyz")
    position = 0
    for cut in sorted(c for c in cuts if c <= len(body)):
        streamed.update(body[position:cut])
        position = cut
    streamed.update(body[position:])
    expected = Fingerprint("POST", "/p", b"", b"text/plain")  # no boundary: hashed as is
    expected.update(body.replace(b"--xyz", b"--<boundary>"))
    assert streamed.hexdigest() == whole.hexdigest() == expected.hexdigest()


def test_json_depth_is_counted_without_recursion() -> None:
    deep: list[object] = []
    current = deep
    for _ in range(50_000):
        nested: list[object] = []
        current.append(nested)
        current = nested
    assert json_depth(deep, 100) == 101
    assert json_depth({"a": [1, {"b": [2]}], "c": 3}, 100) == 4
    assert json_depth(7, 100) == 0


def test_the_largest_valid_batch_fits_its_body_limit() -> None:
    """2,000 donations, each at every field's longest, written by a client that escapes
    everything (astral characters as surrogate pairs, 12 bytes each) and indents: still
    under the batch route's limit, so no valid batch is ever refused as too large."""
    import json

    from ledger_api.donations.schemas import BATCH_BODY, MAX_BATCH, DonationBatch

    item = {
        "campaign_id": "0x" + "ab" * 32,
        "amount": str(10**18),
        "donor_reference": "\U0001f600" * 200,
        "channel": "c" * 32,
        "metadata_hash": "0x" + "cd" * 32,
    }
    body = json.dumps({"donations": [item] * MAX_BATCH}, indent=2).encode()
    assert len(DonationBatch.model_validate_json(body).donations) == MAX_BATCH  # valid
    assert len(body) < BATCH_BODY, (len(body), BATCH_BODY)
