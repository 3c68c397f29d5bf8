"""GET /v1/contract's answer, read from the committed artifact (chain/abi.py
`load_artifact`, written by chain/build.py) and the deployment the service works with."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from functools import cache
from typing import Any

from eth_utils import keccak

from ledger_api.chain.abi import load_artifact
from ledger_api.chain.contract import Deployment
from ledger_api.chain.signed_calls import DOMAIN_NAME, DOMAIN_VERSION, domain_separator
from ledger_api.core.config import Settings
from ledger_api.core.hexes import hex0x, unhex
from ledger_api.core.networks import network_name
from ledger_api.deployment.schemas import Build, ContractInfo, Immutable, Immutables, Optimizer

RPC_PATH = "/rpc"


def _address_word(address: str) -> bytes:
    return unhex(address).rjust(32, b"\0")


def _short_string(text: str) -> bytes:
    """OpenZeppelin's ShortString: the UTF-8 bytes left-aligned, their length in the last byte."""
    raw = text.encode()
    return raw.ljust(31, b"\0") + bytes([len(raw)])


# What the constructor writes into each immutable (as its 32-byte word), from facts of the
# deployment: the deployment block, and the EIP-712 domain (OpenZeppelin's EIP712) and
# trusted forwarder (ERC2771Context: the ledger itself) of the signed calls.
IMMUTABLE_VALUES: dict[str, Callable[[Deployment], bytes]] = {
    "_deploymentBlock": lambda deployment: deployment.block_number.to_bytes(32, "big"),
    "_trustedForwarder": lambda deployment: _address_word(deployment.address),
    "_cachedThis": lambda deployment: _address_word(deployment.address),
    "_cachedChainId": lambda deployment: deployment.chain_id.to_bytes(32, "big"),
    "_cachedDomainSeparator": lambda deployment: domain_separator(deployment.chain_id, deployment.address),
    "_hashedName": lambda deployment: keccak(text=DOMAIN_NAME),
    "_hashedVersion": lambda deployment: keccak(text=DOMAIN_VERSION),
    "_name": lambda deployment: _short_string(DOMAIN_NAME),
    "_version": lambda deployment: _short_string(DOMAIN_VERSION),
}

EXPLANATION = (
    "The code at the address is the artifact's runtime code (deployedBytecode) with each "
    "immutable filled in: solc leaves zeros at the byte ranges listed here, and the constructor "
    "writes the value there when it deploys: _deploymentBlock is the block it was deployed in; "
    "_trustedForwarder and _cachedThis are the contract's own address (it relays signed calls to "
    "itself); _cachedChainId, _cachedDomainSeparator, _hashedName, _hashedVersion, _name and _version "
    "are its EIP-712 domain (name CharityLedger, version 2, the chain id and the address). "
    "To check: compile the sources with these settings, fill each range with its value, and "
    "compare with eth_getCode at the address; or compare keccak-256 of "
    "eth_getCode with expected_code_keccak256."
)


def rpc_url(settings: Settings, base_url: str) -> str | None:
    """The JSON-RPC URL the public may use: LEDGER_PUBLIC_RPC_URL; else, on the embedded
    chain, this service's /rpc (at LEDGER_PUBLIC_URL, or `base_url`, the request's own
    address, in development); else none."""
    if settings.public_rpc_url:
        return settings.public_rpc_url
    if settings.embedded_chain:
        base = settings.public_url or base_url
        return base.rstrip("/") + RPC_PATH
    return None


def network(settings: Settings, deployment: Deployment) -> str:
    return network_name(deployment.chain_id, settings.embedded_chain, settings.network_name)


@cache
def _build() -> Build:
    artifact = load_artifact()
    settings = artifact["compiler"]["settings"]
    return Build(
        compiler_version=artifact["compiler"]["version"],
        compiler_build=artifact["compiler"]["build"],
        evm_version=settings["evmVersion"],
        optimizer=Optimizer(**settings["optimizer"]),
        remappings=list(settings.get("remappings", [])),
        libraries=dict(settings.get("libraries", {})),
        settings=settings,
        source_name=artifact["sourceName"],
        contract_name=artifact["contractName"],
        sources=artifact["sources"],
        source_hash=artifact["sourceHash"],
        creation_bytecode_sha256=hashlib.sha256(unhex(artifact["bytecode"])).hexdigest(),
        runtime_bytecode_sha256=hashlib.sha256(unhex(artifact["deployedBytecode"])).hexdigest(),
    )


def expected_code(deployment: Deployment) -> tuple[bytes, list[Immutable]]:
    """The code the deployment should have: the artifact's runtime code with its immutables
    filled in, and those immutables."""
    artifact = load_artifact()
    code = bytearray(unhex(artifact["deployedBytecode"]))
    values = []
    for immutable in artifact.get("immutables", []):
        word = IMMUTABLE_VALUES[immutable["name"]](deployment)
        for start, length in immutable["ranges"]:
            code[start : start + length] = word[32 - length :]
        values.append(
            Immutable(
                name=immutable["name"], type=immutable["type"], value=hex0x(word), ranges=immutable["ranges"]
            )
        )
    return bytes(code), values


def contract_info(settings: Settings, deployment: Deployment, base_url: str) -> ContractInfo:
    code, values = expected_code(deployment)
    abi: list[dict[str, Any]] = load_artifact()["abi"]
    return ContractInfo(
        chain_id=deployment.chain_id,
        network=network(settings, deployment),
        embedded=settings.embedded_chain,
        address=deployment.address,
        deployment_block=deployment.block_number,
        deployment_tx=deployment.tx_hash or None,
        rpc_url=rpc_url(settings, base_url),
        version=load_artifact()["version"],
        abi=abi,
        build=_build(),
        immutables=Immutables(
            deployed_code_differs=code != unhex(load_artifact()["deployedBytecode"]),
            explanation=EXPLANATION,
            values=values,
            expected_code_keccak256=hex0x(keccak(code)),
        ),
    )
