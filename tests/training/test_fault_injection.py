"""Fault injection: real SIGKILLs (and a Ctrl-C) at seeded random points of train, export, synth.

- train: five kills drawn from a seed, at an optimisation step or inside a checkpoint write
  (after TensorFlow wrote the checkpoint files, before it recorded them), each followed by a
  resume; with `deterministic` the final weights equal an uninterrupted run's, exactly.
- export and synth: killed mid-way, no version folder or dataset is visible; a rerun succeeds.
- export: Ctrl-C while the SavedModel is being written exits 130 with no version folder.

Every process is a real child killed by the operating system: nothing is simulated.
"""

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from tests.child_process import child_environment

pytestmark = pytest.mark.slow

SEED = 20261202

# Runs `train` on the smoke preset (40 patches in batches of 10: 4 steps per epoch, 8 in all,
# a checkpoint every 2 steps) and SIGKILLs itself at its COUNT-th optimisation step or at its
# COUNT-th checkpoint record (KIND "step" / "checkpoint"; "none" runs to the end).
TRAIN_SCRIPT = textwrap.dedent(
    """
    import os, signal, sys

    from tensorflow.python.checkpoint import checkpoint_management

    kind, count, dataset, out, cache, resume = sys.argv[1:7]
    count = int(count)
    calls = {"step": 0, "checkpoint": 0}


    def maybe_die(what):
        calls[what] += 1
        if kind == what and calls[what] == count:
            os.kill(os.getpid(), signal.SIGKILL)


    record_state = checkpoint_management.update_checkpoint_state_internal


    def record_then_maybe_die(*args, **kwargs):
        maybe_die("checkpoint")  # the checkpoint files are written, the record is not
        return record_state(*args, **kwargs)


    checkpoint_management.update_checkpoint_state_internal = record_then_maybe_die

    from vertseg_tf.training import TRAIN_PRESETS, train

    config = TRAIN_PRESETS["smoke"].replace(
        max_train_patches=40, checkpoint_every_steps=2, deterministic=True
    )
    train(config, dataset, out, resume=resume == "resume", cache_dir=cache,
          step_callback=lambda step: maybe_die("step"))
    """
)


def _environment(tmp_path):
    return child_environment(cpu_only=True, TF_CPP_MIN_LOG_LEVEL="2",
                             VERTSEG_TF_CACHE=str(tmp_path / "cache"))


def _train(tmp_path, kind, count, dataset, out, cache, resume):
    return subprocess.run(
        [sys.executable, "-c", TRAIN_SCRIPT, kind, str(count), str(dataset), str(out),
         str(cache), "resume" if resume else "fresh"],
        check=False, env=_environment(tmp_path), capture_output=True, text=True, timeout=600,
    )


def kill_plan(seed=SEED, kills=5):
    """`kills` (kind, count) pairs from `seed`; one of them is inside a checkpoint write."""
    rng = np.random.default_rng(seed)
    kinds = list(rng.choice(["step", "checkpoint"], kills))
    kinds[int(rng.integers(kills))] = "checkpoint"
    counts = rng.integers(1, 3, kills)  # small, so the run never finishes before a kill
    return [(str(kind), int(count)) for kind, count in zip(kinds, counts, strict=True)]


def _weights(run_dir):
    from vertseg_tf.models_io import load_keras_model

    return load_keras_model(run_dir / "model.keras").get_weights()


@pytest.fixture(scope="module")
def runs(tiny_dataset, tmp_path_factory):
    """The uninterrupted run, and the run killed five times and resumed after each kill."""
    root = tmp_path_factory.mktemp("faults")
    cache = root / "patch-cache"
    straight = _train(root, "none", 0, tiny_dataset, root / "straight", cache, resume=False)
    assert straight.returncode == 0, straight.stderr[-2000:]
    killed_dir, outcomes = root / "killed", []
    for index, (kind, count) in enumerate(kill_plan()):
        result = _train(root, kind, count, tiny_dataset, killed_dir, cache, resume=index > 0)
        outcomes.append(result.returncode)
    final = _train(root, "none", 0, tiny_dataset, killed_dir, cache, resume=True)
    assert final.returncode == 0, final.stderr[-2000:]
    return root / "straight", killed_dir, outcomes


