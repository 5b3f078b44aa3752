"""`vertseg-tf segment` without --centers: the shipped locator finds the centres."""

import json

import pytest

from vertseg_tf.cli import main
from vertseg_tf.data.synthetic import generate


@pytest.mark.slow
def test_segment_without_centres_locates_records_and_reviews(tmp_path, capsys):
    dataset = generate(1, 11, tmp_path / "data", size="small", version=2, progress=False)
    image = dataset.image_path(dataset.images[0])
    assert main(["segment", str(image), "--out", str(tmp_path / "out"), "--review"]) == 0
    stored = json.loads((tmp_path / "out" / "dataset.json").read_text())["images"][0]
    levels = stored["located_levels"]
    assert list(levels) == ["C3", "C4", "C5", "C6", "C7"]
    found = [label for label, level in levels.items() if level["found"]]
    assert {v["label"] for v in stored["vertebrae"]} <= set(found)
    for vertebra in stored["vertebrae"]:
        assert vertebra["center_source"] == "locator"
        assert vertebra["center_confidence"] >= 0.3
    assert (tmp_path / "out" / "review.png").is_file()


def test_labels_without_centres_is_refused(tmp_path, capsys):
    assert main(["segment", str(tmp_path / "x.png"), "--out", str(tmp_path / "o"),
                 "--labels", "C3,C4"]) != 0
    assert "--labels needs --centers" in capsys.readouterr().err
