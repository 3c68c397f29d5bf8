"""The write path under stress and failure, end to end over HTTP on a real anvil node:
many concurrent writes, two service processes on one database, a process killed between
signing and sending (and between sending and the receipt), and a node that goes away.

What must hold every time: every accepted write ends mined exactly once; the signer's
nonces in the outbox are 0..n-1 with no gap and no duplicate, and the chain agrees
(the account's transaction count is signers.next_nonce); what is re-sent after a crash
is the very bytes that were stored."""

from __future__ import annotations

import signal
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from web3.exceptions import TransactionNotFound

from ledger_api.chain.contract import make_web3
from ledger_api.core import ids
from ledger_api.core.errors import ChainUnavailable
from tests.api.processes import (
    DevProcess,
    NodeProxy,
    assert_consecutive_nonces,
    concurrently,
    create_campaign,
    create_charity,
    dev_env,
    donation_count,
    donations_recorded,
    outbox_of,
    poll,
    post_donation,
    records_of,
)
from tests.api.service import Service, serve, settings_for
from tests.support.anvil import AnvilNode

pytestmark = pytest.mark.anvil

PROBLEM = "urn:charity-ledger:problem:"


def _address(base: str) -> str:
    return str(httpx.get(f"{base}/healthz", timeout=10).json()["chain"]["contract_address"])


# ------------------------------------------------------------- concurrency


def test_fifty_concurrent_writes_of_one_charity_share_transactions_nonces_in_order(service: Service) -> None:
    charity_id, key = service.charity()
    campaign_id = service.campaign(charity_id, key)
    operator = service.operators[charity_id]

    responses = concurrently(
        partial(post_donation, service.base, key, campaign_id, amount) for amount in range(1_000, 1_050)
    )

    assert all(isinstance(r, httpx.Response) for r in responses), responses
    assert [r.status_code for r in responses] == [201] * 50, [
        r.text for r in responses if r.status_code != 201
    ]
    assert {r.json()["transaction"]["status"] for r in responses} == {"mined"}
    w3, runtime = service.runtime.w3, service.runtime
    outbox = outbox_of(runtime.settings.database_url, runtime.deployment.chain_id, operator)
    # The operator's first transaction created the campaign; then the donations, sent
    # together in fewer transactions (group commit: transactions/coalesce.py).
    assert_consecutive_nonces(outbox, w3, operator)
    donation_rows = [row for row in outbox.rows if records_of(row)["kind"] == "donation"]
    assert 1 <= len(donation_rows) < 50
    first = donation_rows[0].nonce
    assert [row.nonce for row in donation_rows] == list(range(first, first + len(donation_rows)))
    recorded = [donation for row in donation_rows for donation in records_of(row)["ids"]]
    assert sorted(recorded) == sorted(r.json()["id"] for r in responses)  # each exactly once
    # Each answer names the transaction that holds its own donation.
    holding = {donation: row.tx_hash for row in donation_rows for donation in records_of(row)["ids"]}
    assert all(r.json()["transaction"]["tx_hash"] == holding[r.json()["id"]] for r in responses)
    assert donation_count(w3, runtime.deployment.address, campaign_id) == 50
    # The service account (registrar) is consistent as well.
    assert runtime.service_account is not None
    service_outbox = outbox_of(
        runtime.settings.database_url, runtime.deployment.chain_id, runtime.service_account
    )
    assert_consecutive_nonces(service_outbox, w3, runtime.service_account)


