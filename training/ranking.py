"""The ranking objective: versions of one picture ordered as their labels say, on qplug's own score.

The corpus teaches a level per image (cross-entropy on "The quality of the image is good."), each
image on its own. Nothing in that says that, of two versions of one crop, the more desaturated one
must score lower: a target that moves by a fifth of a level between two strengths is a rounding
error to the level's cross-entropy (v5 ranked a crop's five desaturations at 0.40 Spearman, v7's
soft levels did not move it). This objective states the order directly. Each step draws pairs from
severity ladders of training photos (:mod:`qplug_training.corpus.ladders`: one crop, one
distortion type, pristine and five severities, everything else held fixed), scores both images with
the ``qalign`` scorer's exact prompt and read-out (expected level over excellent..bad, 5..1), and
applies the fidelity loss between the model's pair probability and the labels' (Thurstone case V):

    p_model = Phi((s_a - s_b) / (sqrt(2) sigma)),  p_label = Phi((mos_a - mos_b) / (sqrt(2) sigma))
    loss    = 1 - sqrt(p_model p_label) - sqrt((1 - p_model)(1 - p_label))

With ``anchor`` > 0 the step also adds ``anchor`` x the mean squared error between each ranked
image's score and its pseudo-MOS. Why: the two versions of a pair are nearly the same picture, and
a pristine crop already sits at the top of the scale, so the cheapest way to widen a (pristine,
slight) margin is to lower both; v13 (ranking alone) ordered colour casts better and lowered every
pristine crop's score by 0.4-0.7. The anchor pulls each version to its label (v14: at 0.5 its
gradient took over the clipped step and fitted the training photos' labels; docs/corpus.md).

With ``hold_level`` > 0 it adds ``hold_level`` x the square of the step's *mean* residual (score
minus pseudo-MOS, averaged over the ranked images). Its gradient is the same for every image of the
step, so it can move the scale back but cannot fit one image's label at another's cost, which is
what v14's per-image anchor did.

The fidelity loss and the Thurstone pair probability are UNIQUE's (Zhang et al., "Uncertainty-aware
blind image quality assessment in the laboratory and wild", IEEE TIP 2021), which trains on image
pairs of one database in the same way; the loss is bounded (a pair the labels barely separate
cannot pull the scores apart) and zero when the model's margin matches the labels'.

Pairs are a pure function of (seed, step, process), so a resumed run draws what an uninterrupted one
would.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

# A ladder the distortion leaves unchanged has nothing to order: the evaluation's own rule.
from .evaluation.assessment import UNCHANGED_DISTORTION

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Rung:
    """One version of a crop on a ladder: ``level`` 0 is the pristine crop."""

    image: str  # absolute path
    level: int
    mos: float


@dataclass(frozen=True)
class Pair:
    """Two rungs of one ladder, ``better`` first by label, and whether both are mirrored."""

    better: Rung
    worse: Rung
    mirror: bool


class LadderError(ValueError):
    """A ladder file that cannot feed the objective (missing, empty, without ``eval`` fields)."""


def load_ladders(metadata: str | Path, image_root: str | Path | None = None) -> list[list[Rung]]:
    """The ladders of a ladder folder's ``metadata.jsonl``: per (crop, type), its rungs by level, the
    crop's pristine version first. Unchanged ladders are left out; so are crops without a pristine."""
    path = Path(metadata)
    root = Path(image_root) if image_root else path.parent
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LadderError(f"cannot read ladders {path}: {exc}") from exc
    pristine: dict[str, Rung] = {}
    ladders: dict[str, list[Rung]] = defaultdict(list)
    strongest: dict[str, float] = defaultdict(float)
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            ev = row["eval"]
            rung = Rung(image=str(root / row["image"]), level=int(ev["severity_level"]), mos=float(row["pseudo_mos"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise LadderError(f"{path}:{n}: not a ladder line ({type(exc).__name__}: {exc}); build ladders with "
                              "python -m qplug_training.corpus.ladders") from exc
        if rung.level == 0:
            pristine[ev["crop_group"]] = rung
        else:
            ladders[ev["group"]].append(rung)
            strongest[ev["group"]] = max(strongest[ev["group"]], float(row.get("measures", {}).get("distortion", 1.0)))
    out = []
    for group, rungs in sorted(ladders.items()):
        crop = group.rsplit(":", 1)[0]
        if crop in pristine and strongest[group] >= UNCHANGED_DISTORTION:
            out.append([pristine[crop], *sorted(rungs, key=lambda r: r.level)])
    if not out:
        raise LadderError(f"{path} holds no ladder with a pristine crop and a visible distortion")
    return out


def from_level(ladders: Sequence[Sequence[Rung]], lowest: int) -> list[list[Rung]]:
    """Each ladder's rungs at ``lowest`` or above; ladders left with fewer than two rungs are dropped.

    ``lowest`` = 1 ranks distorted versions only: a pristine crop already sits at the top of the
    scale, so a (pristine, slight) pair can only widen by lowering the slight one, and with it the
    scale (v13).
    """
    out = [[r for r in ladder if r.level >= lowest] for ladder in ladders]
    out = [ladder for ladder in out if len(ladder) >= 2]
    if not out:
        raise LadderError(f"no ladder has two rungs at severity {lowest} or above")
    return out


def draw_pairs(ladders: Sequence[Sequence[Rung]], count: int, seed: int, step: int, process: int = 0) -> list[Pair]:
    """``count`` pairs for one step: a ladder at random, two of its rungs at random, ordered by label."""
    import numpy as np

    rng = np.random.default_rng([seed, 7919, step, process])
    pairs = []
    for _ in range(count):
        ladder = ladders[int(rng.integers(len(ladders)))]
        i, j = rng.choice(len(ladder), size=2, replace=False)
        a, b = ladder[int(i)], ladder[int(j)]
        better, worse = (a, b) if (a.mos, -a.level) >= (b.mos, -b.level) else (b, a)
        pairs.append(Pair(better, worse, bool(rng.random() < 0.5)))
    return pairs


def pair_probability(difference: "torch.Tensor", sigma: float) -> "torch.Tensor":
    """Thurstone case V: P(first > second) for a score difference, each score with spread ``sigma``."""
    import torch

    return 0.5 * (1.0 + torch.erf(difference / (2.0 * sigma)))  # Phi(d / (sqrt 2 sigma)) = (1 + erf(d / 2 sigma)) / 2


def fidelity_loss(model_p: "torch.Tensor", label_p: "torch.Tensor", eps: float = 1e-6) -> "torch.Tensor":
    """Mean fidelity loss of two Bernoulli distributions (0 when equal, at most 1)."""
    import torch

    agree = torch.sqrt(model_p * label_p + eps) + torch.sqrt((1.0 - model_p) * (1.0 - label_p) + eps)
    return (1.0 - agree).mean()


class RankingObjective:
    """Scores ladder pairs with the ``qalign`` prompt and returns the fidelity loss of a step.

    :param section: the recipe's ``[ranking]`` section.
    :param model: the model as loaded (used once, to render the prompt as qplug's scorer does).
    :param processor: its processor; the tokenizer keeps the padding side it had.
    :param load_image: how training loads an image (``Encoder.load_image``: padding to a square as training does).
    :param seed: the run's seed.
    :param ladders: ``section.ladders`` resolved (``Recipe.resolve_path``); as given when omitted.
    """

    def __init__(self, section: Any, model: Any, processor: Any, load_image: Any, seed: int,
                 ladders: Path | None = None) -> None:
        from qplug_vlm.backend import Backend
        from qplug_vlm.prompts import method

        metadata = ladders or Path(section.ladders)
        if metadata.is_dir():
            metadata = metadata / "metadata.jsonl"
        self.ladders = from_level(load_ladders(metadata, section.image_root or None), section.lowest_level)
        self.pairs_per_step = section.pairs_per_step
        self.sigma = section.sigma
        self.anchor = section.anchor
        self.hold_level = section.hold_level
        self.seed = seed
        self.processor = processor
        self.load_image = load_image
        tokenizer = processor.tokenizer
        side, pad = tokenizer.padding_side, tokenizer.pad_token
        training = model.training
        backend = Backend(model, processor, name="ranking")
        scoring = method("qalign")
        question, prefix = scoring.prompt("quality", "image")
        self.prompt = backend.render(question, prefix, image_first=scoring.image_first)
        levels = scoring.level_sets(False)[0]
        self.token_ids = backend.first_tokens(self.prompt, levels.words, "the ranking objective")
        self.weights = tuple(levels.weights)
        tokenizer.padding_side = side  # the Backend reads on the left; training pads on the right
        if pad is not None:
            tokenizer.pad_token = pad
        model.train(training)

    def inputs(self, step: int, process: int = 0) -> tuple[dict[str, Any], "torch.Tensor"]:
        """The processor batch (better images first, then worse) and each image's pseudo-MOS."""
        import torch

        pairs = draw_pairs(self.ladders, self.pairs_per_step, self.seed, step, process)
        images = [self.load_image(p.better.image, p.mirror) for p in pairs] + \
                 [self.load_image(p.worse.image, p.mirror) for p in pairs]
        batch = self.processor(images=[[im] for im in images], text=[self.prompt] * len(images),
                               add_special_tokens=False, return_tensors="pt")
        mos = torch.tensor([p.better.mos for p in pairs] + [p.worse.mos for p in pairs], dtype=torch.float32)
        return dict(batch), mos

    def scores(self, logits: "torch.Tensor") -> "torch.Tensor":
        """Expected level (5..1) from the next-token logits at the prompt's end, shape (batch,)."""
        import torch

        ids = torch.tensor(self.token_ids, dtype=torch.long, device=logits.device)
        probabilities = logits.float().index_select(-1, ids).softmax(dim=-1)
        return probabilities @ probabilities.new_tensor(self.weights)

    def loss(self, model: Any, step: int, process: int, to: Any) -> "torch.Tensor":
        """The step's fidelity loss; ``to`` moves a batch tensor to the model's device and dtype."""
        batch, mos = self.inputs(step, process)
        inputs = {k: to(v) for k, v in batch.items()}
        logits = model(**inputs, use_cache=False).logits[:, -1, :]
        values = self.scores(logits)
        mos = mos.to(values.device)
        half = len(values) // 2
        model_p = pair_probability(values[:half] - values[half:], self.sigma)
        loss = fidelity_loss(model_p, pair_probability(mos[:half] - mos[half:], self.sigma))
        if self.anchor > 0:
            loss = loss + self.anchor * ((values - mos) ** 2).mean()
        if self.hold_level > 0:
            loss = loss + self.hold_level * (values - mos).mean() ** 2
        return loss


def check_section(section: Any) -> list[str]:
    """Problems of a ``[ranking]`` section (empty when it is off or sound)."""
    if not section.ladders:
        return []
    problems = []
    if section.pairs_per_step < 1:
        problems.append("ranking.pairs_per_step must be >= 1")
    if not section.weight > 0:
        problems.append("ranking.weight must be > 0 (leave ranking.ladders empty to turn the objective off)")
    if not (section.sigma > 0 and math.isfinite(section.sigma)):
        problems.append("ranking.sigma must be > 0 (MOS units)")
    if not (section.anchor >= 0 and math.isfinite(section.anchor)):
        problems.append("ranking.anchor must be >= 0 (0 = off)")
    if not (section.hold_level >= 0 and math.isfinite(section.hold_level)):
        problems.append("ranking.hold_level must be >= 0 (0 = off)")
    if section.lowest_level not in range(0, 5):
        problems.append("ranking.lowest_level must be 0 (pristine included) .. 4 (the two strongest severities)")
    return problems
