"""`vertseg-tf segment` without --centers: the shipped locator finds the centres."""

import json

import pytest

from vertseg_tf.cli import main
from vertseg_tf.data.synthetic import generate
from vertseg_tf.locate.heatmaps import LOCATED_LEVELS, SEGMENTED_LEVELS


@pytest.mark.slow
def test_segment_without_centres_locates_records_and_reviews(tmp_path, capsys):
    dataset = generate(1, 11, tmp_path / "data", size="small", version=2, progress=False)
    image = dataset.image_path(dataset.images[0])
    assert main(["segment", str(image), "--out", str(tmp_path / "out"), "--review"]) == 0
    stored = json.loads((tmp_path / "out" / "dataset.json").read_text())["images"][0]
    levels = stored["located_levels"]
    assert list(levels) == list(LOCATED_LEVELS)
    found = [label for label, level in levels.items() if level["found"]]
    assert {v["label"] for v in stored["vertebrae"]} <= set(found) & set(SEGMENTED_LEVELS)
    printed = capsys.readouterr().out
    named = [label for label in ("C2", "T1") if label in found]
    assert ("also found, not segmented: " + ", ".join(named) in printed) == bool(named)
    missing = [label for label in LOCATED_LEVELS if label not in found]
    assert ("missing, not guessed): " + ", ".join(missing) in printed) == bool(missing)
    for vertebra in stored["vertebrae"]:
        assert vertebra["center_source"] == "locator"
        assert vertebra["center_confidence"] >= 0.3
    assert (tmp_path / "out" / "review.png").is_file()


def test_labels_without_centres_is_refused(tmp_path, capsys):
    assert main(["segment", str(tmp_path / "x.png"), "--out", str(tmp_path / "o"),
                 "--labels", "C3,C4"]) != 0
    assert "--labels needs --centers" in capsys.readouterr().err