@pytest.mark.postgres
@pytest.mark.usefixtures("anvil")  # only for its check that anvil is installed
def test_two_service_processes_share_one_postgres_database(postgres_url: str, tmp_path: Path) -> None:
    with AnvilNode() as node:
        env = dev_env(node.url, postgres_url, tmp_path)
        with DevProcess(env, tmp_path / "first.log") as first:
            first.start()
            charity_id, key, operator = create_charity(first.base)
            campaign_id = create_campaign(first.base, charity_id, key)
            with DevProcess(env, tmp_path / "second.log") as second:
                second.start()
                address = _address(first.base)
                assert _address(second.base) == address  # the second resumed the same deployment

                bases = [first.base, second.base]
                responses = concurrently(
                    partial(post_donation, bases[i % 2], key, campaign_id, 500 + i) for i in range(20)
                )
                problems = [r if isinstance(r, Exception) else r.text for r in responses]
                assert [getattr(r, "status_code", None) for r in responses] == [201] * 20, (
                    problems,
                    first.log(),
                    second.log(),
                )
        w3 = make_web3(node.url)
        outbox = outbox_of(postgres_url, w3.eth.chain_id, operator)
        assert_consecutive_nonces(outbox, w3, operator)
        # The campaign, then the 20 donations, each in exactly one transaction (a process
        # may send several of them together).
        donation_rows = outbox.rows[1:]
        assert sorted(d for row in donation_rows for d in records_of(row)["ids"]) == sorted(
            r.json()["id"] for r in responses
        )
        assert donation_count(w3, address, campaign_id) == 20
        for response in responses:
            assert len(donations_recorded(w3, address, response.json()["id"])) == 1


def test_ledger_serve_with_several_workers(postgres_url: str, tmp_path: Path) -> None:
    """`ledger serve --workers 3`: the processes share the outbox (no nonce collides), one
    of them keeps the mirror, and any of them answers reads from it."""
    with AnvilNode() as node:
        env = dev_env(node.url, postgres_url, tmp_path)
        with DevProcess(env, tmp_path / "dev.log") as dev:  # deploys the ledger
            dev.start()
            charity_id, key, operator = create_charity(dev.base)
            campaign_id = create_campaign(dev.base, charity_id, key)
        command = ("serve", "--workers", "3", "--host", "127.0.0.1")
        with DevProcess(env, tmp_path / "serve.log", command) as served:
            served.start()
            responses = concurrently(
                partial(post_donation, served.base, key, campaign_id, 700 + i) for i in range(24)
            )
            assert [getattr(r, "status_code", None) for r in responses] == [201] * 24, served.log()
            deadline = time.monotonic() + 30
            while (health := served.wait_healthy())["indexer"].get("lag_blocks") != 0:
                assert time.monotonic() < deadline, health
                time.sleep(0.2)
            traced = concurrently(
                partial(httpx.get, f"{served.base}/v1/donations/{r.json()['id']}", timeout=30)
                for r in responses
            )
            assert [t.json()["amount"] for t in traced] == [700 + i for i in range(24)]
            pids = {line for line in served.log().splitlines() if "Started server process" in line}
            assert len(pids) == 3, served.log()
            # Keep-alive requests are answered at once (TCP_NODELAY on every worker's
            # connections), not after a ~40 ms delayed ACK.
            with httpx.Client(base_url=served.base) as client:
                client.get("/healthz")
                took = []
                for _ in range(20):
                    began = time.perf_counter()
                    assert client.get("/healthz").status_code == 200
                    took.append(time.perf_counter() - began)
            assert sorted(took)[10] < 0.03, took
        w3 = make_web3(node.url)
        assert_consecutive_nonces(outbox_of(postgres_url, w3.eth.chain_id, operator), w3, operator)


# ------------------------------------------------------------- crashes


