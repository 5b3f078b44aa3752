"""`benchmarks/scaling.py`: every curve point is measured, and each plot is a small PNG."""

import json

import pytest

from benchmarks import scaling


@pytest.mark.slow
def test_quick_render_and_build_curves_write_json_and_small_plots(tmp_path):
    out = tmp_path / "scaling.json"
    assert scaling.main(["--quick", "--only", "render,build", "--out", str(out),
                         "--plots", str(tmp_path / "plots")]) == 0
    report = json.loads(out.read_text())
    assert list(report["curves"]) == ["render", "build"]
    build = report["curves"]["build"]["points"]
    assert [p["images"] for p in build] == list(scaling.QUICK["build_images"])
    # Image 0 of the paper split is a test image (5 patches); images 1-3 add one training image.
    assert [p["patches"] for p in build] == [5, 240]
    assert all(p["cpu_seconds"] > 0 and p["wall_seconds"] > 0 for p in build)
    render = report["curves"]["render"]["points"]
    assert len(render) == scaling.QUICK["render_images"]["small"]
    for curve in report["curves"].values():
        png = (tmp_path / "plots" / curve["plot"].rsplit("/", 1)[-1]).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 150_000
