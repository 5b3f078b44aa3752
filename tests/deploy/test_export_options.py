"""Export pieces that need no conversion: in-graph normalisation and option checks (fast)."""

import numpy as np
import pytest

from vertseg_tf.deploy.export import export_run, normalise_patches
from vertseg_tf.errors import ConfigError


def test_in_graph_normalisation_matches_a_numpy_reference():
    rng = np.random.default_rng(0)
    raw = rng.uniform(100.0, 4000.0, size=(3, 64, 64, 1)).astype(np.float32)
    raw[2] = 1234.5  # a constant patch becomes zeros
    got = np.asarray(normalise_patches(raw))
    values = raw[:2].astype(np.float64)
    mean = values.mean(axis=(1, 2, 3), keepdims=True)
    std = np.sqrt(((values - mean) ** 2).mean(axis=(1, 2, 3), keepdims=True))
    assert got.dtype == np.float32
    np.testing.assert_allclose(got[:2], (values - mean) / std, atol=1e-6)
    np.testing.assert_array_equal(got[2], 0.0)


@pytest.mark.parametrize("version", [0, -1, 1.5, True, "1"])
def test_bad_version_is_refused(version, tmp_path):
    with pytest.raises(ConfigError, match="version must be a positive integer"):
        export_run(tmp_path / "run", tmp_path / "models", version)


def test_unknown_tflite_variant_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="unknown TFLite variant.*int4"):
        export_run(tmp_path / "run", tmp_path / "models", 1, tflite="float32,int4")
