"""Reconciliations as bounded background jobs, kept in SQL (table reconciliation_jobs).

A reconciliation re-reads the whole chain and makes a view call per record: tens of
seconds on the embedded chain for a few thousand records. Run inside requests, four at
once held /healthz for 29 s and writes for up to 56 s. So:

1. A request (POST /v1/audit/reconciliations, or the old GET /v1/audit/reconciliation)
   inserts a queued job whose `active_scope` is the key of its scope. A unique constraint
   on (deployment, active_scope) makes it the scope's only unfinished job across every
   process sharing the database: a second request gets the existing job instead.
2. Every API process runs one worker thread. It claims the oldest queued job with a
   conditional `UPDATE ... WHERE status = 'queued'` that also takes a slot, 0 to
   LEDGER_RECONCILE_CONCURRENCY - 1, unique per deployment while the job runs: a row
   count of 0 means another process claimed the job first, a unique violation that the
   slot is taken. So at most that many run at once, whatever the number of processes.
3. While a job runs, a heartbeat thread writes its progress and the time every
   LEDGER_RECONCILE_HEARTBEAT_SECONDS. A running job whose heartbeat is older than
   LEDGER_RECONCILE_STALE_SECONDS belonged to a process that died (or hung): any worker,
   the restarted process or another one, queues it again, once; the second time it is
   marked failed. A worker that finds its job taken from it drops its result.
4. The result (the answer reconcile.reconcile gives, unchanged) is stored with the
   status `done`, or an error with `failed`; both free the scope and the slot. The
   newest LEDGER_RECONCILE_KEEP finished jobs per deployment are kept.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import requests
from sqlalchemy import Row, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from web3.exceptions import Web3Exception

from ledger_api.audit import reconcile
from ledger_api.audit.context import Auditing
from ledger_api.audit.schemas import Reconciliation
from ledger_api.audit.scope import Scope
from ledger_api.core.models import ReconciliationJob as Job
from ledger_api.core.security import Principal

log = logging.getLogger("ledger_api.reconcile")

# A job found abandoned this many times (its process died while running it) fails.
MAX_ATTEMPTS = 2
# Seconds between looks for queued jobs of other processes (a job this process queues
# wakes its worker at once).
POLL_SECONDS = 1.0
# A running job's progress is written at most this often (and only when it changed).
PROGRESS_SECONDS = 1.0


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC (SQLite gives the stored time back without its zone)."""
    if moment is None:
        return None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")


def scope_key(scope: Scope) -> str:
    """The key of a scope: one unfinished job per key."""
    if scope.campaign_id is not None:
        return f"campaign:{scope.campaign_id}"
    if scope.charity_id is not None:
        return f"charity:{scope.charity_id}"
    return "all"


def _scope_of(row: Row[Any]) -> Scope:
    return Scope(row.charity_id, row.campaign_id)


def _visible(auditing: Auditing, principal: Principal) -> Any:
    """Jobs the caller may see: a charity key, those of its charity (and its campaigns);
    an auditor key limited to some charities, theirs; other auditors and admins, all of
    the deployment's."""
    query = select(Job).where(Job.deployment_id == auditing.deployment_id)
    if principal.role == "charity":
        query = query.where(Job.charity_id == principal.charity_id)
    elif principal.role == "auditor" and principal.charities is not None:
        query = query.where(Job.charity_id.in_(principal.charities))
    return query


def start(auditing: Auditing, scope: Scope, principal: Principal, full: bool = True) -> tuple[Row[Any], bool]:
    """The scope's queued or running job, or a new queued one: (job, created). `full`:
    the job re-reads every event (see reconcile.reconcile); a job already queued or
    running for the scope is returned as it is, full or not."""
    key = scope_key(scope)
    full = full or key != "all"  # the checked ranges are the whole deployment's
    active = select(Job).where(Job.deployment_id == auditing.deployment_id, Job.active_scope == key)
    for _ in range(5):
        with auditing.engine.connect() as connection:
            found = connection.execute(active).one_or_none()
        if found is not None:
            return found, False
        job_id = str(uuid.uuid4())
        try:
            with auditing.engine.begin() as connection:
                connection.execute(
                    insert(Job).values(
                        id=job_id,
                        deployment_id=auditing.deployment_id,
                        charity_id=scope.charity_id,
                        campaign_id=scope.campaign_id,
                        active_scope=key,
                        status="queued",
                        attempts=0,
                        requested_by=principal.key_id,
                        created_at=_now(),
                        full=full,
                    )
                )
        except IntegrityError:
            continue  # another request queued one for this scope first: return that one
        with auditing.engine.connect() as connection:
            return connection.execute(select(Job).where(Job.id == job_id)).one(), True
    # Five times the scope's job finished between our insert and our read: practically never.
    raise RuntimeError("could not queue a reconciliation")


def find(auditing: Auditing, principal: Principal, job_id: str) -> Row[Any] | None:
    """The job, if it exists and the caller may see it (None either way, alike)."""
    with auditing.engine.connect() as connection:
        return connection.execute(_visible(auditing, principal).where(Job.id == job_id)).one_or_none()


