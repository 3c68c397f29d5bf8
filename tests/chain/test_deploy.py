"""deploy_ledger, the one deployment path: from an account the node holds (dev chains and
the tests) or signed with a key from the keystore (`ledger deploy`)."""

from __future__ import annotations

from pathlib import Path

from eth_utils import keccak
from pydantic import SecretStr
from web3 import Web3
from web3.types import Wei

from ledger_api.chain.contract import deploy_ledger, ledger_contract
from ledger_api.chain.keystore import Keystore

REGISTRAR_ROLE = keccak(text="REGISTRAR_ROLE")


def test_a_keystore_account_deploys_and_administers_the_ledger(w3: Web3, tmp_path: Path) -> None:
    keystore = Keystore(tmp_path / "keys", SecretStr("test-passphrase"), fast_kdf=True)
    account = keystore.create("service")
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": account, "value": Wei(10**18)})
    )
    deployment = deploy_ledger(w3, account, keystore=keystore)
    assert w3.eth.get_code(Web3.to_checksum_address(deployment.address))
    sent = w3.eth.get_transaction(deployment.tx_hash)  # type: ignore[arg-type]
    assert (sent["from"], sent["blockNumber"]) == (account, deployment.block_number)
    contract = ledger_contract(w3, deployment.address)
    assert contract.functions.hasRole(REGISTRAR_ROLE, account).call()
    assert contract.functions.deploymentBlock().call() == deployment.block_number


def test_a_node_account_deploys_for_another_admin(w3: Web3) -> None:
    deployer, admin = w3.eth.accounts[0], w3.eth.accounts[5]
    deployment = deploy_ledger(w3, deployer, admin=admin)
    contract = ledger_contract(w3, deployment.address)
    assert contract.functions.hasRole(REGISTRAR_ROLE, admin).call()
    assert not contract.functions.hasRole(REGISTRAR_ROLE, deployer).call()
    assert deployment.chain_id == w3.eth.chain_id
