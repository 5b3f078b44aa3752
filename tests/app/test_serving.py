"""`--serving-url`: the patches go to a TF Serving REST endpoint (a fake one on 127.0.0.1)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import uvicorn

from tests.app.conftest import Server
from vertseg_tf.cli import main
from vertseg_tf.deploy import Segmenter
from vertseg_tf.deploy.serving import serving_predictor
from vertseg_tf.errors import DataError


def bright_pixels(patches: np.ndarray) -> np.ndarray:
    """A stand-in network: vertebra probability = sigmoid(4 x normalised intensity)."""
    vertebra = 1.0 / (1.0 + np.exp(-4.0 * patches[..., 0]))
    return np.stack([1.0 - vertebra, vertebra], axis=-1).astype(np.float32)


class FakeServing:
    """TF Serving's REST predict in row format, for model `vertseg` only."""

    def __init__(self):
        self.requests = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append((self.path, body))
                if self.path != "/v1/models/vertseg:predict":
                    self.send_error(404, "Servable not found")
                    return
                patches = np.asarray(body["instances"], dtype=np.float32)
                reply = json.dumps({"predictions": bright_pixels(patches).tolist()}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args):
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.http.server_address[1]}"
        self.thread = threading.Thread(target=self.http.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def serving():
    with FakeServing() as fake:
        yield fake


def test_patches_go_to_tf_serving_and_the_outlines_match_a_local_model(serving, png_film):
    predict = serving_predictor(serving.base + "/v1/models/vertseg")
    patches = np.random.default_rng(0).normal(size=(3, 64, 64, 1)).astype(np.float32)
    np.testing.assert_allclose(predict(patches), bright_pixels(patches), rtol=1e-6)
    path, body = serving.requests[-1]
    assert path == "/v1/models/vertseg:predict" and body["signature_name"] == "serving_default"
    remote = Segmenter(predict).segment(png_film.image, png_film.centers)
    local = Segmenter(bright_pixels).segment(png_film.image, png_film.centers)
    for got, expected in zip(remote, local):
        np.testing.assert_allclose(got.contour, expected.contour, atol=1e-6)
        assert got.flags == expected.flags


def test_serving_errors_name_the_endpoint(serving):
    patches = np.zeros((1, 64, 64, 1), np.float32)
    with pytest.raises(DataError, match="answered HTTP 404"):
        serving_predictor(serving.base + "/v1/models/other")(patches)
    closed = serving.base.rsplit(":", 1)[0] + ":9"
    with pytest.raises(DataError, match="cannot reach TF Serving"):
        serving_predictor(closed + "/v1/models/vertseg", timeout_s=2)(patches)
    with pytest.raises(DataError, match="http:// or https://"):
        serving_predictor("127.0.0.1:8501/v1/models/vertseg")


def test_the_app_command_serves_a_tf_serving_model(serving, png_film, monkeypatch):
    started = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.update(app=app,
                                                                              **options))
    url = serving.base + "/v1/models/vertseg"
    assert main(["app", "--serving-url", url, "--port", "8123"]) == 0
    assert (started["host"], started["port"]) == ("127.0.0.1", 8123)
    with Server(started["app"]) as app:
        assert app.json("/api/info")[1]["model"] == url
        status, answer = app.json("/segment", fields={
            "centers": json.dumps(png_film.centers.tolist())},
            files={"image": ("film.png", png_film.path.read_bytes())})
    assert status == 200, answer
    local = Segmenter(bright_pixels).segment(png_film.image, png_film.centers)
    for got, expected in zip(answer["vertebrae"], local):
        np.testing.assert_allclose(got["contour"], expected.contour, atol=1e-3)
