"""What a read needs, and nothing more: the settings, the database holding the mirror,
and the identity of the ledger deployment it mirrors (chain, contract, deployment row).
Routes get it with `MirrorDep` (the primary: audits, the access log, anything that writes
or must read its own writes) or `PublicMirrorDep` (public record reads, which may go to a
read replica, see `replicas.py`); the running service builds one (`Runtime.mirror`)."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from sqlalchemy import Engine

from ledger_api.chain.contract import Deployment
from ledger_api.core.config import Settings
from ledger_api.core.errors import NotFound
from ledger_api.mirror.replicas import Replicas


@dataclass(frozen=True)
class Mirror:
    """The read gateway: every public and audit read goes through one of these. `engine`
    is the primary unless `on_replica` (a copy from `public`)."""

    settings: Settings
    engine: Engine
    deployment: Deployment
    deployment_id: int | None
    # Keyword-only, so `Auditing` (always the primary) adds its own fields after these.
    replicas: Replicas | None = field(default=None, kw_only=True)
    on_replica: bool = field(default=False, kw_only=True)
    # `reading(engine)`, for public reads on the primary; the engine itself when None.
    reader: Engine | None = field(default=None, kw_only=True)

    def public(self) -> Mirror:
        """This mirror on the database a public read should use now, reading without a
        transaction (`reading`)."""
        primary = self.reader or self.engine
        if self.replicas is None:
            return replace(self, engine=primary)
        engine = self.replicas.choose()  # a replica's engine reads in autocommit already
        if engine is self.replicas.primary:
            return replace(self, engine=primary)
        return replace(self, engine=engine, on_replica=True)

    def primary(self) -> Mirror:
        if not self.on_replica or self.replicas is None:
            return self
        return replace(self, engine=self.replicas.primary, on_replica=False)


def reading(engine: Engine) -> Engine:
    """The engine for public reads: on PostgreSQL, its connections run each statement on
    its own (autocommit), so a read costs no BEGIN and no ROLLBACK round trip, a fifth of
    a donor's trace's round trips. Nothing is lost: at PostgreSQL's READ COMMITTED each
    statement of a transaction takes its own snapshot anyway. Public reads never write
    (anything that must see a consistent state, reconciliation, uses `db.snapshot`). The
    same pool: build it once (`Runtime.mirror`)."""
    if engine.dialect.name != "postgresql":
        return engine
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def current_mirror(request: Request) -> Mirror:
    mirror: Mirror = request.app.state.mirror
    return mirror


def public_mirror(request: Request) -> Mirror:
    return current_mirror(request).public()


MirrorDep = Annotated[Mirror, Depends(current_mirror)]
PublicMirrorDep = Annotated[Mirror, Depends(public_mirror)]

Route = TypeVar("Route", bound=Callable[..., Any])


def primary_if_missing(route: Route) -> Route:
    """A route reading a `mirror: PublicMirrorDep` looks a record that a replica does not
    have (404) up again on the primary: it may be a write another process just answered
    201 for, which the replica has not replayed yet (this process fences its own writes)."""
    if inspect.iscoroutinefunction(route):

        @functools.wraps(route)
        async def retried_async(*args: Any, mirror: Mirror, **kwargs: Any) -> Any:
            try:
                return await route(*args, mirror=mirror, **kwargs)
            except NotFound:
                if not mirror.on_replica:
                    raise
                return await route(*args, mirror=mirror.primary(), **kwargs)

        return retried_async  # type: ignore[return-value]

    @functools.wraps(route)
    def retried(*args: Any, mirror: Mirror, **kwargs: Any) -> Any:
        try:
            return route(*args, mirror=mirror, **kwargs)
        except NotFound:
            if not mirror.on_replica:
                raise
            return route(*args, mirror=mirror.primary(), **kwargs)

    return retried  # type: ignore[return-value]
