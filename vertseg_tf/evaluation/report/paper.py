"""The paper's published numbers (Al Arif, Knapp, Slabaugh 2017), for comparison only.

Data only: `markdown.paper_tables` renders them beside ours in the report.
"""

from __future__ import annotations

__all__ = [
    "PAPER_HARD_VERTEBRAE",
    "PAPER_TABLE1",
    "PAPER_TABLE1_P_VALUES",
    "PAPER_TABLE2",
    "PAPER_TABLE2_P_VALUE",
    "PAPER_TABLE3",
    "PAPER_TEST_VERTEBRAE",
]

PAPER_TEST_VERTEBRAE = 792


PAPER_HARD_VERTEBRAE = 52


PAPER_TABLE1 = {
    # method: {metric: (median, mean, std)}; pixel accuracy in percent.
    "ASM-RF": {"pixel_accuracy": (95.09, 90.77, 8.98), "dice": (0.881, 0.774, 0.220)},
    "ASM-M": {"pixel_accuracy": (95.09, 93.48, 4.92), "dice": (0.900, 0.877, 0.073)},
    "ASM-G": {"pixel_accuracy": (95.34, 93.75, 4.48), "dice": (0.906, 0.883, 0.066)},
    "UNet": {"pixel_accuracy": (97.71, 96.69, 3.04), "dice": (0.952, 0.938, 0.048)},
    "UNet-S": {"pixel_accuracy": (97.92, 97.01, 2.79), "dice": (0.957, 0.944, 0.044)},
}


PAPER_TABLE1_P_VALUES = {"pixel_accuracy": 7.17e-13, "dice": 7.76e-13}
"""The paper's paired t-test p-values, UNet vs UNet-S."""


PAPER_TABLE2 = {
    # method: (error median, error mean, error std in pixels, fit failure percent)
    "ASM-RF": (1.82, 2.59, 1.85, 43.43),
    "ASM-M": (1.54, 1.88, 1.05, 32.70),
    "ASM-G": (1.38, 1.73, 0.99, 26.89),
    "UNet": (0.77, 1.11, 1.29, 8.59),
    "UNet-S": (0.78, 0.999, 0.67, 6.06),
}


PAPER_TABLE2_P_VALUE = 0.0043
"""The paper's paired t-test p-value of the point-to-curve error, UNet vs UNet-S."""


PAPER_TABLE3 = {
    # method: (pixel accuracy percent, Dice, point-to-curve error), means over the hard subset.
    "UNet": (94.01, 0.91, 1.61),
    "UNet-S": (95.21, 0.93, 1.24),
}