@pytest.mark.parametrize("crash_at", ["after-sign", "after-send"])
@pytest.mark.usefixtures("anvil")
def test_a_write_cut_off_by_a_crash_ends_mined_exactly_once(
    crash_at: str, database_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "dev.log"
    with AnvilNode() as node:
        w3 = make_web3(node.url)
        chain_id = w3.eth.chain_id
        env = dev_env(node.url, database_url, tmp_path)
        with DevProcess(env, log) as setup:
            setup.start()
            address = _address(setup.base)
            charity_id, key, operator = create_charity(setup.base)
            campaign_id = create_campaign(setup.base, charity_id, key)
            assert post_donation(setup.base, key, campaign_id, 100).status_code == 201

        # The same service, restarted with the crash hook: the next write kills it.
        with DevProcess({**env, "LEDGER_CRASH_AT": crash_at}, log) as crashing:
            crashing.start()
            with pytest.raises(httpx.TransportError):
                post_donation(crashing.base, key, campaign_id, 200)
            assert crashing.wait_exit() == -signal.SIGKILL

        outbox = outbox_of(database_url, chain_id, operator)
        cut = outbox.rows[-1]
        donation_id = records_of(cut)["ids"][0]
        assert records_of(cut)["kind"] == "donation"
        assert cut.nonce == 2 and outbox.next_nonce == 3  # campaign, first donation, this one
        if crash_at == "after-sign":
            assert cut.status == "signed"
            with pytest.raises(TransactionNotFound):
                w3.eth.get_transaction(cut.tx_hash)
            assert donations_recorded(w3, address, donation_id) == []
        else:
            # Sent (whether or not the process lived to write down that it was): anvil mined it.
            assert cut.status in ("signed", "sent")
            assert w3.eth.get_transaction_receipt(cut.tx_hash)["status"] == 1

        # Restarted normally, the outbox worker finishes what the crash cut off.
        with DevProcess(env, log) as restarted:
            restarted.start()
            poll(
                lambda: outbox_of(database_url, chain_id, operator).rows[-1].status == "mined",
                15,
                f"the transaction cut off {crash_at} is mined:\n{restarted.log()}",
            )
            seen = httpx.get(
                f"{restarted.base}/v1/transactions/{cut.id}", headers={"Authorization": f"Bearer {key}"}
            )
            assert seen.status_code == 200, seen.text
            assert seen.json()["status"] == "mined"
            assert seen.json()["records"] == {"kind": "donation", "ids": [donation_id]}

            outbox = outbox_of(database_url, chain_id, operator)
            assert_consecutive_nonces(outbox, w3, operator)  # nothing sent twice
            assert len(outbox.rows) == 3
            # Exactly once on chain, as the bytes stored before the crash.
            events = donations_recorded(w3, address, donation_id)
            assert len(events) == 1
            assert events[0]["args"]["amount"] == 200
            assert "0x" + bytes(events[0]["transactionHash"]).hex() == cut.tx_hash
            assert "0x" + bytes(w3.eth.get_raw_transaction(cut.tx_hash)).hex() == cut.raw_tx
            assert donation_count(w3, address, campaign_id) == 2

            # And the service goes on with the next nonce.
            after = post_donation(restarted.base, key, campaign_id, 300)
            assert after.status_code == 201, after.text
            assert_consecutive_nonces(outbox_of(database_url, chain_id, operator), w3, operator)
            assert donation_count(w3, address, campaign_id) == 3


@pytest.mark.parametrize("crash_at", ["after-sign", "after-send"])
@pytest.mark.usefixtures("anvil")
def test_a_group_of_donations_cut_off_by_a_crash_ends_mined_exactly_once(
    crash_at: str, database_url: str, tmp_path: Path
) -> None:
    """Three single donations gathered into one transaction (a long coalescing window), the
    process killed when that transaction is signed (or sent): after a restart the outbox
    sends the stored bytes, and each of the three is on chain exactly once."""
    log = tmp_path / "dev.log"
    with AnvilNode() as node:
        w3 = make_web3(node.url)
        env = dev_env(node.url, database_url, tmp_path, LEDGER_COALESCE_WINDOW="0.5")
        with DevProcess(env, log) as setup:
            setup.start()
            address = _address(setup.base)
            charity_id, key, operator = create_charity(setup.base)
            campaign_id = create_campaign(setup.base, charity_id, key)

        with DevProcess({**env, "LEDGER_CRASH_AT": crash_at}, log) as crashing:
            crashing.start()
            results = concurrently(
                partial(post_donation, crashing.base, key, campaign_id, amount) for amount in (201, 202, 203)
            )
            assert all(isinstance(r, httpx.TransportError) for r in results), results
            assert crashing.wait_exit() == -signal.SIGKILL

        cut = outbox_of(database_url, w3.eth.chain_id, operator).rows[-1]
        assert records_of(cut)["kind"] == "donation" and len(records_of(cut)["ids"]) == 3

        with DevProcess(env, log) as restarted:
            restarted.start()
            poll(
                lambda: outbox_of(database_url, w3.eth.chain_id, operator).rows[-1].status == "mined",
                15,
                f"the group cut off {crash_at} is mined:\n{restarted.log()}",
            )
            assert_consecutive_nonces(outbox_of(database_url, w3.eth.chain_id, operator), w3, operator)
            amounts = []
            for donation_id in records_of(cut)["ids"]:
                events = donations_recorded(w3, address, donation_id)
                assert len(events) == 1
                assert "0x" + bytes(events[0]["transactionHash"]).hex() == cut.tx_hash
                amounts.append(events[0]["args"]["amount"])
            assert sorted(amounts) == [201, 202, 203]
            assert donation_count(w3, address, campaign_id) == 3


# ------------------------------------------------------------- the node goes away


def _donation(campaign_id: str, amount: int) -> dict[str, Any]:
    return {"campaign_id": campaign_id, "amount": amount, "donor_reference": f"donor-{amount}"}


def test_writes_fail_fast_while_the_node_is_down(anvil: Any, database_url: str, tmp_path: Path) -> None:
    with NodeProxy(anvil.url) as proxy, serve(settings_for(tmp_path, proxy.url, database_url)) as service:
        charity_id, key = service.charity()
        campaign_id = service.campaign(charity_id, key)
        operator = service.operators[charity_id]
        chain_id = service.runtime.deployment.chain_id
        before = outbox_of(database_url, chain_id, operator)

        proxy.down()
        started = time.monotonic()
        response = service.post("/v1/donations", key, json=_donation(campaign_id, 1_000))
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == PROBLEM + "chain-unavailable"
        assert "chain node did not answer" in problem["detail"]
        assert elapsed < 5, f"a write with the node down took {elapsed:.1f} s"
        after = outbox_of(database_url, chain_id, operator)
        assert (len(after.rows), after.next_nonce) == (len(before.rows), before.next_nonce)

        health = service.get("/healthz")
        assert health.status_code == 503
        assert health.json()["status"] == "degraded"
        assert health.json()["chain"]["error"].startswith("chain node unreachable")

        proxy.up()
        donation = service.donate(campaign_id, key, 2_000)
        assert donation["transaction"]["status"] == "mined"
        assert_consecutive_nonces(outbox_of(database_url, chain_id, operator), service.runtime.w3, operator)
        assert donation_count(service.runtime.w3, service.runtime.deployment.address, campaign_id) == 1


def test_writes_fail_fast_while_the_node_hangs(anvil: Any, tmp_path: Path) -> None:
    """A node that accepts connections but never answers (overloaded, or a half-open
    network path) must not hold a write for minutes."""
    database_url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with NodeProxy(anvil.url) as proxy, serve(settings_for(tmp_path, proxy.url, database_url)) as service:
        charity_id, key = service.charity()
        campaign_id = service.campaign(charity_id, key)
        proxy.stall.set()
        try:
            started = time.monotonic()
            response = service.post("/v1/donations", key, json=_donation(campaign_id, 1_000), timeout=8)
            elapsed = time.monotonic() - started
        finally:
            proxy.stall.clear()  # the stalled calls fail at once, and the service unwinds
        assert response.status_code == 503, response.text
        assert response.json()["type"] == PROBLEM + "chain-unavailable"
        assert elapsed < 8


@pytest.mark.parametrize("failure", ["send-dropped", "answer-lost"])
def test_a_signed_write_survives_the_node_going_away(
    failure: str, anvil: Any, database_url: str, tmp_path: Path
) -> None:
    """The node accepts the simulation, then the send never reaches it (or reaches it but
    the answer is lost): the write answers with its transaction id, stays queued, and the
    outbox worker sees it mined once the node is back: nothing accepted is lost or doubled."""
    with NodeProxy(anvil.url) as proxy, serve(settings_for(tmp_path, proxy.url, database_url)) as service:
        runtime, w3 = service.runtime, service.runtime.w3
        charity_id, key = service.charity()
        campaign_id = service.campaign(charity_id, key)
        operator = service.operators[charity_id]
        chain_id = runtime.deployment.chain_id

        (proxy.drop if failure == "send-dropped" else proxy.lose_answer).add("eth_sendRawTransaction")
        started = time.monotonic()
        response = service.post("/v1/donations", key, json=_donation(campaign_id, 3_000))
        elapsed = time.monotonic() - started
        assert response.status_code in (201, 503), response.text
        if response.status_code == 503:
            problem = response.json()
            assert problem["type"] == PROBLEM + "chain-unavailable"
            tx_id = problem["transaction"]
        else:
            tx_id = response.json()["transaction"]["id"]
        assert elapsed < 10, f"the write took {elapsed:.1f} s"
        row = next(r for r in outbox_of(database_url, chain_id, operator).rows if r.id == tx_id)
        donation_id = records_of(row)["ids"][0]
        if failure == "send-dropped":
            assert response.status_code == 503
            assert row.status == "signed"
            with pytest.raises(TransactionNotFound):
                w3.eth.get_transaction(row.tx_hash)
            proxy.drop.clear()  # the node is back
        # (answer-lost: the node has it; the worker finds its receipt while answers are still lost.)

        poll(
            lambda: (
                next(r for r in outbox_of(database_url, chain_id, operator).rows if r.id == tx_id).status
                == "mined"
            ),
            15,
            "the queued transaction is mined",
        )
        proxy.lose_answer.clear()
        seen = service.get(f"/v1/transactions/{tx_id}", key)
        assert seen.json()["status"] == "mined"
        assert_consecutive_nonces(outbox_of(database_url, chain_id, operator), w3, operator)
        events = donations_recorded(w3, runtime.deployment.address, donation_id)
        assert ["0x" + bytes(e["transactionHash"]).hex() for e in events] == [row.tx_hash]
        assert donation_count(w3, runtime.deployment.address, campaign_id) == 1
        # The next write takes the next nonce.
        service.donate(campaign_id, key, 4_000)
        assert_consecutive_nonces(outbox_of(database_url, chain_id, operator), w3, operator)


def test_the_node_going_away_between_simulation_and_signing_is_a_503(
    anvil: Any, database_url: str, tmp_path: Path
) -> None:
    """The first write of a new signer asks the node for its nonce: with the node gone by
    then, the write is refused as chain-unavailable (no outbox row), not a 500."""
    with NodeProxy(anvil.url) as proxy, serve(settings_for(tmp_path, proxy.url, database_url)) as service:
        runtime = service.runtime
        assert runtime.writer is not None and runtime.keystore is not None
        charity_id, _key = service.charity()
        operator = service.operators[charity_id]
        call = service.contract.functions.createCampaign(
            ids.to_bytes32(ids.new("campaign")),
            ids.to_bytes32(charity_id),
            "Meals",
            b"CNY",
            10**6,
            b"\0" * 32,
        )
        gas = runtime.writer.simulate(operator, call)
        runtime.writer._fee_fields()  # fresh fees: the next node call is the nonce
        proxy.down()
        with pytest.raises(ChainUnavailable):
            runtime.writer.submit(operator, call, gas, None, {"kind": "campaign", "ids": []})
        proxy.up()
        outbox = outbox_of(runtime.settings.database_url, runtime.deployment.chain_id, operator)
        assert (outbox.rows, outbox.next_nonce) == ([], None)
