"""The report's Markdown: `report.md` from the tables, the figures' notes and the paper."""

from __future__ import annotations

import datetime
import math

from vertseg_tf import __version__
from vertseg_tf.evaluation.report.paper import (
    PAPER_HARD_VERTEBRAE,
    PAPER_TABLE1,
    PAPER_TABLE1_P_VALUES,
    PAPER_TABLE2,
    PAPER_TABLE2_P_VALUE,
    PAPER_TABLE3,
    PAPER_TEST_VERTEBRAE,
)
from vertseg_tf.evaluation.report.tables import Table, format_cell, ordering_statements
from vertseg_tf.evaluation.statistics import (
    METRICS,
    NETWORKS,
    MethodSummary,
    hard_subset,
    summarize,
)

__all__ = ["compose_markdown", "figure_notes", "paper_tables"]


def paper_tables() -> dict[str, str]:
    """The paper's Tables 1-3 as Markdown, labelled as its published numbers."""
    p1 = PAPER_TABLE1_P_VALUES
    table1 = Table(
        "paper_table1",
        "",
        (
            "Method",
            "pA median",
            "pA mean",
            "pA std",
            "pA p-value",
            "DSC median",
            "DSC mean",
            "DSC std",
            "DSC p-value",
        ),
        [
            (
                m,
                *v["pixel_accuracy"],
                p1["pixel_accuracy"] if m == "UNet" else None,
                *v["dice"],
                p1["dice"] if m == "UNet" else None,
            )
            for m, v in PAPER_TABLE1.items()
        ],
        (None, "g", "g", "g", "p", "g", "g", "g", "p"),
    )
    table2 = Table(
        "paper_table2",
        "",
        ("Method", "Error median", "Error mean", "Error std", "Error p-value", "Fit failure (%)"),
        [
            (m, med, mean, std, PAPER_TABLE2_P_VALUE if m == "UNet" else None, ff)
            for m, (med, mean, std, ff) in PAPER_TABLE2.items()
        ],
        (None, "g", "g", "g", "p", "g"),
    )
    table3 = Table(
        "paper_table3",
        "",
        ("Method", "pA mean", "Dice mean", "Error mean"),
        [(m, *v) for m, v in PAPER_TABLE3.items()],
        (None, "g", "g", "g"),
    )
    return {
        "table1_masks": (
            f"The paper's published Table 1 ({PAPER_TEST_VERTEBRAE} test vertebrae; its p-values"
            " compare UNet with UNet-S):\n\n" + table1.markdown()
        ),
        "table2_shape": (
            f"The paper's published Table 2 ({PAPER_TEST_VERTEBRAE} test vertebrae; p-value UNet"
            " vs UNet-S):\n\n" + table2.markdown()
        ),
        "table3_hard": (
            f"The paper's published Table 3 ({PAPER_HARD_VERTEBRAE} hard vertebrae):\n\n"
            + table3.markdown()
        ),
    }


def _summary_lines(summaries: dict[str, MethodSummary]) -> list[str]:
    lines = []
    for method, s in summaries.items():
        pa, dsc, err = (s.metrics[m] for m in METRICS)
        lines.append(
            f"- **{method}**: pixel accuracy {pa.mean:.2f} % mean (median {pa.median:.2f} %), "
            f"Dice {dsc.mean:.3f} mean (median {dsc.median:.3f}), point-to-curve error "
            f"{format_cell(err.mean, 3)} px mean (median {format_cell(err.median, 3)} px), "
            f"fit failure "
            f"{s.fit_failure_percent:.2f} %, empty predictions {err.n_failed_empty} of {err.n}."
        )
    return lines


def _hard_case_lines(records, threshold) -> list[str]:
    hard = [r for r in hard_subset(records) if r.method in NETWORKS]
    if not hard:
        return ["No hard vertebra (any clinical condition) was evaluated by UNet or UNet-S."]
    summaries = summarize(hard, threshold)
    lines = [
        f"On the hard vertebrae (Table 3), {method}: pixel accuracy "
        f"{s.metrics['pixel_accuracy'].mean:.2f} %, Dice {s.metrics['dice'].mean:.3f}, "
        f"point-to-curve error {format_cell(s.metrics['error'].mean, 3)} px (means)."
        for method, s in summaries.items()
    ]
    if set(NETWORKS) <= set(summaries):
        unet, unet_s = (summaries[m].metrics["error"].mean for m in NETWORKS)
        paper_unet, paper_unet_s = (PAPER_TABLE3[m][2] for m in NETWORKS)
        if unet > 0 and not math.isnan(unet_s):
            lines.append(
                f"UNet-S changes the hard-case mean error by {100 * (unet_s - unet) / unet:+.1f} %"
                f" relative to UNet (paper: {100 * (paper_unet_s - paper_unet) / paper_unet:+.1f}"
                " %)."
            )
    return lines


def compose_markdown(
    records, tables, notes, *, title, command_line, paper_reference, threshold, run_notes=(),
    sections=(),
) -> str:
    """The text of report.md: summary, the paper's ordering, tables, extra sections (Markdown
    lines), figures, conventions.

    `notes` are the figures' notes; `run_notes` are listed under the command (how the models
    were trained and chosen)."""
    out = _summary_section(records, title, command_line, threshold, run_notes)
    out += _table_sections(tables, paper_reference)
    out += list(sections)
    out += _figure_section(notes, threshold)
    out += _conventions_section(paper_reference, threshold)
    return "\n".join(out) + "\n"


