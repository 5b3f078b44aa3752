"""Generator v2: mirrored facing, ground truth for morphometry, exact hard share, versions."""

import math
from itertools import pairwise

import cv2
import numpy as np
import pytest

from vertseg_tf.data.dataset import HARD_CONDITIONS
from vertseg_tf.data.patches import extract_patches
from vertseg_tf.data.synthetic import default_dataset_path, generate, synthesize
from vertseg_tf.data.synthetic.anatomy import (
    FRACTURE_STATION,
    LEVELS,
    SIX_POINTS,
    BodyParams,
    Fracture,
    Level,
    Spine,
    body_outline,
    six_points,
)
from vertseg_tf.data.synthetic.conditions import (
    FRACTURE_GRADES,
    fracture_v2,
    sample_conditions_v2,
)
from vertseg_tf.data.synthetic.generator import PAPER_SPLIT, _hard_levels, _split, cache_key
from vertseg_tf.data.synthetic.scene_v2 import _apply_listhesis
from vertseg_tf.errors import ConfigError

ANNOTATED = ("C3", "C4", "C5", "C6", "C7")


def _without_jpeg(seed, no_text=False):
    """The first index whose v2 film is not JPEG-compressed (and, with `no_text`, has no text)."""
    index = 0
    while True:
        extra = synthesize(seed, index, size="small", facing="left").record.extra["synthetic"]
        if extra["jpeg_quality"] is None and not (no_text and extra["text"]):
            return index
        index += 1


def _text_mask(shape, item, mirrored):
    mask = np.zeros(shape, bool)
    for entry in item.record.extra["synthetic"]["text"]:
        x0, y0, x1, y1 = entry["box"]
        if mirrored:
            x0, x1 = shape[1] - 1 - x1, shape[1] - 1 - x0
        mask[y0 : y1 + 1, x0 : x1 + 1] = True
    return mask


def test_right_facing_film_is_the_mirror_of_the_left_facing_one():
    # Text is burned in after mirroring (so it reads the right way round): compare outside it.
    seed = 4
    index = _without_jpeg(seed)
    left = synthesize(seed, index, size="small", facing="left", hard_fraction=1.0)
    right = synthesize(seed, index, size="small", facing="right", hard_fraction=1.0)
    assert (left.record.extra["facing"], right.record.extra["facing"]) == ("left", "right")
    cols = left.image.shape[1]
    mirrored_left = left.image[:, ::-1]
    text = _text_mask(left.image.shape, left, True) | _text_mask(right.image.shape, right, False)
    assert (~text).mean() > 0.9
    np.testing.assert_array_equal(mirrored_left[~text], right.image[~text])
    for a, b in zip(left.record.vertebrae, right.record.vertebrae):
        np.testing.assert_allclose(b.contour[:, 0], (cols - 1) - a.contour[:, 0], atol=1e-6)
        np.testing.assert_allclose(b.contour[:, 1], a.contour[:, 1], atol=1e-6)
        for name in SIX_POINTS:
            pa, pb = a.extra["truth"]["six_points"][name], b.extra["truth"]["six_points"][name]
            np.testing.assert_allclose([pb[0], pb[1]], [(cols - 1) - pa[0], pa[1]], atol=1e-6)


def test_right_facing_patches_are_mirrored_patches():
    # Patch geometry is a rotation and a scale, never a reflection: a right-facing patient's
    # patch is the left-facing one flipped left to right (the patch's x axis is across the spine).
    seed = 4
    index = _without_jpeg(seed, no_text=True)
    items = [synthesize(seed, index, size="small", facing=f) for f in ("left", "right")]
    patches = []
    for item in items:
        vertebrae = item.record.vertebrae
        patches.append(extract_patches(item.image.astype(np.float32),
                                       np.array([v.center for v in vertebrae]),
                                       [v.contour for v in vertebrae]))
    left, right = patches
    np.testing.assert_allclose(right.images, left.images[:, :, ::-1], atol=0.02)
    np.testing.assert_array_equal(right.masks, left.masks[:, :, ::-1])


