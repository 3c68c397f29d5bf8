"""Group commit: single writes of one kind that arrive together for one signer share one
transaction.

Sixteen charity clerks posting single donations at once used to make sixteen
transactions, each waiting its turn on the signer's nonce lock: the chain's cost was
paid sixteen times and the requests queued behind each other. Now each request is
authorised, then handed to the signer's group: a worker thread takes whatever is waiting
(after a short `window` since the oldest arrival, or at once when `cap` requests wait),
simulates each request's own call on its own (`eth_call`s in one JSON-RPC batch: a bad
one gets its own 409 and never joins the others), makes ONE call of the rest (`combine`:
`recordDonations` for donations), estimates its gas and submits it through the writer
as any write (outbox, nonce, sign, send), with the records of all of them. While that
transaction is mined and mirrored, the next group gathers: the busier the signer, the
larger the groups, and an idle signer's request waits only the window.

A group the contract would refuse as a whole (a record became invalid between its own
check and the group's estimate: the campaign closed meanwhile) is split in halves and
each half tried again, down to the one request that fails, which alone gets the 409.
Each request then settles on its own group's transaction (one of them waits on the node
and the mirror, the others for its answer) and answers with its own record and the
shared transaction. If the transaction reverts when mined all the same, none of its
records was made (a transaction is all or nothing), and each request is retried alone:
checked anew and sent as its own transaction. So every good record lands exactly once
and every answer is its own.

What does not change: the outbox holds the group's signed bytes before they are sent
(a crash is recovered as before, the same bytes sent again), idempotency keys are per
request (the ASGI layer answers a repeated key from its stored answer), and the answer
comes only once the transaction is mined and mirrored (read-your-writes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger_api.chain.abi import Call
from ledger_api.chain.writer import TxState
from ledger_api.core.errors import ContractRejected

log = logging.getLogger("ledger_api.coalesce")

# Makes one call of the rows of a group (in arrival order), e.g. `recordDonations`.
Combine = Callable[[Sequence[tuple[Any, ...]]], Call]
# The writer's simulate: (signer, call) -> the gas to send it with; ContractRejected.
Estimate = Callable[[str, Call], int]
# The writer's check_each: (signer, calls) -> for each, None or the ContractRejected it gets.
CheckEach = Callable[[str, Sequence[Call]], Sequence[ContractRejected | None]]
# The writer's submit: (signer, call, gas, charity, records) -> the transaction's state.
Submit = Callable[[str, Call, int, str | None, dict[str, Any]], TxState]

# A worker thread with nothing to do for this long ends; the next request starts another.
IDLE_SECONDS = 10.0


@dataclass
class Ticket:
    """One request's place in a group: its row, record IDs and its own records (kept in
    the outbox with the transaction); then its group."""

    row: tuple[Any, ...]
    ids: list[str]
    records: dict[str, Any] | None = None
    arrived: float = field(default_factory=time.monotonic)
    group: Group | None = None
    _placed: threading.Event = field(default_factory=threading.Event, repr=False)

    def submitted(self) -> Group:
        """The group this request was sent in, once its transaction is in the outbox and
        sent; the group's error if submitting it failed (the node down: nothing stored).
        No timeout here: a request that gave up waiting could still be sent afterwards,
        and its caller, told it failed, would record it again. The writer's own calls are
        bounded (the node's timeouts), so the worker always comes back."""
        self._placed.wait()
        assert self.group is not None
        if self.group.error is not None:
            raise self.group.error
        return self.group


@dataclass
class Group:
    """The requests sent in one transaction, and the one settlement they share."""

    size: int
    state: TxState | None = None
    error: Exception | None = None
    _settle_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _settled: list[TxState] | None = None
    _settle_error: Exception | None = None
    # Called once when the group is settled (or nobody waits for it): the next group of
    # its signer need not hold back for it any more.
    _on_done: Callable[[], None] | None = field(default=None, repr=False)

    def release(self) -> None:
        """This group no longer holds back its signer's next one (idempotent)."""
        done, self._on_done = self._on_done, None
        if done is not None:
            done()

    def settle(self, settle: Callable[[list[TxState]], list[TxState]]) -> list[TxState]:
        """`settle` the group's transaction once for all its requests: the first to ask
        waits on the node and the mirror; the others wait for it and get its answer (or
        its error)."""
        assert self.state is not None
        with self._settle_lock:
            if self._settled is None and self._settle_error is None:
                try:
                    self._settled = settle([self.state])
                except Exception as exc:
                    self._settle_error = exc
                finally:
                    self.release()
            if self._settle_error is not None:
                raise self._settle_error
            assert self._settled is not None
            return self._settled


@dataclass
class _Queue:
    """The requests waiting for one (signer, kind), and whether a worker serves them."""

    signer: str
    charity_hex: str | None
    kind: str
    combine: Combine
    waiting: list[Ticket] = field(default_factory=list)
    working: bool = False
    # Groups sent and not yet settled: while one is, the next gathers (up to `hold`).
    unsettled: int = 0


class GroupCommit:
    """Per (signer, kind): the waiting requests and a worker thread that sends them in
    groups. A group goes `window` seconds after its first arrival, but not while the
    signer's previous group is still being mined and mirrored (for at most `hold`
    seconds): the requests that arrive meanwhile join the next group instead of each
    paying a transaction (on a chain with blocks every few seconds, about one transaction
    per block). At most `cap` requests and `max_gas` gas (the group's own estimate) in
    one transaction; a full group goes at once."""

    def __init__(
        self,
        estimate: Estimate,
        submit: Submit,
        window: float,
        cap: int,
        max_gas: int,
        hold: float = 1.0,
        check_each: CheckEach | None = None,
    ) -> None:
        self.estimate = estimate
        self.check_each = check_each
        self.submit = submit
        self.window = window
        self.hold = hold
        self.cap = cap
        self.max_gas = max_gas
        self._queues: dict[tuple[str, str | None, str], _Queue] = {}
        self._lock = threading.Condition()
        # Group sizes sent, for tests and metrics: how much coalescing happened.
        self.sizes: list[int] = []

    def join(
        self,
        signer: str,
        charity_hex: str | None,
        kind: str,
        combine: Combine,
        ticket: Ticket,
    ) -> Ticket:
        """Queue a request for the next group of `signer` for `charity_hex` (a group is
        one charity's: its transaction is read by that charity's keys; a relayer signs
        for many charities)."""
        with self._lock:
            queue = self._queues.get((signer, charity_hex, kind))
            if queue is None:
                queue = self._queues[(signer, charity_hex, kind)] = _Queue(signer, charity_hex, kind, combine)
            queue.waiting.append(ticket)
            if not queue.working:
                queue.working = True
                threading.Thread(
                    target=self._work, args=(queue,), name=f"group-commit-{signer[:10]}", daemon=True
                ).start()
            self._lock.notify_all()
        return ticket

    def _take(self, queue: _Queue) -> list[Ticket] | None:
        """The next group: after the window since the oldest arrival, or at once when the
        cap is reached. None (and the worker ends) after IDLE_SECONDS with nothing to send."""
        with self._lock:
            idle_until = time.monotonic() + IDLE_SECONDS
            while not queue.waiting:
                left = idle_until - time.monotonic()
                if left <= 0:
                    queue.working = False
                    return None
                self._lock.wait(left)
            while len(queue.waiting) < self.cap:
                oldest, now = queue.waiting[0].arrived, time.monotonic()
                due = (
                    oldest + self.window
                    if queue.unsettled == 0
                    else max(oldest + self.window, oldest + self.hold)
                )
                if now >= due:
                    break
                self._lock.wait(due - now)  # woken early by an arrival or a settled group
            group = queue.waiting[: self.cap]
            del queue.waiting[: len(group)]
            return group

    def _work(self, queue: _Queue) -> None:
        while (tickets := self._take(queue)) is not None:
            self._send(queue, self._checked(queue, tickets))

    def _checked(self, queue: _Queue, tickets: list[Ticket]) -> list[Ticket]:
        """Each request simulated on its own (one JSON-RPC batch of eth_calls for the
        group, not a round trip per request): one that would fail gets its own 409 and
        never joins; the others go on. A node that does not answer fails them all."""
        if self.check_each is None:
            return tickets
        try:
            verdicts = self.check_each(queue.signer, [queue.combine([t.row]) for t in tickets])
        except Exception as exc:
            self._place(tickets, Group(size=len(tickets), error=exc))
            return []
        for ticket, rejected in zip(tickets, verdicts, strict=True):
            if rejected is not None:
                self._place([ticket], Group(size=1, error=rejected))
        return [t for t, rejected in zip(tickets, verdicts, strict=True) if rejected is None]

    def _send(self, queue: _Queue, tickets: list[Ticket]) -> None:
        if not tickets:
            return
        """Estimate the group's call (one simulation of them all), then submit it. A
        group the contract would refuse as a whole (one of its records became invalid
        since it was checked) or too large for the gas bound is split in halves, each
        tried again, down to the single request that fails: it alone gets the error."""
        rows = [t.row for t in tickets]
        try:
            call = queue.combine(rows)
            gas = self.estimate(queue.signer, call)
            if gas > self.max_gas and len(tickets) > 1:
                raise _TooLarge
        except (ContractRejected, _TooLarge) as exc:
            if len(tickets) == 1:
                self._place(tickets, Group(size=1, error=exc))
                return
            half = len(tickets) // 2
            self._send(queue, tickets[:half])
            self._send(queue, tickets[half:])
            return
        except Exception as exc:  # the node or the database: every request answers it
            self._place(tickets, Group(size=len(tickets), error=exc))
            return
        group = Group(size=len(tickets))
        try:
            records = _records(queue.kind, tickets)
            group.state = self.submit(queue.signer, call, gas, queue.charity_hex, records)
            self.sizes.append(len(tickets))
        except Exception as exc:
            log.warning("a group of %d %s writes was not submitted: %s", len(tickets), queue.kind, exc)
            group.error = exc
        else:
            with self._lock:
                queue.unsettled += 1
            group._on_done = lambda: self._settled(queue)
        self._place(tickets, group)

    def _settled(self, queue: _Queue) -> None:
        with self._lock:
            queue.unsettled -= 1
            self._lock.notify_all()

    @staticmethod
    def _place(tickets: list[Ticket], group: Group) -> None:
        for ticket in tickets:
            ticket.group = group
            ticket._placed.set()


def _records(kind: str, tickets: list[Ticket]) -> dict[str, Any]:
    """What the outbox keeps with a group's transaction: a lone request's own records; a
    group's record IDs, and each request's own records when they say more (a relayed
    call's function, signer and nonce: the relay looks nonces up there)."""
    if len(tickets) == 1 and tickets[0].records is not None:
        return tickets[0].records
    records: dict[str, Any] = {"kind": kind, "ids": [i for t in tickets for i in t.ids]}
    if any(t.records is not None and set(t.records) - {"kind", "ids"} for t in tickets):
        records["calls"] = [t.records for t in tickets]
    return records


class _TooLarge(Exception):
    """A group whose gas is over the bound: split it."""
