"""Presets: how each released model family wants to be asked, chosen from its config or by name.

A checkpoint fine-tuned for quality scoring answers best when asked exactly as it was trained (or as
its authors measured it): the same question, image position, assistant prefix, level words with
their capitalisation, chat-template switches. A :class:`Preset` holds those facts as data (scoring
methods are data, not copies of scorer code); the ``qalign``/``qbench`` scorers and ``qscore-text``
take ``preset=``:

- ``"auto"`` (default): the preset whose ``model_types``/``architectures`` match the checkpoint's
  ``config.json``, or none;
- ``"none"``: the generic method (:data:`qplug_vlm.prompts.METHODS`);
- a preset's name (``--option qalign.preset=q-realign``).

A preset replaces a scorer's generic method only where it has one of its own
(:attr:`Preset.methods`), so ``qbench`` on a Q-SiT checkpoint stays Q-Bench's prompt.

Pure data: no torch, no transformers; the only import is :mod:`qplug_vlm.prompts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from qplug.errors import UsageError

from .prompts import METHODS, QSIT_METHOD, RATING_METHODS, RatingMethod, ScoringMethod

__all__ = ["Preset", "PRESETS", "AUTO", "NONE", "select", "level_method", "rating_method"]

AUTO = "auto"
NONE = "none"


def _frozen(mapping: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True, eq=False)
class Preset:
    """One model family's way of being asked.

    :param name: what ``preset=`` calls it.
    :param release: the checkpoints it is for (Hugging Face names).
    :param model_types: ``config.json`` ``model_type`` values it is chosen for automatically.
    :param architectures: ``config.json`` ``architectures`` entries it is chosen for automatically.
    :param methods: its level-scoring methods, keyed by the generic method they replace (``"qalign"``).
    :param rating: its method for ``qscore-text`` (models that write their score as text).
    :param chat_template_kwargs: extra arguments of the processor's chat template (``enable_thinking``).
    :param citation: where its settings come from.
    """

    name: str
    release: str
    model_types: tuple[str, ...] = ()
    architectures: tuple[str, ...] = ()
    methods: Mapping[str, ScoringMethod] = field(default_factory=_frozen)
    rating: RatingMethod | None = None
    chat_template_kwargs: Mapping[str, Any] = field(default_factory=_frozen)
    citation: str = ""

    def matches(self, model_type: str | None, architectures: Sequence[str]) -> bool:
        """True when a checkpoint with this config belongs to the family."""
        return (model_type is not None and model_type in self.model_types) or \
            any(a in self.architectures for a in architectures)


PRESETS: dict[str, Preset] = {p.name: p for p in (
    # Q-ReAlign re-trains the Q-Align recipe on Qwen3.5 (transformers >= 5.2): the training records are
    # Q-Align's released SFT JSONs with the human turn kept verbatim ("How would you rate the quality of
    # this image?", Q-Future/Q-ReAlign qalign/datasets.py _rows_qalign_json + configs/onealign.yaml), the
    # assistant turn "The quality of the image is <level>." and thinking disabled (qalign/config.py
    # ModelCfg.enable_thinking = False, passed to the chat template here too). Its README's quick-run code
    # asks the same question. Its own `qalign infer`/eval manifests, and pyiqa's `qrealign` wrapper
    # (chaofengc/IQA-PyTorch pyiqa/archs/qrealign_arch.py), ask the first entry of a paraphrase pool instead,
    # "Can you rate the quality of this picture?" (qalign/prompts.py), which is only used for datasets
    # without Q-Align JSONs; qplug asks the trained question, continuing the assistant turn with the trained
    # stem (its scorer appends " The quality of the image is" after the generation prompt instead). Level
    # words excellent..bad are read after a space; its weights 1, .75, .5, .25, 0 are qalign's 5..1
    # rescaled, so its own score is `extra.normalised`.
    Preset(
        name="q-realign",
        release="q-future/Q-ReAlign-{Mini-0.8B, Lite-4B, Pro-9B}",
        model_types=("qwen3_5",),
        architectures=("Qwen3_5ForConditionalGeneration",),
        methods=_frozen({"qalign": METHODS["qalign"]}),
        chat_template_kwargs=_frozen({"enable_thinking": False}),
        citation="Q-Future/Q-ReAlign README, qalign/datasets.py, qalign/levels.py, configs/onealign.yaml",
    ),
    Preset(
        name="q-sit",
        release="zhangzicheng/q-sit, zhangzicheng/q-sit-mini",
        model_types=("llava_onevision",),
        architectures=("LlavaOnevisionForConditionalGeneration",),
        methods=_frozen({"qalign": QSIT_METHOD}),
        citation=QSIT_METHOD.citation,
    ),
    # Both generative families are Qwen2.5-VL fine-tunes, which a config cannot tell apart: "auto" picks
    # VisualQuality-R1's question for any qwen2_5_vl checkpoint; Q-Insight needs preset=q-insight (its
    # JSON answers are read either way).
    Preset(
        name="visualquality-r1",
        release="TianheWu/VisualQuality-R1-7B",
        model_types=("qwen2_5_vl",),
        architectures=("Qwen2_5_VLForConditionalGeneration",),
        rating=RATING_METHODS["visualquality-r1"],
        citation=RATING_METHODS["visualquality-r1"].citation,
    ),
    Preset(
        name="q-insight",
        release="ByteDance/Q-Insight (subfolder score_degradation)",
        rating=RATING_METHODS["q-insight"],
        citation=RATING_METHODS["q-insight"].citation,
    ),
)}


def select(name: str | None, model_type: str | None = None, architectures: Sequence[str] = ()) -> Preset | None:
    """The preset ``name`` asks for, for a checkpoint of this ``model_type``/``architectures``.

    :raises UsageError: for a name that is not ``auto``, ``none`` or a preset's.
    """
    if name is None or name == NONE:
        return None
    if not isinstance(name, str):
        raise UsageError(f"preset must be a name, not {name!r}")
    if name == AUTO:
        return next((p for p in PRESETS.values() if p.matches(model_type, architectures)), None)
    try:
        return PRESETS[name]
    except KeyError:
        raise UsageError(f"unknown preset {name!r} (known: {AUTO}, {NONE}, {', '.join(PRESETS)})") from None


def level_method(generic: ScoringMethod, preset: Preset | None) -> ScoringMethod:
    """The method a level scorer uses: the preset's own for ``generic.name``, else ``generic``."""
    if preset is None:
        return generic
    return preset.methods.get(generic.name, generic)


#: What ``qscore-text`` asks when no preset has a rating method of its own.
DEFAULT_RATING = RATING_METHODS["visualquality-r1"]


def rating_method(preset: Preset | None) -> RatingMethod:
    """The method ``qscore-text`` uses: the preset's, else :data:`DEFAULT_RATING`."""
    return preset.rating if preset is not None and preset.rating is not None else DEFAULT_RATING
