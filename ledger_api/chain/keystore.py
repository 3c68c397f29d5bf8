"""The accounts the service signs with, in an encrypted keystore: one eth-account
keystore file (scrypt + AES-128-CTR) per account in a directory, unlocked with the
passphrase from LEDGER_KEYSTORE_PASSPHRASE. Decrypted keys stay in memory only, inside
eth-account's LocalAccount, and are never logged or returned: this module hands out
signing functions and addresses, not keys."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from pydantic import SecretStr

SERVICE_ACCOUNT = "service"  # the registrar/admin account that registers charities


class KeystoreError(RuntimeError):
    pass


class Keystore:
    def __init__(self, path: Path, passphrase: SecretStr, fast_kdf: bool = False) -> None:
        self.path = path
        self._passphrase = passphrase
        # Development keystores use scrypt with a lower work factor so that `ledger dev`
        # and the tests start in seconds; production keeps eth-account's default.
        self._kdf: dict[str, Any] = {"kdf": "scrypt", "iterations": 2**12} if fast_kdf else {}
        self._accounts: dict[str, LocalAccount] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the passphrase
        return f"Keystore({str(self.path)!r}, {len(self._accounts)} unlocked)"

    def _file(self, address: str) -> Path:
        return self.path / f"{to_checksum_address(address)}.json"

    def create(self, label: str = "") -> str:
        """A new account, written encrypted; returns its address."""
        account: LocalAccount = Account.create()
        encrypted = Account.encrypt(account.key, self._passphrase.get_secret_value(), **self._kdf)
        encrypted["label"] = label
        self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = self._file(account.address)
        temporary = target.with_suffix(".tmp")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(encrypted, handle)
        temporary.replace(target)
        with self._lock:
            self._accounts[account.address] = account
        return str(account.address)

    def account(self, address: str) -> LocalAccount:
        address = to_checksum_address(address)
        with self._lock:
            if address in self._accounts:
                return self._accounts[address]
        try:
            encrypted = json.loads(self._file(address).read_text())
        except FileNotFoundError:
            raise KeystoreError(f"no key for {address} in the keystore at {self.path}") from None
        try:
            key = Account.decrypt(encrypted, self._passphrase.get_secret_value())
        except ValueError:
            raise KeystoreError(f"the keystore passphrase does not unlock {address}") from None
        account: LocalAccount = Account.from_key(key)
        with self._lock:
            self._accounts[address] = account
        return account

    def sign_transaction(self, address: str, transaction: dict[str, Any]) -> tuple[bytes, bytes]:
        """(raw signed transaction, its hash)."""
        signed = self.account(address).sign_transaction(transaction)
        return bytes(signed.raw_transaction), bytes(signed.hash)

    def addresses(self) -> list[str]:
        if not self.path.exists():
            return []
        return sorted(p.stem for p in self.path.glob("0x*.json"))

    def label_of(self, address: str) -> str:
        return str(json.loads(self._file(address).read_text()).get("label", ""))

    def find(self, label: str) -> str | None:
        for address in self.addresses():
            if self.label_of(address) == label:
                return address
        return None