def test_training_killed_five_times_resumes_to_the_uninterrupted_weights(runs):
    straight, killed, outcomes = runs
    assert outcomes == [-signal.SIGKILL] * 5, outcomes  # every kill really happened
    assert any(kind == "checkpoint" for kind, _ in kill_plan())
    for resumed, reference in zip(_weights(killed), _weights(straight), strict=True):
        np.testing.assert_array_equal(resumed, reference)
    history = (killed / "history.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in history[1:]] == ["1", "2"]
    assert not [p for p in killed.rglob(".*") if p.is_file()]


def _cli(tmp_path, *arguments):
    return subprocess.Popen(
        [sys.executable, "-m", "vertseg_tf", *arguments], env=_environment(tmp_path),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _signal_after(process, marker, signum, delay):
    """Send `signum` `delay` seconds after `marker` appears on the process's stderr."""
    seen = []
    for line in process.stderr:
        seen.append(line)
        if marker in line:
            time.sleep(delay)
            process.send_signal(signum)
            break
    process.wait(timeout=600)
    return "".join(seen) + process.stderr.read()


def _visible(folder: Path):
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) if (
        folder.exists()) else []


def test_export_killed_mid_way_leaves_no_version_and_a_rerun_succeeds(runs, tmp_path):
    straight, _, _ = runs
    delay = float(np.random.default_rng(SEED + 1).uniform(0.0, 2.0))
    models = tmp_path / "models"
    process = _cli(tmp_path, "export", str(straight), "--out", str(models), "--version", "1",
                   "--tflite", "")
    stderr = _signal_after(process, "writing the SavedModel", signal.SIGKILL, delay)
    assert process.returncode == -signal.SIGKILL, stderr[-2000:]
    assert _visible(models) == []
    rerun = _cli(tmp_path, "export", str(straight), "--out", str(models), "--version", "1",
                 "--tflite", "")
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-2000:]
    assert _visible(models) == ["1"]
    assert json.loads((models / "1" / "manifest.json").read_text())["parity"]["saved_model"][
        "passed"]


def test_ctrl_c_while_the_saved_model_is_written_exits_130_with_nothing_written(runs, tmp_path):
    straight, _, _ = runs
    models = tmp_path / "models"
    process = _cli(tmp_path, "export", str(straight), "--out", str(models), "--version", "1",
                   "--tflite", "")
    stderr = _signal_after(process, "writing the SavedModel", signal.SIGINT, 0.5)
    assert process.returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr
    assert _visible(models) == []


def test_synth_killed_mid_way_leaves_no_dataset_and_a_rerun_succeeds(tmp_path):
    from vertseg_tf.data.dataset import validate_dataset

    delay = float(np.random.default_rng(SEED + 2).uniform(0.0, 0.2))
    out = tmp_path / "synthetic"
    arguments = ("synth", "--out", str(out), "--images", "60", "--size", "small")
    process = _cli(tmp_path, *arguments)
    # The kill comes once the first film is written under the dataset's hidden name, so it
    # lands mid-way however fast the machine is (60 films take seconds, the delay < 0.2 s).
    while not list(tmp_path.glob(".synthetic.*.tmp/**/*.png")) and process.poll() is None:
        time.sleep(0.02)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == -signal.SIGKILL, stderr[-2000:]
    assert _visible(tmp_path) == []
    rerun = _cli(tmp_path, *arguments)
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-2000:]
    assert not [p for p in validate_dataset(out) if p.is_error]
    assert len(json.loads((out / "dataset.json").read_text())["images"]) == 60


def test_training_killed_before_its_first_checkpoint_resumes(runs, tiny_dataset, tmp_path):
    straight, _, _ = runs
    cache = straight.parent / "patch-cache"
    run_dir = tmp_path / "run"
    killed = _train(tmp_path, "step", 1, tiny_dataset, run_dir, cache, resume=False)
    assert killed.returncode == -signal.SIGKILL
    assert not (run_dir / "checkpoints" / "last" / "checkpoint").exists()
    resumed = _train(tmp_path, "none", 0, tiny_dataset, run_dir, cache, resume=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    for weights, reference in zip(_weights(run_dir), _weights(straight), strict=True):
        np.testing.assert_array_equal(weights, reference)


def test_ctrl_c_during_training_exits_130_and_resumes(runs, tiny_dataset, tmp_path):
    straight, _, _ = runs
    cache = straight.parent / "patch-cache"
    run_dir = tmp_path / "run"
    arguments = ("train", "--preset", "smoke", "--dataset", str(tiny_dataset), "--out",
                 str(run_dir), "--cache-dir", str(cache))
    process = _cli(tmp_path, *arguments)
    while not (run_dir / "checkpoints" / "last" / "checkpoint").exists():
        assert process.poll() is None, process.stderr.read()[-2000:]
        time.sleep(0.05)  # Ctrl-C once training is under way, after its first checkpoint
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 130, stderr[-2000:]
    assert "interrupted" in stderr
    assert not (run_dir / "model.keras").exists() and not (run_dir / "summary.json").exists()
    rerun = _cli(tmp_path, *arguments, "--resume")
    _, err = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, err[-2000:]
    assert json.loads((run_dir / "summary.json").read_text())["epochs"] == 2
