"""Atomic file writes: write to a temporary name beside the target, then rename.

A reader never sees a half-written file: either the old content or the new one. The temporary
file lives in the target's folder (so `os.replace` is a rename on one file system), starts with
a dot (so dataset scans and globs skip it) and is removed when the write fails.

Permissions: the temporary file is created with mode 0o666 filtered by the process umask, as
`open(path, "w")` would create it (typically 0o644). `tempfile.mkstemp` would give 0o600, which
hides written images, reports and models from other users of a shared machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "write_bytes_atomic", "write_json_atomic", "write_text_atomic"]


def _create_temporary(target: Path) -> Path:
    """Create an empty, exclusively new file beside `target`; it keeps `target`'s suffix."""
    while True:
        candidate = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp{target.suffix}")
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate


@contextlib.contextmanager
def atomic_path(target) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` when the block succeeds.

    The target's folder is created if missing. The temporary name keeps the target's suffix,
    so writers that choose a format from it (`model.save`, `figure.savefig`) work unchanged.
    When the block raises, the temporary file is removed and `target` is left untouched.

    Args:
        target: the final file path (str or Path).

    Returns:
        A context manager yielding the temporary `Path` to write.

    Example:
        >>> with atomic_path("runs/a/model.keras") as temporary:
        ...     model.save(temporary)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_temporary(target)
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def write_bytes_atomic(data: bytes, path) -> Path:
    """Write `data` to `path` atomically (see `atomic_path`); returns the path.

    Example:
        >>> write_bytes_atomic(b"\\x89PNG...", "out/image.png")
    """
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def write_text_atomic(text: str, path) -> Path:
    """Write `text` as UTF-8 to `path` atomically, newlines untranslated; returns the path.

    Example:
        >>> write_text_atomic("# Report\\n", "out/report.md")
    """
    with atomic_path(path) as temporary, temporary.open("w", encoding="utf-8", newline="") as out:
        out.write(text)
    return Path(path)


def write_json_atomic(obj, path) -> Path:
    """Write `obj` as indented JSON (one space, trailing newline) to `path` atomically.

    Example:
        >>> write_json_atomic({"format": 1}, "out/summary.json")
    """
    return write_text_atomic(json.dumps(obj, indent=1) + "\n", path)
