import json

import numpy as np
import pytest

from tests.broken_datasets import DEFECTS, broken_copy
from vertseg_tf.cli import main
from vertseg_tf.data.dataset import load_dataset
from vertseg_tf.data.patches import PatchSet
from vertseg_tf.data.synthetic import generate
from vertseg_tf.errors import ConfigError, DataError
from vertseg_tf.evaluation import read_records_csv
from vertseg_tf.evaluation.runs import evaluate_runs, predict_run, run_method
from vertseg_tf.training import fit_asm_run


@pytest.fixture(scope="module")
def dataset_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("eval") / "synthetic"
    generate(8, 3, out, size="small", progress=False)
    return out


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("patch-cache")


@pytest.fixture(scope="module")
def unet_run(tmp_path_factory):
    import keras

    from vertseg_tf.model import build_unet

    run_dir = tmp_path_factory.mktemp("unet-run")
    keras.utils.set_random_seed(0)
    build_unet("smoke").save(run_dir / "model.keras")
    (run_dir / "config.json").write_text(json.dumps({"config": {"method": "unet-s"}}))
    return run_dir


@pytest.fixture(scope="module")
def asm_run(tmp_path_factory, dataset_dir, cache_dir):
    train = PatchSet.from_dataset(
        load_dataset(dataset_dir), "train", False, cache_dir=cache_dir, progress=False
    )
    run_dir = tmp_path_factory.mktemp("asm-run")
    fit_asm_run("asm-g", train.images, train.contours, run_dir, n_landmarks=8)
    return run_dir


def test_unet_run_predicts_the_argmax_of_its_model(unet_run):
    import keras

    images = np.random.default_rng(0).normal(size=(3, 64, 64)).astype(np.float32)
    kind, masks = predict_run(unet_run, images)
    probabilities = keras.models.load_model(unet_run / "model.keras", compile=False).predict(
        images[..., None], verbose=0
    )
    assert kind == "mask"
    np.testing.assert_array_equal(masks, np.argmax(probabilities, axis=-1))


def test_asm_run_predicts_contours(asm_run):
    images = np.zeros((2, 64, 64), np.float32)
    kind, contours = predict_run(asm_run, images)
    assert kind == "contour"
    assert [c.shape for c in contours] == [(8, 2), (8, 2)]


def test_run_without_config_or_model_is_refused(tmp_path, unet_run):
    with pytest.raises(DataError, match="config.json missing"):
        run_method(tmp_path)
    (tmp_path / "config.json").write_text((unet_run / "config.json").read_text())
    with pytest.raises(DataError, match="no finished model"):
        run_method(tmp_path)


def test_evaluate_runs_scores_every_test_vertebra_for_every_method(
    dataset_dir, cache_dir, unet_run, asm_run, tmp_path
):
    report = evaluate_runs(
        dataset_dir,
        {"UNet-S": unet_run, "ASM-G": asm_run},
        tmp_path / "report",
        cache_dir=cache_dir,
    )
    test_vertebrae = sum(len(r.vertebrae) for r in load_dataset(dataset_dir).split("test"))
    records = read_records_csv(report.parent / "per_vertebra.csv")
    assert (
        sorted(r.method for r in records)
        == ["ASM-G"] * test_vertebrae + ["UNet-S"] * test_vertebrae
    )
    for name in ("table1_masks.md", "table2_shape.md", "figure6_error_cdf.png"):
        assert (report.parent / name).stat().st_size > 0


def test_eval_cli_reports_a_bad_run_in_one_line(dataset_dir, tmp_path, capsys):
    code = main(
        [
            "eval",
            "--dataset",
            str(dataset_dir),
            "--model",
            f"UNet={tmp_path}",
            "--out",
            str(tmp_path / "r"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "config.json missing" in err
    assert not (tmp_path / "r").exists()


def test_eval_never_replaces_a_folder_it_did_not_create(
    dataset_dir, cache_dir, unet_run, tmp_path
):
    run_dir = tmp_path / "training-run"
    run_dir.mkdir()
    (run_dir / "model.keras").write_bytes(b"a week of training")
    with pytest.raises(ConfigError, match=r"training-run: .*not empty.*--overwrite"):
        evaluate_runs(dataset_dir, {"UNet-S": unet_run}, run_dir, cache_dir=cache_dir)
    assert [p.name for p in run_dir.iterdir()] == ["model.keras"]
    assert [p.name for p in tmp_path.iterdir()] == ["training-run"]
    report = evaluate_runs(
        dataset_dir, {"UNet-S": unet_run}, run_dir, cache_dir=cache_dir, overwrite=True
    )
    assert report == run_dir / "report.md" and not (run_dir / "model.keras").exists()


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_eval_runs_the_validation_of_validate_first(
    dataset_dir, cache_dir, unet_run, tmp_path, defect
):
    broken, field = broken_copy(dataset_dir, tmp_path / "broken", defect)
    with pytest.raises(DataError) as raised:
        evaluate_runs(broken, {"UNet-S": unet_run}, tmp_path / "r", cache_dir=cache_dir)
    assert raised.value.field == field
    assert not (tmp_path / "r").exists()


def test_eval_cli_overwrite(dataset_dir, cache_dir, unet_run, tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "model.keras").write_text("keep")
    arguments = ["eval", "--dataset", str(dataset_dir), "--model", f"UNet-S={unet_run}",
                 "--out", str(out), "--cache-dir", str(cache_dir)]
    assert main(arguments) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--overwrite" in err[0]
    assert [p.name for p in out.iterdir()] == ["model.keras"]
    assert main([*arguments, "--overwrite"]) == 0
    assert (out / "report.md").is_file() and not (out / "model.keras").exists()
