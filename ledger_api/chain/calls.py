"""Lean contract calls: calldata encoded with eth_abi from selectors and types computed
once per function, and view results decoded the same way.

web3's ContractFunction path looks the function up in the ABI, validates and re-encodes
on every call: about 5 ms here, more than the node takes to run the call. The write path
encodes a few thousand calls a second, so it uses these instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import function_signature_to_4byte_selector
from eth_utils.abi import collapse_if_tuple

from ledger_api.chain.contract import load_artifact


@dataclass(frozen=True)
class Call:
    """One call of a ledger contract function, encoded."""

    fn_name: str
    args: tuple[Any, ...]
    data: bytes


@cache
def _functions() -> dict[str, tuple[bytes, tuple[str, ...], tuple[str, ...]]]:
    table = {}
    for item in load_artifact()["abi"]:
        if item.get("type") != "function":
            continue
        inputs = tuple(collapse_if_tuple(i) for i in item["inputs"])
        outputs = tuple(collapse_if_tuple(o) for o in item.get("outputs", []))
        selector = function_signature_to_4byte_selector(f"{item['name']}({','.join(inputs)})")
        table[item["name"]] = (selector, inputs, outputs)
    return table


def encode(fn_name: str, *args: Any) -> Call:
    selector, inputs, _ = _functions()[fn_name]
    return Call(fn_name, args, selector + abi_encode(list(inputs), list(args)))


def decode_result(fn_name: str, data: bytes) -> tuple[Any, ...]:
    return tuple(abi_decode(list(_functions()[fn_name][2]), data))


def as_call(call: Any) -> Call:
    """A Call, from a Call or a web3 ContractFunction (for callers that have one)."""
    if isinstance(call, Call):
        return call
    return encode(call.fn_name, *call.args)
