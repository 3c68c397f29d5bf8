"""`/metrics`: who may read it, and what it holds when several processes serve.

Metrics are not for the public (they show traffic, errors and the mirror's state): the
admin key, an auditor key or `LEDGER_METRICS_TOKEN` (a bearer token for Prometheus's
`authorization: credentials_file`) read them; anyone else gets a 401 or 403 problem.

Each process counts in its own memory. Under `ledger serve --workers N` the supervisor
points PROMETHEUS_MULTIPROC_DIR at a fresh private directory before it starts the workers;
prometheus_client then keeps every worker's values in files there, and the answer is
their sum (counters, histograms) or the most recent value of a live process (gauges), so
that a scrape shows the whole service whichever worker answers it.
"""

from __future__ import annotations

import hmac
import os

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine

from ledger_api.core.config import Settings
from ledger_api.core.errors import Forbidden, Unauthenticated
from ledger_api.core.security import authenticate

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST


def check_reader(settings: Settings, engine: Engine, authorization: str | None) -> None:
    """Let the metrics token, the admin key or an auditor key through; refuse anyone else
    (401 without a key or with a wrong one, 403 with a charity key). Tokens are compared
    in constant time."""
    if not authorization:
        raise Unauthenticated("metrics need a key: `Authorization: Bearer <admin, auditor or metrics token>`")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    expected = settings.metrics_token.get_secret_value() if settings.metrics_token else None
    if expected and scheme.lower() == "bearer" and hmac.compare_digest(token.encode(), expected.encode()):
        return
    admin = settings.admin_key.get_secret_value() if settings.admin_key else None
    principal = authenticate(engine, admin, authorization)
    if principal is None or principal.role not in ("admin", "auditor"):
        raise Forbidden("only an admin key, an auditor key or the metrics token may read metrics")


def exposition() -> bytes:
    """The metrics in Prometheus's text format: of every worker when there are several."""
    directory = os.environ.get(MULTIPROC_ENV)
    if not directory:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return generate_latest(registry)