def _polygon_distance(point, polygon):
    a, b = polygon, np.roll(polygon, -1, axis=0)
    ab = b - a
    t = np.clip(((point - a) * ab).sum(1) / (ab * ab).sum(1), 0.0, 1.0)
    return np.min(np.hypot(*(a + t[:, None] * ab - point).T))


def test_six_points_lie_on_the_contour_in_facing_order():
    for index in range(4):
        item = synthesize(6, index, size="small", hard_fraction=0.6)
        facing = item.record.extra["facing"]
        centres = np.array([v.center for v in item.record.vertebrae])
        for k, vertebra in enumerate(item.record.vertebrae):
            points = {n: np.array(p) for n, p in vertebra.extra["truth"]["six_points"].items()}
            assert list(points) == list(SIX_POINTS)
            for point in points.values():
                # The contour is 96 points of the same curve: within a fraction of a pixel.
                assert _polygon_distance(point, vertebra.contour) < 0.25
            axis = centres[min(k + 1, 4)] - centres[max(k - 1, 0)]
            axis /= np.linalg.norm(axis)
            for side in ("superior", "inferior"):
                a, m, p = (points[f"{side}_{s}"] for s in ("anterior", "middle", "posterior"))
                # Anterior is towards -x for a left-facing patient, +x for a right-facing one.
                towards_posterior = 1.0 if facing == "left" else -1.0
                assert (m[0] - a[0]) * towards_posterior > 0
                assert (p[0] - m[0]) * towards_posterior > 0
            for s in ("anterior", "middle", "posterior"):
                height = (points[f"inferior_{s}"] - points[f"superior_{s}"]) @ axis
                assert height > 0


def _intact_height(height, depth, power, x):
    """Chord of the superellipse |2x/depth|^p + |2y/height|^p = 1 at x."""
    return height * (1 - abs(2 * x / depth) ** power) ** (1 / power)


@pytest.mark.parametrize("kind", ["none", "wedge", "biconcave", "crush"])
def test_six_point_heights_follow_the_applied_fracture(kind):
    depth, height, power, loss, sparing = 16.0, 12.0, 6.0, 0.33, 0.4
    fracture = None
    if kind != "none":
        # The broken endplate of a v2 biconcave or crush fracture leaves the three stations
        # alone; a wedge's (v1's) reaches the middle, so it gets none here.
        fracture = Fracture(kind, loss if kind == "wedge" else 0.0,
                            loss if kind == "crush" else 0.0,
                            irregularity=0.0 if kind == "wedge" else 0.1,
                            phases=(0.3, 1.0, 2.0),
                            middle_height_loss=loss if kind == "biconcave" else 0.0,
                            anterior_sparing=sparing if kind == "crush" else 0.0)
    params = BodyParams(depth, height, corner_power=power, concavity_top=0.0,
                        concavity_bottom=0.0, lip=0.0, osteophyte_mm=0.0,
                        harmonics=np.zeros((0, 4)), fracture=fracture)
    points = six_points(params)
    station = depth / 2 * (1 - 2 * FRACTURE_STATION)
    heights = {s: points[f"inferior_{s}"][1] - points[f"superior_{s}"][1]
               for s in ("anterior", "middle", "posterior")}
    assert points["superior_anterior"][0] == -station and points["superior_posterior"][0] == station
    at_station = _intact_height(height, depth, power, station)
    expected = {"anterior": at_station, "middle": float(height), "posterior": at_station}
    # Wedge and crush taper linearly between the stations, so the middle loses half way.
    if kind == "wedge":
        expected["anterior"] *= 1 - loss
        expected["middle"] *= 1 - loss / 2
    elif kind == "biconcave":
        expected["middle"] *= 1 - loss
    elif kind == "crush":
        expected["posterior"] *= 1 - loss
        expected["anterior"] *= 1 - loss * (1 - sparing)
        expected["middle"] *= 1 - loss * (1 - sparing / 2)
    # 1024 superellipse samples: heights within ~1e-3 (relative) of the analytic curve's.
    for station, value in expected.items():
        np.testing.assert_allclose(heights[station], value, rtol=2e-3)
    if fracture is not None:
        assert fracture.height_loss == loss
    # The points lie on the outline itself (4000 points resampled from the same 1024 samples).
    outline = body_outline(params, 4000)
    for point in points.values():
        assert _polygon_distance(point, outline) < 5e-3


