"""A persistent, size-bounded disk cache of llama.cpp's evaluated state for a prompt prefix.

The system message (instructions + scheme) is the same for every essay on a scheme and costs a
2-core machine 30-50 s to evaluate. llama-cpp-python keeps it in memory between calls, but every
fresh process (a CLI run, a restarted server) paid for it again. This cache stores the state
(``llama_state_get_data``: the KV cells in use) and the tokens it holds, once per
model x llama-cpp-python version x context size x prompt template x scheme x evidence variant.

Why not llama-cpp-python's ``LlamaDiskCache``: it pickles whole ``LlamaState`` objects (unpickling
a file is code execution), stores the state after every completion rather than after the shared
prefix, copies the ``n_batch x n_vocab`` logits buffer (311 MB for Qwen's vocabulary) into each
entry, and needs the ``diskcache`` package. Here an entry is a small JSON header and two raw
byte strings, with a checksum.

Entries are written to a temporary file and renamed into place, so readers never see half a
file. A file that is unreadable, truncated, fails its checksum or was written for a different
key is deleted and reported as a miss; the caller rebuilds it. After each write the least
recently used entries (by modification time, refreshed on every hit) are removed until the
folder is within its byte budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import struct
import tempfile
import time
from array import array
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

MAGIC = b"DMPREFX1"
SUFFIX = ".state"
_HEADER_LEN = struct.Struct("<I")


@dataclass(frozen=True)
class PrefixKey:
    """Everything an evaluated prefix depends on; any change is a different entry."""

    model_sha256: str
    llama_cpp_version: str
    n_ctx: int
    prompt_id: str
    prompt_version: str
    prompt_sha256: str
    scheme_id: str
    scheme_version: str
    scheme_sha256: str
    variant: str
    prefix_sha256: str

    @property
    def digest(self) -> str:
        """A stable hash of every field."""
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()

    @property
    def filename(self) -> str:
        """The entry's file name: readable scheme, then the digest that actually keys it."""
        label = "".join(c if c.isalnum() or c in "-_.@" else "_" for c in f"{self.scheme_id}@{self.scheme_version}")
        return f"{label}-{self.digest[:32]}{SUFFIX}"


@dataclass(frozen=True)
class PrefixState:
    """What is restored: the tokens the state covers and llama.cpp's serialised context state."""

    tokens: list[int]
    state: bytes


@dataclass(frozen=True)
class CacheEntry:
    """One file in the cache, as listed by ``draftmark doctor``."""

    path: Path
    key: dict[str, object]
    n_tokens: int
    size_bytes: int
    last_used: datetime


