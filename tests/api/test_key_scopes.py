"""Keys with scopes and lifetimes over HTTP: an auditor key limited to some charities sees
only theirs on every audit endpoint (others: 404, as if they did not exist); an expired
key gets 401 `key-expired` everywhere; rotation keeps both keys working for the grace
period, then only the new one; bad requests for keys are 422 and issue nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update

from ledger_api.core.models import ApiKey
from tests.api.checks import problem, wait_for_mirror
from tests.api.service import ADMIN_KEY, Service
from tests.console.conftest import csrf_of


def _issued(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    return dict(response.json())


def _expire(service: Service, key_id: str) -> None:
    """The key's expiry a minute ago, set in the database (no sleeping)."""
    with service.runtime.engine.begin() as connection:
        connection.execute(
            update(ApiKey)
            .where(ApiKey.id == key_id)
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )


def _key_count(service: Service) -> int:
    with service.runtime.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(ApiKey)).scalar_one())


@pytest.fixture
def two(embedded_service: Service) -> dict[str, Any]:
    """Charities A and B, each with a campaign and a donation, mirrored; a reconciliation
    of each, started by an unlimited auditor."""
    service = embedded_service
    a, a_key = service.charity("Charity A")
    b, b_key = service.charity("Charity B")
    a_campaign = service.campaign(a, a_key)
    b_campaign = service.campaign(b, b_key)
    service.donate(a_campaign, a_key, 1_000)
    service.donate(b_campaign, b_key, 2_000)
    wait_for_mirror(service)
    auditor = _issued(service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}))["key"]
    jobs = {}
    for name, charity in (("a", a), ("b", b)):
        started = service.post("/v1/audit/reconciliations", auditor, json={"charity_id": charity})
        assert started.status_code == 202, started.text
        jobs[name] = started.json()["id"]
    rows = {}  # an access-log row about each charity (the auditor's read of its trail)
    for name, charity in (("a", a), ("b", b)):
        assert service.get("/v1/audit/trail", auditor, params={"charity_id": charity}).status_code == 200
        logged = service.get("/v1/audit/access-log", ADMIN_KEY, params={"charity_id": charity})
        assert logged.status_code == 200, logged.text
        rows[name] = logged.json()["items"][-1]["seq"]
    return {
        "service": service,
        "a": a,
        "b": b,
        "a_key": a_key,
        "a_campaign": a_campaign,
        "b_campaign": b_campaign,
        "jobs": jobs,
        "rows": rows,
    }


def _audit_requests(
    charity: str | None, campaign: str | None, job: str, row: int
) -> list[tuple[str, str, dict[str, Any]]]:
    """Every audit endpoint, asked about `charity` (or `campaign`; the access log, which
    has no campaign filter, only about a charity or none), and reconciliation `job` and
    access-log `row` of that charity: (method, path, kwargs)."""
    params: dict[str, str] = {}
    if charity is not None:
        params["charity_id"] = charity
    if campaign is not None:
        params["campaign_id"] = campaign
    return [
        ("GET", "/v1/audit/trail", {"params": params}),
        ("GET", "/v1/audit/anomalies", {"params": params}),
        ("GET", "/v1/audit/export", {"params": {**params, "format": "csv"}}),
        ("GET", "/v1/audit/export", {"params": {**params, "format": "json"}}),
        ("GET", "/v1/audit/export", {"params": {**params, "format": "iati"}}),
        ("GET", "/v1/audit/reconciliations", {"params": params}),
        ("GET", "/v1/audit/reconciliation", {"params": params}),
        ("POST", "/v1/audit/reconciliations", {"json": params}),
        ("POST", "/v1/audit/reconciliations", {"params": params}),
        ("GET", f"/v1/audit/reconciliations/{job}", {}),
        ("GET", f"/v1/audit/access-log/{row}/proof", {}),
        *([("GET", "/v1/audit/access-log", {"params": params})] if campaign is None else []),
    ]


