"""The "Verify it yourself" boxes: what they expect is what the chain holds, and their
commands, run literally in a shell with Foundry's cast, curl and sha256sum, print it.

The expected values are checked against the chain read independently (web3's contract
events and view calls, formatted here as cast prints them), not against the code that
renders them. The literal runs take the commands out of the rendered HTML of a running
service and substitute nothing (the pages name the node); with the SQL mirror edited to lie,
the same commands print values that differ from the page's."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from lxml import html as lxml_html
from sqlalchemy import update
from web3 import Web3

from ledger_api.chain.abi import load_artifact
from ledger_api.core import ids
from ledger_api.mirror import tables as im
from ledger_api.pages import verify
from tests.api.checks import wait_for_mirror
from tests.api.service import Service, serve, settings_for
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "node_modules" / ".bin"
Site = tuple[Service, dict[str, Any]]


def parse(service: Service, path: str) -> Any:
    response = service.get(path)
    assert response.status_code == 200, (path, response.text[:300])
    return lxml_html.fromstring(response.text)


def as_cast_prints(kind: str, value: Any) -> str:
    """A decoded value as cast prints it (written here from cast's own output, separately
    from the page's code)."""
    if kind == "string":
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        escaped = re.sub(r"[\x00-\x1f]", lambda m: f"\\u{{{ord(m.group()):x}}}", escaped)
        return f'"{escaped}"'
    if kind == "bool":
        return str(value).lower()
    if kind.startswith("uint"):
        return str(value)
    if kind == "address":
        return Web3.to_checksum_address(value)
    return Web3.to_hex(value)


def abi_item(kind: str, name: str) -> dict[str, Any]:
    return next(i for i in load_artifact()["abi"] if i["type"] == kind and i["name"] == name)


def chain_logs(service: Service) -> dict[tuple[int, int], Any]:
    address = Web3.to_checksum_address(service.runtime.deployment.address)
    logs = service.runtime.w3.eth.get_logs(
        {"address": address, "fromBlock": service.runtime.deployment.block_number}
    )
    return {(log["blockNumber"], log["logIndex"]): log for log in logs}


def public_pages(made: dict[str, Any]) -> list[str]:
    return [
        *(f"/donations/{d['id']}" for d in made["donations"]),
        f"/donations/{made['yen']['id']}",
        f"/disbursements/{made['disbursement']}",
        f"/campaigns/{made['meals']}",
        f"/campaigns/{made['books']}",
    ]


def test_the_boxes_expect_what_the_chain_holds(site: Site) -> None:
    """Every event box names the event, its signature, topic0 and topics as on the chain,
    and the decoded fields as cast prints them; every view call expects the contract's
    answer at the stated block, and every count the number of logs a search finds."""
    service, made = site
    w3, contract = service.runtime.w3, service.contract
    logs = chain_logs(service)
    seen: set[str] = set()
    for path in public_pages(made):
        doc = parse(service, path)
        boxes = doc.xpath('//dl[@data-testid="event"]')
        assert boxes, path
        for box in boxes:
            log = logs[(int(box.get("data-block")), int(box.get("data-log-index")))]
            name = box.get("data-event")
            event = abi_item("event", name)
            signature = f"{name}({','.join(i['type'] for i in event['inputs'])})"
            assert box.xpath('.//code[@data-testid="signature"]')[0].text == signature
            assert box.xpath('.//code[@data-testid="topic0"]')[0].text == Web3.to_hex(
                Web3.keccak(text=signature)
            )
            assert Web3.to_hex(log["topics"][0]) == Web3.to_hex(Web3.keccak(text=signature))
            shown = [c.text for c in box.xpath('.//code[@data-testid="topic"]')]
            assert shown == [Web3.to_hex(t) for t in log["topics"][1:]], (path, name)
            decoded = getattr(contract.events, name)().process_log(log)["args"]
            fields = box.getparent().xpath('.//code[@data-testid="field"]')
            expected = {
                i["name"]: as_cast_prints(i["type"], decoded[i["name"]])
                for i in event["inputs"]
                if not i["indexed"] and i["name"] != "donorCommitment"
            }
            assert {f.get("data-name"): f.text_content() for f in fields} == expected, (path, name)
            seen.add(name)
        for command in doc.xpath('//code[@data-kind="view"]'):
            text = command.text_content()
            function = re.search(r'"(\w+)\(', text).group(1)  # type: ignore[union-attr]
            if function == "isEvidenceAnchored":
                continue  # below, with the documents
            block = int(re.search(r"--block (\d+)", text).group(1))  # type: ignore[union-attr]
            record = re.search(r"\" (0x[0-9a-f]{64})", text).group(1)  # type: ignore[union-attr]
            answer = getattr(contract.functions, function)(bytes.fromhex(record[2:])).call(
                block_identifier=block
            )
            outputs = abi_item("function", function)["outputs"][0]["components"]
            want = (
                "("
                + ", ".join(as_cast_prints(o["type"], v) for o, v in zip(outputs, answer, strict=True))
                + ")"
            )
            assert expectation(command) == [want], (path, function)
            seen.add(function)
        for command in doc.xpath('//code[@data-testid="command"]'):
            text = command.text_content()
            if not text.endswith("grep -c transactionHash"):
                continue
            topics = re.search(r"--address 0x[0-9a-fA-F]{40} (.*) --rpc-url", text).group(1).split()  # type: ignore[union-attr]
            last = int(re.search(r"--to-block (\d+)", text).group(1))  # type: ignore[union-attr]
            query = {
                "address": service.runtime.deployment.address,
                "fromBlock": service.runtime.deployment.block_number,
                "toBlock": last,
                "topics": [None if t == '""' else t for t in topics],
            }
            assert expectation(command) == [str(len(w3.eth.get_logs(query)))], (path, text)  # type: ignore[arg-type]
            seen.add("count")
    assert seen >= {
        "DonationRecorded",
        "DonationAllocated",
        "DonationRefunded",
        "DisbursementRecorded",
        "EvidenceAnchored",
        "CampaignCreated",
        "donationOf",
        "disbursementOf",
        "campaignOf",
        "count",
    }


def expectation(command: Any) -> list[str]:
    """The expected lines shown under a command."""
    box = command.getparent().getparent()
    return str(box.xpath('.//code[@data-testid="expected"]')[0].text_content()).split("\n")


def test_the_donation_page_links_the_abi_the_proof_bundle_and_the_verifier(site: Site) -> None:
    service, made = site
    donation = made["donations"][2]["id"]
    doc = parse(service, f"/donations/{donation}")
    links = doc.xpath('//details[@data-testid="verify-all"]//a/@href')
    assert links == ["/v1/contract", f"/v1/donations/{donation}/proof"]
    (line,) = doc.xpath('//code[@data-testid="ledger-verify"]')
    assert (
        line.text_content() == f"ledger verify {donation} --rpc-url {service.base}/rpc --api {service.base}"
    )
    zh = lxml_html.fromstring(
        service.get(f"/donations/{donation}", headers={"Accept-Language": "zh-CN"}).text
    )
    assert "验证总额以及没有遗漏" in zh.text_content() and "预期输出" in zh.text_content()


# ------------------------------------------------------------------ running the commands


class Run(NamedTuple):
    command: str
    kind: str
    missing: list[str]  # expected lines the output did not contain


def run_commands(service: Service, path: str, node: str | None) -> list[Run]:
    """Every command of the page, run as written in bash, and which of its expected lines
    its output lacks (cast's bracketed reading of large numbers and runs of spaces aside,
    as the page says). The one thing substituted is what the page asks for: RPC_URL, when
    the page names no node (`node` is then the one the reader chose)."""
    doc = parse(service, path)
    runs = []
    environment = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    environment.pop("RPC_URL", None)
    commands = " ".join(c.text_content() for c in doc.xpath('//code[@data-testid="command"]'))
    if '"$RPC_URL"' in commands:
        assert node is not None and "export RPC_URL=" in doc.text_content(), path
        environment["RPC_URL"] = node
    elif node is not None:
        assert f"--rpc-url {node}" in commands, path  # LEDGER_PUBLIC_RPC_URL, as the footer
    for check in doc.xpath('//div[@class="check"]'):
        (command,) = check.xpath('.//code[@data-testid="command"]')
        text = command.text_content()
        done = subprocess.run(
            ["bash", "-c", text], capture_output=True, text=True, timeout=60, env=environment, check=False
        )
        assert "error" not in done.stderr.lower(), (text, done.stderr)
        lines = {" ".join(re.sub(r" \[[^]]*\]", "", line).split()) for line in done.stdout.splitlines()}
        expected = expectation(command)
        runs.append(
            Run(text, command.get("data-kind"), [e for e in expected if " ".join(e.split()) not in lines])
        )
    return runs


class Chain(NamedTuple):
    url: str | None  # None: the embedded chain (the pages name its /rpc)
    public: bool  # whether LEDGER_PUBLIC_RPC_URL names it (else the pages say "$RPC_URL")


@pytest.fixture
def chain(request: pytest.FixtureRequest) -> Chain:
    """The embedded chain, or anvil named as the public node, or anvil not named at all."""
    if request.param == "embedded":
        return Chain(None, False)
    return Chain(str(request.getfixturevalue("anvil").url), request.param == "anvil")


@pytest.fixture
def recorded(chain: Chain, database_url: str, tmp_path: Path) -> Iterator[Site]:
    """A CNY campaign; a donation of 250,000 paying 150,000 to one disbursement (with an
    invoice) and 50,000 to another, and partly refunded."""
    if not (BIN / "cast").exists():
        unavailable(f"cast not found in {BIN}: run `npm ci`")
    extra = {"public_rpc_url": chain.url} if chain.public else {}
    with serve(settings_for(tmp_path, chain.url, database_url, **extra)) as service:
        charity, key = service.charity()
        campaign = service.campaign(charity, key)
        donation = service.donate(campaign, key, 250_000)
        wait_for_mirror(service)
        made: dict[str, Any] = {"campaign": campaign, "donation": donation["id"]}
        for name, amount, recipient, purpose in (
            ("rice", 150_000, "CN-USCC-9111", "Rice for 40 families"),
            ("oil", 50_000, "CN-USCC-9222", 'Cooking oil, "5 L"'),
        ):
            answer = service.post(
                "/v1/disbursements",
                key,
                json={
                    "campaign_id": campaign,
                    "amount": amount,
                    "recipient": recipient,
                    "purpose": purpose,
                    "allocations": [{"donation_id": donation["id"], "amount": amount}],
                },
            )
            assert answer.status_code == 201, answer.text
            made[name] = answer.json()["id"]
        for path, kwargs in (
            (
                f"/v1/disbursements/{made['rice']}/evidence",
                {"files": {"files": ("invoice.txt", b"INVOICE 7")}},
            ),
            (f"/v1/donations/{donation['id']}/refunds", {"json": {"amount": 4_000, "reason": "asked"}}),
        ):
            answer = service.post(path, key, **kwargs)
            assert answer.status_code == 201, answer.text
        wait_for_mirror(service)
        made["node"] = chain.url
        yield service, made


def failures(runs: list[Run]) -> list[tuple[str, list[str]]]:
    return [(r.kind, r.missing) for r in runs if r.missing]


# Each chain once, and each database at least once: what the commands print comes from the
# chain (the SQL mirror only feeds the page, whose reading of each database the page tests
# prove), so the three other chain and database pairs would prove nothing more.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("chain", "database_url"),
    [
        ("embedded", "sqlite"),
        pytest.param("anvil", "postgresql", marks=[pytest.mark.anvil, pytest.mark.postgres]),
        pytest.param("anvil-unnamed", "sqlite", marks=pytest.mark.anvil),
    ],
    indirect=True,
)
def test_the_pages_commands_print_what_the_page_expects_and_contradict_a_lying_mirror(recorded: Site) -> None:
    service, made = recorded
    pages = [
        f"/donations/{made['donation']}",
        f"/disbursements/{made['rice']}",
        f"/campaigns/{made['campaign']}",
    ]
    for path in pages:
        runs = run_commands(service, path, made["node"])
        assert failures(runs) == [], path
    trace = run_commands(service, pages[0], made["node"])
    kinds = [r.kind for r in trace]
    for kind in ("receipt", "log", "decode", "view", "allocations", "refunds", "sha256"):
        assert kind in kinds, kind
    # The donation, two allocations, their two disbursements, the invoice, the refund.
    assert kinds.count("decode") == 7
    assert "cast call" in next(r.command for r in trace if r.kind == "view")

    # The mirror lies: the allocations read 140,000/60,000 (the same total), and the rice
    # disbursement's recipient and purpose are changed.
    engine = service.runtime.engine
    rice, oil = (ids.to_hex(made[name]) for name in ("rice", "oil"))
    with engine.begin() as connection:
        for disbursement, amount in ((rice, 140_000), (oil, 60_000)):
            connection.execute(
                update(im.Allocation)
                .where(im.Allocation.disbursement_id == disbursement)
                .values(amount=amount)
            )
        connection.execute(
            update(im.Disbursement)
            .where(im.Disbursement.disbursement_id == rice)
            .values(recipient="CN-USCC-0000", purpose="Books")
        )
    lied = service.get(pages[0]).text
    assert 'data-value="140000"' in lied and "Books" in lied  # the page shows the lie
    found = failures(run_commands(service, pages[0], made["node"]))
    # The chain contradicts each lie, in the decoded data of the record it is about: the
    # first allocation (140,000, and the running total 140,000), the second (60,000; its
    # running total, 200,000, is true), and the rice disbursement (recipient and purpose).
    assert found == [
        ("decode", ["140000", "140000"]),
        ("decode", ['"CN-USCC-0000"', '"Books"']),
        ("decode", ["60000"]),
    ]
    assert failures(run_commands(service, pages[1], made["node"])) == [
        ("decode", ['"CN-USCC-0000"', '"Books"'])
    ]
    assert (
        failures(run_commands(service, pages[2], made["node"])) == []
    )  # the campaign's own records are true


def test_addresses_in_the_commands_are_single_shell_words() -> None:
    """A node or service address with shell syntax in it (from settings, or from a Host
    header in development) stays one quoted word: pasting the command runs nothing else."""
    hostile = "http://evil.example/$(touch /tmp/x);`id`&q=1 2"
    where = verify.Where(rpc_url=hostile, contract="0x" + "ab" * 20, deployment_block=1, base_url=hostile)
    assert shlex.split(f"cast chain-id --rpc-url {where.rpc} --api {where.api}") == [
        "cast",
        "chain-id",
        "--rpc-url",
        hostile,
        "--api",
        hostile,
    ]
    unnamed = verify.Where(verify.RPC_VARIABLE, "0x" + "ab" * 20, 1, "http://127.0.0.1:8000")
    assert unnamed.rpc == '"$RPC_URL"'  # the reader's own node, expanded by their shell