def recent(auditing: Auditing, principal: Principal, scope: Scope, limit: int) -> list[Row[Any]]:
    """The caller's jobs in `scope`, newest first."""
    query = _visible(auditing, principal)
    if scope.campaign_id is not None:
        query = query.where(Job.campaign_id == scope.campaign_id)
    elif scope.charity_id is not None:
        query = query.where(Job.charity_id == scope.charity_id)
    query = query.order_by(Job.created_at.desc(), Job.id).limit(limit)
    with auditing.engine.connect() as connection:
        return list(connection.execute(query))


def _ahead(auditing: Auditing, row: Row[Any]) -> int:
    """Jobs that run before a queued one: those running and those queued earlier."""
    with auditing.engine.connect() as connection:
        return int(
            connection.execute(
                select(func.count())
                .select_from(Job)
                .where(
                    Job.deployment_id == row.deployment_id,
                    Job.id != row.id,  # claimed since it was read: not ahead of itself
                    (Job.status == "running")
                    | ((Job.status == "queued") & (Job.created_at < row.created_at)),
                )
            ).scalar_one()
        )


def view(auditing: Auditing, row: Row[Any], full: bool = True) -> Reconciliation:
    """A job as the API shows it; `full` adds a finished job's whole result."""
    body: dict[str, Any] = {
        "id": row.id,
        "href": f"/v1/audit/reconciliations/{row.id}",
        "status": row.status,
        "scope": _scope_of(row).describe(),
        "requested_at": _utc(row.created_at),
        "started_at": _utc(row.started_at),
        "finished_at": _utc(row.finished_at),
        "checked_block": row.block_number,
        "attempts": row.attempts,
        "full": row.full,
    }
    if row.status == "queued" and full:
        body["jobs_ahead"] = _ahead(auditing, row)
    if row.status == "running":
        body["progress"] = row.progress
    if row.status == "done":
        body["clean"] = row.clean
        body["difference_count"] = row.difference_count
        if full and row.result is not None:
            body["result"] = orjson.loads(row.result)
    if row.status == "failed":
        body["error"] = row.error
    return Reconciliation.model_validate(body)


def _describe(exc: BaseException) -> str:
    """Why a job failed, for its status (nothing internal: no addresses, no trace)."""
    if isinstance(exc, requests.RequestException | Web3Exception | ConnectionError | TimeoutError):
        return f"the chain node did not answer ({type(exc).__name__}); start the reconciliation again"
    return "an unexpected error stopped the reconciliation; it has been logged"


@dataclass
class _Running:
    job_id: str
    progress: reconcile.Progress


