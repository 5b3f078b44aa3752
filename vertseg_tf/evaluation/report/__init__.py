"""The evaluation report: the paper's Tables 1-3 and Figures 6-9 from per-vertebra results.

`write_report` turns a list of `VertebraResult` (any subset of the paper's five methods, plus
any others) into a folder:

```
report.md                  the report, numbers in the text, the paper's values beside ours
per_vertebra.csv           every method x vertebra result
table1_masks.{md,csv}      pixel accuracy and Dice: median, mean, std, p-value
table2_shape.{md,csv}      point-to-curve error: median, mean, std, p-value; fit failure %
table3_hard.{md,csv}       the hard-case subset (any clinical condition), UNet vs UNet-S
paired_tests.{md,csv}      every paired t-test (UNet vs UNet-S, each network vs each ASM)
figure6_error_cdf.png      cumulative distribution of point-to-curve errors
figure7_boxplots.png       box plots of the three metrics
figure8_qualitative.png    overlays for an easy case, an implant, a fracture, an artefact
                           and the worst failure, every method side by side (needs samples)
figure9_hard_cases.png     hard cases, UNet vs UNet-S (needs samples)
```

The folder is built under a temporary name beside `out_dir` and renamed when complete, so a
report is never half written.

The parts: `paper` (the paper's published numbers), `tables` (Tables 1-3, paired tests),
`figures` (Figures 6-9, matplotlib's Agg canvas) and `markdown` (report.md); this module
writes the folder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vertseg_tf.atomic import atomic_dir, require_new_folder, write_text_atomic
from vertseg_tf.evaluation.metrics import FIT_FAILURE_THRESHOLD
from vertseg_tf.evaluation.records import (
    PredictionSet,
    QualitativeSamples,
    VertebraResult,
    write_records_csv,
)
from vertseg_tf.evaluation.report.figures import (
    FIGURE8_CATEGORIES,
    figure6_error_cdf,
    figure7_boxplots,
    figure8_qualitative,
    figure9_hard_cases,
    note_figure,
    overlay,
    select_figure8_cases,
)
from vertseg_tf.evaluation.report.markdown import compose_markdown, figure_notes
from vertseg_tf.evaluation.report.paper import (
    PAPER_HARD_VERTEBRAE,
    PAPER_TABLE1,
    PAPER_TABLE1_P_VALUES,
    PAPER_TABLE2,
    PAPER_TABLE2_P_VALUE,
    PAPER_TABLE3,
    PAPER_TEST_VERTEBRAE,
)
from vertseg_tf.evaluation.report.tables import Table, build_tables, ordering_statements
from vertseg_tf.evaluation.statistics import ordered_methods

__all__ = [
    "FIGURE8_CATEGORIES",
    "PAPER_HARD_VERTEBRAE",
    "PAPER_TABLE1",
    "PAPER_TABLE1_P_VALUES",
    "PAPER_TABLE2",
    "PAPER_TABLE2_P_VALUE",
    "PAPER_TABLE3",
    "PAPER_TEST_VERTEBRAE",
    "PredictionSet",
    "QualitativeSamples",
    "ReportSection",
    "Table",
    "build_tables",
    "ordering_statements",
    "overlay",
    "select_figure8_cases",
    "write_report",
]


@dataclass(frozen=True)
class ReportSection:
    """An extra section of report.md: a heading, Markdown lines, tables written beside the
    report as `<name>.md` and `<name>.csv` (and shown in the section), and other files
    (name -> text)."""

    heading: str
    lines: Sequence[str] = ()
    tables: Sequence[Table] = ()
    files: dict = field(default_factory=dict)

    def markdown(self) -> list[str]:
        out = ["", f"## {self.heading}", "", *self.lines]
        for table in self.tables:
            link = f"CSV: [{table.name}.csv]({table.name}.csv)"
            out += ["", table.caption, "", table.markdown(), link]
        return out

    def write(self, folder: Path) -> None:
        for table in self.tables:
            write_text_atomic(table.markdown(), folder / f"{table.name}.md")
            write_text_atomic(table.csv(), folder / f"{table.name}.csv")
        for name, text in self.files.items():
            write_text_atomic(text, folder / name)


def write_report(
    records: Sequence[VertebraResult],
    out_dir,
    *,
    title: str,
    samples: QualitativeSamples | None = None,
    command_line: str | None = None,
    paper_reference: bool = True,
    threshold: float = FIT_FAILURE_THRESHOLD,
    overwrite: bool = False,
    notes: Sequence[str] = (),
    sections: Sequence[ReportSection] = (),
) -> Path:
    """Write the full evaluation report folder (see the module docstring for its files).

    The folder is built under a temporary name and renamed into place when complete. An
    existing non-empty `out_dir` is replaced only with `overwrite`; otherwise it is refused
    before anything is written.

    Args:
        records: per-vertebra results of any subset of methods.
        out_dir: the report folder to create.
        title: the report's heading.
        samples: patch images and every method's masks, for Figures 8 and 9; without them
            those figures show a note instead.
        command_line: the command that produced the results, quoted in the report.
        paper_reference: show the paper's published Tables 1-3 beside ours.
        threshold: fit failure threshold in pixels.
        overwrite: replace an existing non-empty `out_dir`.
        notes: lines listed under the command (how the models were trained and chosen).
        sections: extra sections after the tables (e.g. the automatic mode's figures), with
            their files.

    Returns:
        The path of `report.md`.

    Raises:
        ConfigError: `out_dir` is not empty and `overwrite` is False, or not writable.

    Example:
        >>> write_report(  # doctest: +SKIP
        ...     records, "runs/report", title="vertseg-tf demo", samples=samples)
    """
    out_dir = require_new_folder(out_dir, overwrite=overwrite)
    records = list(records)
    tables = build_tables(records, threshold)
    methods = ordered_methods(r.method for r in records)
    with atomic_dir(out_dir, replace=overwrite) as staging:
        write_records_csv(records, staging / "per_vertebra.csv")
        for table in tables.values():
            write_text_atomic(table.markdown(), staging / f"{table.name}.md")
            write_text_atomic(table.csv(), staging / f"{table.name}.csv")
        figure6_error_cdf(records, methods, staging / "figure6_error_cdf.png")
        figure7_boxplots(records, methods, staging / "figure7_boxplots.png")
        cases, hard_cases = {}, []
        if samples is None:
            note = "needs the patch images and predicted masks (samples)"
            note_figure(staging / "figure8_qualitative.png", "Figure 8: qualitative results", note)
            note_figure(staging / "figure9_hard_cases.png", "Figure 9: hard cases", note)
        else:
            cases = figure8_qualitative(records, samples, staging / "figure8_qualitative.png")
            hard_cases = figure9_hard_cases(records, samples, staging / "figure9_hard_cases.png")
        markdown = compose_markdown(
            records,
            tables,
            figure_notes(samples, cases, hard_cases),
            title=title,
            command_line=command_line,
            paper_reference=paper_reference,
            threshold=threshold,
            run_notes=notes,
            sections=[line for section in sections for line in section.markdown()],
        )
        for section in sections:
            section.write(staging)
        write_text_atomic(markdown, staging / "report.md")
    return out_dir / "report.md"
