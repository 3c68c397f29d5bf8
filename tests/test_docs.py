"""The project's documents stand on their own: every relative link in a Markdown file of
the repository points at a file inside it (the README used to link ../shared/DESIGN.md,
which a fresh clone anywhere else does not have)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def test_every_relative_link_in_the_documents_stays_in_the_repository() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "*.md"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert "README.md" in tracked and "ARCHITECTURE.md" in tracked
    broken = []
    for name in tracked:
        document = ROOT / name
        for target in LINK.findall(document.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue  # a URL (http:, mailto:) or an anchor in the same page
            path = (document.parent / target.split("#", 1)[0]).resolve()
            if ROOT not in path.parents or not path.exists():
                broken.append(f"{name}: {target}")
    assert broken == []
