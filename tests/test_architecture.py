"""The layers of ARCHITECTURE.md hold: no module imports upward across them (the
import-linter contracts in pyproject.toml), and no import cycle exists anywhere in
ledger_api/ or indexer/, imports inside functions included. Both checks are first shown
to catch a planted violation in a scratch package, so a green run means something."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def import_cycles(*packages: str) -> list[list[str]]:
    """Every strongly connected group of two or more modules (a cycle), imports made
    inside functions included (grimp sees every import statement)."""
    graph = grimp.build_graph(*packages)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = 0

    # Tarjan's algorithm, iteratively (the graph is small, but recursion limits vary).
    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1:
                        cycles.append(sorted(group))
    return cycles


def lint_imports(cwd: Path, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = None if extra_path is None else {**os.environ, "PYTHONPATH": str(extra_path)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


def test_no_module_imports_upward_across_the_layers() -> None:
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout
    assert "Contracts: 5 kept, 0 broken." in result.stdout, result.stdout


def test_there_is_no_import_cycle() -> None:
    assert import_cycles("ledger_api", "indexer") == []


def test_the_checks_catch_an_upward_import_and_a_cycle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scratch package whose kernel imports its app (upward, and a cycle, hidden in a
    function as the old code did): both checks must fail on it."""
    package = tmp_path / "src" / "scratch"
    (package / "core").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "core" / "__init__.py").write_text("")
    (package / "app.py").write_text("from scratch.core import deps\n")
    (package / "core" / "deps.py").write_text(
        textwrap.dedent(
            """
            def runtime():
                from scratch.app import deps  # upward, inside a function
                return deps
            """
        )
    )
    (tmp_path / ".importlinter").write_text(
        textwrap.dedent(
            """
            [importlinter]
            root_package = scratch

            [importlinter:contract:layers]
            name = layers
            type = layers
            layers =
                scratch.app
                scratch.core
            """
        )
    )
    result = lint_imports(tmp_path, extra_path=tmp_path / "src")
    assert result.returncode != 0
    assert "scratch.core.deps -> scratch.app" in result.stdout, result.stdout
    monkeypatch.syspath_prepend(str(tmp_path / "src"))
    assert import_cycles("scratch") == [["scratch.app", "scratch.core.deps"]]
