import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from tests.child_process import child_environment
from vertseg_tf.errors import ConfigError
from vertseg_tf.training import TRAIN_PRESETS

# Trains the smoke preset, with the JSON overrides of argv[4], once per strategy of argv[5:]
# in one process that has two logical CPUs (MirroredStrategy uses both: two replicas).
TWO_CPU_SCRIPT = textwrap.dedent(
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

    dataset, out, cache, overrides = sys.argv[1:5]
    report = {}
    for strategy in sys.argv[5:]:
        config = TRAIN_PRESETS["smoke"].replace(strategy=strategy, **json.loads(overrides))
        result = train(config, dataset, f"{out}/{strategy}", cache_dir=cache)
        report[strategy] = {"replicas": make_strategy(strategy).num_replicas_in_sync,
                            "final": result["final"]}
    print(json.dumps(report))
    """
)


def _train_on_two_cpus(dataset, out, cache, overrides, *strategies):
    """Run `TWO_CPU_SCRIPT`; its report: per strategy, the replicas and the final metrics."""
    completed = subprocess.run(
        [sys.executable, "-c", TWO_CPU_SCRIPT, str(dataset), str(out), str(cache),
         json.dumps(overrides), *strategies],
        env=child_environment(cpu_only=True, TF_CPP_MIN_LOG_LEVEL="2"), capture_output=True,
        text=True, timeout=600, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_two_replicas_take_one_process_first_step(tiny_dataset, patch_cache, tmp_path):
    # One step on one batch of 10 patches: one replica, and two replicas of 5 each.
    report = _train_on_two_cpus(
        tiny_dataset, tmp_path, patch_cache, {"epochs": 1, "max_train_patches": 10},
        "default", "mirrored",
    )
    assert report["default"]["replicas"] == 1 and report["mirrored"]["replicas"] == 2
    assert (tmp_path / "mirrored" / "model.keras").is_file()
    # From the same initial weights the first step's loss is the same sum, grouped per
    # replica: float32 rounding, 1.5e-6 relative measured. Batch statistics per replica
    # instead of over the global batch, or the loss averaged over the replica's 5 patches
    # instead of the global 10, change it by far more than 1e-5.
    one, two = report["default"]["final"]["loss"], report["mirrored"]["final"]["loss"]
    assert two == pytest.approx(one, rel=1e-5)


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


def _weights(model_path):
    """Every weight of a saved model, batch-norm statistics included."""
    from vertseg_tf.models_io import load_keras_model

    return load_keras_model(model_path).get_weights()


@pytest.mark.slow
def test_two_workers_train_the_smoke_preset_like_one_process(
    tiny_dataset, patch_cache, tmp_path
):
    # The reference: one process, the same global batches of 10, split over two replicas.
    reference = _train_on_two_cpus(
        tiny_dataset, tmp_path, patch_cache, {"deterministic": True}, "mirrored"
    )
    assert reference["mirrored"]["replicas"] == 2
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(
            _train_command(tiny_dataset, tmp_path / f"worker{index}", patch_cache,
                           "--strategy", "multiworker"),
            env=child_environment(cpu_only=True, TF_CPP_MIN_LOG_LEVEL="2",
                                  TF_CONFIG=json.dumps(tf_config)),
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
    # Both runs do the same float32 operations in the same order; with two replicas each
    # all-reduce is one (commutative) addition, so the weights agree to the last bit (0
    # measured). 1e-6 leaves room for a platform's last-bit differences. A real defect (a
    # worker on the wrong half of the batch, statistics or gradients not shared between the
    # workers) moves them by far more: merely reversing the patches inside each batch, the
    # smallest change of rounding, moves them by 0.04 after these 20 RMSprop steps. (For the
    # same reason the weights are not compared with a one-replica run: see docs/cli.md.)
    for ours, theirs in zip(_weights(chief / "model.keras"),
                            _weights(tmp_path / "mirrored" / "model.keras"), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    assert summary["final"]["loss"] == pytest.approx(reference["mirrored"]["final"]["loss"],
                                                     rel=1e-6)
