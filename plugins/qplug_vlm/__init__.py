"""qplug built-in ``vlm`` plugin: scores, descriptions and answers from a Q-Instruct-style multimodal model.

One backend (:mod:`qplug_vlm.backend`) loads a local transformers checkpoint once per process and
serves every component registered here:

- scorers ``qalign``, ``qalign-aesthetics`` (Q-Align, [1, 5]) and ``qbench`` (Q-Bench P(good), [0, 1]),
  each asked the way a released checkpoint was trained when its family has a preset
  (:mod:`qplug_vlm.presets`: Q-ReAlign, Q-SiT);
- scorer ``qscore-text``: models that write their score as text (VisualQuality-R1, Q-Insight), [1, 5];
- describer ``vlm``: a low-level quality description of each frame;
- asker ``vlm``: multiple-choice answers from the option letters' logits, or free text.

Only registration lives here: torch and transformers are imported when a component is first built.
Every component takes the loading options of :func:`qplug_vlm.backend.resolve_options` (``model``,
``adapter``, ``merge_adapter``, ``device``, ``dtype``, ``trust_remote_code``, ``attn_implementation``)
plus its own; see ``docs/model-backend.md``.
"""

from __future__ import annotations

from typing import Callable

from qplug.hookspecs import hookimpl
from qplug.registry import AskerInfo, DescriberInfo, ScorerInfo

# backend.py imports torch and transformers inside its functions only, so these imports stay cheap.
from .backend import (Backend, GenerationSettings, LoadOptions, clear_cache, has_default_model, load_backend, load_count,
                      resolve_options)
from .presets import PRESETS, Preset
from .prompts import METHODS, RATING_METHODS, ScoringMethod

__all__ = ["SCORERS", "DESCRIBERS", "ASKERS", "METHODS", "RATING_METHODS", "PRESETS", "Preset", "ScoringMethod",
           "Backend", "GenerationSettings", "LoadOptions", "load_backend", "load_count", "clear_cache",
           "resolve_options", "has_default_model"]


def _scorer(name: str, factory: str, method: str, description: str, default: bool = False) -> ScorerInfo:
    low, high = METHODS[method].range
    return ScorerInfo(name=name, factory=f"qplug_vlm.scorers:{factory}", description=description,
                      range=(low, high), higher_is_better=True, inputs=("rgb",), batch_size=8, needs_model=True,
                      unit=f"{low:g}-{high:g}", default=default)


#: Every scorer of the plugin. None is in the default set: the shipped model does not yet meet its
#: accuracy targets (default_model/MODEL_CARD.md), so ``qplug score`` runs it only when asked.
SCORERS: dict[str, ScorerInfo] = {info.name: info for info in (
    _scorer("qalign", "qalign", "qalign",
            "Q-Align: model's expected quality level, excellent=5 .. bad=1 (extra.normalised in [0,1])"),
    _scorer("qalign-aesthetics", "qalign_aesthetics", "qalign",
            "Q-Align aesthetics prompt: expected aesthetic level, excellent=5 .. bad=1"),
    _scorer("qbench", "qbench", "qbench",
            "Q-Bench: model's probability of 'good' against 'poor' (synonyms=True: Q-Boost triads)"),
    # Generation is slower than one prefill and answers vary in length: smaller batches.
    ScorerInfo(name="qscore-text", factory="qplug_vlm.textscore:build", range=RATING_METHODS["visualquality-r1"].range,
               higher_is_better=True, inputs=("rgb",), batch_size=4, needs_model=True, unit="1-5",
               description="rating the model writes as text (VisualQuality-R1, Q-Insight), 1-5; unusable answers "
                           "are frame errors"),
)}

DESCRIBERS: dict[str, DescriberInfo] = {info.name: info for info in (
    DescriberInfo(name="vlm", factory="qplug_vlm.describer:build", batch_size=4, needs_model=True,
                  description="low-level quality description (blur, noise, exposure, colour, compression, verdict)"),
)}

ASKERS: dict[str, AskerInfo] = {info.name: info for info in (
    AskerInfo(name="vlm", factory="qplug_vlm.asker:build", batch_size=8, needs_model=True,
              description="answers from the model: choices by option-letter likelihood, else free text"),
)}


@hookimpl
def register_scorers(register: Callable[[ScorerInfo], None]) -> None:
    """Register the model scorers in :data:`SCORERS`."""
    for info in SCORERS.values():
        register(info)


@hookimpl
def register_describers(register: Callable[[DescriberInfo], None]) -> None:
    """Register the ``vlm`` describer."""
    for info in DESCRIBERS.values():
        register(info)


@hookimpl
def register_askers(register: Callable[[AskerInfo], None]) -> None:
    """Register the ``vlm`` asker."""
    for info in ASKERS.values():
        register(info)


@hookimpl
def register_converters(register: Callable[..., None]) -> None:
    """Register the ``llava`` converter (an original-layout LLaVA-1.5 release, Q-Instruct's, to transformers'
    layout) and the ``mplug-owl2`` converter (a Q-Align/OneAlign/Co-Instruct release's .bin shards to safetensors)."""
    from qplug.registry import ConverterInfo

    register(ConverterInfo(
        name="llava", factory="qplug_vlm.convert_llava:LlavaConverter",
        description="original LLaVA-1.5 release (LlavaLlamaForCausalLM + separate CLIP) to LlavaForConditionalGeneration",
        options={"vision_tower": "the CLIP ViT-L/14-336 directory the release's mm_vision_tower names",
                 "dtype": "float16, bfloat16 or float32 (default: as the release stores it)"},
        required=("vision_tower",)))
    register(ConverterInfo(
        name="mplug-owl2", factory="qplug_vlm.convert_mplug_owl2:MplugOwl2Converter",
        description="mPLUG-Owl2 release (Q-Align, OneAlign, Co-Instruct, Q-Instruct's build; .bin or safetensors) "
                    "to checked safetensors",
        options={"dtype": "float16, bfloat16 or float32 (default: as the release stores it)"}))



@hookimpl
def register_commands(register: Callable[..., None]) -> None:
    """Register ``qplug serve``: the model behind an OpenAI-compatible HTTP API (docs/serving.md)."""
    from qplug.registry import CommandInfo

    register(CommandInfo(name="serve", setup="qplug_vlm.serve:setup",
                         description="serve the model over HTTP: OpenAI chat completions with logprobs, /v1/score"))
