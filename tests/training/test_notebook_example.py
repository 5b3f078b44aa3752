"""The notebook example, executed cell by cell by a real Jupyter kernel (nbclient + ipykernel)."""

import base64
import json
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "training" / "notebook_example.ipynb"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Run in the kernel after the notebook: what the test checks, as JSON on stdout.
_CHECKS = """
import json, sys
print(json.dumps({
    "preset": PRESET,
    "epochs": len(history.history["loss"]),
    "config_epochs": config.epochs,
    "dice": results["dice"],
    "saved": (work / "unet-s.keras").is_file(),
    "loaded_kind": loaded.kind,
    "probabilities_shape": list(probabilities.shape),
    "test_shape": list(x_test.shape),
    "backend": __import__("matplotlib").get_backend(),
    "kernel": "ipykernel" in sys.modules,
}))
"""


def _images(cell) -> list[bytes]:
    return [
        base64.b64decode(output["data"]["image/png"])
        for output in cell.get("outputs", [])
        if output.get("output_type") == "display_data" and "image/png" in output.get("data", {})
    ]


def _errors(cell) -> list[str]:
    return [f"{o['ename']}: {o['evalue']}" for o in cell.get("outputs", [])
            if o.get("output_type") == "error"]


@pytest.mark.slow
def test_notebook_runs_cell_by_cell_in_a_kernel_and_shows_its_figures(tmp_path, monkeypatch):
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend must draw
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    cells = list(notebook.cells)
    checks_cell = nbformat.v4.new_code_cell(_CHECKS)
    notebook.cells.append(checks_cell)
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells):
            client.execute_cell(cell, index)
            assert not _errors(cell), (index, _errors(cell))
    streams = [o["text"] for o in checks_cell.outputs if o.get("output_type") == "stream"]
    checks = json.loads("".join(streams))
    assert checks["kernel"] and "inline" in checks["backend"]
    assert checks["preset"] == "smoke" and checks["epochs"] == checks["config_epochs"]
    assert 0.0 <= checks["dice"] <= 1.0 and checks["saved"]
    assert checks["loaded_kind"] == "keras"
    assert checks["probabilities_shape"] == [*checks["test_shape"][:3], 2]

    code = [cell for cell in cells if cell.cell_type == "code"]
    curve = next(cell for cell in code if 'history.history["val_loss"]' in cell.source)
    overlay = next(cell for cell in code if "masked_where" in cell.source)
    for cell in (curve, overlay):
        images = _images(cell)
        assert len(images) == 1 and images[0].startswith(PNG_SIGNATURE)
    figures_elsewhere = [cell.source.splitlines()[0] for cell in code
                         if cell not in (curve, overlay) and _images(cell)]
    assert figures_elsewhere == []
