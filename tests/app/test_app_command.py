"""`vertseg-tf app` as a user starts it: a separate process serving the page (slow)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_the_command_serves_the_page_with_the_pretrained_model(tmp_path):
    port = _free_port()
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "vertseg_tf", "app", "--port", str(port)], cwd=tmp_path,
        env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while True:
            try:
                info = json.load(urllib.request.urlopen(url + "/api/info", timeout=5))
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("vertseg-tf app did not start: " + process.stdout.read())
                time.sleep(0.5)
        assert info["model"] == "pretrained" and info["find"] in (True, False)
        page = urllib.request.urlopen(url + "/", timeout=10).read().decode()
        assert "<title>vertseg-tf</title>" in page and "/static/app.js" in page
        script = urllib.request.urlopen(url + "/static/app.js", timeout=10).read()
        assert b"window.vertseg" in script
    finally:
        process.terminate()
        process.wait(30)
    assert list(tmp_path.iterdir()) == []  # the server wrote nothing where it ran
