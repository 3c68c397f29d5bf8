"""The real service over HTTP, in this process: the same Runtime `ledger dev` builds
(chain, database, keystore, writer, background indexer), served by uvicorn on a free
loopback port in a thread, and an httpx client for it."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr
from web3.contract import Contract

from ledger_api.app import create_app
from ledger_api.chain.contract import ledger_contract
from ledger_api.core.config import Settings
from ledger_api.core.http import slow_client_protocol
from ledger_api.runtime import Runtime, dev_runtime
from tests.support.anvil import free_port

ADMIN_KEY = "test-admin-key-0123456789abcdefghijklmnopqrstuvwxyz"


@dataclass
class Service:
    base: str
    runtime: Runtime
    client: httpx.Client
    operators: dict[str, str] = field(default_factory=dict)  # charity id -> operator account

    @property
    def contract(self) -> Contract:
        """The ledger as a web3 contract object, to read the chain directly in tests (the
        service itself encodes with ledger_api.chain.abi)."""
        return ledger_contract(self.runtime.w3, self.runtime.deployment.address)

    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_KEY}"}

    def post(self, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.client.post(path, headers=headers, **kwargs)

    def get(self, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.client.get(path, headers=headers, **kwargs)

    # Shortcuts that set up records through the API itself.

    def charity(self, name: str = "Sunrise Children Fund") -> tuple[str, str]:
        """A new charity and a charity key for it: (charity id, key)."""
        created = self.post("/v1/charities", ADMIN_KEY, json={"name": name})
        assert created.status_code == 201, created.text
        charity_id = created.json()["id"]
        self.operators[charity_id] = created.json()["operator"]
        key = self.post("/v1/keys", ADMIN_KEY, json={"role": "charity", "charity_id": charity_id})
        assert key.status_code == 201, key.text
        return charity_id, key.json()["key"]

    def campaign(self, charity_id: str, key: str, currency: str = "CNY") -> str:
        created = self.post(
            "/v1/campaigns",
            key,
            json={"charity_id": charity_id, "name": "School meals", "currency": currency, "goal": 10**6},
        )
        assert created.status_code == 201, created.text
        return str(created.json()["id"])

    def donate(self, campaign_id: str, key: str, amount: int, donor: str = "donor") -> dict[str, Any]:
        created = self.post(
            "/v1/donations",
            key,
            json={"campaign_id": campaign_id, "amount": amount, "donor_reference": donor},
        )
        assert created.status_code == 201, created.text
        return dict(created.json())


def settings_for(tmp_path: Path, rpc_url: str | None, database_url: str, **extra: Any) -> Settings:
    return Settings(
        rpc_url=rpc_url,
        database_url=database_url,
        keystore_path=tmp_path / "keystore",
        evidence_path=tmp_path / "evidence",
        admin_key=SecretStr(ADMIN_KEY),
        confirmations=0,
        **extra,
    )


@contextmanager
def serve(settings: Settings, log_level: str = "warning") -> Iterator[Service]:
    """The service on a free port; `log_level` "info" turns on uvicorn's access log (one
    line per request, as `ledger dev` writes it)."""
    runtime = dev_runtime(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(runtime),
            host="127.0.0.1",
            port=port,
            log_level=log_level,
            http=slow_client_protocol(runtime.settings),
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service did not start")
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    with httpx.Client(base_url=base, timeout=60) as client:
        try:
            yield Service(base, runtime, client)
        finally:
            server.should_exit = True
            thread.join(20)
            runtime.engine.dispose()