def _call(service: Service, key: str, method: str, path: str, kwargs: dict[str, Any]) -> httpx.Response:
    if method == "GET":
        return service.get(path, key, **kwargs)
    return service.post(path, key, **kwargs)


def test_a_limited_auditor_sees_only_its_charities(two: dict[str, Any]) -> None:
    service: Service = two["service"]
    limited = _issued(service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor", "charities": [two["a"]]}))
    assert limited["charities"] == [two["a"]] and limited["expires_at"] is None
    key = limited["key"]

    # Out of scope: B by charity, B by campaign, B's reconciliation: 404 on every endpoint.
    for asked in (
        _audit_requests(two["b"], None, two["jobs"]["b"], two["rows"]["b"]),
        _audit_requests(None, two["b_campaign"], two["jobs"]["b"], two["rows"]["b"]),
    ):
        for method, path, kwargs in asked:
            problem(_call(service, key, method, path, kwargs), 404, "not-found")

    # In scope: A by charity, by campaign, and with no filter (its one charity).
    for asked in (
        _audit_requests(two["a"], None, two["jobs"]["a"], two["rows"]["a"]),
        _audit_requests(None, two["a_campaign"], two["jobs"]["a"], two["rows"]["a"]),
        _audit_requests(None, None, two["jobs"]["a"], two["rows"]["a"]),
    ):
        for method, path, kwargs in asked:
            answer = _call(service, key, method, path, kwargs)
            assert answer.status_code in (200, 202), (method, path, kwargs, answer.text)
            assert two["b"] not in answer.text, (method, path)  # nothing of B's leaks in
    trail = service.get("/v1/audit/trail", key).json()
    assert trail["scope"]["charity_id"] == two["a"] and trail["items"]
    listed = {job["id"] for job in service.get("/v1/audit/reconciliations", key).json()["items"]}
    assert two["jobs"]["a"] in listed and two["jobs"]["b"] not in listed


def test_an_auditor_of_several_charities_names_one(two: dict[str, Any]) -> None:
    service: Service = two["service"]
    both = _issued(
        service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor", "charities": [two["a"], two["b"]]})
    )["key"]
    for method, path, kwargs in _audit_requests(None, None, two["jobs"]["a"], two["rows"]["a"]):
        answer = _call(service, both, method, path, kwargs)
        if path.endswith((two["jobs"]["a"], "/proof")):
            assert answer.status_code == 200, answer.text  # a job or a row names its charity already
            continue
        body = problem(answer, 422, "invalid-request")
        assert "name one with charity_id" in body["detail"] and two["a"] in body["detail"]
    for charity in (two["a"], two["b"]):
        assert service.get("/v1/audit/trail", both, params={"charity_id": charity}).status_code == 200
    listed = service.get("/v1/audit/reconciliations", both, params={"charity_id": two["b"]}).json()["items"]
    assert {job["id"] for job in listed} == {two["jobs"]["b"]}


def test_an_expired_key_gets_key_expired_on_every_audit_endpoint(two: dict[str, Any]) -> None:
    service: Service = two["service"]
    auditor = _issued(service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor", "expires_in_days": 30}))
    expires = datetime.fromisoformat(auditor["expires_at"])
    assert timedelta(days=29, hours=23) < expires - datetime.now(UTC) <= timedelta(days=30)
    for method, path, kwargs in _audit_requests(two["a"], None, two["jobs"]["a"], two["rows"]["a"]):
        assert _call(service, auditor["key"], method, path, kwargs).status_code in (200, 202)
    _expire(service, auditor["id"])
    for keyed in (auditor, {"key": two["a_key"], "id": two["a_key"].split("_")[1]}):
        _expire(service, keyed["id"])
        for method, path, kwargs in _audit_requests(two["a"], None, two["jobs"]["a"], two["rows"]["a"]):
            body = problem(_call(service, keyed["key"], method, path, kwargs), 401, "key-expired")
            assert body["detail"].startswith("this key expired at ") and body["expired_at"]
    # Unknown and revoked keys keep their answer.
    problem(service.get("/v1/audit/trail", "lk_nosuchkey000_" + "x" * 43), 401, "unauthenticated")
    revoked = _issued(service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}))
    assert service.client.delete(f"/v1/keys/{revoked['id']}", headers=service.admin()).status_code == 204
    problem(service.get("/v1/audit/trail", revoked["key"]), 401, "unauthenticated")


