"""Web app latency: from `POST /segment` to the outlines, for a small film with C3-C7 clicked.

The app (`vertseg_tf.app.create_app`) is served on 127.0.0.1 in this process with the model
given (default: the shipped pretrained model); one small synthetic film (about 450 x 500 px)
is opened once, then `/segment` with its five true centres is timed `--repeats` times
(round trip over HTTP: form parsing, patch cutting, prediction, contours, read-outs, JSON),
side by side with `Segmenter.segment` alone on the same centres, interleaved round by round.
The page adds its drawing on top (the browser test records that as `five_outlines_ms`).

    python -m benchmarks.app_latency --out runs/bench/app_latency.json [--model pretrained]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path


def _post(url: str, fields: dict, files: dict | None = None) -> dict:
    boundary = uuid.uuid4().hex
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
             f"{value}\r\n".encode() for name, value in fields.items()]
    for name, (filename, content) in (files or {}).items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
                     f'filename="{filename}"\r\n\r\n'.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    request = urllib.request.Request(
        url, data=b"".join(parts), method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=120) as response:
        return json.loads(response.read())


def run(model: str = "pretrained", repeats: int = 10) -> dict:
    """Time `/segment` and `Segmenter.segment` side by side; returns the report."""
    import numpy as np

    from benchmarks.suite import machine_description
    from vertseg_tf.app.server import background_server, create_app
    from vertseg_tf.data.images import read_image
    from vertseg_tf.data.synthetic import generate
    from vertseg_tf.loading import load_model

    with tempfile.TemporaryDirectory() as folder:
        dataset = generate(1, 11, Path(folder) / "film", size="small", progress=False)
        record = dataset.images[0]
        path = dataset.image_path(record)
        data = path.read_bytes()
        image, _ = read_image(path)
    centres = np.array([v.center for v in record.vertebrae])
    segmenter = load_model(model)
    server_s, segment_s = [], []
    with background_server(create_app(segmenter)) as url:
        opened = _post(url + "/images", {}, {"image": (path.name, data)})
        fields = {"image_id": opened["image_id"], "centers": json.dumps(centres.tolist())}
        _post(url + "/segment", fields)
        for _ in range(repeats):
            start = time.perf_counter()
            answer = _post(url + "/segment", fields)
            server_s.append(time.perf_counter() - start)
            start = time.perf_counter()
            segmenter.segment(image, centres)
            segment_s.append(time.perf_counter() - start)
    return {
        "benchmark": "app_latency",
        "model": str(segmenter.source),
        "film_px": [int(image.shape[1]), int(image.shape[0])],
        "vertebrae": len(answer["vertebrae"]),
        "repeats": repeats,
        "segment_request_s": {"median": statistics.median(server_s), "max": max(server_s)},
        "segmenter_only_s": {"median": statistics.median(segment_s), "max": max(segment_s)},
        "request_over_segmenter": statistics.median(server_s) / statistics.median(segment_s),
        "target_s": 1.0,
        "machine": machine_description(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, metavar="FILE.json")
    parser.add_argument("--model", default="pretrained")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args(argv)
    from vertseg_tf.atomic import write_json_atomic

    report = run(args.model, args.repeats)
    write_json_atomic(report, Path(args.out))
    print(json.dumps({k: report[k] for k in ("model", "film_px", "segment_request_s",
                                             "segmenter_only_s")}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
