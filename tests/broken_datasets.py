"""Copies of a good dataset with one defect each that `vertseg-tf validate` reports as an error."""

import json
import shutil

import cv2
import numpy as np


def _duplicate_id(obj, root):
    obj["images"][1]["id"] = obj["images"][0]["id"]


def _centre_outside_a_1x1_image(obj, root):
    image = obj["images"][0]
    cv2.imwrite(str(root / image["file"]), np.full((1, 1), 200, np.uint8))


def _coordinates_of_1e308(obj, root):
    vertebra = obj["images"][0]["vertebrae"][0]
    vertebra["center"] = [1e308, 1e308]
    vertebra["contour"] = [[x + 1e308, y] for x, y in vertebra["contour"]]


DEFECTS = {
    "duplicate id": (_duplicate_id, "images[1].id"),
    "centre outside a 1x1 image": (_centre_outside_a_1x1_image, "images[0].vertebrae[0].center"),
    "coordinates of 1e308": (_coordinates_of_1e308, "images[0].vertebrae[0].contour"),
}


def broken_copy(dataset_dir, destination, defect):
    """Copy `dataset_dir` to `destination` with `defect` (a key of `DEFECTS`) applied.

    Returns:
        (the copy's folder, the field of the first error validate reports).
    """
    shutil.copytree(dataset_dir, destination)
    obj = json.loads((destination / "dataset.json").read_text())
    breaks, field = DEFECTS[defect]
    breaks(obj, destination)
    (destination / "dataset.json").write_text(json.dumps(obj))
    return destination, field
