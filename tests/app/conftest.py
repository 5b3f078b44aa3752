"""Shared pieces of the web-app tests: a synthetic film, a stand-in model, a live server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import numpy as np
import pytest

from vertseg_tf.app.server import background_server
from vertseg_tf.data.images import read_image
from vertseg_tf.data.patches import extract_patches
from vertseg_tf.data.synthetic import generate
from vertseg_tf.deploy import Segmenter


class Film:
    """A small synthetic film with its true centres and a model that returns the true masks
    of the first N vertebrae for N patches (exact when the centres are the true ones)."""

    def __init__(self, folder: Path, image_format: str):
        dataset = generate(1, 5, folder, size="small", image_format=image_format,
                           hard_fraction=0.0, facing="left", progress=False)
        self.record = dataset.images[0]
        self.path = dataset.image_path(self.record)
        self.image, self.meta = read_image(self.path)
        self.centers = np.array([v.center for v in self.record.vertebrae])
        truth = extract_patches(self.image, self.centers,
                                [v.contour for v in self.record.vertebrae]).masks
        self.truth_masks = truth.astype(np.float32)

    def model(self, patches):
        masks = self.truth_masks[:len(patches)]
        return np.stack([1.0 - masks, masks], axis=-1)

    def segmenter(self) -> Segmenter:
        return Segmenter(self.model)


@pytest.fixture(scope="session")
def png_film(tmp_path_factory):
    return Film(tmp_path_factory.mktemp("app_png") / "data", "png")


@pytest.fixture(scope="session")
def dicom_film(tmp_path_factory):
    return Film(tmp_path_factory.mktemp("app_dicom") / "data", "dicom")


class Server:
    """`background_server(app)` with request helpers for the tests."""

    def __init__(self, app):
        self._running = background_server(app)

    def __enter__(self):
        self.url = self._running.__enter__()
        return self

    def __exit__(self, *exc):
        return self._running.__exit__(*exc)

    def request(self, path: str, *, fields: dict | None = None, files: dict | None = None,
                body: bytes | None = None, headers: dict | None = None):
        """(status, headers, body bytes) of a GET, or of a multipart POST with `fields`
        and `files` ({name: (filename, bytes)}), or of a POST of raw `body`."""
        data, sent = body, dict(headers or {})
        if fields is not None or files is not None:
            data, sent["Content-Type"] = multipart(fields or {}, files or {})
        request = urllib.request.Request(self.url + path, data=data, headers=sent,
                                         method="GET" if data is None else "POST")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def json(self, path: str, **kwargs):
        status, _, content = self.request(path, **kwargs)
        return status, json.loads(content)


def multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
                     f"{value}\r\n".encode())
    for name, (filename, content) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
                     .encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"
