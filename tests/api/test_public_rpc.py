"""GET /v1/contract and the embedded chain's read-only JSON-RPC (POST /rpc), used as a
stranger would: web3.py's HTTPProvider against the running service."""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_bloom import BloomFilter
from eth_utils import keccak
from eth_utils.abi import collapse_if_tuple
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError

from ledger_api.chain.abi import decode_contract_error, encode, load_artifact
from ledger_api.chain.rpc_server import MAX_BATCH, MAX_LOG_BLOCKS
from ledger_api.core import ids
from ledger_api.core.hexes import unhex
from ledger_api.core.limits import JSON_BODY
from tests.api.checks import wait_for_mirror
from tests.api.service import Service, serve, settings_for
from tests.conftest import unavailable

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, dict[str, Any]]]:
    """The service on the embedded chain, with one recorded donation."""
    tmp = tmp_path_factory.mktemp("rpc")
    with serve(settings_for(tmp, None, f"sqlite:///{tmp / 'ledger.db'}")) as service:
        charity, key = service.charity()
        campaign = service.campaign(charity, key)
        donation = service.donate(campaign, key, 12_345)
        wait_for_mirror(service)
        yield service, donation


def rpc(service: Service, body: Any) -> Any:
    answer = service.client.post("/rpc", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def state(service: Service) -> tuple[int, str]:
    """The chain's head and its hash: unchanged means nothing was mined."""
    block = service.runtime.w3.eth.get_block("latest")
    return block["number"], block["hash"].hex()


def test_web3_reads_the_embedded_chain_over_http_as_the_service_sees_it(
    embedded: tuple[Service, dict[str, Any]],
) -> None:
    service, donation = embedded
    remote = Web3(HTTPProvider(f"{service.base}/rpc"))
    local = service.runtime.w3
    assert remote.eth.chain_id == local.eth.chain_id
    assert remote.eth.block_number == local.eth.block_number
    tx_hash = donation["transaction"]["tx_hash"]
    remote_receipt, local_receipt = (w3.eth.get_transaction_receipt(tx_hash) for w3 in (remote, local))
    for field in ("blockHash", "blockNumber", "from", "to", "gasUsed", "status", "transactionIndex"):
        assert remote_receipt[field] == local_receipt[field], field
    assert remote.eth.get_transaction(tx_hash)["input"] == local.eth.get_transaction(tx_hash)["input"]
    assert remote.eth.get_block(local_receipt["blockNumber"])["hash"] == local_receipt["blockHash"]
    # The donation's event, found by its indexed donation ID as a verifier would.
    address = service.runtime.deployment.address
    query = {
        "fromBlock": service.runtime.deployment.block_number,
        "toBlock": "latest",
        "address": address,
        "topics": [None, Web3.to_hex(ids.to_bytes32(donation["id"]))],
    }
    remote_logs, local_logs = remote.eth.get_logs(query), local.eth.get_logs(query)  # type: ignore[arg-type]
    assert len(remote_logs) == len(local_logs) == 1
    fields = ("address", "topics", "data", "blockNumber", "blockHash", "transactionHash", "logIndex")
    assert [{f: log[f] for f in fields} for log in remote_logs] == [
        {f: log[f] for f in fields} for log in local_logs
    ]
    assert remote_logs[0]["transactionHash"] == local_receipt["transactionHash"]
    # A view call at the node: the contract's own record of the donation.
    ledger = remote.eth.contract(address=address, abi=load_artifact()["abi"])
    recorded = ledger.functions.donationOf(ids.to_bytes32(donation["id"])).call()
    assert 12_345 in recorded
    assert remote.eth.get_code(address) == local.eth.get_code(address)
    # The receipt's bloom (eth-tester's receipts have none; py-evm keeps it) holds its logs.
    bloom = BloomFilter(int.from_bytes(remote_receipt["logsBloom"], "big"))
    assert all(
        bytes(entry["address"] if isinstance(entry["address"], bytes) else unhex(entry["address"])) in bloom
        and all(bytes(topic) in bloom for topic in entry["topics"])
        for entry in remote_receipt["logs"]
    )
    assert bytes(32) not in bloom or len(remote_receipt["logs"]) > 3


@pytest.mark.parametrize(
    "method, params",
    [
        ("eth_sendRawTransaction", ["0x02f86b"]),
        ("eth_sendTransaction", [{"to": "0x" + "11" * 20, "value": "0x1"}]),
        ("evm_mine", []),
        ("evm_revert", ["0x1"]),
        ("personal_unlockAccount", ["0x" + "11" * 20, "", 0]),
        ("eth_accounts", []),
        ("eth_sign", ["0x" + "11" * 20, "0x00"]),
    ],
)
def test_write_and_account_methods_are_refused(
    embedded: tuple[Service, dict[str, Any]], method: str, params: list[Any]
) -> None:
    service, _ = embedded
    before = state(service)
    answer = rpc(service, {"jsonrpc": "2.0", "id": 7, "method": method, "params": params})
    assert answer == {
        "jsonrpc": "2.0",
        "id": 7,
        "error": {"code": -32601, "message": "method not available (read-only)"},
    }
    assert state(service) == before


def test_oversized_requests_are_refused_with_json_rpc_errors_and_change_nothing(
    embedded: tuple[Service, dict[str, Any]],
) -> None:
    service, _ = embedded
    before = state(service)
    call = {"jsonrpc": "2.0", "method": "eth_blockNumber", "params": []}
    batch = rpc(service, [{**call, "id": n} for n in range(MAX_BATCH + 1)])
    assert batch["error"]["code"] == -32600 and str(MAX_BATCH) in batch["error"]["message"]
    assert len(rpc(service, [{**call, "id": n} for n in range(MAX_BATCH)])) == MAX_BATCH
    big = service.client.post("/rpc", json={**call, "id": 1, "pad": "x" * JSON_BODY})
    assert big.status_code == 200 and big.json()["error"]["code"] == -32600, big.text
    deep: Any = [0]
    for _ in range(40):
        deep = [deep]
    nested = rpc(service, {**call, "id": 1, "params": deep})
    assert nested["error"]["code"] == -32600, nested
    wide = rpc(
        service,
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "eth_getLogs",
            "params": [{"fromBlock": "0x0", "toBlock": hex(MAX_LOG_BLOCKS)}],
        },
    )
    assert wide["error"]["code"] == -32005 and "10,000" in wide["error"]["message"], wide
    # Within bounds, one by one; together past them.
    half = {"fromBlock": "0x0", "toBlock": hex(MAX_LOG_BLOCKS // 2 - 1)}
    split = rpc(
        service, [{"jsonrpc": "2.0", "id": n, "method": "eth_getLogs", "params": [half]} for n in range(3)]
    )
    assert "result" in split[0] and "result" in split[1] and split[2]["error"]["code"] == -32005, split
    assert state(service) == before


@pytest.mark.parametrize(
    "body, code",
    [
        (b"{not json", -32700),
        (b"[]", -32600),
        (b'"eth_chainId"', -32600),
        (b'{"jsonrpc": "1.0", "id": 1, "method": "eth_chainId"}', -32600),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": {"a": 1}}', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["zzz", false]}', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs", "params": [{"topics": [["0x12"]]}]}', -32602),
        (
            b'{"jsonrpc": "2.0", "id": 1, "method": "eth_call", '
            b'"params": [{"data": "0x", "gas": "0xffffffff"}]}',
            -32602,
        ),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_getCode", "params": ["0x12", "latest"]}', -32602),
    ],
)
def test_malformed_calls_get_json_rpc_errors_never_a_500(
    embedded: tuple[Service, dict[str, Any]], body: bytes, code: int
) -> None:
    service, _ = embedded
    answer = service.client.post("/rpc", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["error"]["code"] == code, answer.text


def test_a_reverting_call_answers_the_contract_error(embedded: tuple[Service, dict[str, Any]]) -> None:
    """A call the contract refuses answers as nodes do (code 3, the revert data), so that
    cast and web3 name the custom error; and mines nothing."""
    service, _ = embedded
    before = state(service)
    stranger = service.runtime.w3.eth.accounts[1]  # funded, without any role
    call = encode("registerCharity", ids.to_bytes32(ids.new("charity")), "Forged", bytes(32))
    answer = rpc(
        service,
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "eth_call",
            "params": [
                {"from": stranger, "to": service.runtime.deployment.address, "data": "0x" + call.data.hex()}
            ],
        },
    )
    assert answer["error"]["code"] == 3, answer
    decoded = decode_contract_error(answer["error"]["data"])
    assert decoded is not None and decoded.name == "AccessControlUnauthorizedAccount", answer
    remote = Web3(HTTPProvider(f"{service.base}/rpc"))
    with pytest.raises(ContractLogicError):
        remote.eth.call({"from": stranger, "to": service.runtime.deployment.address, "data": call.data})  # type: ignore[typeddict-item]
    assert state(service) == before


def test_contract_describes_the_deployment_and_its_build(embedded: tuple[Service, dict[str, Any]]) -> None:
    service, _ = embedded
    answer = service.get("/v1/contract")
    assert answer.status_code == 200, answer.text
    info = answer.json()
    deployment = service.runtime.deployment
    assert info["chain_id"] == deployment.chain_id
    assert info["network"] == "embedded eth-tester chain"
    assert info["address"] == deployment.address
    assert info["deployment_block"] == deployment.block_number
    assert info["deployment_tx"] == deployment.tx_hash
    assert info["rpc_url"] == f"{service.base}/rpc"
    assert info["abi"] == load_artifact()["abi"]
    build = info["build"]
    assert (build["compiler_version"], build["evm_version"]) == ("0.8.30", "cancun")
    assert build["optimizer"] == {"enabled": True, "runs": 200}
    assert build["remappings"] == ["@openzeppelin/=node_modules/@openzeppelin/"]
    for unit, digest in build["sources"].items():
        assert hashlib.sha256((ROOT / unit).read_bytes()).hexdigest() == digest, unit
    # The code at the address is the artifact's runtime code with the immutable filled in.
    code = bytes(service.runtime.w3.eth.get_code(deployment.address))
    assert "0x" + keccak(code).hex() == info["immutables"]["expected_code_keccak256"]
    assert info["immutables"]["deployed_code_differs"] is True
    assert (
        info["version"]
        == "2.4.0"
        == service.runtime.w3.eth.contract(address=deployment.address, abi=load_artifact()["abi"])
        .functions.version()
        .call()
    )
    values = {immutable["name"]: immutable["value"] for immutable in info["immutables"]["values"]}
    assert int(values["_deploymentBlock"], 16) == deployment.block_number
    # The signed calls' EIP-712 domain and trusted forwarder (the ledger itself).
    assert int(values["_cachedChainId"], 16) == deployment.chain_id
    assert (
        values["_trustedForwarder"]
        == values["_cachedThis"]
        == "0x" + "00" * 12 + deployment.address[2:].lower()
    )
    assert set(values) == {
        "_deploymentBlock",
        "_trustedForwarder",
        "_cachedThis",
        "_cachedChainId",
        "_cachedDomainSeparator",
        "_hashedName",
        "_hashedVersion",
        "_name",
        "_version",
    }


def test_contract_names_the_configured_network_and_rpc_url(tmp_path: Path) -> None:
    settings = settings_for(
        tmp_path,
        None,
        f"sqlite:///{tmp_path / 'ledger.db'}",
        network_name="Charities test chain",
        public_rpc_url="https://rpc.example.org/ledger",
        run_indexer=False,
    )
    with serve(settings) as service:
        info = service.get("/v1/contract").json()
        assert (info["network"], info["rpc_url"]) == (
            "Charities test chain",
            "https://rpc.example.org/ledger",
        )


@pytest.mark.anvil
def test_rpc_is_not_served_against_a_node(service: Service) -> None:
    answer = service.client.post("/rpc", json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId"})
    assert answer.status_code == 404
    info = service.get("/v1/contract").json()
    assert (info["network"], info["rpc_url"], info["embedded"]) == ("anvil (local)", None, False)


def test_public_rpc_url_must_be_http(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        settings_for(tmp_path, None, "sqlite://", public_rpc_url="javascript:alert(1)")


@pytest.mark.parametrize("lang, words", [("en", "JSON-RPC, for your own checks"), ("zh-CN", "JSON-RPC 地址")])
def test_pages_name_the_chain_and_its_rpc_url(
    embedded: tuple[Service, dict[str, Any]], lang: str, words: str
) -> None:
    service, donation = embedded
    for path in ("/", f"/donations/{donation['id']}"):
        page = service.get(path, params={"lang": lang})
        assert page.status_code == 200
        assert words in page.text
        assert f"{service.base}/rpc" in page.text
        assert service.runtime.deployment.address in page.text
        assert str(service.runtime.deployment.chain_id) in page.text


CAST = ROOT / "node_modules" / ".bin" / "cast"


def cast(*args: str) -> str:
    if not CAST.exists():
        unavailable(f"cast not found at {CAST}: run `npm ci`")
    done = subprocess.run([str(CAST), *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_cast_reads_the_embedded_chain(embedded: tuple[Service, dict[str, Any]]) -> None:
    """Foundry's cast, run as the pages tell a stranger to, prints what the chain holds."""
    service, donation = embedded
    url = f"{service.base}/rpc"
    w3 = service.runtime.w3
    assert cast("chain-id", "--rpc-url", url) == str(w3.eth.chain_id)
    assert cast("block-number", "--rpc-url", url) == str(w3.eth.block_number)
    donation_id = Web3.to_hex(ids.to_bytes32(donation["id"]))
    address = service.runtime.deployment.address
    signature = next(
        f"donationOf(bytes32)({','.join(collapse_if_tuple(o) for o in item['outputs'])})"
        for item in load_artifact()["abi"]
        if item.get("name") == "donationOf"
    )
    printed = cast("call", address, signature, donation_id, "--rpc-url", url)
    expected = service.contract.functions.donationOf(ids.to_bytes32(donation["id"])).call()
    shown = [Web3.to_hex(v) if isinstance(v, bytes) else str(v) for v in expected]
    # cast adds a scientific reading to large numbers: "12345 [1.234e4]".
    assert re.sub(r" \[[^]]*\]", "", printed) == "(" + ", ".join(shown) + ")", (printed, shown)
    assert "12345" in shown
    receipt = cast("receipt", donation["transaction"]["tx_hash"], "status", "--rpc-url", url)
    assert receipt in ("true", "1 (success)"), receipt
    logs = cast(
        "logs",
        "--from-block",
        str(service.runtime.deployment.block_number),
        "--address",
        address,
        "--rpc-url",
        url,
        "--json",
    )
    assert donation_id[2:] in logs
