"""API keys at rest: generating, hashing, and the keys file (a JSON list of entries). No HTTP here.

A key is shown once, when it is created; only its SHA-256 is stored (see `ApiKeyEntry.hash` for why a
plain hash is the right one for random keys).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from app.config import ApiKeyEntry, AuthSettings

_ENTRIES = TypeAdapter(list[ApiKeyEntry])


class KeyFileError(ValueError):
    """The keys file (or CLINQA_AUTH__KEYS) is missing, unreadable, malformed or inconsistent."""


class DuplicateKeyNameError(KeyFileError):
    """A key with this name is already stored."""


def generate_key() -> str:
    """A new random key: 32 bytes from the OS's CSPRNG, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(32)


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode("utf-8")).hexdigest()


def read_keys_file(path: Path) -> list[ApiKeyEntry]:
    """The entries of a keys file; KeyFileError naming the file and the problem otherwise."""
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise KeyFileError(
            f"keys file {path} not found (create it with `clinqa keys create NAME --file {path}`)"
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"keys file {path} cannot be read: {exc}") from exc
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise KeyFileError(f"keys file {path} is not valid JSON: {exc.msg} (line {exc.lineno})") from exc
    try:
        entries = _ENTRIES.validate_python(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "top level (a JSON list of entries)"
        raise KeyFileError(f"keys file {path} is malformed at {where}: {first['msg']}") from exc
    check_unique(entries, f"keys file {path}")
    return entries


def check_unique(entries: Iterable[ApiKeyEntry], where: str) -> None:
    """Names identify keys in logs and rate limits, and a hash must map to one name: both are unique."""
    names: set[str] = set()
    hashes: set[str] = set()
    for entry in entries:
        if entry.name in names:
            raise KeyFileError(f"{where}: the key name {entry.name!r} appears twice")
        if entry.hash in hashes:
            raise KeyFileError(f"{where}: the key {entry.name!r} has the same hash as another key")
        names.add(entry.name)
        hashes.add(entry.hash)


def configured_keys(settings: AuthSettings) -> list[ApiKeyEntry]:
    """Every configured key: CLINQA_AUTH__KEYS first, then the keys file (which must exist when set)."""
    entries = list(settings.keys)
    if settings.keys_file is not None:
        entries += read_keys_file(settings.keys_file)
    check_unique(entries, "CLINQA_AUTH__KEYS and the keys file together")
    return entries


def add_key(path: Path, entry: ApiKeyEntry) -> None:
    """Append an entry to a keys file, creating it (mode 0600); DuplicateKeyNameError if the name is taken."""
    entries = read_keys_file(path) if path.exists() else []
    if any(e.name == entry.name for e in entries):
        raise DuplicateKeyNameError(f"a key named {entry.name!r} already exists in {path}")
    check_unique([*entries, entry], f"keys file {path}")
    write_keys_file(path, [*entries, entry])


def write_keys_file(path: Path, entries: list[ApiKeyEntry]) -> None:
    """Write all entries to a temporary file (mode 0600) and rename it into place: never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), 0o600)  # whatever the umask: only hashes, but who holds which role is private
            json.dump([e.model_dump(exclude_none=True) for e in entries], f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
