"""Load mark schemes from YAML/JSON files and from the built-in library."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from schemas.scheme import MarkScheme
from service.errors import NotFoundError, SchemeError
from service.validation import format_validation_error

_SUFFIXES = (".yaml", ".yml", ".json")


def parse_scheme(data: Any, *, source: str = "scheme") -> MarkScheme:
    """Validate already-parsed scheme data, raising ``SchemeError`` with every problem."""
    if not isinstance(data, dict):
        raise SchemeError(f"{source}: a mark scheme must be a mapping (YAML/JSON object)")
    try:
        return MarkScheme.model_validate(data)
    except ValidationError as exc:
        problems = format_validation_error(exc)
        raise SchemeError(f"{source} is not a valid mark scheme:\n  - " + "\n  - ".join(problems)) from exc


def parse_scheme_document(raw: bytes, *, source: str = "the uploaded scheme") -> MarkScheme:
    """Parse and validate a YAML or JSON scheme document; ``SchemeError`` for anything wrong with it.

    CPU-bound and slow on large input: async callers run it in a thread, after capping its size.
    Deep nesting (RecursionError) and integers past Python's 4,300-digit limit (ValueError) are
    the uploader's mistakes, not server errors.
    """
    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except (UnicodeDecodeError, yaml.YAMLError) as exc:
        raise SchemeError(f"{source} is not valid UTF-8 YAML or JSON: {exc}") from exc
    except RecursionError as exc:
        raise SchemeError(f"{source} is nested too deeply to be a mark scheme") from exc
    except ValueError as exc:
        raise SchemeError(
            f"{source} holds a value that cannot be read (e.g. an integer with thousands of digits)"
        ) from exc
    try:
        return parse_scheme(data, source=source)
    except RecursionError as exc:
        raise SchemeError(f"{source} is nested too deeply to be a mark scheme") from exc


def read_scheme_data(path: Path) -> Any:
    """Parse a YAML or JSON scheme file without validating it."""
    if path.suffix.lower() not in _SUFFIXES:
        raise SchemeError(f"{path}: scheme files must end in .yaml, .yml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise SchemeError(f"{path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise SchemeError(f"{path}: cannot be read as UTF-8 text ({exc})") from exc
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise SchemeError(f"{path}: not valid {path.suffix.lstrip('.').upper()}: {exc}") from exc


def load_scheme_file(path: Path) -> MarkScheme:
    """Read and validate one scheme file."""
    return parse_scheme(read_scheme_data(path), source=str(path))


def builtin_dir() -> Path:
    """The folder of schemes shipped with draftmark."""
    return Path(str(resources.files("schemas") / "library"))


class SchemeLibrary:
    """Schemes found in one or more folders, addressed by id (and optionally version)."""

    def __init__(self, folders: list[Path] | None = None) -> None:
        self._schemes: dict[str, dict[str, MarkScheme]] = {}
        for folder in folders if folders is not None else [builtin_dir()]:
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in _SUFFIXES:
                    self.add(load_scheme_file(path))

    def add(self, scheme: MarkScheme) -> None:
        """Register ``scheme``; an existing id+version must be identical."""
        versions = self._schemes.setdefault(scheme.id, {})
        existing = versions.get(scheme.version)
        if existing is not None and existing != scheme:
            raise SchemeError(
                f"scheme {scheme.ref} already exists with different content; give the changed scheme a new version"
            )
        versions[scheme.version] = scheme

    def list(self) -> list[MarkScheme]:
        """The newest version of every scheme, by id."""
        return [self.get(scheme_id) for scheme_id in sorted(self._schemes)]

    def get(self, scheme_id: str, version: str | None = None) -> MarkScheme:
        """A scheme by id (newest version) or by id and version."""
        versions = self._schemes.get(scheme_id)
        if not versions:
            known = ", ".join(sorted(self._schemes)) or "none"
            raise NotFoundError(f"no mark scheme with id {scheme_id!r}; known schemes: {known}")
        if version is None:
            return versions[max(versions, key=_version_key)]
        if version not in versions:
            raise NotFoundError(
                f"scheme {scheme_id!r} has no version {version!r}; versions: {', '.join(sorted(versions))}"
            )
        return versions[version]

    def resolve(self, reference: str) -> MarkScheme:
        """A library id (``id`` or ``id@version``), or a path to a scheme file."""
        path = Path(reference)
        if path.suffix.lower() in _SUFFIXES or path.exists():
            return load_scheme_file(path)
        scheme_id, _, version = reference.partition("@")
        return self.get(scheme_id, version or None)


def _version_key(version: str) -> tuple[tuple[int, int | str], ...]:
    parts: list[tuple[int, int | str]] = []
    for piece in version.replace("-", ".").split("."):
        parts.append((1, int(piece)) if piece.isdigit() else (0, piece))
    return tuple(parts)
