"""`train --method locator` end to end on a tiny synthetic v2 set, and its resume."""

import numpy as np
import pytest

from vertseg_tf.data.synthetic import generate
from vertseg_tf.locate.heatmaps import LOCATED_LEVELS
from vertseg_tf.locate.locator import Locator
from vertseg_tf.training import train
from vertseg_tf.training.config import LOCATOR_PRESETS
from vertseg_tf.training.run_folder import RunFolder


@pytest.fixture(scope="module")
def films(tmp_path_factory):
    out = tmp_path_factory.mktemp("locator") / "v2"
    generate(6, 3, out, size="small", version=2, split_ratio=(2, 1), progress=False)
    return out


@pytest.mark.slow
def test_smoke_training_writes_the_run_folder_and_resumes(films, tmp_path):
    config = LOCATOR_PRESETS["smoke"]
    run = tmp_path / "run"
    first = train(config.replace(epochs=1), films, run)
    folder = RunFolder(run)
    assert first["method"] == "locator" and first["epochs"] == 1
    assert folder.model_path.is_file() and folder.checkpoint_dir("last.keras").is_file()
    assert first["data"]["train_images"] + first["data"]["val_images"] == 4
    row_one = folder.read_history()[0]

    resumed = train(config, films, run, resume=True)
    history = folder.read_history()
    assert resumed["epochs"] == 2 and [row["epoch"] for row in history] == [1, 2]
    assert history[0] == row_one
    assert folder.finished_model_path() == folder.model_path

    image = np.random.default_rng(0).uniform(0, 1, (120, 90))
    located = Locator(run, threshold=0.0).locate(image)
    # the generator records C2 and T1 beside the outlined C3-C7: seven channels
    assert [level.label for level in located] == list(LOCATED_LEVELS)
    # the chain decoder may leave a level out even at threshold 0 (two levels never share a
    # vertebra); every level it places lies on the image
    placed = [level for level in located if level.found]
    assert placed
    for level in placed:
        assert 0 <= level.center[0] <= 89 and 0 <= level.center[1] <= 119
