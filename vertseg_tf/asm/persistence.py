"""Pickle-free ASM files: JSON metadata plus an `.npz` of plain numeric arrays.

`model.json`::

    {"format": "vertseg-asm/1", "method": "asm-g", "config": {...constructor arguments...},
     "metadata": {"patch_shape": [64, 64]}, "arrays": "model.npz", "arrays_sha256": "..."}

`model.npz` holds float64/int64 arrays only and is read with `np.load(allow_pickle=False)`,
so loading a model file never executes code. Random forests are stored as their tree arrays
(children, split feature, threshold, leaf value) and evaluated by a numpy traversal.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from vertseg_tf.atomic import atomic_path, write_json_atomic
from vertseg_tf.errors import DataError

__all__ = ["FORMAT", "load_model", "read_method", "save_model"]

FORMAT = "vertseg-asm/1"


def _arrays_path(json_path: Path) -> Path:
    return json_path.with_suffix(".npz")


def save_model(path, method: str, config: dict, metadata: dict, arrays: dict) -> Path:
    """Write `path` (JSON) and its `.npz` sibling atomically; returns the JSON path."""
    json_path = Path(path)
    if json_path.suffix != ".json":
        json_path = json_path.with_suffix(".json")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    npz_path = _arrays_path(json_path)
    with atomic_path(npz_path) as temporary:
        with temporary.open("wb") as stream:
            np.savez(stream, **{key: np.asarray(value) for key, value in arrays.items()})
        digest = hashlib.sha256(temporary.read_bytes()).hexdigest()
    document = {
        "format": FORMAT,
        "method": method,
        "config": config,
        "metadata": metadata,
        "arrays": npz_path.name,
        "arrays_sha256": digest,
    }
    write_json_atomic(document, json_path)
    return json_path


def _read_document(path) -> dict:
    json_path = Path(path)
    try:
        document = json.loads(json_path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DataError(path, f"cannot read ASM model ({error.strerror or error})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DataError(path, f"not a JSON file ({error})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise DataError(path, f"not a {FORMAT} model file", field="format")
    for key, kind in (("method", str), ("config", dict), ("metadata", dict), ("arrays", str)):
        if not isinstance(document.get(key), kind):
            raise DataError(path, f"missing or invalid {key!r}", field=key)
    return document


def read_method(path) -> str:
    """The method name ("asm-g", ...) recorded in a model JSON file."""
    return _read_document(path)["method"]


def load_model(path) -> tuple[str, dict, dict, dict[str, np.ndarray]]:
    """Read a model file: `(method, config, metadata, arrays)`; raises `DataError` if broken."""
    json_path = Path(path)
    document = _read_document(json_path)
    name = document["arrays"]
    if Path(name).name != name:
        raise DataError(path, "arrays file must sit beside the JSON file", field="arrays")
    npz_path = json_path.parent / name
    try:
        raw = npz_path.read_bytes()
    except OSError as error:
        raise DataError(npz_path, f"cannot read model arrays ({error.strerror or error})") from None
    if hashlib.sha256(raw).hexdigest() != document.get("arrays_sha256"):
        raise DataError(npz_path, "arrays do not match the checksum in the model JSON")
    try:
        with np.load(npz_path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (ValueError, OSError) as error:
        raise DataError(npz_path, f"not a valid arrays file ({error})") from None
    return document["method"], document["config"], document["metadata"], arrays