class PrefixCache:
    """Prefix states in ``folder``, at most ``capacity_bytes`` in total."""

    def __init__(self, folder: Path, capacity_bytes: int) -> None:
        self.folder = folder
        self.capacity_bytes = capacity_bytes

    def path_for(self, key: PrefixKey) -> Path:
        """Where ``key``'s entry lives."""
        return self.folder / key.filename

    def load(self, key: PrefixKey) -> PrefixState | None:
        """The stored state for ``key``, or None (absent, or bad and now deleted)."""
        path = self.path_for(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            log.warning("prefix cache: cannot read %s (%s); ignoring it", path, exc)
            return None
        parsed = _parse(data)
        if isinstance(parsed, str):
            self._discard(path, parsed)
            return None
        header, tokens, state = parsed
        if header.get("key") != asdict(key):
            self._discard(path, "it was written for a different key")
            return None
        now = time.time()
        with contextlib.suppress(OSError):
            os.utime(path, (now, now))  # recency for LRU eviction
        return PrefixState(tokens=tokens, state=state)

    def save(self, key: PrefixKey, entry: PrefixState) -> Path | None:
        """Store ``entry`` atomically and evict to the budget; None when it alone exceeds the budget."""
        payload = array("i", entry.tokens).tobytes() + entry.state
        if len(payload) > self.capacity_bytes:
            log.info(
                "prefix cache: a %d-byte state exceeds the %d-byte budget; not stored",
                len(payload),
                self.capacity_bytes,
            )
            return None
        header = json.dumps(
            {
                "key": asdict(key),
                "n_tokens": len(entry.tokens),
                "state_bytes": len(entry.state),
                "payload_sha256": hashlib.sha256(payload).hexdigest(),
                "created": datetime.now(UTC).isoformat(),
            }
        ).encode()
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.path_for(key)
        fd, temp = tempfile.mkstemp(prefix=".", suffix=".partial", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(MAGIC + _HEADER_LEN.pack(len(header)) + header)
                out.write(payload)
                out.flush()
                os.fsync(out.fileno())
            os.replace(temp, target)
        finally:
            if os.path.exists(temp):
                os.unlink(temp)
        self.evict(keep=target)
        return target

    def entries(self) -> list[CacheEntry]:
        """Readable entries, most recently used first (headers only; payloads are not checked)."""
        found: list[CacheEntry] = []
        for path in self._files():
            try:
                stat = path.stat()
                with open(path, "rb") as source:
                    head = source.read(len(MAGIC) + _HEADER_LEN.size)
                    if len(head) < len(MAGIC) + _HEADER_LEN.size or not head.startswith(MAGIC):
                        continue
                    (length,) = _HEADER_LEN.unpack(head[len(MAGIC) :])
                    header = json.loads(source.read(length))
            except (OSError, ValueError):
                continue
            found.append(
                CacheEntry(
                    path=path,
                    key=dict(header.get("key", {})),
                    n_tokens=int(header.get("n_tokens", 0)),
                    size_bytes=stat.st_size,
                    last_used=datetime.fromtimestamp(stat.st_mtime, UTC),
                )
            )
        return sorted(found, key=lambda e: e.last_used, reverse=True)

    def total_bytes(self) -> int:
        """Bytes used by every entry."""
        return sum(p.stat().st_size for p in self._files() if p.exists())

    def evict(self, keep: Path | None = None) -> list[Path]:
        """Delete least recently used entries until within budget (never ``keep``); the deleted paths."""
        files = []
        for path in self._files():
            try:
                files.append((path.stat().st_mtime, path.stat().st_size, path))
            except FileNotFoundError:
                continue
        total = sum(size for _, size, _ in files)
        removed: list[Path] = []
        for _, size, path in sorted(files):
            if total <= self.capacity_bytes:
                break
            if path == keep:
                continue
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            total -= size
            removed.append(path)
        return removed

    def discard(self, key: PrefixKey, reason: str) -> None:
        """Delete ``key``'s entry (e.g. llama.cpp refused to restore it)."""
        self._discard(self.path_for(key), reason)

    def _discard(self, path: Path, reason: str) -> None:
        log.warning("prefix cache: ignoring %s: %s; it will be rebuilt", path.name, reason)
        with contextlib.suppress(OSError):
            path.unlink()

    def _files(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return [p for p in self.folder.iterdir() if p.suffix == SUFFIX and p.is_file()]


def _parse(data: bytes) -> tuple[dict[str, object], list[int], bytes] | str:
    """Header, tokens and state of an entry file, or why it is unusable."""
    start = len(MAGIC) + _HEADER_LEN.size
    if len(data) < start or not data.startswith(MAGIC):
        return "it is not a prefix-cache file of this format"
    (length,) = _HEADER_LEN.unpack(data[len(MAGIC) : start])
    try:
        header = json.loads(data[start : start + length])
        n_tokens = int(header["n_tokens"])
        state_bytes = int(header["state_bytes"])
        checksum = str(header["payload_sha256"])
    except (ValueError, KeyError, TypeError):
        return "its header is unreadable"
    payload = data[start + length :]
    token_bytes = n_tokens * array("i").itemsize
    if len(payload) != token_bytes + state_bytes:
        return f"it is truncated or padded ({len(payload)} payload bytes, expected {token_bytes + state_bytes})"
    if hashlib.sha256(payload).hexdigest() != checksum:
        return "its checksum does not match"
    tokens = array("i")
    tokens.frombytes(payload[:token_bytes])
    return header, tokens.tolist(), payload[token_bytes:]


def model_fingerprint(path: Path, memo_dir: Path) -> str:
    """The model file's sha256: from a verified ``<file>.sha256`` marker, a memo, or by hashing once.

    The memo is keyed by path, size and modification time, so a replaced file is hashed again.
    """
    marker = path.with_name(path.name + ".sha256")
    if marker.is_file():
        text = marker.read_text().strip()
        if len(text) == 64:
            return text
    stat = path.stat()
    memo_key = f"{path.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
    memo = memo_dir / "model-sha256.json"
    known: dict[str, str] = {}
    with contextlib.suppress(OSError, ValueError):
        known = dict(json.loads(memo.read_text()))
    if memo_key in known:
        return known[memo_key]
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(4 * 1024 * 1024):
            digest.update(chunk)
    known[memo_key] = digest.hexdigest()
    memo_dir.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".", suffix=".partial", dir=memo_dir)
    with os.fdopen(fd, "w") as out:
        json.dump(known, out)
    os.replace(temp, memo)
    return known[memo_key]
