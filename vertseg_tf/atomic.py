"""Atomic writes: write to a temporary name beside the target, then rename.

A reader never sees a half-written file or folder: either the old content or the new one. The
temporary lives in the target's folder (so `os.replace` is a rename on one file system), starts
with a dot (so dataset scans and globs skip it) and is removed when the write fails.

Permissions: temporary files are created with mode 0o666 and folders with 0o777, filtered by the
process umask, as `open(path, "w")` and `mkdir` would create them (typically 0o644 and 0o755).
`tempfile.mkstemp`/`mkdtemp` would give 0o600/0o700, which hides written images, datasets,
reports and models from other users of a shared machine.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from vertseg_tf.errors import ConfigError
from vertseg_tf.interrupts import raise_if_interrupted

__all__ = [
    "atomic_dir",
    "atomic_path",
    "require_new_folder",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


def _create_temporary(target: Path, *, folder: bool = False) -> Path:
    """Create a new hidden file (or folder) beside `target`, keeping `target`'s suffix."""
    while True:
        candidate = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp{target.suffix}")
        try:
            if folder:
                os.mkdir(candidate, 0o777)
            else:
                os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return candidate


@contextlib.contextmanager
def atomic_path(target) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` when the block succeeds.

    The target's folder is created if missing. The temporary name keeps the target's suffix,
    so writers that choose a format from it (`model.save`, `figure.savefig`) work unchanged.
    When the block raises, or an interrupt arrived during it (see `vertseg_tf.interrupts`),
    the temporary file is removed and `target` is left untouched.

    Args:
        target: the final file path (str or Path).

    Returns:
        A context manager yielding the temporary `Path` to write.

    Example (needs a model, so not run as a doctest):
        >>> with atomic_path("runs/a/model.keras") as temporary:  # doctest: +SKIP
        ...     model.save(temporary)
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = _create_temporary(target)
    try:
        yield temporary
        raise_if_interrupted()
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(target, *, replace: bool = False) -> Iterator[Path]:
    """Yield a new hidden folder beside `target`; rename it onto `target` when the block succeeds.

    Without `replace`, `target` may exist only as an empty folder (it is removed first); any
    other existing `target` raises `FileExistsError` before the block runs (and the final
    rename fails with `OSError` should one appear meanwhile). With `replace`, an existing
    `target` folder is swapped out and deleted after the new one is in place. When the block
    raises, or an interrupt arrived during it (see `vertseg_tf.interrupts`), the temporary
    folder and everything in it is removed and `target` is left as it was.

    Args:
        target: the final folder path (str or Path); its parent is created if missing.
        replace: swap out an existing non-empty `target` instead of failing.

    Returns:
        A context manager yielding the temporary folder's `Path` to fill.

    Example:
        >>> with atomic_dir("runs/report", replace=True) as building:
        ...     _ = write_text_atomic("# Report\\n", building / "report.md")
        >>> [path.name for path in Path("runs/report").iterdir()]
        ['report.md']
    """
    target = Path(target)
    if not replace and target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise FileExistsError(
            errno.EEXIST, "exists and is not an empty folder; nothing was changed", str(target)
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    building = _create_temporary(target, folder=True)
    try:
        yield building
        raise_if_interrupted()
        if replace and target.exists():
            retired = _create_temporary(target, folder=True)
            os.replace(target, retired / target.name)
            os.replace(building, target)
            shutil.rmtree(retired)
        else:
            if target.is_dir() and not any(target.iterdir()):
                target.rmdir()
            os.replace(building, target)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise


def require_new_folder(target, *, overwrite: bool = False) -> Path:
    """Refuse, before any work, an output folder a command may not fill.

    A command may create `target` when it does not exist or is an empty folder; an existing
    non-empty folder only with `overwrite` (the command's `--overwrite`), and an existing
    file never. The nearest existing ancestor must be writable.

    Args:
        target: the output folder the command will build with `atomic_dir`.
        overwrite: the user asked to replace an existing folder.

    Returns:
        `target` as a `Path`.

    Raises:
        ConfigError: naming `target`, when it may not be written; nothing is changed.

    Example:
        >>> out = require_new_folder("runs/report", overwrite=False)
    """
    target = Path(target)
    if target.exists() and not target.is_dir():
        raise ConfigError(f"{target}: exists and is not a folder; choose another output folder")
    if target.is_dir() and any(target.iterdir()) and not overwrite:
        raise ConfigError(
            f"{target}: folder exists and is not empty; nothing was changed "
            "(pass --overwrite to replace it, or choose a new folder)"
        )
    ancestor = target.parent if target.exists() else target
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ConfigError(f"{target}: cannot write here ({ancestor}: permission denied)")
    return target


def write_bytes_atomic(data: bytes, path) -> Path:
    """Write `data` to `path` atomically (see `atomic_path`); returns the path.

    Example:
        >>> write_bytes_atomic(b"\\x89PNG...", "out/image.png").as_posix()
        'out/image.png'
    """
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)
    return Path(path)


def write_text_atomic(text: str, path) -> Path:
    """Write `text` as UTF-8 to `path` atomically, newlines untranslated; returns the path.

    Example:
        >>> write_text_atomic("# Report\\n", "out/report.md").as_posix()
        'out/report.md'
    """
    with atomic_path(path) as temporary, temporary.open("w", encoding="utf-8", newline="") as out:
        out.write(text)
    return Path(path)


def write_json_atomic(obj, path) -> Path:
    """Write `obj` as indented JSON (one space, trailing newline) to `path` atomically.

    Example:
        >>> write_json_atomic({"format": 1}, "out/summary.json").read_text()
        '{\\n "format": 1\\n}\\n'
    """
    return write_text_atomic(json.dumps(obj, indent=1) + "\n", path)
