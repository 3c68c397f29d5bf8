"""How long a full garbage collection pauses a served process, with and without
`gc.freeze` (what `create_app(..., long_lived=True)` does once started).

    .venv/bin/python -m scripts.bench.gc_pause [--repeat 5]

Builds the service as `ledger dev` does (embedded chain, SQLite in a temporary
directory), starts its app's lifespan (indexer, outbox and the other workers), then times
`gc.collect()` of everything (median of --repeat), then freezes what was built and times
it again: the baseline is the same process's pause before the freeze. A full collection
stops every thread of the process while it walks the tracked objects, so its pause lands
on whatever requests are in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import tempfile
import time
from pathlib import Path

from scripts.bench.support import median, revision


def pauses(repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        gc.collect()
        out.append(round((time.perf_counter() - started) * 1000, 3))
    return out


async def measure(repeat: int, tmp: Path) -> tuple[int, list[float], list[float]]:
    from ledger_api.app import create_app
    from ledger_api.core.config import Settings
    from ledger_api.runtime import dev_runtime

    settings = Settings(
        database_url=f"sqlite:///{tmp / 'ledger.db'}",
        keystore_path=tmp / "keystore",
        evidence_path=tmp / "evidence",
    )
    runtime = dev_runtime(settings)
    app = create_app(runtime)
    try:
        async with app.router.lifespan_context(app):
            tracked = len(gc.get_objects())
            before = pauses(repeat)
            gc.freeze()
            after = pauses(repeat)
            gc.unfreeze()
    finally:
        runtime.engine.dispose()
    return tracked, before, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="collections timed each way (default 5)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench_gc_") as tmp:
        tracked, before, after = asyncio.run(measure(options.repeat, Path(tmp)))
    print(f"objects tracked by the collector once the service has started: {tracked:,}")
    print(f"full collection, nothing frozen (baseline): median {median(before):.1f} ms  runs {before}")
    print(f"full collection, after gc.freeze:           median {median(after):.2f} ms  runs {after}")
    print(f"ratio: {median(after) / median(before):.3f}; code at {revision()}")


if __name__ == "__main__":
    main()
