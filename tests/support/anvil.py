"""Start and stop a local anvil node (npm `@foundry-rs/anvil-linux-amd64`), for the tests.
anvil is a development node: the product never starts or imports this (see
tests/test_support_code.py); the benchmarks have their own launcher in scripts/bench."""

from __future__ import annotations

import socket
import subprocess
import time

from ledger_api.core.paths import ROOT

ANVIL = ROOT / "node_modules" / ".bin" / "anvil"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class AnvilNode:
    """A real anvil process on a free loopback port, with its ten funded dev accounts."""

    def __init__(self, *extra_args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [
                str(ANVIL),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--silent",
                # anvil spills the states of older blocks to ~/.foundry/anvil/tmp and never
                # removes them when stopped: a benchmark chain filled a 79 GB disk. Older
                # states are dropped instead (recent ones stay in memory).
                "--max-persisted-states",
                "0",
                *extra_args,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(self.port)
        except TimeoutError:
            self.stop()
            raise

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> AnvilNode:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
