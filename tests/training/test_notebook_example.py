import json
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "training" / "notebook_example.ipynb"


@pytest.mark.slow
def test_notebook_example_runs_top_to_bottom(tmp_path, monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    cells = json.loads(NOTEBOOK.read_text(encoding="utf-8"))["cells"]
    namespace = {"__name__": "__notebook__"}
    code = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    assert code
    for index, source in enumerate(code):
        exec(compile(source, f"{NOTEBOOK.name}[{index}]", "exec"), namespace)  # noqa: S102
    assert namespace["PRESET"] == "smoke"
    history = namespace["history"].history
    assert len(history["loss"]) == namespace["config"].epochs
    assert 0.0 <= namespace["results"]["dice"] <= 1.0
    assert (namespace["work"] / "unet-s.keras").is_file()
