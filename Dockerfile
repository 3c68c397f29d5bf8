# The ledger service, production image: `ledger serve` against a real chain node and
# database (README, "Docker"). Secrets come at run time, never from the image: without
# LEDGER_KEYSTORE_PASSPHRASE and a strong LEDGER_ADMIN_KEY it refuses to start.
#
# Contract artifacts are committed, so the image needs no Solidity compiler and no node.
# Installed editable: the package finds contracts/artifacts/, migrations/ and alembic.ini
# beside its own folder; a plain `pip install .` puts it in site-packages without them
# (tried: `ledger serve` then stops on contracts/artifacts/CharityLedger.json not found).
# Not built on the development machines (no Docker engine there); tests/test_docker.py
# holds it to these facts.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml constraints.txt README.md alembic.ini ./
COPY ledger_api ./ledger_api
COPY indexer ./indexer
COPY migrations ./migrations
COPY contracts ./contracts
COPY verifier ./verifier
# The service's own dependencies, pinned; no [dev] extras. The code stays root's: the
# service user can read it, not change it, and writes only to /var/lib/ledger.
RUN pip install -c constraints.txt ./verifier -e . \
    && useradd --system --create-home --uid 10001 ledger \
    && mkdir -p /var/lib/ledger \
    && chown ledger:ledger /var/lib/ledger

# State (keystore, evidence documents, the SQLite file unless LEDGER_DATABASE_URL names
# PostgreSQL) lives in the volume. Set at run time: LEDGER_RPC_URL, LEDGER_DATABASE_URL,
# LEDGER_CONTRACT_ADDRESS (or run `ledger deploy` once), LEDGER_PUBLIC_URL, and the
# secrets LEDGER_KEYSTORE_PASSPHRASE, LEDGER_ADMIN_KEY, LEDGER_METRICS_TOKEN.
ENV LEDGER_ENV=production \
    LEDGER_HOST=0.0.0.0 \
    LEDGER_PORT=8000 \
    LEDGER_DATABASE_URL=sqlite:////var/lib/ledger/ledger.db \
    LEDGER_KEYSTORE_PATH=/var/lib/ledger/keystore \
    LEDGER_EVIDENCE_PATH=/var/lib/ledger/evidence
VOLUME ["/var/lib/ledger"]
USER ledger
EXPOSE 8000

# /healthz answers 503 when the node or the database is unreachable or the mirror lags.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('LEDGER_PORT', '8000') + '/healthz', timeout=4)"]

# More processes: `docker run ... IMAGE ledger serve --workers 4`.
CMD ["ledger", "serve"]
