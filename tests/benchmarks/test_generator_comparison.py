import numpy as np
import pytest

from benchmarks.generator_comparison import compare, markdown
from vertseg_tf.evaluation.records import VertebraResult, write_records_csv


def _report(folder, errors_by_method):
    records = [
        VertebraResult(method, "img", f"V{k}", (), 99.0, 0.9 + 0.001 * k, float(error))
        for method, errors in errors_by_method.items()
        for k, error in enumerate(errors)
    ]
    folder.mkdir(parents=True)
    write_records_csv(records, folder / "per_vertebra.csv")
    return folder


def test_table_and_verdicts_from_two_reports(tmp_path):
    base = np.linspace(0.5, 1.5, 10)
    noise = np.tile([0.01, -0.01], 5)
    # v1: ASM-M equals UNet on average (no significant win); v2: every ASM is 1 px worse.
    v1 = {"UNet": base, "UNet-S": base + 0.5 + noise, "ASM-RF": base + 1.0 + noise,
          "ASM-M": base + noise, "ASM-G": list(base[:9] + 1.0) + [np.inf]}
    v2 = {name: (base if name.startswith("UNet") else base + 1.0 + noise) for name in v1}
    result = compare({1: _report(tmp_path / "v1", v1), 2: _report(tmp_path / "v2", v2)})
    unet_v1 = result["v1"]["methods"]["UNet"]
    assert unet_v1["mean_error_px"] == pytest.approx(base.mean())
    assert unet_v1["mean_dice"] == pytest.approx(0.9045)
    # ASM-G: one empty prediction (infinite error) and errors above 2 px from 1.5 + 1 on.
    expected_failures = 100.0 * (np.sum(base[:9] + 1.0 > 2.0) + 1) / 10
    assert result["v1"]["methods"]["ASM-G"]["fit_failure_percent"] == pytest.approx(
        expected_failures)
    assert not result["v1"]["networks"]["UNet"]["beats_every_asm"]
    assert not result["v1"]["networks"]["UNet"]["against"]["ASM-M"]["beats"]
    assert result["v1"]["networks"]["UNet"]["against"]["ASM-RF"]["beats"]
    assert result["v2"]["networks"]["UNet"]["beats_every_asm"]
    table = markdown(result)
    assert f"| UNet | {base.mean():.3f} | 0.905 | 0.0 % | {base.mean():.3f} |" in table
    assert "v2: UNet-S beats every ASM at p < 0.05" in table