def _summary_section(
    records, title: str, command_line: str | None, threshold: float, run_notes=()
) -> list[str]:
    summaries = summarize(records, threshold)
    methods = list(summaries)
    vertebrae = {r.key for r in records}
    hard = {r.key for r in records if r.hard}
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    out = [f"# {title}", "", f"Generated by vertseg-tf {__version__} on {when}."]
    if command_line:
        out += ["", "Command:", "", "```bash", command_line, "```"]
    if run_notes:
        out += ["", *(f"- {note}" for note in run_notes)]
    out += [
        "",
        "## Summary",
        "",
        (
            f"{len(vertebrae)} test vertebrae ({len(hard)} hard cases with a clinical condition), "
            f"methods: {', '.join(methods)}. Every result is in "
            "[per_vertebra.csv](per_vertebra.csv)."
        ),
        "",
        *_summary_lines(summaries),
        "",
        " ".join(_hard_case_lines(records, threshold)),
        "",
        "## Does the paper's ordering hold?",
        "",
        "The paper finds UNet-S <= UNet < ASMs in point-to-curve error.",
        "",
    ]
    statements = ordering_statements(records)
    out += [f"- {s}" for s in statements] or [
        "- Fewer than two comparable methods: nothing to check."
    ]
    return out


def _table_sections(tables: dict, paper_reference: bool) -> list[str]:
    out = []
    sections = (
        ("table1_masks", "Table 1: mask prediction"),
        ("table2_shape", "Table 2: shape prediction"),
        ("table3_hard", "Table 3: hard cases"),
        ("paired_tests", "Paired t-tests"),
    )
    paper = paper_tables() if paper_reference else {}
    for name, heading in sections:
        table = tables[name]
        out += ["", f"## {heading}", "", table.caption, ""]
        out += [table.markdown() if table.rows else "No rows: no such vertebrae or methods.\n"]
        out += [f"CSV: [{name}.csv]({name}.csv)"]
        if name in paper:
            out += ["", paper[name]]
    return out


def _figure_section(notes: dict, threshold: float) -> list[str]:
    figures = (
        (
            "figure6_error_cdf.png",
            (
                "Figure 6: cumulative distribution of point-to-curve errors "
                f"(the dotted line is the {threshold:g} px fit failure threshold; empty "
                "predictions never reach the curve)."
            ),
        ),
        (
            "figure7_boxplots.png",
            "Figure 7: box plots of pixel accuracy, Dice and point-to-curve error.",
        ),
        (
            "figure8_qualitative.png",
            (
                "Figure 8: qualitative results, true positive green, "
                "false positive blue, false negative red."
            ),
        ),
        ("figure9_hard_cases.png", "Figure 9: hard cases, UNet vs UNet-S."),
    )
    out = ["", "## Figures"]
    for file, caption in figures:
        out += ["", f"![{caption}]({file})", "", caption]
        if file in notes:
            out += ["", notes[file]]
    return out


def _conventions_section(paper_reference: bool, threshold: float) -> list[str]:
    out = [
        "",
        "## Conventions",
        "",
        (
            "- Metrics are computed per vertebra on the 64x64 test patches; ASM contours are "
            "rasterised like the ground truth (filled at pixel centres)."
        ),
        "- Pixel accuracy is in percent (Eq. 7); Dice of two empty masks is 1 (Eq. 6).",
        (
            "- Point-to-curve error: mean exact distance from the predicted mask's "
            "marching-squares contour (level 0.5, all components) to the ground-truth outline, "
            "in patch pixels. An empty prediction has an infinite error: it counts as a fit "
            "failure and in the median, and is left out of the mean and std (counted as "
            "'empty predictions')."
        ),
        f"- Fit failure: error > {threshold:g} px. Std is the sample std (ddof = 1).",
        (
            "- Paired t-tests (two-sided, scipy.stats.ttest_rel) pair the methods on (image, "
            "vertebra); pairs with an infinite value are dropped."
        ),
    ]
    if paper_reference:
        out += [
            (
                "- The paper's numbers are its published values (Al Arif, Knapp, Slabaugh 2017, "
                f"{PAPER_TEST_VERTEBRAE} test vertebrae of real radiographs), shown for reference; "
                "ours come from the data this report was run on."
            ),
        ]
    return out




def figure_notes(samples, written_cases, hard_cases) -> dict[str, str]:
    notes = {}
    if samples is None:
        text = "Not drawn: the report was written without patch images and predicted masks."
        return {"figure8_qualitative.png": text, "figure9_hard_cases.png": text}
    rows = []
    for category, k in written_cases.items():
        if k is None:
            rows.append(f"{category}: no such vertebra in this test set")
        else:
            rows.append(f"{category}: {samples.image_ids[k]} {samples.labels[k]}")
    notes["figure8_qualitative.png"] = "Rows: " + "; ".join(rows) + "."
    if hard_cases:
        shown = ", ".join(f"{samples.image_ids[k]} {samples.labels[k]}" for k in hard_cases)
        notes["figure9_hard_cases.png"] = (
            f"The hard vertebrae where the two networks' errors differ most: {shown}."
        )
    else:
        notes["figure9_hard_cases.png"] = (
            "Not drawn: it needs hard vertebrae and predictions of both UNet and UNet-S."
        )
    return notes
