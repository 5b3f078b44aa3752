"""Which hard cases an image shows: fractures, osteoporosis, degenerative change, implants,
artefacts.

An image is hard with probability `hard_fraction`; a hard image gets one condition chosen
uniformly from the generator version's conditions (`V1_CONDITIONS`, or `V2_CONDITIONS`, which
adds listhesis), and a second, different one with probability `SECOND_CONDITION_PROBABILITY`.
Generator v2 can instead be asked for an exact number of hard vertebrae in an image
(`sample_conditions_v2(..., hard_levels=k)`). Every condition is recorded on the C3-C7
vertebrae it affects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vertseg_tf.data.dataset import HARD_CONDITIONS
from vertseg_tf.data.synthetic.anatomy import ANNOTATED_LEVELS, Fracture

__all__ = [
    "ARTEFACT_KINDS",
    "FRACTURE_GRADES",
    "SECOND_CONDITION_PROBABILITY",
    "V1_CONDITIONS",
    "V2_CONDITIONS",
    "ConditionPlan",
    "fracture_v2",
    "sample_conditions",
    "sample_conditions_v2",
]

SECOND_CONDITION_PROBABILITY = 0.3
ARTEFACT_KINDS = ("collimation", "marker", "motion")
V1_CONDITIONS = ("fracture", "osteoporosis", "degenerative", "implant", "artefact")
V2_CONDITIONS = HARD_CONDITIONS
# Height-loss ranges of the Genant grades 0-3 a v2 fracture is drawn from (one grade uniformly).
FRACTURE_GRADES = ((0.10, 0.20), (0.20, 0.25), (0.25, 0.40), (0.40, 0.60))
_FRACTURE_KINDS_V2 = (("wedge", 0.5), ("biconcave", 0.25), ("crush", 0.25))
_LOCAL_KINDS_V2 = ("fracture", "degenerative", "implant", "artefact", "listhesis")


@dataclass
class ConditionPlan:
    """The conditions of one image and where they are.

    Args:
        conditions: the image's conditions, in `HARD_CONDITIONS` order.
        fractures: fractured level -> fracture.
        osteoporosis: low bone density and thin cortices everywhere.
        degenerative: levels with osteophytes, sclerotic endplates and narrowed discs.
        implant: levels spanned by an anterior plate with one screw each.
        artefacts: the whole-image artefact kinds present (subset of `ARTEFACT_KINDS`).
        artefact_levels: v2: levels with lines drawn across their endplates.
        listhesis: v2: level -> its slip in mm against the level below (+ = anterior).
    """

    conditions: tuple[str, ...] = ()
    fractures: dict[str, Fracture] = field(default_factory=dict)
    osteoporosis: bool = False
    degenerative: frozenset[str] = frozenset()
    implant: tuple[str, ...] = ()
    artefacts: tuple[str, ...] = ()
    artefact_levels: tuple[str, ...] = ()
    listhesis: dict[str, float] = field(default_factory=dict)

    def of_level(self, label: str) -> list[str]:
        """The conditions recorded on one annotated vertebra."""
        found = {
            "fracture": label in self.fractures,
            "osteoporosis": self.osteoporosis,
            "degenerative": label in self.degenerative,
            "implant": label in self.implant,
            "artefact": bool(self.artefacts) or label in self.artefact_levels,
            "listhesis": label in self.listhesis,
        }
        return [name for name in HARD_CONDITIONS if found[name]]


def _adjacent_levels(rng: np.random.Generator, count: int) -> tuple[str, ...]:
    start = int(rng.integers(0, len(ANNOTATED_LEVELS) - count + 1))
    return ANNOTATED_LEVELS[start : start + count]


def _fracture(rng: np.random.Generator) -> Fracture:
    kind = str(rng.choice(["wedge", "compression"]))
    return Fracture(
        kind=kind,
        anterior_height_loss=float(rng.uniform(0.2, 0.5)),
        posterior_height_loss=float(rng.uniform(0.08, 0.2)) if kind == "compression" else 0.0,
        irregularity=float(rng.uniform(0.05, 0.12)),
        phases=tuple(float(p) for p in rng.uniform(0.0, 2.0 * np.pi, size=3)),
    )


def sample_conditions(rng: np.random.Generator, hard_fraction: float) -> ConditionPlan:
    """Draw the conditions of one image.

    Args:
        rng: the image's random generator.
        hard_fraction: probability that the image has at least one condition.

    Returns:
        The image's `ConditionPlan` (empty for a normal image).

    Example:
        >>> plan = sample_conditions(np.random.default_rng(0), hard_fraction=1.0)
        >>> len(plan.conditions) >= 1
        True
    """
    if rng.uniform() >= hard_fraction:
        return ConditionPlan()
    count = 2 if rng.uniform() < SECOND_CONDITION_PROBABILITY else 1
    chosen = set(rng.choice(V1_CONDITIONS, size=count, replace=False).tolist())
    plan = ConditionPlan(conditions=tuple(c for c in V1_CONDITIONS if c in chosen))
    if "fracture" in chosen:
        levels = rng.choice(ANNOTATED_LEVELS, size=1 + int(rng.uniform() < 0.3), replace=False)
        plan.fractures = {str(level): _fracture(rng) for level in levels}
    plan.osteoporosis = "osteoporosis" in chosen
    if "degenerative" in chosen:
        plan.degenerative = frozenset(_adjacent_levels(rng, int(rng.integers(2, 4))))
    if "implant" in chosen:
        plan.implant = _adjacent_levels(rng, int(rng.integers(2, 4)))
    if "artefact" in chosen:
        kinds = [kind for kind in ARTEFACT_KINDS if rng.uniform() < 0.5]
        plan.artefacts = tuple(kinds) or (str(rng.choice(ARTEFACT_KINDS)),)
    return plan


def fracture_v2(rng: np.random.Generator) -> Fracture:
    """A v2 fracture: wedge, biconcave or crush, its height loss in a uniformly drawn grade."""
    kinds, weights = zip(*_FRACTURE_KINDS_V2)
    kind = str(rng.choice(kinds, p=weights))
    low, high = FRACTURE_GRADES[int(rng.integers(0, len(FRACTURE_GRADES)))]
    loss = float(rng.uniform(low, high))
    return Fracture(
        kind=kind,
        anterior_height_loss=loss if kind == "wedge" else 0.0,
        posterior_height_loss=loss if kind == "crush" else 0.0,
        irregularity=float(rng.uniform(0.02, 0.08)),
        phases=tuple(float(p) for p in rng.uniform(0.0, 2.0 * np.pi, size=3)),
        middle_height_loss=loss if kind == "biconcave" else 0.0,
        anterior_sparing=float(rng.uniform(0.0, 0.5)) if kind == "crush" else 0.0,
    )


def _slip_mm(rng: np.random.Generator) -> float:
    """Degenerative listhesis: 1.5-5 mm, anterior twice as often as posterior (retrolisthesis)."""
    return float(rng.uniform(1.5, 5.0) * (1.0 if rng.uniform() < 2.0 / 3.0 else -1.0))


def _apply_local(plan: ConditionPlan, kind: str, levels: tuple[str, ...], rng) -> None:
    if kind == "fracture":
        plan.fractures.update({label: fracture_v2(rng) for label in levels})
    elif kind == "degenerative":
        plan.degenerative = plan.degenerative | frozenset(levels)
    elif kind == "implant":
        plan.implant = tuple(levels)
    elif kind == "artefact":
        plan.artefact_levels = tuple(sorted(set(plan.artefact_levels) | set(levels)))
    else:
        plan.listhesis.update({label: _slip_mm(rng) for label in levels})


def _runs(levels: list[str]) -> list[tuple[str, ...]]:
    """Split sorted annotated levels into runs of adjacent ones."""
    runs: list[list[str]] = []
    for label in levels:
        index = ANNOTATED_LEVELS.index(label)
        if runs and ANNOTATED_LEVELS.index(runs[-1][-1]) == index - 1:
            runs[-1].append(label)
        else:
            runs.append([label])
    return [tuple(run) for run in runs]


def _exact_plan(rng: np.random.Generator, hard_levels: int) -> ConditionPlan:
    """Conditions on exactly `hard_levels` of the five annotated vertebrae."""
    plan = ConditionPlan()
    if hard_levels == 0:
        return plan
    if hard_levels == len(ANNOTATED_LEVELS) and rng.uniform() < 0.4:
        if rng.uniform() < 0.5:
            plan.osteoporosis = True
        else:
            plan.artefacts = ("motion",)
    else:
        chosen = rng.choice(len(ANNOTATED_LEVELS), size=hard_levels, replace=False)
        for run in _runs([ANNOTATED_LEVELS[i] for i in sorted(chosen)]):
            # One plate per film, over two levels or more.
            kinds = [k for k in _LOCAL_KINDS_V2
                     if k != "implant" or (len(run) >= 2 and not plan.implant)]
            _apply_local(plan, str(rng.choice(kinds)), run, rng)
    _set_conditions(plan)
    return plan


def _set_conditions(plan: ConditionPlan) -> None:
    found = {c for label in ANNOTATED_LEVELS for c in plan.of_level(label)}
    plan.conditions = tuple(c for c in V2_CONDITIONS if c in found)


def sample_conditions_v2(
    rng: np.random.Generator, hard_fraction: float, hard_levels: int | None = None
) -> ConditionPlan:
    """Draw the conditions of one v2 image.

    Args:
        rng: the image's random generator.
        hard_fraction: probability that the image has at least one condition (used when
            `hard_levels` is None).
        hard_levels: exactly this many of C3-C7 get a condition (0-5), or None.

    Returns:
        The image's `ConditionPlan`.

    Example:
        >>> plan = sample_conditions_v2(np.random.default_rng(0), 0.2, hard_levels=2)
        >>> sum(bool(plan.of_level(label)) for label in ANNOTATED_LEVELS)
        2
    """
    if hard_levels is not None:
        return _exact_plan(rng, int(hard_levels))
    if rng.uniform() >= hard_fraction:
        return ConditionPlan()
    count = 2 if rng.uniform() < SECOND_CONDITION_PROBABILITY else 1
    chosen = rng.choice(V2_CONDITIONS, size=count, replace=False).tolist()
    plan = ConditionPlan()
    for condition in chosen:
        if condition == "osteoporosis":
            plan.osteoporosis = True
        elif condition == "fracture":
            _apply_local(plan, condition, tuple(
                str(level) for level in rng.choice(ANNOTATED_LEVELS, size=1 + int(
                    rng.uniform() < 0.3), replace=False)), rng)
        elif condition in ("degenerative", "implant"):
            _apply_local(plan, condition, _adjacent_levels(rng, int(rng.integers(2, 4))), rng)
        elif condition == "listhesis":
            _apply_local(plan, condition, _adjacent_levels(rng, 1 + int(rng.uniform() < 0.2)),
                         rng)
        else:
            _apply_local(plan, condition, _adjacent_levels(rng, int(rng.integers(1, 4))), rng)
            if rng.uniform() < 0.3:
                plan.artefacts = ("motion",)
    _set_conditions(plan)
    return plan
