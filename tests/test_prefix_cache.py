"""The disk prefix cache: valid entries round-trip; corrupt, mismatched and over-budget ones do not."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from service.llm.prefix_cache import PrefixCache, PrefixKey, PrefixState, model_fingerprint

KEY = PrefixKey(
    model_sha256="a" * 64,
    llama_cpp_version="0.3.36",
    n_ctx=8192,
    prompt_id="marking",
    prompt_version="2.0",
    prompt_sha256="b" * 64,
    scheme_id="stalin-power-1929",
    scheme_version="1.0",
    scheme_sha256="c" * 64,
    variant="sentences",
    prefix_sha256="d" * 64,
)
STATE = PrefixState(tokens=[1, 2, 3, 151_643], state=bytes(range(256)) * 40)


def other(**changes: object) -> PrefixKey:
    return dataclasses.replace(KEY, **changes)  # type: ignore[arg-type]


def test_round_trip_and_listing(tmp_path: Path) -> None:
    cache = PrefixCache(tmp_path / "states", capacity_bytes=10_000_000)
    path = cache.save(KEY, STATE)
    assert path is not None and path.name.startswith("stalin-power-1929@1.0-")
    assert cache.load(KEY) == STATE
    (entry,) = cache.entries()
    assert entry.key["scheme_id"] == "stalin-power-1929" and entry.n_tokens == 4
    assert entry.size_bytes == path.stat().st_size == cache.total_bytes()
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".partial")] == [], "no temporary file left"


@pytest.mark.parametrize(
    "change",
    [
        {"model_sha256": "e" * 64},
        {"llama_cpp_version": "0.3.37"},
        {"n_ctx": 4096},
        {"prompt_sha256": "f" * 64},
        {"scheme_version": "1.1"},
        {"scheme_sha256": "0" * 64},
        {"variant": "free"},
    ],
)
def test_every_key_part_separates_entries(tmp_path: Path, change: dict[str, object]) -> None:
    cache = PrefixCache(tmp_path, capacity_bytes=10_000_000)
    cache.save(KEY, STATE)
    assert cache.load(other(**change)) is None
    assert cache.load(KEY) == STATE


def corrupt_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:-10])


def corrupt_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))


def corrupt_magic(path: Path) -> None:
    path.write_bytes(b"garbage" + path.read_bytes()[7:])


def corrupt_empty(path: Path) -> None:
    path.write_bytes(b"")


def corrupt_header(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[:12] + b"{not json" + data[21:])


@pytest.mark.parametrize("damage", [corrupt_truncate, corrupt_flip, corrupt_magic, corrupt_empty, corrupt_header])
def test_corrupt_entries_are_ignored_deleted_and_rebuilt(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    cache = PrefixCache(tmp_path, capacity_bytes=10_000_000)
    path = cache.save(KEY, STATE)
    assert path is not None
    damage(path)
    assert cache.load(KEY) is None
    assert not path.exists(), "a bad entry is removed so it gets rebuilt"
    cache.save(KEY, STATE)
    assert cache.load(KEY) == STATE


def test_an_entry_written_for_another_key_is_refused(tmp_path: Path) -> None:
    """A file renamed (or copied) under another key's name must not be restored."""
    cache = PrefixCache(tmp_path, capacity_bytes=10_000_000)
    source = cache.save(other(n_ctx=4096), STATE)
    assert source is not None
    os.replace(source, cache.path_for(KEY))
    assert cache.load(KEY) is None and not cache.path_for(KEY).exists()


def test_size_bound_evicts_least_recently_used(tmp_path: Path) -> None:
    size = len(STATE.state) + 4 * 4
    cache = PrefixCache(tmp_path, capacity_bytes=int(size * 3.5) + 3 * 1000)
    keys = [other(scheme_id=f"s{i}") for i in range(3)]
    for i, key in enumerate(keys):
        path = cache.save(key, STATE)
        assert path is not None
        os.utime(path, (time.time() - 100 + i, time.time() - 100 + i))
    assert cache.load(keys[0]) == STATE  # a hit makes s0 the most recently used
    cache.save(other(scheme_id="s3"), STATE)
    remaining = {e.key["scheme_id"] for e in cache.entries()}
    assert remaining == {"s0", "s2", "s3"}, "s1 was least recently used"
    assert cache.total_bytes() <= cache.capacity_bytes


def test_a_state_bigger_than_the_budget_is_not_stored(tmp_path: Path) -> None:
    cache = PrefixCache(tmp_path, capacity_bytes=100)
    assert cache.save(KEY, STATE) is None and cache.entries() == []


def test_model_fingerprint_uses_the_marker_or_hashes_once(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF model bytes")
    first = model_fingerprint(model, tmp_path / "memo")
    assert len(first) == 64 and (tmp_path / "memo" / "model-sha256.json").exists()
    assert model_fingerprint(model, tmp_path / "memo") == first
    model.write_bytes(b"GGUF other bytes, longer")
    assert model_fingerprint(model, tmp_path / "memo") != first, "a replaced file is hashed again"
    (tmp_path / "m.gguf.sha256").write_text("9" * 64 + "\n")
    assert model_fingerprint(model, tmp_path / "memo") == "9" * 64