def test_fracture_grades_and_types_are_spread():
    draws = 4000
    fractures = [fracture_v2(np.random.default_rng([3, i])) for i in range(draws)]
    losses = np.array([f.height_loss for f in fractures])
    edges = [low for low, _ in FRACTURE_GRADES] + [FRACTURE_GRADES[-1][1]]
    assert edges == [0.10, 0.20, 0.25, 0.40, 0.60]
    counts = np.histogram(losses, bins=edges)[0]
    bound = 4 * math.sqrt(draws * 0.25 * 0.75)
    assert np.all(np.abs(counts - draws / 4) <= bound)
    for kind, share in (("wedge", 0.5), ("biconcave", 0.25), ("crush", 0.25)):
        count = sum(f.kind == kind for f in fractures)
        assert abs(count - draws * share) <= 4 * math.sqrt(draws * share * (1 - share))


@pytest.mark.parametrize("hard_levels", [0, 1, 2, 3, 4, 5])
def test_exact_plans_mark_exactly_that_many_vertebrae(hard_levels):
    for i in range(200):
        plan = sample_conditions_v2(np.random.default_rng([5, i]), 0.2, hard_levels)
        marked = [label for label in ANNOTATED if plan.of_level(label)]
        assert len(marked) == hard_levels
        assert set(plan.conditions) == {c for label in marked for c in plan.of_level(label)}
        assert set(plan.conditions) <= set(HARD_CONDITIONS)


def test_hard_levels_keep_the_share_in_every_test_prefix():
    for share in (0.0, 0.1, 0.37, 0.5, 1.0):
        test_indices = [i for i in range(296) if _split(i, PAPER_SPLIT) == "test"]
        counts = [_hard_levels(i, PAPER_SPLIT, share) for i in test_indices]
        assert all(0 <= c <= 5 for c in counts)
        for n in range(1, len(counts) + 1):
            assert sum(counts[:n]) == math.floor(5 * n * share + 0.5)


def test_hard_share_is_honoured_by_the_generated_test_split():
    records = [synthesize(2, i, size="small", hard_share=0.6, hard_fraction=0.0).record
               for i in range(5)]
    test = [r for r in records if r.split == "test"]
    train = [r for r in records if r.split == "train"]
    assert len(test) == 3 and len(train) == 2
    hard = sum(v.is_hard for r in test for v in r.vertebrae)
    assert hard == math.floor(5 * 3 * 0.6 + 0.5)
    assert not any(v.is_hard for r in train for v in r.vertebrae)  # hard_fraction 0 there


def test_truth_records_follow_the_contract():
    kinds = set()
    for index in range(6):
        record = synthesize(8, index, size="small", hard_fraction=1.0).record
        assert record.extra["facing"] in ("left", "right")
        assert record.extra["synthetic"]["generator_version"] == 2
        for vertebra in record.vertebrae:
            truth = vertebra.extra["truth"]
            assert set(truth) == {"six_points", "height_loss", "fracture_type", "listhesis_mm"}
            assert truth["fracture_type"] in ("none", "wedge", "biconcave", "crush")
            assert ("fracture" in vertebra.conditions) == (truth["fracture_type"] != "none")
            assert ("listhesis" in vertebra.conditions) == (truth["listhesis_mm"] != 0.0)
            assert 0.0 <= truth["height_loss"] < 1.0
            assert (truth["height_loss"] > 0) == (truth["fracture_type"] != "none")
            kinds.add(truth["fracture_type"])
    assert "none" in kinds


