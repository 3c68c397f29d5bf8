"""The answer of GET /v1/contract."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ledger_api.core.answers import Answer


class Optimizer(Answer):
    enabled: bool
    runs: int


class Build(Answer):
    """How the artifact was compiled: enough to compile the sources again and compare."""

    language: str = "Solidity"
    compiler_version: str = Field(description="solc's version, e.g. 0.8.30.")
    compiler_build: str = Field(description="solc's full version, with its commit.")
    evm_version: str
    optimizer: Optimizer
    remappings: list[str]
    libraries: dict[str, Any] = Field(description="Linked libraries: none.")
    settings: dict[str, Any] = Field(description="The standard-JSON settings exactly as compiled.")
    source_name: str = Field(description="The source unit that defines the contract.")
    contract_name: str
    sources: dict[str, str] = Field(description="Each source unit compiled, with its file's SHA-256 (hex).")
    source_hash: str = Field(description="SHA-256 of the sorted JSON of `sources`.")
    creation_bytecode_sha256: str
    runtime_bytecode_sha256: str = Field(
        description="SHA-256 of the artifact's runtime code (immutables still zero)."
    )


class Immutable(Answer):
    name: str
    type: str
    value: str = Field(description="What the constructor wrote, as the 32-byte word (0x hex).")
    ranges: list[list[int]] = Field(description="[start, length] byte ranges of the deployed code it fills.")


class Immutables(Answer):
    deployed_code_differs: bool = Field(
        description="Whether the code at the address differs from the artifact's runtime code."
    )
    explanation: str
    values: list[Immutable]
    expected_code_keccak256: str = Field(
        description="keccak-256 of the runtime code with the immutables filled in: "
        "what `cast keccak $(cast code <address>)` prints."
    )


class ContractInfo(Answer):
    """Which chain and contract this service records on, and how to check it yourself."""

    chain_id: int
    network: str = Field(description="The chain's name (LEDGER_NETWORK_NAME, or named from the chain id).")
    embedded: bool = Field(description="Whether the chain runs inside this service (development).")
    address: str = Field(description="The ledger contract's address.")
    version: str = Field(description="The contract's interface version, as its version() returns.")
    deployment_block: int
    deployment_tx: str | None = Field(description="The deployment transaction's hash, if known.")
    rpc_url: str | None = Field(
        description="A public JSON-RPC URL of the chain (LEDGER_PUBLIC_RPC_URL, or on the embedded "
        "chain this service's read-only /rpc); null when none is published."
    )
    abi: list[dict[str, Any]]
    build: Build
    immutables: Immutables
