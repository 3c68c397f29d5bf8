"""What the API tests look at besides the HTTP answer: the outbox, the nonces, the chain,
and the shape of problem details."""

from __future__ import annotations

import time
from typing import Any

import httpx
from sqlalchemy import func, select
from web3 import Web3

from indexer import models as im
from ledger_api.chain.abi import encode
from ledger_api.core import ids
from ledger_api.core.models import ChainTransaction, Signer
from tests.api.service import Service

PROBLEM = "urn:charity-ledger:problem:"


def problem(response: httpx.Response, status: int, kind: str) -> dict[str, Any]:
    """The problem details of `response`, checked to be of `status` and `kind`."""
    assert response.status_code == status, (status, kind, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["type"] == PROBLEM + kind, body
    assert body["status"] == status, body
    assert body["detail"], body
    return body


def contract_error(response: httpx.Response, name: str) -> dict[str, Any]:
    """A 409 that names the custom error the contract would have reverted with."""
    body = problem(response, 409, "contract-rejected")
    assert body["error"]["name"] == name, body
    assert name in body["detail"], body
    return body


def transactions(service: Service) -> int:
    """Rows in the outbox: every transaction the service ever signed."""
    with service.runtime.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(ChainTransaction)).scalar_one())


def next_nonce(service: Service, signer: str) -> int | None:
    """The signers table's next nonce for `signer` (None before its first transaction)."""
    with service.runtime.engine.connect() as connection:
        value = connection.execute(
            select(Signer.next_nonce).where(
                Signer.chain_id == service.runtime.deployment.chain_id, Signer.address == signer
            )
        ).scalar_one_or_none()
    return None if value is None else int(value)


def chain_nonce(service: Service, account: str) -> int:
    return int(service.runtime.w3.eth.get_transaction_count(Web3.to_checksum_address(account), "pending"))


def sender(service: Service, tx_hash: str) -> str:
    return str(service.runtime.w3.eth.get_transaction(tx_hash)["from"])  # type: ignore[arg-type]


def campaign_view(service: Service, campaign_id: str) -> dict[str, Any]:
    view = service.contract.functions.campaignOf(ids.to_bytes32(campaign_id)).call()
    names = (
        "charity_id",
        "currency",
        "closed",
        "goal",
        "received",
        "refunded",
        "disbursed",
        "available",
        "donation_count",
        "disbursement_count",
    )
    return dict(zip(names, view, strict=True))


def donation_view(service: Service, donation_id: str) -> dict[str, int]:
    view = service.contract.functions.donationOf(ids.to_bytes32(donation_id)).call()
    return dict(zip(("amount", "allocated", "refunded", "remaining"), view[1:], strict=True))


def wait_for_mirror(service: Service, timeout: float = 20.0) -> None:
    """Until the in-process indexer has caught up with the chain's head."""
    head = service.runtime.w3.eth.block_number
    deadline = time.monotonic() + timeout
    while True:
        with service.runtime.engine.connect() as connection:
            indexed = connection.execute(
                select(im.Cursor.block_number).where(im.Cursor.deployment_id == service.runtime.deployment_id)
            ).scalar_one_or_none()
        if indexed is not None and indexed >= head:
            return
        assert time.monotonic() < deadline, f"the mirror is at {indexed}, the head at {head}"
        time.sleep(0.05)


def reconciliation(service: Service, key: str, timeout: float = 120.0, **params: Any) -> dict[str, Any]:
    """Start a reconciliation (POST /v1/audit/reconciliations) and wait for its job to
    finish: the finished job (status, checked_block, result...)."""
    started = service.post("/v1/audit/reconciliations", key, params=params)
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    assert location == started.json()["href"]
    deadline = time.monotonic() + timeout
    while True:
        job = service.get(location, key)
        assert job.status_code == 200, job.text
        body: dict[str, Any] = job.json()
        if body["status"] in ("done", "failed"):
            return body
        assert time.monotonic() < deadline, body
        time.sleep(0.1)


def reconciled(service: Service, key: str, **params: Any) -> dict[str, Any]:
    """The result of a reconciliation that finished (the answer's shape of old)."""
    job = reconciliation(service, key, **params)
    assert job["status"] == "done", job
    result: dict[str, Any] = job["result"]
    return result


def as_service_account(service: Service, function: str) -> None:
    """Call a contract function (pause, unpause) from the service account, the ledger's
    admin, through the writer: simulated, signed with the keystore, mined."""
    runtime = service.runtime
    assert runtime.writer is not None and runtime.service_account is not None
    call = getattr(service.contract.functions, function)()
    gas = runtime.writer.simulate(runtime.service_account, call)
    state = runtime.writer.submit(runtime.service_account, call, gas, None, {"kind": function, "ids": []})
    assert runtime.writer.wait(state.id, 30).status == "mined"
    assert service.contract.functions.paused().call() is (function == "pause")


def write_on_chain(service: Service, signer: str, function: str, *args: Any) -> None:
    """Call a ledger function straight on the contract, signed by `signer` from the
    service's keystore, past the API's own checks: what any other client holding a
    charity's operator key can write (text the API would refuse, for one)."""
    runtime = service.runtime
    assert runtime.writer is not None
    call = encode(function, *args)
    gas = runtime.writer.simulate(signer, call)
    state = runtime.writer.submit(signer, call, gas, None, {"kind": function, "ids": []})
    assert runtime.writer.wait(state.id, 30).status == "mined"
