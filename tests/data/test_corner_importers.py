from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.io import savemat

from vertseg_tf.cli import main
from vertseg_tf.data import load_dataset
from vertseg_tf.data.corner_importers import (
    AASCE_LEVELS,
    corner_outline,
    import_aasce,
    import_corners_csv,
)
from vertseg_tf.data.import_formats import import_dataset
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.geometry import polygon_area


def _image(path: Path, height=120, width=60) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((height, width), 128, np.uint8))
    return path


def _body(k: int, x0: float = 10.0) -> np.ndarray:
    """Vertebra k as corners TL, TR, BL, BR: a 20 x 4 box 6 px below the previous, sheared."""
    top, left = 2.0 + 6.0 * k, x0 + 0.5 * k
    return np.array([[left, top], [left + 20, top + 1], [left, top + 4], [left + 20, top + 5]])


def _p2(x0: float = 10.0) -> np.ndarray:
    return np.vstack([_body(k, x0) for k in range(17)])


def _expected(k: int, shift: float = 0.5, x0: float = 10.0):
    # TL, TR, BR, BL written out, and the mean of the four corners by hand.
    top, left = 2.0 + 6.0 * k, x0 + 0.5 * k
    outline = np.array([[left, top], [left + 20, top + 1], [left + 20, top + 5], [left, top + 4]])
    centre = np.array([left + 10.0, top + 2.5])
    return outline - shift, centre - shift


def _aasce(root: Path) -> Path:
    _image(root / "data" / "training" / "sunhl-1th-01.jpg")
    _image(root / "data" / "training" / "sunhl-1th-02.jpg")
    _image(root / "data" / "test" / "sunhl-1th-03.jpg")
    labels = root / "labels"
    for split, name, x0 in (("training", "sunhl-1th-01", 10.0), ("training", "sunhl-1th-02", 12.0),
                            ("test", "sunhl-1th-03", 14.0)):
        (labels / split).mkdir(parents=True, exist_ok=True)
        savemat(labels / split / f"{name}.jpg.mat", {"p2": _p2(x0)})
    return root


def test_corner_outline_orders_and_never_crosses():
    outline, centre = corner_outline((0, 0), (4, 1), (0, 3), (4, 4), "f", "p2")
    np.testing.assert_allclose(outline, [[0, 0], [4, 1], [4, 4], [0, 3]])
    np.testing.assert_allclose(centre, [2.0, 2.0])
    # Top-right and bottom-left swapped by the annotator: still the same simple quadrilateral.
    crossed, _ = corner_outline((0, 0), (0, 3), (4, 1), (4, 4), "f", "p2")
    np.testing.assert_allclose(crossed, [[0, 0], [4, 1], [4, 4], [0, 3]])
    assert polygon_area(crossed) == pytest.approx(12.0)
    with pytest.raises(DataError, match=r"f: p2: the four corners enclose no area"):
        corner_outline((0, 0), (1, 1), (2, 2), (3, 3), "f", "p2")
    with pytest.raises(DataError, match="finite"):
        corner_outline((0, np.nan), (1, 1), (2, 2), (3, 3), "f", "p2")


def test_aasce_mat_import_outlines_centres_and_splits(tmp_path):
    dataset = import_aasce(_aasce(tmp_path / "src"), tmp_path / "out")
    loaded = load_dataset(tmp_path / "out")
    assert [(im.id, im.split) for im in loaded.images] == [
        ("sunhl-1th-01", "train"), ("sunhl-1th-02", "train"), ("sunhl-1th-03", "test")
    ]
    assert len(dataset.images) == 3
    for image, x0 in zip(loaded.images, (10.0, 12.0, 14.0)):
        assert [v.label for v in image.vertebrae] == list(AASCE_LEVELS)
        for k, vertebra in enumerate(image.vertebrae):
            outline, centre = _expected(k, x0=x0)
            np.testing.assert_allclose(vertebra.contour, outline, atol=1e-9)
            np.testing.assert_allclose(vertebra.center, centre, atol=1e-9)
    centred = import_aasce(tmp_path / "src", tmp_path / "centred", pixel_origin="center")
    np.testing.assert_allclose(centred.images[0].vertebrae[3].center, _expected(3, 0.0)[1])


