"""benchmarks/gpu_paper_protocol.py runs end to end where `import tensorflow` fails (JAX, CPU)."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tests.child_process import BLOCK_TENSORFLOW, REPOSITORY, child_environment
from vertseg_tf.data.dataset import load_dataset

SCRIPT = REPOSITORY / "benchmarks" / "gpu_paper_protocol.py"

# Runs the script of argv[1] with `import tensorflow...` failing.
WITHOUT_TENSORFLOW = BLOCK_TENSORFLOW + """
import runpy

sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.slow
def test_protocol_smoke_run_without_tensorflow(tmp_path):
    out, work = tmp_path / "protocol.json", tmp_path / "work"
    completed = subprocess.run(
        [sys.executable, "-c", WITHOUT_TENSORFLOW, str(SCRIPT), "--images", "6", "--epochs", "1",
         "--preset", "smoke", "--max-steps", "2", "--size", "small", "--workers", "2",
         "--work-dir", str(work), "--out", str(out)],
        capture_output=True, text=True, timeout=600, check=False,
        env=child_environment(KERAS_BACKEND="jax", JAX_PLATFORMS="cpu"),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["machine"]["keras_backend"] == "jax"
    assert report["machine"]["tensorflow_imported"] is False

    # The paper's 124:172 split, kept by every prefix: 6 images give int(6 * 124 / 296) train.
    dataset = load_dataset(work / "dataset")
    train = dataset.split("train")
    assert len(train) == 6 * 124 // 296 and len(dataset.images) == 6
    train_vertebrae = sum(len(record.vertebrae) for record in train)
    test_vertebrae = sum(len(record.vertebrae) for record in dataset.split("test"))
    assert report["data"] == {"images": {"train": len(train), "test": 6 - len(train)},
                              "train_patches": 45 * train_vertebrae,
                              "test_patches": test_vertebrae}

    # The parallel generation writes what the one-core generator makes (records, in memory).
    from vertseg_tf.data.synthetic import generate

    reference = generate(6, 0, None, size="small", progress=False)
    assert [record.id for record in dataset.images] == [r.id for r in reference.images]
    for record, expected in zip(dataset.images, reference.images):
        assert record.split == expected.split
        assert np.array_equal([v.center for v in record.vertebrae],
                              [v.center for v in expected.vertebrae])

    assert set(report["phase_seconds"]) == {
        "generation", "patches", "UNet training", "UNet evaluation", "UNet-S training",
        "UNet-S evaluation"}
    assert all(seconds > 0 for seconds in report["phase_seconds"].values())
    for method in ("UNet", "UNet-S"):
        training = report["training"][method]
        assert training["training_patches"] == 2 * 25 and training["steps_per_epoch"] == 2
        assert len(training["epoch_seconds"]) == 1
        metrics = report["test_metrics"][method]
        assert metrics["test_patches"] == test_vertebrae
        assert 0.0 <= metrics["dice_mean"] <= 1.0
        assert 0.0 <= metrics["pixel_accuracy_percent_mean"] <= 100.0
        assert 0.0 <= metrics["fit_failure_percent"] <= 100.0