def test_listhesis_moves_the_level_and_those_above_along_the_lower_anterior():
    def level(label, y):
        params = BodyParams(16, 13, 5, 0.05, 0.05, 0.1, 0, np.zeros((0, 4)))
        tangent = np.array([np.sin(0.2), np.cos(0.2)])
        return Level(label, np.array([0.0, y]), tangent, params, 5.0)

    levels = [level(label, 18.0 * i) for i, label in enumerate(LEVELS)]
    spine = Spine(levels, np.zeros((2, 2)), np.zeros((2, 2)))
    before = {lv.label: lv.center.copy() for lv in levels}
    _apply_listhesis(spine, {"C4": 3.0})
    below = spine.level("C5")
    anterior = -below.posterior
    for label in LEVELS:
        moved = spine.level(label).center - before[label]
        expected = 3.0 * anterior if LEVELS.index(label) <= LEVELS.index("C4") else 0.0 * anterior
        np.testing.assert_allclose(moved, expected, atol=1e-12)
    assert anterior[0] < 0  # facing left: anterior towards smaller x


def test_versions_have_distinct_cache_keys(tmp_path, monkeypatch):
    assert cache_key("small", 40, 0, version=1) != cache_key("small", 40, 0, version=2)
    assert cache_key("small", 40, 0) == cache_key("small", 40, 0, version=2)
    assert cache_key("small", 40, 0, hard_share=0.5) != cache_key("small", 40, 0)
    monkeypatch.setenv("VERTSEG_TF_CACHE", str(tmp_path))
    v1 = default_dataset_path("small", 1, 0, version=1)
    v2 = default_dataset_path("small", 1, 0)
    assert v1 != v2
    from vertseg_tf.data import load_dataset

    assert load_dataset(v1).images[0].extra["synthetic"]["generator_version"] == 1
    assert load_dataset(v2).images[0].extra["synthetic"]["generator_version"] == 2


def test_bad_version_or_share_is_refused():
    with pytest.raises(ConfigError, match="version"):
        synthesize(0, 0, size="small", version=3)
    with pytest.raises(ConfigError, match="hard_share"):
        synthesize(0, 0, size="small", hard_share=1.5)
    with pytest.raises(ConfigError, match="version 2"):
        synthesize(0, 0, size="small", hard_share=0.5, version=1)


def test_default_facing_is_left_or_right_and_the_preview_shows_both(tmp_path):
    # 12 films at 50/50 all facing one way has probability 2 / 4096.
    dataset = generate(12, 0, tmp_path / "ds", size="small", preview=True, preview_width=120,
                       progress=False)
    facings = [record.extra["facing"] for record in dataset.images]
    assert set(facings) == {"left", "right"}
    sheet = cv2.imread(str(tmp_path / "ds" / "preview.png"))
    assert sheet.shape == (3 * 149, 4 * 120, 3)  # 12 tiles of 120 x round(120 * 520 / 420)
    v1 = [synthesize(0, i, size="small", version=1).record.extra["synthetic"]["facing"]
          for i in range(2)]
    assert v1 == ["left", "left"]


def test_c2_and_t1_centres_lie_a_level_beyond_c3_and_c7_and_mirror_with_the_film():
    left = synthesize(4, 1, size="small", facing="left")
    right = synthesize(4, 1, size="small", facing="right")
    cols = left.image.shape[1]
    assert sorted(left.record.level_centers) == ["C2", "T1"]
    for label in ("C2", "T1"):
        a, b = left.record.level_centers[label], right.record.level_centers[label]
        np.testing.assert_allclose(b, [(cols - 1) - a[0], a[1]], atol=1e-6)
    centers = {v.label: v.center for v in left.record.vertebrae}
    steps = [np.linalg.norm(centers[a] - centers[b]) for a, b in pairwise(ANNOTATED)]
    for end, neighbour in (("C2", "C3"), ("T1", "C7")):
        gap = left.record.level_centers[end] - centers[neighbour]
        assert (gap[1] < 0) == (end == "C2")
        # C2's and T1's bodies are taller than C3-C7's: a step a little over the spacing
        assert 0.9 < np.linalg.norm(gap) / np.median(steps) < 1.6


def test_a_centre_off_the_film_is_left_out():
    from types import SimpleNamespace

    from vertseg_tf.data.synthetic.generator import _centers_on_film

    scene = SimpleNamespace(shape=(100, 50), located_only={
        "C2": np.array([10.0, -0.5]), "T1": np.array([10.0, 99.6])})
    kept = _centers_on_film(scene, lambda points: points)
    assert list(kept) == ["C2"]
    np.testing.assert_array_equal(kept["C2"], [10.0, -0.5])