def test_aasce_csv_form_scales_fractions_by_the_image_size(tmp_path):
    root = tmp_path / "src"
    _image(root / "data" / "training" / "a.jpg", height=120, width=60)
    folder = root / "labels" / "training"
    folder.mkdir(parents=True)
    points = _p2()
    (folder / "filenames.csv").write_text("a.jpg\n")
    row = np.concatenate([points[:, 0] / 60.0, points[:, 1] / 120.0])
    (folder / "landmarks.csv").write_text(",".join(repr(float(v)) for v in row) + "\n")
    loaded = import_aasce(root, tmp_path / "out")
    for k, vertebra in enumerate(loaded.images[0].vertebrae):
        outline, centre = _expected(k)
        np.testing.assert_allclose(vertebra.contour, outline, atol=1e-9)
        np.testing.assert_allclose(vertebra.center, centre, atol=1e-9)
    (folder / "landmarks.csv").write_text(",".join(["0.5"] * 135) + "\n")
    with pytest.raises(DataError, match=r"landmarks\.csv: row 1: must hold 136 numbers"):
        import_aasce(root, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()


def test_aasce_bad_inputs_name_the_file_and_write_nothing(tmp_path):
    root = _aasce(tmp_path / "src")
    bad = root / "labels" / "test" / "sunhl-1th-03.jpg.mat"
    savemat(bad, {"p2": _p2()[:60]})
    with pytest.raises(DataError, match=r"sunhl-1th-03\.jpg\.mat: p2: must be \(68, 2\)"):
        import_aasce(root, tmp_path / "out")
    savemat(bad, {"corners": _p2()})
    with pytest.raises(DataError, match=r"sunhl-1th-03\.jpg\.mat: p2: has no 'p2'"):
        import_aasce(root, tmp_path / "out")
    bad.write_bytes(b"not a mat file")
    with pytest.raises(DataError, match=r"sunhl-1th-03\.jpg\.mat: cannot read"):
        import_aasce(root, tmp_path / "out")
    savemat(bad, {"p2": _p2()})
    (root / "data" / "test" / "sunhl-1th-03.jpg").unlink()
    with pytest.raises(DataError, match=r"sunhl-1th-03\.jpg\.mat: file: image .* not found"):
        import_aasce(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out")]


def _buu_csv(path: Path, rows) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join(str(v) for v in row) + "\n" for row in rows))
    return path


def _endplates(label_of=lambda k, end: 0):
    """Rows x1,y1,x2,y2,label: upper then lower endplate of 5 bodies, then a lone S1 top."""
    rows = []
    for k in range(5):
        tl, tr, bl, br = _body(k)
        rows.append([*tl, *tr, label_of(k, "upper")])
        rows.append([*bl, *br, label_of(k, "lower")])
    rows.append([30.0, 40.0, 50.0, 41.0, label_of(5, "upper")])
    return rows


def test_corners_csv_by_row_order_with_split_folders(tmp_path):
    src = tmp_path / "LA"
    _image(src / "train" / "0001-F-037Y1.jpg")
    _buu_csv(src / "train" / "0001-F-037Y1.csv", _endplates())
    _image(src / "test" / "0003-F-013Y1.png")
    _buu_csv(src / "test" / "0003-F-013Y1.csv", _endplates(lambda k, end: k % 2))
    loaded = import_corners_csv(src, tmp_path / "out")
    assert [(im.id, im.split, im.file) for im in loaded.images] == [
        ("0001-F-037Y1", "train", "images/0001-F-037Y1.jpg"),
        ("0003-F-013Y1", "test", "images/0003-F-013Y1.png"),
    ]
    for image in loaded.images:
        assert [v.label for v in image.vertebrae] == ["L1", "L2", "L3", "L4", "L5"]
        for k, vertebra in enumerate(image.vertebrae):
            outline, centre = _expected(k)
            np.testing.assert_allclose(vertebra.contour, outline, atol=1e-9)
            np.testing.assert_allclose(vertebra.center, centre, atol=1e-9)


def test_corners_csv_with_level_labels_and_the_cli(tmp_path, capsys):
    src = tmp_path / "src"
    _image(src / "scan.jpg")
    levels = ["C3", "C4", "C5", "C6", "C7", "S1"]
    # Lower endplate written first and right corner first: grouping and sorting undo both.
    rows = _endplates(lambda k, end: levels[k])
    rows = [rows[i ^ 1] if i < 10 else rows[i] for i in range(len(rows))]
    rows[0] = [rows[0][2], rows[0][3], rows[0][0], rows[0][1], rows[0][4]]
    _buu_csv(src / "scan.csv", rows)
    status = main(["import", "--from", "corners-csv", str(src), "--out", str(tmp_path / "out"),
                   "--split", "val", "--pixel-origin", "center"])
    assert status == 0, capsys.readouterr().err
    image = load_dataset(tmp_path / "out").images[0]
    assert image.split == "val"
    assert [v.label for v in image.vertebrae] == levels[:5]
    for k, vertebra in enumerate(image.vertebrae):
        outline, centre = _expected(k, shift=0.0)
        np.testing.assert_allclose(vertebra.contour, outline, atol=1e-9)
        np.testing.assert_allclose(vertebra.center, centre, atol=1e-9)


def test_corners_csv_bad_inputs(tmp_path, capsys):
    src = tmp_path / "src"
    _image(src / "a.jpg")
    _buu_csv(src / "a.csv", [[1, 2, 3, "x", 0]])
    with pytest.raises(DataError, match=r"a\.csv: row 1: x1, y1, x2, y2 must be numbers"):
        import_corners_csv(src, tmp_path / "out")
    _buu_csv(src / "a.csv", [[1, 2, 3]])
    with pytest.raises(DataError, match=r"a\.csv: row 1: expected x1,y1,x2,y2,label"):
        import_dataset("corners-csv", src, tmp_path / "out")
    _buu_csv(src / "a.csv", _endplates())
    (src / "a.jpg").unlink()
    with pytest.raises(DataError, match=r"a\.csv: file: no image beside it"):
        import_corners_csv(src, tmp_path / "out")
    _image(src / "a.jpg")
    with pytest.raises(ConfigError, match="first_level"):
        import_corners_csv(src, tmp_path / "out", first_level="X9")
    assert not (tmp_path / "out").exists()
    status = main(["import", "--from", "aasce", str(src), "--out", str(tmp_path / "out"),
                   "--split", "test"])
    assert status == 1
    assert "--split does not apply to --from aasce" in capsys.readouterr().err
