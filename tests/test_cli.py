"""The `ledger` command line as its users run it: `ledger trace` as a process, piped and on a
(pseudo-)terminal, against the real service on a real chain; what it prints of hostile
text from the chain; its error messages; and the quiet installer behind `./scripts/dev`."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from ledger_api.core import ids
from ledger_api.core.formats import money, terminal_text
from ledger_api.pages import money as page_money
from tests.api.checks import wait_for_mirror, write_on_chain
from tests.api.service import ADMIN_KEY, Service, serve, settings_for
from tests.support.anvil import free_port

ROOT = Path(__file__).resolve().parents[1]

# What a hostile charity writes into its records' text (all of it goes on chain as is):
TITLE = "\x1b]0;pwned title\x07"  # OSC 0: retitles the terminal window
CLEAR = "\x1b[2J\x1b[H"  # CSI: clears the screen, cursor home
LINK = "\x1b]8;;https://evil.example/\x1b\\click here\x1b]8;;\x1b\\"  # OSC 8: a hidden hyperlink
C1 = "\u009b31m"  # a C1 CSI (0x9B): an escape sequence without ESC
BIDI = "\u202eevil.exe\u202c"  # right-to-left override: shows as "exe.live"
ZERO_WIDTH = "pay\u200bpal\u2060\ufeff"  # invisible characters inside a name
FORGED = "rice\n└── Refunded CN¥999.00"  # a line break forging a line of the tree


# ------------------------------------------------------------- terminal_text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Hot lunches 午餐 ¥", "Hot lunches 午餐 ¥"),
        (f"a{TITLE}b", "a]0;pwned titleb"),
        (f"a{CLEAR}b", "a[2J[Hb"),
        (LINK, "]8;;https://evil.example/\\click here]8;;\\"),
        (C1, "31m"),
        (BIDI, "evil.exe"),
        (ZERO_WIDTH, "paypal"),
        (FORGED, "rice └── Refunded CN¥999.00"),
        ("tab\tcr\rvt\vff\fnel\x85ls\u2028ps\u2029", "tab cr vt ff nel ls ps "),
        ("del\x7fbs\x08nul\x00", "delbsnul"),
        ("lone \ud800 surrogate", "lone  surrogate"),
        ("tag \U000e0041\U000e007f", "tag "),
        ("isolates \u2066\u2067\u2068\u2069 marks \u200e\u200f\u061c", "isolates  marks "),
    ],
)
def test_terminal_text_keeps_text_and_drops_what_a_terminal_obeys(raw: str, shown: str) -> None:
    assert terminal_text(raw) == shown
    assert shown.encode("utf-8")  # printable: a lone surrogate would not even encode


def test_terminal_text_keeps_lines_of_a_document() -> None:
    csv = f"id,name\r\n1,{TITLE}\r\n2,\ttab\u2028\r\n"
    assert terminal_text(csv, multiline=True) == "id,name\n1,]0;pwned title\n2,\ttab\n\n"


def test_the_command_line_formats_money_as_the_pages_do() -> None:
    for amount, currency in [(10_000, "CNY"), (1_500, "JPY"), (123_456, "BHD"), (10**24, "USD"), (7, "pts")]:
        for locale in ("en", "zh_CN"):
            assert money(amount, currency, locale) == page_money.money(amount, currency, locale)
    assert money(10_000, "CNY") == "CN¥100.00"
    assert money(10_000, "CNY", "zh_CN") == "¥100.00"


# ------------------------------------------------------------- `ledger trace`, a process


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Service]:
    with serve(settings_for(tmp_path, None, f"sqlite:///{tmp_path / 'ledger.db'}")) as running:
        yield running


def _ledger(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return subprocess.run(
        [sys.executable, "-m", "ledger_api.cli", *args],
        cwd=ROOT,
        env={**inherited, **(env or {})},
        capture_output=True,
        timeout=120,
    )


def _on_a_terminal(*args: str, columns: int) -> bytes:
    """What `ledger ...` writes to a pseudo-terminal `columns` wide."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "ledger_api.cli", *args],
        cwd=ROOT,
        env={**inherited, "TERM": "xterm-256color", "COLUMNS": str(columns)},
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    output = bytearray()
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        output += chunk
    os.close(leader)
    assert process.wait(timeout=60) == 0, bytes(output)
    return bytes(output)


