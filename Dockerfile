# The ledger service. Contract artifacts are committed, so the image needs no Solidity
# compiler and no node. Installed editable so the package finds contracts/ and migrations/
# beside it. Not built on the development machines (no Docker engine there):
# kept deliberately simple.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LEDGER_HOST=0.0.0.0

WORKDIR /app
COPY pyproject.toml constraints.txt README.md ./
COPY ledger_api ./ledger_api
COPY indexer ./indexer
COPY migrations ./migrations
COPY alembic.ini ./
COPY contracts ./contracts
RUN pip install -c constraints.txt -e . \
    && useradd --create-home --uid 10001 ledger \
    && mkdir -p /app/var && chown ledger /app/var
USER ledger

EXPOSE 8000
# Embedded defaults (in-process chain, SQLite). Set LEDGER_RPC_URL and
# LEDGER_DATABASE_URL to use a real node and PostgreSQL.
CMD ["ledger", "dev"]
