"""Evidence documents at rest: what a stored file is, how a restricted one is sealed, and
how each is served.

A document is stored once, by its SHA-256, under LEDGER_EVIDENCE_PATH; `evidence_files`
(core/models.py `EvidenceFile`) says what it is: the disbursement and charity it was
uploaded for, `public` or `restricted`, its original name (cleaned), its media type as
its bytes and its name both show it, its size, and for a restricted original the key it is sealed under.

- **Public** documents are stored as uploaded at `<ab>/<sha256>`.
- **Restricted** originals are sealed with AES-GCM at `<ab>/<sha256>.sealed`: 12 random
  bytes of nonce, then the ciphertext, the SHA-256 as associated data (a sealed file
  cannot be passed off as another document). The key comes from the key ring
  LEDGER_EVIDENCE_KEYS (`id:base64key,...`: the first seals, every one opens); without
  it, one key (id `derived`) from the deployment's secret (`Settings.signing_key`), which
  also opens (never seals) what was sealed before a ring was configured. To
  rotate: put a new key first, restart, run `ledger evidence rotate-keys` (`rotate`), then
  drop the old key.
- **Serving**: only PDFs and the usual photo formats are shown inline, with their own
  type, and only when the bytes and the name's extension agree (a PDF named page.html would
  be saved as page.html and open as HTML); anything else, HTML and SVG
  included, is an `application/octet-stream` download. Every answer is `nosniff`, and
  everything but a PDF is sandboxed by its CSP (Chromium's PDF viewer does not run in a
  sandboxed document; a PDF's own scripts never run in this origin).
"""

from __future__ import annotations

import base64
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, Table, select, update

from ledger_api.core.config import Settings
from ledger_api.core.models import EvidenceFile

PUBLIC, RESTRICTED = "public", "restricted"
VISIBILITIES = (PUBLIC, RESTRICTED)
OCTET_STREAM = "application/octet-stream"
INLINE_TYPES = ("application/pdf", "image/png", "image/jpeg", "image/gif", "image/webp")
_NONCE = 12
_DERIVED = "derived"
MAX_NAME = 200

# Content-Security-Policy by how a document is shown.
SANDBOXED = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
PDF_POLICY = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


def sniff(head: bytes) -> str:
    """The media type the first bytes of a document show, among those served inline;
    OCTET_STREAM for anything else (text, HTML, SVG, archives, office files...)."""
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    return OCTET_STREAM


_SUFFIXES = {
    "application/pdf": (".pdf",),
    "image/png": (".png",),
    "image/jpeg": (".jpg", ".jpeg"),
    "image/gif": (".gif",),
    "image/webp": (".webp",),
}


def media_type(name: str, head: bytes) -> str:
    """The type a document is served as: what its bytes show AND what its name says. A
    PDF named page.html is a download (OCTET_STREAM): shown inline, then saved under its
    own name, it would open as HTML."""
    shown = sniff(head)
    return shown if name.lower().endswith(_SUFFIXES.get(shown, ())) else OCTET_STREAM


_UNSAFE_NAME = re.compile(r"[\\/:*?\"<>|]")


def clean_name(name: str | None) -> str:
    """A file name fit to show and to send in Content-Disposition: the last path part,
    without control, format (bidi) or path characters, NFC, at most MAX_NAME characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    kept = "".join(
        " " if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") else c
        for c in unicodedata.normalize("NFC", base)
    )
    kept = _UNSAFE_NAME.sub("_", kept).strip(" .")
    return kept[:MAX_NAME] or "document"


def presentation(media_type: str) -> tuple[str, str, str]:
    """(Content-Type, disposition type, Content-Security-Policy) for a stored type."""
    if media_type not in INLINE_TYPES:
        return OCTET_STREAM, "attachment", SANDBOXED
    return media_type, "inline", PDF_POLICY if media_type == "application/pdf" else SANDBOXED


def public_path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / sha256


def sealed_path(root: Path, sha256: str) -> Path:
    return root / sha256[:2] / f"{sha256}.sealed"


class KeyRingError(ValueError):
    """LEDGER_EVIDENCE_KEYS is not `id:base64key,...` with 32-byte keys."""


@dataclass(frozen=True)
class KeyRing:
    keys: dict[str, bytes]
    current: str

    @classmethod
    def of(cls, settings: Settings) -> KeyRing:
        configured = settings.evidence_keys.get_secret_value() if settings.evidence_keys else ""
        if not configured.strip():
            return cls({_DERIVED: settings.signing_key("evidence at rest")}, _DERIVED)
        keys: dict[str, bytes] = {}
        for part in configured.split(","):
            key_id, _, encoded = part.strip().partition(":")
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", key_id) or key_id in keys:
                raise KeyRingError("LEDGER_EVIDENCE_KEYS: each entry is `id:base64key` with a distinct id")
            try:
                key = base64.b64decode(encoded, validate=True)
            except ValueError:
                raise KeyRingError(f"LEDGER_EVIDENCE_KEYS: key {key_id!r} is not base64") from None
            if len(key) != 32:
                raise KeyRingError(f"LEDGER_EVIDENCE_KEYS: key {key_id!r} is not 32 bytes (AES-256)")
            keys[key_id] = key
        current = next(iter(keys))
        # Documents sealed before the ring was configured stay readable, so they can be re-sealed.
        keys.setdefault(_DERIVED, settings.signing_key("evidence at rest"))
        return cls(keys, current)

    def seal(self, sha256: str, plain: bytes) -> tuple[str, bytes]:
        nonce = os.urandom(_NONCE)
        return self.current, nonce + AESGCM(self.keys[self.current]).encrypt(nonce, plain, sha256.encode())

    def open(self, key_id: str, sha256: str, sealed: bytes) -> bytes:
        if key_id not in self.keys:
            raise KeyRingError(f"the key {key_id!r} that sealed this document is not in LEDGER_EVIDENCE_KEYS")
        return AESGCM(self.keys[key_id]).decrypt(sealed[:_NONCE], sealed[_NONCE:], sha256.encode())


def write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def rotate(settings: Settings, engine: Engine) -> tuple[int, int]:
    """Re-seal every stored restricted document under the key ring's current key:
    (re-sealed, already current). Each file is written whole before its row names the new
    key, so a stop half-way leaves every document readable (rerun to finish)."""
    ring = KeyRing.of(settings)
    files = cast(Table, EvidenceFile.__table__)
    with engine.connect() as connection:
        rows = connection.execute(
            select(files.c.deployment_id, files.c.sha256, files.c.key_id).where(
                files.c.visibility == RESTRICTED, files.c.withdrawn_at.is_(None)
            )
        ).all()
    resealed = current = 0
    for row in rows:
        if row.key_id == ring.current:
            current += 1
            continue
        path = sealed_path(settings.evidence_path, row.sha256)
        if not path.is_file():
            continue
        key_id, sealed = ring.seal(row.sha256, ring.open(row.key_id or "", row.sha256, path.read_bytes()))
        write_atomically(path, sealed)
        with engine.begin() as connection:
            connection.execute(
                update(files)
                .where(files.c.deployment_id == row.deployment_id, files.c.sha256 == row.sha256)
                .values(key_id=key_id)
            )
        resealed += 1
    return resealed, current