def _record(
    service: Service,
    campaign_name: str,
    purpose: str,
    recipient: str,
    reason: str,
    below_the_api: bool = False,
) -> dict[str, Any]:
    """A charity, a campaign, two donations, a disbursement with an invoice drawing on the
    first (first in, first out) and a refund of part of the rest, written through the API
    (or, for text the API refuses, the campaign, disbursement and refund written straight
    to the contract with the charity's operator key, as any other client could); the first
    donation's trace, as the API gives it."""
    charity_id, key = service.charity()
    operator = service.operators[charity_id]
    if below_the_api:
        campaign_id = ids.new("campaign")
        write_on_chain(
            service,
            operator,
            "createCampaign",
            ids.to_bytes32(campaign_id),
            ids.to_bytes32(charity_id),
            campaign_name,
            b"CNY",
            10**7,
            bytes(32),
        )
    else:
        created = service.post(
            "/v1/campaigns",
            key,
            json={"charity_id": charity_id, "name": campaign_name, "currency": "CNY", "goal": 10**7},
        )
        assert created.status_code == 201, created.text
        campaign_id = created.json()["id"]
    first = service.donate(campaign_id, key, 10_000)
    service.donate(campaign_id, key, 20_000)
    if below_the_api:
        disbursement_id = ids.new("disbursement")
        write_on_chain(
            service,
            operator,
            "recordDisbursement",
            ids.to_bytes32(disbursement_id),
            ids.to_bytes32(campaign_id),
            5_000,
            recipient,
            purpose,
            bytes(32),
            [(ids.to_bytes32(first["id"]), 5_000)],
        )
        wait_for_mirror(service)
    else:
        paid = service.post(
            "/v1/disbursements",
            key,
            json={"campaign_id": campaign_id, "amount": 5_000, "recipient": recipient, "purpose": purpose},
        )
        assert paid.status_code == 201, paid.text
        disbursement_id = paid.json()["id"]
    uploaded = service.post(
        f"/v1/disbursements/{disbursement_id}/evidence", key, files={"files": ("invoice.txt", b"INVOICE 7")}
    )
    assert uploaded.status_code == 201, uploaded.text
    if below_the_api:
        write_on_chain(
            service,
            operator,
            "refundDonation",
            ids.to_bytes32(ids.new("refund")),
            ids.to_bytes32(first["id"]),
            1_000,
            reason,
        )
    else:
        refund = service.post(
            f"/v1/donations/{first['id']}/refunds", key, json={"amount": 1_000, "reason": reason}
        )
        assert refund.status_code == 201, refund.text
    wait_for_mirror(service)  # the refund's and the evidence's records
    trace = service.get(f"/v1/donations/{first['id']}")
    assert trace.status_code == 200, trace.text
    return dict(trace.json())


def _identifiers(trace: dict[str, Any]) -> list[str]:
    """Every hash and ID in a trace: what someone copies from the output."""
    found = [trace["id"], trace["proof"]["tx_hash"]]
    for allocation in trace["allocations"]:
        found += [allocation["disbursement"]["id"], allocation["proof"]["tx_hash"]]
        for document in allocation["disbursement"]["evidence"]:
            found += [document["sha256"], document["proof"]["tx_hash"]]
    for refund in trace["refunds"]:
        found += [refund["id"], refund["proof"]["tx_hash"]]
    return found