def test_rotation_keeps_both_keys_working_for_the_grace_period(two: dict[str, Any]) -> None:
    service: Service = two["service"]
    old = _issued(
        service.post(
            "/v1/keys", ADMIN_KEY, json={"role": "auditor", "charities": [two["a"]], "expires_in_days": 90}
        )
    )
    new = _issued(service.post(f"/v1/keys/{old['id']}/rotate", ADMIN_KEY, json={"grace_hours": 2}))
    assert new["id"] != old["id"] and new["key"] and new["rotated_from"] == old["id"]
    assert (new["role"], new["charities"]) == ("auditor", [two["a"]])
    grace_end = datetime.fromisoformat(new["previous_expires_at"])
    assert timedelta(hours=1, minutes=59) < grace_end - datetime.now(UTC) <= timedelta(hours=2)
    new_life = datetime.fromisoformat(new["expires_at"]) - datetime.now(UTC)
    assert timedelta(days=89) < new_life <= timedelta(days=90, seconds=2)  # the old key's lifetime
    for key in (old["key"], new["key"]):  # both work during the grace period, with the same scope
        assert service.get("/v1/audit/trail", key).json()["scope"]["charity_id"] == two["a"]
        problem(service.get("/v1/audit/trail", key, params={"charity_id": two["b"]}), 404, "not-found")
    # Rotating it again is refused: rotate its successor.
    problem(service.post(f"/v1/keys/{old['id']}/rotate", ADMIN_KEY), 409, "conflict")
    _expire(service, old["id"])  # the grace period is over
    problem(service.get("/v1/audit/trail", old["key"]), 401, "key-expired")
    assert service.get("/v1/audit/trail", new["key"]).status_code == 200
    problem(service.post(f"/v1/keys/{old['id']}/rotate", ADMIN_KEY), 409, "conflict")  # expired


def test_a_charity_key_rotates_itself_and_only_itself(two: dict[str, Any]) -> None:
    service: Service = two["service"]
    b_key = _issued(service.post("/v1/keys", ADMIN_KEY, json={"role": "charity", "charity_id": two["b"]}))
    own_id = two["a_key"].split("_")[1]
    problem(service.post(f"/v1/keys/{b_key['id']}/rotate", two["a_key"]), 404, "not-found")
    auditor = _issued(service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}))
    problem(service.post(f"/v1/keys/{auditor['id']}/rotate", auditor["key"]), 403, "forbidden")
    problem(service.post(f"/v1/keys/{own_id}/rotate", None), 401, "unauthenticated")
    new = _issued(service.post(f"/v1/keys/{own_id}/rotate", two["a_key"]))  # default grace: 24 h
    assert (new["role"], new["charity_id"], new["expires_at"]) == ("charity", two["a"], None)
    grace_end = datetime.fromisoformat(new["previous_expires_at"])
    assert timedelta(hours=23, minutes=59) < grace_end - datetime.now(UTC) <= timedelta(hours=24)
    # The new key writes for the charity; the old one still does during the grace period.
    for key in (new["key"], two["a_key"]):
        assert service.get("/v1/audit/trail", key).status_code == 200
    problem(service.post("/v1/keys/nosuchkey000/rotate", ADMIN_KEY), 404, "not-found")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"role": "auditor", "expires_at": "2020-01-01T00:00:00Z"}, "past"),
        ({"role": "auditor", "expires_at": "2999-01-01T00:00:00Z"}, "days away"),
        ({"role": "auditor", "expires_at": "2030-01-01T00:00:00"}, "timezone"),
        ({"role": "auditor", "expires_in_days": 0}, "greater than or equal"),
        ({"role": "auditor", "expires_in_days": 4000}, "less than or equal"),
        ({"role": "auditor", "expires_in_days": 3, "expires_at": "2030-01-01T00:00:00Z"}, "not both"),
        ({"role": "charity", "charity_id": "CH-A", "charities": ["CH-A"]}, "only an auditor"),
        ({"role": "auditor", "charities": ["0x" + "ee" * 32]}, "no such charity"),
        ({"role": "auditor", "charities": []}, "at least 1"),
        ({"role": "auditor", "charities": ["not an id"]}, ""),
    ],
)
def test_bad_key_requests_are_422_and_issue_nothing(
    embedded_service: Service, body: dict[str, Any], says: str
) -> None:
    service = embedded_service
    charity, _ = service.charity("Charity A")
    body = {**body, **({"charity_id": charity} if "charity_id" in body else {})}
    body = {**body, **({"charities": [charity]} if body.get("charities") == ["CH-A"] else {})}
    before = _key_count(service)
    answer = problem(service.post("/v1/keys", ADMIN_KEY, json=body), 422, "invalid-request")
    assert says in str(answer)
    assert _key_count(service) == before


