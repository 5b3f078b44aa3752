"""Which hard cases an image shows: fractures, osteoporosis, degenerative change, implants, artefacts.

An image is hard with probability `hard_fraction`; a hard image gets one condition chosen
uniformly from `HARD_CONDITIONS`, and a second, different one with probability
`SECOND_CONDITION_PROBABILITY`. Every condition is recorded on the C3-C7 vertebrae it affects.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from vertseg_tf.data.dataset import HARD_CONDITIONS
from vertseg_tf.data.synthetic.anatomy import ANNOTATED_LEVELS, Fracture

__all__ = ["ARTEFACT_KINDS", "SECOND_CONDITION_PROBABILITY", "ConditionPlan", "sample_conditions"]

SECOND_CONDITION_PROBABILITY = 0.3
ARTEFACT_KINDS = ("collimation", "marker", "motion")


@dataclass
class ConditionPlan:
    """The conditions of one image and where they are.

    Args:
        conditions: the image's conditions, in `HARD_CONDITIONS` order.
        fractures: fractured level -> fracture.
        osteoporosis: low bone density and thin cortices everywhere.
        degenerative: levels with osteophytes, sclerotic endplates and narrowed discs.
        implant: levels spanned by an anterior plate with one screw each.
        artefacts: the artefact kinds present (subset of `ARTEFACT_KINDS`).
    """

    conditions: tuple[str, ...] = ()
    fractures: dict[str, Fracture] = field(default_factory=dict)
    osteoporosis: bool = False
    degenerative: frozenset[str] = frozenset()
    implant: tuple[str, ...] = ()
    artefacts: tuple[str, ...] = ()

    def of_level(self, label: str) -> list[str]:
        """The conditions recorded on one annotated vertebra."""
        found = {
            "fracture": label in self.fractures,
            "osteoporosis": self.osteoporosis,
            "degenerative": label in self.degenerative,
            "implant": label in self.implant,
            "artefact": bool(self.artefacts),
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
    chosen = set(rng.choice(HARD_CONDITIONS, size=count, replace=False).tolist())
    plan = ConditionPlan(conditions=tuple(c for c in HARD_CONDITIONS if c in chosen))
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
