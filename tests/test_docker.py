"""The Docker image, without a Docker engine (there is none here): the Dockerfile is read
and held to the facts of a production image, its build context checked against
.dockerignore, and `ledger serve` run as the image would run it, with the image's
environment and no secrets: it must refuse to start."""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from ledger_api.core.config import DEV_PASSPHRASE

ROOT = Path(__file__).resolve().parents[1]
SECRETS = ("LEDGER_KEYSTORE_PASSPHRASE", "LEDGER_ADMIN_KEY", "LEDGER_SECRET_KEY", "LEDGER_METRICS_TOKEN")


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of each logical line: continuations joined, comments out."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        result.append((keyword.upper(), rest.strip()))
        pending = ""
    assert not pending, "a continuation runs off the end"
    return result


def env_of(arguments: str) -> dict[str, str]:
    return dict(part.split("=", 1) for part in shlex.split(arguments))


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, arguments in instructions():
        if keyword == "ENV":
            env.update(env_of(arguments))
    return env


def ignored(path: str, patterns: list[str]) -> bool:
    """Whether .dockerignore `patterns` leave `path` (or a folder above it) out."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        pattern = pattern.lstrip("/")
        candidates = [pattern, pattern.removeprefix("**/")] if pattern.startswith("**/") else [pattern]
        for prefix in prefixes:
            names = [prefix] + ([prefix.rsplit("/", 1)[-1]] if pattern.startswith("**/") else [])
            if any(fnmatch.fnmatchcase(name, c) for name in names for c in candidates):
                return True
    return False


def test_the_image_runs_ledger_serve_in_production_as_a_user() -> None:
    steps = instructions()
    keywords = [keyword for keyword, _ in steps]
    assert keywords[0] == "FROM" and steps[0][1].startswith("python:3.11-slim")
    # The last CMD, in exec form (signals reach the process): `ledger serve`, never `dev`.
    cmd = [arguments for keyword, arguments in steps if keyword == "CMD"][-1]
    assert json.loads(cmd) == ["ledger", "serve"]
    assert "ledger dev" not in (ROOT / "Dockerfile").read_text()
    env = image_env()
    assert env["LEDGER_ENV"] == "production"
    assert env["LEDGER_HOST"] == "0.0.0.0"  # reachable from outside the container
    # A user that is not root, in force for CMD and HEALTHCHECK.
    users = [(index, arguments) for index, (keyword, arguments) in enumerate(steps) if keyword == "USER"]
    assert users, "no USER: the service would run as root"
    last_user_at, user = users[-1]
    assert user.split(":")[0] not in ("root", "0")
    assert last_user_at < keywords.index("CMD") and last_user_at < keywords.index("HEALTHCHECK")
    created = " ".join(arguments for keyword, arguments in steps if keyword == "RUN")
    assert f"useradd --system --create-home --uid 10001 {user}" in created
    # Checked by /healthz on the port it listens on.
    healthcheck = dict(steps)["HEALTHCHECK"]
    assert "/healthz" in healthcheck and "LEDGER_PORT" in healthcheck and "CMD" in healthcheck


def test_the_image_bakes_in_no_secret_and_no_dev_dependency() -> None:
    steps = instructions()
    for keyword, arguments in steps:
        if keyword in ("ENV", "ARG"):
            names = {part.split("=", 1)[0] for part in shlex.split(arguments)}
            assert not names & set(SECRETS), (keyword, arguments)
    assert DEV_PASSPHRASE not in (ROOT / "Dockerfile").read_text()
    installs = [arguments for keyword, arguments in steps if keyword == "RUN" and "pip install" in arguments]
    assert len(installs) == 1
    install = shlex.split(installs[0].split("&&")[0])
    assert install[:2] == ["pip", "install"] and "-c" in install and "constraints.txt" in install
    assert install[-1] == "." and "[" not in installs[0]  # the package alone: no [dev] extras


def test_the_build_context_holds_what_the_image_copies_and_no_state() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for keyword, arguments in instructions():
        if keyword == "COPY":
            *sources, _ = shlex.split(arguments)
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not ignored(source, patterns), f"{source} is copied but left out of the context"
    for kept_out in (
        ".git/config",
        ".venv/bin/python",
        "node_modules/solc/package.json",
        "var/ledger.db",
        "var/keystore/key.json",
        "var/evidence/ab/cd",
        ".env",
        ".env.production",
        "tests/conftest.py",
        "ledger_api/__pycache__/app.cpython-311.pyc",
        "ledger.db",
        "keystore/UTC--key",
    ):
        assert ignored(kept_out, patterns), kept_out
    for kept_in in ("contracts/artifacts/CharityLedger.json", "migrations/env.py", "ledger_api/app.py"):
        assert not ignored(kept_in, patterns), kept_in


def test_ledger_serve_with_the_image_environment_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LEDGER_")}
    env.update(image_env())
    # The image's paths are for its volume; here they point at a scratch folder.
    env.update(
        LEDGER_DATABASE_URL=f"sqlite:///{tmp_path / 'ledger.db'}",
        LEDGER_KEYSTORE_PATH=str(tmp_path / "keystore"),
        LEDGER_EVIDENCE_PATH=str(tmp_path / "evidence"),
        LEDGER_RPC_URL="http://127.0.0.1:9",  # never reached: secrets are checked first
    )
    done = subprocess.run(
        [sys.executable, "-m", "ledger_api.cli", "serve"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "refusing to start in production" in done.stderr
    for required in (
        "LEDGER_KEYSTORE_PASSPHRASE",
        "LEDGER_ADMIN_KEY",
        "LEDGER_SECRET_KEY",
        "LEDGER_PUBLIC_URL",
    ):
        assert required in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "keystore").exists() and not (tmp_path / "ledger.db").exists()