def test_bad_rotations_are_refused(embedded_service: Service) -> None:
    service = embedded_service
    auditor = _issued(service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor"}))
    for body in ({"grace_hours": -1}, {"grace_hours": 169}, {"expires_at": "2020-01-01T00:00:00Z"}):
        problem(
            service.post(f"/v1/keys/{auditor['id']}/rotate", ADMIN_KEY, json=body), 422, "invalid-request"
        )
    assert service.client.delete(f"/v1/keys/{auditor['id']}", headers=service.admin()).status_code == 204
    problem(service.post(f"/v1/keys/{auditor['id']}/rotate", ADMIN_KEY), 409, "conflict")


def test_the_console_says_when_a_key_has_expired(embedded_service: Service) -> None:
    service = embedded_service
    _, key = service.charity("Charity A")
    _expire(service, key.split("_")[1])
    for language, said in (("en", "This key has expired"), ("zh-CN", "此密钥已过期")):
        client = httpx.Client(base_url=service.base, headers={"Accept-Language": language}, timeout=60)
        with client:
            form = client.get("/console/sign-in")
            refused = client.post("/console/sign-in", data={"csrf": csrf_of(form.text), "key": key})
        assert refused.status_code == 401 and said in refused.text, refused.text
        assert key not in refused.text


@pytest.mark.anvil
def test_scopes_expiry_and_rotation_on_each_database(service: Service) -> None:
    """The same rules on anvil with SQLite and with PostgreSQL (times and JSON lists as
    each database keeps them)."""
    a, _ = service.charity("Charity A")
    b, _ = service.charity("Charity B")
    wait_for_mirror(service)
    old = _issued(
        service.post("/v1/keys", ADMIN_KEY, json={"role": "auditor", "charities": [a], "expires_in_days": 7})
    )
    assert service.get("/v1/audit/trail", old["key"]).json()["scope"]["charity_id"] == a
    problem(service.get("/v1/audit/trail", old["key"], params={"charity_id": b}), 404, "not-found")
    new = _issued(service.post(f"/v1/keys/{old['id']}/rotate", ADMIN_KEY))
    assert new["charities"] == [a] and service.get("/v1/audit/trail", old["key"]).status_code == 200
    problem(service.post(f"/v1/keys/{old['id']}/rotate", ADMIN_KEY), 409, "conflict")
    _expire(service, old["id"])
    problem(service.get("/v1/audit/trail", old["key"]), 401, "key-expired")
    assert service.get("/v1/audit/trail", new["key"], params={"charity_id": a}).status_code == 200
    problem(
        service.get("/v1/audit/export", new["key"], params={"charity_id": b, "format": "csv"}),
        404,
        "not-found",
    )