def test_trace_prints_whole_identifiers_and_money_as_the_pages_do(embedded: Service) -> None:
    """Piped (rich's Console used to crop at 80 columns without a terminal) and on a
    terminal 40 columns wide: every hash and ID whole on its line; amounts as on the pages."""
    trace = _record(
        embedded,
        "Hot lunches for mountain schools in Nujiang, Yunnan 怒江山区学校午餐",
        "Rice, vegetables and cooking oil for 4 schools in March, delivered by truck",
        "CN-USCC-91530000MA6K2XXXX1",
        "the donor asked for part of the gift back",
    )
    piped = _ledger("trace", trace["id"], "--api", embedded.base)
    assert piped.returncode == 0, piped.stderr
    text = piped.stdout.decode()
    lines = text.splitlines()
    assert "\x1b" not in text  # no styles into a pipe
    identifiers = _identifiers(trace)
    assert len(identifiers) == 8 and all(len(h) == 66 for h in identifiers if h.startswith("0x"))
    for identifier in identifiers:
        assert any(identifier in line for line in lines), (identifier, text)
    assert "CN¥100.00 to “Hot lunches for mountain schools in Nujiang, Yunnan 怒江山区学校午餐”" in lines[0]
    assert "Rice, vegetables and cooking oil for 4 schools in March, delivered by truck" in text
    assert "CN¥50.00 of " in text and "(CN¥50.00 in all)" in text
    assert "Refunded CN¥10.00" in text and "Not yet spent CN¥40.00" in text
    assert "minor units" not in text
    narrow = _on_a_terminal("trace", trace["id"], "--api", embedded.base, columns=40).decode()
    for identifier in identifiers:
        assert identifier in narrow, (identifier, narrow)  # whole: the terminal wraps, nothing folds


def test_trace_prints_no_terminal_controls_from_the_chain(embedded: Service) -> None:
    """A charity's names, purpose, recipient and reason carrying escape sequences, a C1
    control, a bidi override, zero-width characters and a forged line break: recorded on
    chain (straight to the contract: the API refuses them), then `ledger trace` piped and on
    a terminal."""
    trace = _record(
        embedded,
        f"School meals{TITLE}{CLEAR}",
        f"Rice {LINK} {FORGED}",
        f"CN-USCC-{BIDI}{C1}",
        f"refund {ZERO_WIDTH}",
        below_the_api=True,
    )
    assert trace["campaign"]["name"] == f"School meals{TITLE}{CLEAR}"  # the chain holds it as written
    piped = _ledger("trace", trace["id"], "--api", embedded.base)
    assert piped.returncode == 0, piped.stderr
    terminal = _on_a_terminal("trace", trace["id"], "--api", embedded.base, columns=100)
    for output in (piped.stdout, terminal):
        assert b"\x07" not in output and b"\x1b]" not in output and b"\x1b[2J" not in output
        assert b"\x1b[H" not in output and b"\x1b\\" not in output
        assert "\u009b".encode() not in output
        for hidden in "\u202e\u202c\u200b\u2060\ufeff":
            assert hidden.encode() not in output, hidden
        text = output.decode()
        # What remains is shown as text, so a reader sees something was there.
        assert "School meals]0;pwned title[2J[H" in text
        assert "]8;;https://evil.example/\\click here]8;;\\" in text
        assert "CN-USCC-evil.exe31m" in text and "refund paypal" in text
        # The forged line stays inside the purpose's line: one "Refunded" heading only.
        assert "rice └── Refunded CN¥999.00 → " in text
        assert len(re.findall("Refunded", text)) == 2  # the forged text, and the real heading
    # Only the real styles reach the terminal: SGR sequences (bold, dim, reset), nothing else.
    assert set(re.findall(rb"\x1b\[[0-9;]*[A-Za-z]", terminal)) <= {b"\x1b[1m", b"\x1b[2m", b"\x1b[0m"}
    assert terminal.count(b"\x1b") == len(re.findall(rb"\x1b\[[0-9;]*m", terminal))


# ------------------------------------------------------------- errors that say how to fix them


