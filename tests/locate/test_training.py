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


def _dotted_film(rows, shape=(200, 150), x=70.0):
    """A film with a small bright disc at (x, row) for every row: the levels' centres."""
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    image = np.zeros(shape, np.float32)
    for row in rows:
        image += np.exp(-((xx - x) ** 2 + (yy - row) ** 2) / (2 * 1.5**2)).astype(np.float32)
    return image, np.array([[x, row] for row in rows], float)


@pytest.mark.parametrize(("bottom", "top"), [(1.0, 0.0), (0.0, 1.0), (1.0, 1.0)])
def test_a_cut_film_drops_the_levels_cut_off_and_keeps_the_others_on_their_pixels(
        monkeypatch, bottom, top):
    from vertseg_tf.locate import training

    monkeypatch.setattr(training, "BOTTOM_CUT_PROBABILITY", bottom)
    monkeypatch.setattr(training, "TOP_CUT_PROBABILITY", top)
    rows = [20.0, 45.0, 70.0, 95.0, 120.0, 145.0, 170.0]
    image, xy = _dotted_film(rows)
    cut, moved, absent = training.cut_film(image, xy, LOCATED_LEVELS,
                                           np.random.default_rng(3), long_side=128)
    assert max(cut.shape) == 128 and abs(float(cut.mean())) < 1e-5
    # a bottom cut lies between C5 and T1 (C2-C5 stay), a top cut between C2 and C4
    kept = [label for label, gone in zip(LOCATED_LEVELS, absent) if not gone]
    assert ("T1" not in kept) == bool(bottom) and ("C2" not in kept) == bool(top)
    assert {"C4", "C5"} <= set(kept)
    assert np.isnan(moved[absent]).all()
    for x, y in moved[~absent]:
        row, col = round(y), round(x)
        window = cut[max(row - 3, 0):row + 4, max(col - 3, 0):col + 4]
        assert window.max() == pytest.approx(cut[row, col], abs=0.05 * float(cut.max()))


def test_a_level_cut_off_gets_a_uniform_target_and_an_unannotated_one_none(monkeypatch):
    from vertseg_tf.locate import training
    from vertseg_tf.locate.network import LOCATOR_SPECS

    monkeypatch.setattr(training, "BOTTOM_CUT_PROBABILITY", 1.0)
    monkeypatch.setattr(training, "TOP_CUT_PROBABILITY", 0.0)
    image, xy = _dotted_film([8.0, 16.0, 24.0, 32.0, 40.0, 48.0, 56.0], (64, 48), 20.0)
    xy[0] = np.nan  # C2 not annotated
    _, targets = training._batch([image], [xy], LOCATOR_SPECS["smoke"],
                                 np.random.default_rng(0), LOCATED_LEVELS)
    target = targets[0]
    assert not target[..., 0].any()
    assert (target[..., 6] == 1.0).all()  # T1 is below every bottom cut
    # C3 is on the film: a Gaussian (peak near 1 at off-grid centres, little mass elsewhere)
    assert target[..., 1].max() > 0.5 and target[..., 1].sum() < 0.05 * target[..., 1].size
