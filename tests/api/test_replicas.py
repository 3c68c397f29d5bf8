"""Public reads on PostgreSQL streaming replicas (LEDGER_READ_DATABASE_URLS), against a
real standby: reads go to it while it keeps up; when replication stops they fall back to
the primary; a write's 201 is readable at once, in this process (the write fence) and in
another (a 404 on the replica is asked again of the primary); a standby that is gone is
skipped, never a 500. Which database answered is seen by counting the statements each
engine runs (an SQLAlchemy event on the real engines)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, event, text

from ledger_api.core import ids
from ledger_api.mirror.replicas import Replicas
from tests.api.service import Service, serve, settings_for
from tests.support.standby import StreamingPair, streaming_pair

pytestmark = [pytest.mark.anvil, pytest.mark.postgres]


@pytest.fixture(scope="module")
def pair() -> Iterator[StreamingPair]:
    with streaming_pair() as started:
        yield started


@pytest.fixture
def replicated(anvil: Any, pair: StreamingPair, tmp_path: Path) -> Iterator[Service]:
    """The service on the pair's primary, with its standby as the read replica."""
    name = f"ledger_{tmp_path.name[-20:].replace('-', '_')}".lower()
    admin = create_engine(pair.primary_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    settings = settings_for(
        tmp_path,
        anvil.url,
        pair.primary_url(name),
        read_database_urls=[pair.standby_url(name)],
        replica_poll_seconds=0.1,
        replica_max_lag_blocks=0,
    )
    try:
        with serve(settings) as running:
            yield running
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def replicas_of(service: Service) -> Replicas:
    assert service.runtime.replicas is not None
    return service.runtime.replicas


def statements(engine: Engine) -> Callable[[], int]:
    """How many statements the engine has run since this call for the requests (the lag
    measurements, on their own thread, are not counted)."""
    count = [0]

    def counted(*_: Any) -> None:
        if threading.current_thread().name != "replica-lag":
            count[0] += 1

    event.listen(engine, "before_cursor_execute", counted)
    return lambda: count[0]


def until(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def caught_up(replicas: Replicas) -> bool:
    return replicas.choose() is not replicas.primary


def test_reads_use_the_replica_and_fall_back_to_the_primary_when_replication_stops(
    replicated: Service, pair: StreamingPair
) -> None:
    replicas = replicas_of(replicated)
    on_replica = statements(replicas.engines[0])
    charity_id, key = replicated.charity()
    campaign_id = replicated.campaign(charity_id, key)
    until(lambda: caught_up(replicas), "the standby has replayed the campaign")
    before = on_replica()
    assert replicated.get(f"/v1/campaigns/{campaign_id}").status_code == 200
    assert on_replica() > before, "a caught-up replica answers the public read"

    pair.standby_sql("SELECT pg_wal_replay_pause()")
    try:
        donation = replicated.donate(campaign_id, key, 700)
        # The write's 201 is readable at once: this process fenced the replica.
        before = on_replica()
        traced = replicated.get(f"/v1/donations/{donation['id']}")
        assert traced.status_code == 200, traced.text
        assert replicated.get(f"/v1/campaigns/{campaign_id}").json()["received"] == 700
        assert on_replica() == before, "a replica without the write is not asked"
        # Another process has not fenced it, but the lag bound (0 blocks) still skips it:
        # the poller sees it behind the primary's mirror.
        replicas.fence = -1
        time.sleep(3 * replicas.poll_seconds)
        assert not caught_up(replicas)
        assert replicated.get(f"/v1/donations/{donation['id']}").status_code == 200
        assert on_replica() == before
    finally:
        pair.standby_sql("SELECT pg_wal_replay_resume()")
    until(lambda: caught_up(replicas), "the standby has replayed the donation")
    assert replicated.get(f"/v1/donations/{donation['id']}").json()["amount"] == 700
    assert on_replica() > before


def test_a_record_the_replica_lacks_is_read_from_the_primary(
    replicated: Service, pair: StreamingPair
) -> None:
    """As another worker process sees a write answered elsewhere: no fence, and a lag
    within the bound, so the replica is asked first; its 404 is asked again of the
    primary."""
    replicas = replicas_of(replicated)
    replicas.max_lag_blocks = 1000
    charity_id, key = replicated.charity()
    campaign_id = replicated.campaign(charity_id, key)
    until(lambda: caught_up(replicas), "the standby has replayed the campaign")
    pair.standby_sql("SELECT pg_wal_replay_pause()")
    try:
        donation = replicated.donate(campaign_id, key, 300)
        replicas.fence = -1
        assert caught_up(replicas)
        on_replica, on_primary = statements(replicas.engines[0]), statements(replicas.primary)
        traced = replicated.get(f"/v1/donations/{donation['id']}")
        assert traced.status_code == 200, traced.text
        assert traced.json()["amount"] == 300
        assert on_replica() > 0 and on_primary() > 0
        # A record on neither is still a 404 (asked of both, not a 500).
        missing = replicated.get(f"/v1/donations/{ids.new('donation')}")
        assert missing.status_code == 404, missing.text
    finally:
        pair.standby_sql("SELECT pg_wal_replay_resume()")


def test_a_standby_that_is_gone_is_skipped(anvil: Any, tmp_path: Path) -> None:
    """Its own pair: stopping the standby would break the other tests' replica."""
    with streaming_pair() as own:
        admin = create_engine(own.primary_url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text('CREATE DATABASE "gone"'))
        admin.dispose()
        settings = settings_for(
            tmp_path,
            anvil.url,
            own.primary_url("gone"),
            read_database_urls=[own.standby_url("gone")],
            replica_poll_seconds=0.1,
        )
        with serve(settings) as service:
            replicas = replicas_of(service)
            charity_id, _ = service.charity()
            until(lambda: caught_up(replicas), "the standby has replayed the charity")
            own.stop_standby()
            until(lambda: not caught_up(replicas), "the poller has noticed the standby is gone")
            assert service.get(f"/v1/charities/{charity_id}").status_code == 200
            samples = replicas.samples
            assert samples[0] is not None and samples[0].block is None
