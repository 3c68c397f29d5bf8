"""Fixtures for the console: the real service over HTTP (SQLite, the embedded chain), two
charities with a key each, and a browser-like client that signs in with a form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.api.service import Service, serve, settings_for

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Staff:
    """A signed-in browser: its own cookie jar, and the CSRF token of its session."""

    client: httpx.Client
    csrf: str

    def post(self, path: str, data: dict[str, str] | None = None, **kwargs: object) -> httpx.Response:
        return self.client.post(path, data={"csrf": self.csrf, **(data or {})}, **kwargs)  # type: ignore[arg-type]


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found, html[:2000]
    return found.group(1)


def sign_in(service: Service, key: str, lang: str = "en") -> Staff:
    client = httpx.Client(base_url=service.base, timeout=60, headers={"Accept-Language": lang})
    form = client.get("/console/sign-in")
    assert form.status_code == 200, form.text
    answer = client.post("/console/sign-in", data={"csrf": csrf_of(form.text), "key": key})
    assert answer.status_code == 303, answer.text
    home = client.get(answer.headers["location"])
    assert home.status_code == 200, home.text
    return Staff(client, csrf_of(home.text))


@dataclass
class Ledger:
    service: Service
    charity: str
    key: str
    other_charity: str
    other_key: str


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    tmp = tmp_path_factory.mktemp("console")
    with serve(settings_for(tmp, None, f"sqlite:///{tmp / 'ledger.db'}")) as service:
        charity, key = service.charity("Sunrise Children Fund 朝阳儿童基金")
        other, other_key = service.charity("Another Fund")
        yield Ledger(service, charity, key, other, other_key)