def test_cannot_reach_the_service_says_which_url_and_how_to_choose_one() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    given = _ledger("trace", ids.new("donation"), "--api", url)
    assert given.returncode == 2
    err = given.stderr.decode()
    assert f"cannot reach the service at {url} (from --api)" in err
    assert "--api" in err and "LEDGER_API_URL" in err
    from_env = _ledger("reconcile", env={"LEDGER_API_URL": url})
    assert from_env.returncode == 2
    assert f"{url} (from LEDGER_API_URL)" in from_env.stderr.decode()
    default = _ledger("export", "--format", "csv")
    # Nothing listens on 8000 in the test environment, or something that is not this ledger.
    if default.returncode == 2 and b"cannot reach" in default.stderr:
        assert "http://127.0.0.1:8000 (the default)" in default.stderr.decode()


def test_audit_commands_without_a_key_or_with_a_wrong_one_say_which_key(embedded: Service) -> None:
    missing = _ledger("reconcile", "--api", embedded.base)
    assert missing.returncode == 2
    err = missing.stderr.decode()
    assert "error 401" in err and "--key" in err and "LEDGER_API_KEY" in err
    assert "auditor key" in err and "ledger keys create --role auditor" in err
    wrong = _ledger("export", "--format", "csv", "--api", embedded.base, "--key", "lk_nosuchkey_x")
    assert wrong.returncode == 2
    err = wrong.stderr.decode()
    assert "error 401" in err and "does not know this key" in err and "LEDGER_API_KEY" in err
    assert wrong.stdout == b""


def test_not_found_says_what_was_not_found(embedded: Service) -> None:
    donation = ids.new("donation")
    unknown = _ledger("trace", donation, "--api", embedded.base)
    assert unknown.returncode == 2
    err = unknown.stderr.decode()
    assert "error 404" in err and f"no donation {donation}" in err and "receipt" in err
    auditor = embedded.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}).json()["key"]
    campaign = ids.new("campaign")
    exported = _ledger("export", "--format", "csv", "--campaign-id", campaign, "--api", embedded.base)
    assert exported.returncode == 2 and "error 401" in exported.stderr.decode()
    exported = _ledger(
        "export", "--format", "csv", "--campaign-id", campaign, "--api", embedded.base, "--key", auditor
    )
    assert exported.returncode == 2
    assert f"no campaign {campaign}" in exported.stderr.decode()


class _HostileHandler(BaseHTTPRequestHandler):
    """A server (or something in the middle) answering every request with a problem whose
    text holds terminal controls."""

    def do_GET(self) -> None:
        body = json.dumps(
            {
                "status": 404,
                "title": "Not found",
                "detail": f"gone{TITLE}{CLEAR}{BIDI}",
                "errors": [{"msg": LINK}],
            }
        ).encode()
        self.send_response(404)
        self.send_header("Content-Type", "application/problem+json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_GET

    def log_message(self, *_args: Any) -> None:
        pass


def test_error_messages_strip_what_the_server_says() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _HostileHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}"
        for args in (
            ("trace", ids.new("donation")),
            ("reconcile", "--key", "k"),
            ("export", "--format", "csv"),
        ):
            done = _ledger(*args, "--api", base)
            assert done.returncode == 2
            assert b"\x1b" not in done.stderr and b"\x07" not in done.stderr
            assert "\u202e".encode() not in done.stderr
            assert (
                "error 404: gone]0;pwned title[2J[Hevil.exe; ]8;;https://evil.example/"
                in done.stderr.decode()
            )
    finally:
        server.shutdown()
        server.server_close()


