import json

import pytest

from tests.broken_datasets import DEFECTS, broken_copy
from vertseg_tf.cli import main


def run_cli(capsys, *arguments):
    status = main(["train", *arguments])
    captured = capsys.readouterr()
    return status, captured.err.strip().splitlines()


@pytest.fixture
def smoke(tiny_dataset, patch_cache):
    return ["--preset", "smoke", "--cache-dir", str(patch_cache)]


def test_missing_dataset_is_one_line_and_writes_nothing(capsys, smoke, tmp_path):
    status, lines = run_cli(
        capsys, *smoke, "--dataset", str(tmp_path / "absent"), "--out", str(tmp_path / "run")
    )
    assert status == 1
    assert lines == [
        (
            f"vertseg-tf train: error: {tmp_path / 'absent'}: not a folder; expected a native "
            "dataset (see 'vertseg-tf validate')"
        )
    ]
    assert not (tmp_path / "run").exists()


def test_invalid_dataset_json_is_refused(capsys, smoke, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "dataset.json").write_text("{not json")
    status, lines = run_cli(capsys, *smoke, "--dataset", str(broken), "--out", str(tmp_path / "r"))
    assert status == 1 and len(lines) == 1 and "dataset.json" in lines[0]
    assert not (tmp_path / "r").exists()


def test_existing_run_folder_needs_resume_or_overwrite(capsys, smoke, tiny_dataset, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "notes.txt").write_text("keep me")
    status, lines = run_cli(capsys, *smoke, "--dataset", str(tiny_dataset), "--out", str(run_dir))
    assert status == 1
    assert lines == [
        (
            f"vertseg-tf train: error: {run_dir}: run folder exists; pass --resume to continue "
            "it or --overwrite to replace it"
        )
    ]
    assert [p.name for p in run_dir.iterdir()] == ["notes.txt"]


def test_unwritable_run_folder(capsys, smoke, tiny_dataset, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    status, lines = run_cli(
        capsys, *smoke, "--dataset", str(tiny_dataset), "--out", str(blocker / "run")
    )
    assert status == 1 and len(lines) == 1
    assert "cannot write the run folder here" in lines[0]


def test_resume_needs_a_run_and_the_same_settings(capsys, smoke, tiny_dataset, tmp_path):
    status, lines = run_cli(
        capsys, *smoke, "--dataset", str(tiny_dataset), "--out", str(tmp_path / "new"), "--resume"
    )
    assert status == 1 and "no run to resume" in lines[0]
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    from vertseg_tf.training import TRAIN_PRESETS

    (run_dir / "config.json").write_text(json.dumps({"config": TRAIN_PRESETS["smoke"].to_dict()}))
    status, lines = run_cli(
        capsys, *smoke, "--dataset", str(tiny_dataset), "--out", str(run_dir), "--resume",
        "--lr", "0.5",
    )
    assert status == 1 and len(lines) == 1
    assert "started with other settings (learning_rate)" in lines[0]


def test_bad_options_are_one_line(capsys, tmp_path):
    status, lines = run_cli(capsys, "--preset", "smoke", "--epochs", "0", "--out", str(tmp_path))
    assert status == 1 and lines == [
        "vertseg-tf train: error: TrainConfig.epochs: expected >= 1, got 0"
    ]
    config = tmp_path / "c.toml"
    config.write_text("epochs = [")
    status, lines = run_cli(capsys, "--config", str(config), "--out", str(tmp_path / "r"))
    assert status == 1 and len(lines) == 1 and "not valid TOML" in lines[0]
    status, lines = run_cli(capsys, "--preset", "smoke", "--resume", "--overwrite",
                            "--out", str(tmp_path / "r"))
    assert status == 1 and "exclude each other" in lines[0]


def test_asm_method_fits_into_the_run_folder(capsys, smoke, tiny_dataset, tmp_path):
    run_dir = tmp_path / "asm-g"
    status = main(["train", *smoke, "--method", "asm-g", "--dataset", str(tiny_dataset),
                   "--out", str(run_dir)])
    assert status == 0, capsys.readouterr().err
    from vertseg_tf.asm import load_asm

    assert type(load_asm(run_dir)).__name__ == "ASMG"
    record = json.loads((run_dir / "config.json").read_text())
    assert record["config"]["method"] == "asm-g" and record["asm"]["method"] == "asm-g"
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["n_training_patches"] == 100  # the smoke preset's max_train_patches


@pytest.mark.parametrize("defect", list(DEFECTS))
def test_train_runs_the_validation_of_validate_first(capsys, smoke, tiny_dataset, tmp_path, defect):
    broken, field = broken_copy(tiny_dataset, tmp_path / "broken", defect)
    assert main(["validate", str(broken)]) == 1
    expected = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error")]
    status, lines = run_cli(capsys, *smoke, "--dataset", str(broken), "--out", str(tmp_path / "r"))
    assert status == 1
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1 and field in errors[0]
    assert errors[0].split(": error: ", 1)[1].startswith(expected[0][len("error: "):])
    assert not (tmp_path / "r").exists()


def test_augment_mirror_flag_overrides_the_preset():
    from vertseg_tf.cli import build_parser
    from vertseg_tf.cli.train import _train_config

    def config(*arguments):
        return _train_config(build_parser().parse_args(["train", *arguments]))

    assert config("--preset", "paper").augment_mirror is False
    assert config("--preset", "paper", "--augment-mirror").augment_mirror is True
    assert config("--preset", "paper", "--no-augment-mirror").augment_mirror is False