class ReconciliationWorker:
    """One thread that runs this process's share of the queued reconciliations, one at a
    time, and one that writes the running job's heartbeat."""

    def __init__(self, auditing: Auditing) -> None:
        self.auditing = auditing
        settings = auditing.settings
        self.concurrency = settings.reconcile_concurrency
        self.heartbeat = settings.reconcile_heartbeat_seconds
        self.stale = timedelta(seconds=settings.reconcile_stale_seconds)
        self.keep = settings.reconcile_keep
        self.name = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.stop_event = threading.Event()
        self.wake_event = threading.Event()
        self.running: _Running | None = None
        self.thread = threading.Thread(target=self._main, name="reconciliation", daemon=True)
        self.beat_thread = threading.Thread(target=self._beat, name="reconciliation-heartbeat", daemon=True)

    def start(self) -> None:
        self.thread.start()
        self.beat_thread.start()

    def stop(self) -> None:
        """Stop; a job in progress stops at its next slice and goes back to the queue."""
        self.stop_event.set()
        self.wake_event.set()
        running = self.running
        if running is not None:
            running.progress.cancelled = True
        self.thread.join(10)
        self.beat_thread.join(10)

    def wake(self) -> None:
        """A job was queued: look at once."""
        self.wake_event.set()

    # ------------------------------------------------------------------ the loop

    def _main(self) -> None:
        while not self.stop_event.is_set():
            self.wake_event.clear()
            try:
                self.recover()
                claimed = self.claim()
                if claimed is not None:
                    self.run(claimed)
                    continue  # there may be more
            except Exception:
                log.exception("the reconciliation worker failed; retrying")
            self.wake_event.wait(POLL_SECONDS)

    def recover(self) -> int:
        """Queue again (once) or fail the running jobs whose heartbeat stopped."""
        engine, deployment = self.auditing.engine, self.auditing.deployment_id
        now = _now()
        stale = (
            (Job.deployment_id == deployment)
            & (Job.status == "running")
            & (Job.heartbeat_at < now - self.stale)
        )
        with engine.connect() as connection:  # a read first: SQLite takes its write lock for any UPDATE
            if not connection.execute(select(func.count()).select_from(Job).where(stale)).scalar_one():
                return 0
        with engine.begin() as connection:
            requeued = connection.execute(
                update(Job)
                .where(stale, Job.attempts < MAX_ATTEMPTS)
                .values(status="queued", slot=None, worker=None, heartbeat_at=None)
            ).rowcount
            failed = connection.execute(
                update(Job)
                .where(stale)
                .values(
                    status="failed",
                    slot=None,
                    active_scope=None,
                    finished_at=now,
                    error=f"the process running it stopped, {MAX_ATTEMPTS} times; start it again",
                )
            ).rowcount
        if requeued or failed:
            log.warning(
                "reconciliations abandoned by a stopped process: %d queued again, %d failed", requeued, failed
            )
        return requeued + failed

    def claim(self) -> Row[Any] | None:
        """The oldest queued job, now running here, if a slot is free."""
        engine, deployment = self.auditing.engine, self.auditing.deployment_id
        with engine.connect() as connection:
            running = connection.execute(
                select(func.count())
                .select_from(Job)
                .where(Job.deployment_id == deployment, Job.status == "running")
            ).scalar_one()
            if running >= self.concurrency:
                return None
            candidates = (
                connection.execute(
                    select(Job.id)
                    .where(Job.deployment_id == deployment, Job.status == "queued")
                    .order_by(Job.created_at, Job.id)
                    .limit(10)
                )
                .scalars()
                .all()
            )
        for job_id in candidates:
            for slot in range(self.concurrency):
                now = _now()
                try:
                    with engine.begin() as connection:
                        claimed = connection.execute(
                            update(Job)
                            .where(Job.id == job_id, Job.status == "queued")
                            .values(
                                status="running",
                                slot=slot,
                                worker=self.name,
                                attempts=Job.attempts + 1,
                                started_at=now,
                                heartbeat_at=now,
                            )
                        ).rowcount
                except IntegrityError:
                    continue  # the slot is taken: try the next
                if claimed == 1:
                    with engine.connect() as connection:
                        return connection.execute(select(Job).where(Job.id == job_id)).one()
                break  # another process claimed this job: the next one
            else:
                return None  # every slot is taken
        return None

    def run(self, job: Row[Any]) -> None:
        running = _Running(job.id, reconcile.Progress())
        self.running = running
        running.progress.cancelled = self.stop_event.is_set()
        try:
            if job.full:
                result = reconcile.reconcile(self.auditing, _scope_of(job), running.progress)
            else:
                result = reconcile.reconcile_incremental(self.auditing, running.progress)
        except reconcile.Cancelled:
            self._requeue(running)
            return
        except Exception as exc:
            log.exception("reconciliation %s failed", job.id)
            self._finish(
                running, status="failed", error=_describe(exc), block_number=running.progress.block_number
            )
            return
        finally:
            self.running = None
        self._finish(
            running,
            status="done",
            result=orjson.dumps(result).decode(),
            clean=result["clean"],
            difference_count=result["difference_count"],
            block_number=result["checked_at"]["block_number"],
        )

    def _requeue(self, running: _Running) -> None:
        """Back to the queue, as if never started (this process is stopping)."""
        with self.auditing.engine.begin() as connection:
            connection.execute(
                update(Job)
                .where(Job.id == running.job_id, Job.worker == self.name, Job.status == "running")
                .values(
                    status="queued",
                    slot=None,
                    worker=None,
                    attempts=Job.attempts - 1,
                    started_at=None,
                    heartbeat_at=None,
                    progress=None,
                    block_number=None,
                )
            )
        log.info("reconciliation %s goes back to the queue: this process is stopping", running.job_id)

    def _finish(self, running: _Running, **values: Any) -> None:
        engine, deployment = self.auditing.engine, self.auditing.deployment_id
        with engine.begin() as connection:
            finished = connection.execute(
                update(Job)
                .where(Job.id == running.job_id, Job.worker == self.name, Job.status == "running")
                .values(slot=None, active_scope=None, finished_at=_now(), **values)
            ).rowcount
            if finished != 1:
                log.warning(
                    "reconciliation %s was taken from this process; its result is dropped", running.job_id
                )
                return
            kept = (
                select(Job.id)
                .where(Job.deployment_id == deployment, Job.status.in_(("done", "failed")))
                .order_by(Job.created_at.desc(), Job.id)
                .limit(self.keep)
            )
            connection.execute(
                delete(Job).where(
                    Job.deployment_id == deployment,
                    Job.status.in_(("done", "failed")),
                    Job.id.not_in(kept.scalar_subquery()),
                )
            )

    def _beat(self) -> None:
        """The running job's heartbeat every `heartbeat` seconds, and its progress as it
        changes (at most every PROGRESS_SECONDS), for pollers."""
        written: tuple[str, str, int | None] | None = None
        last_beat = 0.0
        while not self.stop_event.wait(min(PROGRESS_SECONDS, self.heartbeat)):
            running = self.running
            if running is None:
                continue
            state = (running.job_id, running.progress.stage[:200], running.progress.block_number)
            if state == written and time.monotonic() - last_beat < self.heartbeat:
                continue
            try:
                with self.auditing.engine.begin() as connection:
                    connection.execute(
                        update(Job)
                        .where(Job.id == running.job_id, Job.worker == self.name, Job.status == "running")
                        .values(heartbeat_at=_now(), progress=state[1], block_number=state[2])
                    )
                written, last_beat = state, time.monotonic()
            except Exception:
                log.exception("the reconciliation heartbeat failed; retrying")
