import pytest

from vertseg_tf.data.synthetic import generate


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    """Four small synthetic radiographs: three training images (one held out), one test."""
    folder = tmp_path_factory.mktemp("training-data") / "dataset"
    generate(4, seed=0, out_dir=folder, size="small", split_ratio=(3, 1), progress=False)
    return folder


@pytest.fixture(scope="session")
def patch_cache(tmp_path_factory):
    """One patch cache for the session: every test after the first reads the patches."""
    return tmp_path_factory.mktemp("patch-cache")