def test_export_on_a_terminal_is_stripped_and_into_a_file_is_the_services_bytes(
    embedded: Service, tmp_path: Path
) -> None:
    trace = _record(embedded, f"Meals{TITLE}", f"Rice {LINK}", f"CN-{BIDI}", "a reason", below_the_api=True)
    auditor = embedded.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}).json()["key"]
    args = ("export", "--format", "csv", "--api", embedded.base, "--key", auditor)
    target = tmp_path / "trail.csv"
    assert _ledger(*args, "-o", str(target)).returncode == 0
    raw = target.read_bytes()
    assert LINK.encode() in raw and "\u202e".encode() in raw  # files and pipes: the data as it is
    shown = _on_a_terminal(*args, columns=80)
    assert b"\x1b" not in shown and b"\x07" not in shown and "\u202e".encode() not in shown
    text = shown.decode()
    assert "Rice ]8;;https://evil.example/" in text and trace["id"] in text
    assert text.count("\n") >= raw.count(b"\n")  # the lines are kept (the terminal shows \n as \r\n)


# ------------------------------------------------------------- scripts/bootstrap.sh


def test_bootstrap_keeps_installer_output_in_a_log_unless_a_step_fails(tmp_path: Path) -> None:
    """bootstrap.sh in a scratch project (a copy of the script beside a pyproject.toml):
    a real venv and real pip runs. A failing install shows its output and exits non-zero;
    a working one says one line per step; an installed one says nothing."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", tmp_path / "scripts" / "bootstrap.sh")
    (tmp_path / "constraints.txt").write_text("")
    project = '[project]\nname = "scratch"\nversion = "0"\ndependencies = [{}]\n'
    project += "[project.optional-dependencies]\ndev = []\n[tool.setuptools]\npackages = []\n"
    (tmp_path / "pyproject.toml").write_text(project.format('"no-such-package-for-this-test-xyz"'))
    (tmp_path / "verifier").mkdir()  # bootstrap installs the standalone verifier beside the project
    verifier = '[project]\nname = "scratch-verifier"\nversion = "0"\n[tool.setuptools]\npackages = []\n'
    (tmp_path / "verifier" / "pyproject.toml").write_text(verifier)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PIP_REQUIRE"))}

    def bootstrap() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [tmp_path / "scripts" / "bootstrap.sh"], env=env, capture_output=True, text=True, timeout=600
        )

    failed = bootstrap()
    assert failed.returncode != 0
    assert "bootstrap: creating .venv with" in failed.stderr
    assert "FAILED" in failed.stderr and "var/bootstrap.log" in failed.stderr
    assert "no-such-package-for-this-test-xyz" in failed.stderr  # pip's own words, shown on failure
    assert "Looking in indexes" not in failed.stderr.split("FAILED")[0]
    log = (tmp_path / "var" / "bootstrap.log").read_text()
    assert "no-such-package-for-this-test-xyz" in log

    (tmp_path / "pyproject.toml").write_text(project.format(""))
    installed = bootstrap()
    assert installed.returncode == 0, installed.stderr
    said = installed.stderr.splitlines()
    assert [line.split(" ... ")[0] for line in said] == [
        "bootstrap: upgrading pip in .venv",
        "bootstrap: installing Python packages into .venv (a few minutes the first time)",
    ], installed.stderr
    assert all(re.search(r" \.\.\. done \(\d+ s\)$", line) for line in said)
    assert installed.stdout == ""
    assert "Successfully installed scratch" in (tmp_path / "var" / "bootstrap.log").read_text()

    again = bootstrap()
    assert (again.returncode, again.stdout, again.stderr) == (0, "", "")


def test_a_bad_setting_is_named_in_one_line_not_a_traceback() -> None:
    """A LEDGER_* variable that is not valid stops the command with its name and what is
    wrong with it (it used to print a 50-line traceback)."""
    done = _ledger("dev", env={"LEDGER_TIMEZONE": "Mars/Olympus", "LEDGER_PORT": "99999"})
    assert done.returncode == 2
    error = done.stderr.decode()
    assert "Traceback" not in error
    assert "LEDGER_TIMEZONE: " in error and "Mars/Olympus" in error
    assert "LEDGER_PORT: " in error and "65535" in error
