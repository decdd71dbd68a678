"""The file store port, a local content-addressed implementation, and content sniffing."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path
from typing import Protocol

import anyio

_KEY = re.compile(r"^[0-9a-f]{64}$")
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)


def sniff_content_type(content: bytes) -> str | None:
    """The type a file's bytes say it is, whatever its name claims; None when unknown."""
    head = content[:16]
    for signature, content_type in _SIGNATURES:
        if head.startswith(signature):
            return content_type
    return None


def sanitise_filename(name: str, default: str = "document") -> str:
    """Keep a safe display name: no directories, control characters or leading dots."""
    name = unicodedata.normalize("NFKC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '<>:"|?*')
    name = re.sub(r"\s+", " ", name).strip().lstrip(".").strip()
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:110] + dot + ext[:9]) if dot and len(ext) <= 9 else name[:120]
    return name or default


def content_key(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


class FileStore(Protocol):
    """Where uploaded bytes live; keys are the sha256 of the content."""

    async def put(self, content: bytes) -> str: ...

    async def get(self, key: str) -> bytes: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...


class LocalFileStore:
    """Files under one directory, named by their sha256, so a key can never name another path."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path_for(self, key: str) -> Path:
        if not _KEY.match(key):
            raise ValueError("a file key is 64 lowercase hex digits")
        return self.root / key[:2] / key[2:4] / key

    async def put(self, content: bytes) -> str:
        key = content_key(content)
        await anyio.to_thread.run_sync(self._write, key, content)
        return key

    def _write(self, key: str, content: bytes) -> None:
        path = self.path_for(key)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes:
        path = self.path_for(key)
        return await anyio.Path(path).read_bytes()

    async def exists(self, key: str) -> bool:
        return await anyio.Path(self.path_for(key)).exists()

    async def delete(self, key: str) -> None:
        await anyio.Path(self.path_for(key)).unlink(missing_ok=True)
