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
            {"cluster": {"chief": ["c:0"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}},
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
