"""Training recipes: TOML files read into typed sections, with ``key=value`` overrides.

A recipe says everything a run needs (model, tokenizer, images, tuning method, data, optimiser,
export), so a run is reproducible from its recipe alone; the recipe as run is written next to the
outputs (``recipe.json``) and into ``training_info.json``.

Overrides use dotted keys and TOML values: ``train.learning_rate=1e-4``, ``lora.r=16``,
``data.sources=[{path="q.json"}]``. A value that is not valid TOML is taken as a string, so
``run.output_dir=runs/a`` needs no quotes.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence, get_type_hints

from qplug_vlm.configuration import LlavaSize

#: LoRA on the language model only: the CLIP/SigLIP vision tower has q_proj/v_proj too, and
#: adapting it would change the features the projector was trained on (ANCHORS §6).
DEFAULT_LORA_TARGET = r".*(language_model|text_model).*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


class RecipeError(ValueError):
    """A recipe (or an override) that cannot be run; the message says which key and why."""


@dataclass
class RunSection:
    """Where outputs go and how randomness is seeded."""

    name: str = "run"
    output_dir: str = "runs/run"
    seed: int = 0


@dataclass(frozen=True)
class FromConfig(LlavaSize):
    """A model built from dimensions, with a Llama text model: ``llava`` (a CLIP vision tower, random init)
    or ``fast_vlm`` (FastVLM's layout with an ImageNet EfficientNet-Lite0 tower, see training/pretrained.py;
    the ``vision_*`` dimensions are then fixed by Lite0 and ignored).

    The dimensions (``image_size``, ``patch_size``, ``vision_*``, ``text_*``, ``vision_feature_layer``,
    ``projector_act``, ``initializer_range``, ``max_position_embeddings``, ``vocab_size``) are those of
    :class:`qplug_vlm.configuration.LlavaSize`, which this section extends with how to build the model.
    """

    architecture: str = "llava"
    #: fast_vlm: the converted Lite0 tower (``python -m qplug_training.pretrained``); relative to the recipe.
    vision_weights: str = ""
    #: "default" (transformers' init) or "dct": the patch embedding starts as a 2-D DCT filter bank.
    patch_init: str = "default"


@dataclass
class ModelSection:
    """The base model: a local checkpoint directory, or ``from_config`` when ``path`` is empty."""

    path: str = ""
    #: Weights dtype when loading: auto = bfloat16 on a CUDA device that has it, else float32.
    dtype: str = "auto"
    #: "" keeps the checkpoint's template; "llava" is LLaVA-1.5's USER:/ASSISTANT: format with
    #: ``{% generation %}`` markers (needed for assistant-only labels); anything else is a file path.
    chat_template: str = ""
    attn_implementation: str = "sdpa"
    from_config: FromConfig = field(default_factory=FromConfig)


@dataclass
class TokenizerSection:
    """Tokenizer of a from-config model: loaded from ``path`` or trained on the training texts."""

    path: str = ""
    vocab_size: int = 1000


@dataclass
class ImageSection:
    """Image preprocessing of a from-config model's processor (a checkpoint keeps its own) and of training.

    ``resize = false`` with ``crop = 224`` is a "native crop" view: a window of real pixels, so blur,
    noise and blocking reach the tower at their true scale instead of being resampled away.
    """

    resize: bool = True
    size: int = 0  # shortest edge after resizing; 0 = the crop size
    crop: int = 0  # square centre crop; 0 = the model's image size
    #: Pad to a square with the processor's mean colour before the processor, as LLaVA-1.5 training
    #: ("image_aspect_ratio pad") and qplug's scorers do, so training and scoring see the same frame.
    pad_square: bool = True
    #: Chance that a training image is mirrored left-right (0 = never). Every corpus distortion is
    #: unchanged by a mirror (a 224-px crop keeps the 8x8 coding grid aligned), so a mirrored image keeps
    #: its labels while its content is new to the model. Training only; scoring never mirrors.
    hflip: float = 0.0


@dataclass
class TuningSection:
    """What is trained."""

    method: str = "lora"  # "lora" or "full"
    freeze_vision: bool = True
    train_projector: bool = True
    #: Learning rate of the projector (0 = the main one). LLaVA's LoRA recipe trains it at 2e-5.
    projector_lr: float = 0.0
    gradient_checkpointing: bool = False
    #: With freeze_vision, vision-tower submodules trained anyway (name prefixes inside the tower, e.g.
    #: "encoder.top_conv"): adapts a pretrained tower's last layers at a fraction of the cost.
    vision_trainable: list[str] = field(default_factory=list)


@dataclass
class LoraSection:
    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    #: A regex matched against full module names (peft's full-match rule for a string target).
    target: str = DEFAULT_LORA_TARGET


@dataclass
class SourceSection:
    """One dataset of a mix. ``kind`` is ``low`` (Q-Instruct-like) or ``high`` (LLaVA mix665k-like)."""

    path: str = ""
    weight: float = 1.0
    kind: str = "low"
    image_prefix: str = ""
    name: str = ""


@dataclass
class DataSection:
    #: "after": low-level sources only, on top of a tuned checkpoint; "mix": low- and high-level
    #: sources together (the paper's two strategies).
    strategy: str = "after"
    image_root: str = ""
    max_length: int = 2048
    #: Sample this many records in all (by the sources' weights); 0 = by weights as repeat factors.
    total: int = 0
    #: Write this many synthetic records (PNG images + LLaVA JSON) into the output dir and train on
    #: them instead of ``sources``: smoke runs and tests need no download.
    synthetic: int = 0
    num_workers: int = 0
    #: Batch records of about one length: windows of this many global batches are sorted by length
    #: before they are cut into batches (0 = off; 50 is transformers' group_by_length window). Less
    #: padding per batch; see BatchPlan.
    group_by_length: int = 0
    #: Right-pad every batch to a multiple of this many tokens (0 or 1 = off). On the CPU in bf16 it
    #: bounds memory (a few sequence lengths instead of one per batch); see Collator.
    pad_to_multiple_of: int = 0
    sources: list[SourceSection] = field(default_factory=list)


@dataclass
class TrainSection:
    epochs: float = 1.0
    max_steps: int = 0  # > 0 overrides epochs
    per_device_batch_size: int = 1
    #: per-device batch x accumulation x processes; when set, accumulation is derived from it.
    global_batch_size: int = 0
    gradient_accumulation_steps: int = 1
    learning_rate: float = 2e-5
    weight_decay: float = 0.0
    warmup_ratio: float = 0.03
    scheduler: str = "cosine"  # cosine, linear or constant (all with warmup)
    max_grad_norm: float = 1.0
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    #: "auto" = bf16 on CUDA devices that support it, else "no" (fp32); or "no", "bf16", "fp16".
    mixed_precision: str = "auto"
    log_every: int = 1
    save_every: int = 0  # steps between checkpoints; 0 = only at the end of training
    keep_checkpoints: int = 2
    #: Stop (with a checkpoint, without export) after this optimizer step: simulates an interruption.
    stop_after: int = 0
    #: Let DDP tolerate parameters without gradients (text-only batches with a trainable vision side).
    find_unused_parameters: bool = False


@dataclass
class ExportSection:
    #: LoRA: save the adapter (always) and, with ``merge``, a merged full model too.
    merge: bool = False
    #: Also write the base model next to the adapter when the base was built from config (it exists
    #: nowhere else); with a checkpoint base the adapter refers to that directory.
    save_base: bool = True
    #: dtype of exported full/merged weights: "" keeps the training dtype; "bfloat16" halves a
    #: full fine-tune's fp32 master weights (LLaVA-7B: 28 GB -> 14 GB).
    dtype: str = ""


@dataclass
class RankingSection:
    """Pairs of versions of one picture ordered on the ``qalign`` score (:mod:`qplug_training.ranking`).

    Off while ``ladders`` is empty. Each step adds ``weight`` x the fidelity loss of
    ``pairs_per_step`` pairs drawn from the ladders to the step's token loss.
    """

    #: A ladder folder (``python -m qplug_training.corpus.ladders``) or its metadata.jsonl.
    ladders: str = ""
    #: Where the ladder images' paths start ("" = the ladder folder).
    image_root: str = ""
    pairs_per_step: int = 8
    weight: float = 1.0
    #: Spread of one score in MOS units (Thurstone case V): pairs the labels separate by much less
    #: than this ask for little margin.
    sigma: float = 0.3
    #: Weight of the squared error between each ranked image's score and its pseudo-MOS (0 = off):
    #: keeps the pairs' widening margins from moving the whole scale (qplug_training.ranking).
    anchor: float = 0.0
    #: Weight of the squared mean residual (score - pseudo-MOS) of the step's ranked images (0 = off):
    #: holds the scale's level with one gradient shared by every image, unlike ``anchor``.
    hold_level: float = 0.0
    #: Lowest severity drawn into a pair: 0 includes the pristine crop, 1 ranks distorted versions only.
    lowest_level: int = 0


@dataclass
class Recipe:
    run: RunSection = field(default_factory=RunSection)
    model: ModelSection = field(default_factory=ModelSection)
    tokenizer: TokenizerSection = field(default_factory=TokenizerSection)
    image: ImageSection = field(default_factory=ImageSection)
    tuning: TuningSection = field(default_factory=TuningSection)
    lora: LoraSection = field(default_factory=LoraSection)
    data: DataSection = field(default_factory=DataSection)
    train: TrainSection = field(default_factory=TrainSection)
    export: ExportSection = field(default_factory=ExportSection)
    ranking: RankingSection = field(default_factory=RankingSection)
    #: Where the recipe was read from (relative paths in it resolve against its directory's parent
    #: chain only when they do not exist from the working directory; see :meth:`resolve_path`).
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def resolve_path(self, value: str) -> Path:
        """A path from the recipe: as given if it exists from the working directory, else next to the recipe."""
        path = Path(os.path.expanduser(value))
        if path.is_absolute() or path.exists() or not self.source:
            return path
        beside = Path(self.source).parent / path
        return beside if beside.exists() else path

    def validate(self) -> "Recipe":
        """Check values that would otherwise fail deep inside a run; returns self."""
        def need(condition: bool, message: str) -> None:
            if not condition:
                raise RecipeError(message)

        need(self.tuning.method in ("lora", "full"),
             f"tuning.method must be 'lora' or 'full', not {self.tuning.method!r}")
        need(self.data.strategy in ("after", "mix"),
             f"data.strategy must be 'after' or 'mix', not {self.data.strategy!r}")
        need(self.train.scheduler in ("cosine", "linear", "constant"),
             f"train.scheduler must be cosine, linear or constant, not {self.train.scheduler!r}")
        need(self.train.mixed_precision in ("auto", "no", "bf16", "fp16"),
             f"train.mixed_precision must be auto, no, bf16 or fp16, not {self.train.mixed_precision!r}")
        need(self.train.per_device_batch_size >= 1, "train.per_device_batch_size must be >= 1")
        need(self.train.gradient_accumulation_steps >= 1, "train.gradient_accumulation_steps must be >= 1")
        need(self.train.learning_rate > 0, "train.learning_rate must be > 0")
        need(0 <= self.train.warmup_ratio < 1, "train.warmup_ratio must be in [0, 1)")
        need(self.train.epochs > 0 or self.train.max_steps > 0, "give train.epochs > 0 or train.max_steps > 0")
        need(self.data.max_length >= 16, "data.max_length must be >= 16")
        need(self.data.group_by_length >= 0, "data.group_by_length must be >= 0 (0 = off)")
        need(self.data.pad_to_multiple_of >= 0, "data.pad_to_multiple_of must be >= 0 (0 = off)")
        need(0.0 <= self.image.hflip <= 1.0, f"image.hflip is a probability in [0, 1], not {self.image.hflip!r}")
        need(self.export.dtype in ("", "float32", "bfloat16", "float16"),
             f"export.dtype must be '', float32, bfloat16 or float16, not {self.export.dtype!r}")
        need(self.model.from_config.patch_init in ("default", "dct"),
             f"model.from_config.patch_init must be 'default' or 'dct', not {self.model.from_config.patch_init!r}")
        spec = self.model.from_config
        need(spec.vocab_size >= 0, f"model.from_config.vocab_size must be >= 0 (0: the tokenizer's size), "
                                   f"not {spec.vocab_size!r}")
        need(spec.architecture in ("llava", "fast_vlm"),
             f"model.from_config.architecture must be 'llava' (CLIP + Llama) or 'fast_vlm' (EfficientNet-Lite0 + "
             f"Llama), not {spec.architecture!r}")
        if spec.architecture == "fast_vlm" and not self.model.path:
            need(bool(spec.vision_weights), "model.from_config.vision_weights: fast_vlm needs the converted Lite0 "
                                            "tower (python -m qplug_training.pretrained --out DIR)")
            need(spec.image_size % 32 == 0, "model.from_config.image_size must be a multiple of 32 for fast_vlm "
                                            "(the tower's output stride)")
        need(bool(self.data.sources) or self.data.synthetic > 0,
             "the recipe has no data: add [[data.sources]] entries (path = ...) or set data.synthetic")
        for i, source in enumerate(self.data.sources):
            need(bool(source.path), f"data.sources[{i}] has no path")
            need(source.kind in ("low", "high"), f"data.sources[{i}].kind must be 'low' or 'high', not {source.kind!r}")
            need(source.weight >= 0, f"data.sources[{i}].weight must be >= 0")
        if self.data.strategy == "after":
            high = [s.path for s in self.data.sources if s.kind == "high"]
            need(not high, f"data.strategy = 'after' trains on low-level data only, but {high} are kind = 'high' "
                           "(use strategy = 'mix' to train on both)")
        from .ranking import check_section

        for problem in check_section(self.ranking):
            need(False, problem)
        if self.tuning.method == "lora":
            need(self.lora.r >= 1 and self.lora.alpha > 0, "lora.r must be >= 1 and lora.alpha > 0")
        return self


# ---------------------------------------------------------------------------------------------
# Reading


def load_recipe(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> Recipe:
    """Read a TOML recipe, apply ``key=value`` overrides, check it."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = tomllib.load(fh)
    except FileNotFoundError:
        raise RecipeError(f"recipe {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise RecipeError(f"recipe {path} is not valid TOML: {exc}") from exc
    recipe = recipe_from_dict(apply_overrides(raw, overrides))
    recipe.source = str(path)
    return recipe.validate()


def apply_overrides(raw: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``raw`` with each ``dotted.key=value`` set (values parsed as TOML, else strings)."""
    out = copy.deepcopy(dict(raw))
    for item in overrides:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise RecipeError(f"override {item!r} is not key=value")
        try:
            value = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            value = text.strip()
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise RecipeError(f"override {key}: {part} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def recipe_from_dict(raw: Mapping[str, Any]) -> Recipe:
    """Build a :class:`Recipe` from nested dicts; unknown keys and wrong types are errors, not ignored."""
    return _build(Recipe, raw, "")


def _build(cls: type, raw: Any, where: str) -> Any:
    if not isinstance(raw, Mapping):
        raise RecipeError(f"{where or 'recipe'} must be a table, not {type(raw).__name__}")
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise RecipeError(f"unknown key(s) in {where or 'recipe'}: {', '.join(unknown)} "
                          f"(known: {', '.join(sorted(names))})")
    kwargs: dict[str, Any] = {}
    for name, value in raw.items():
        key = f"{where}.{name}" if where else name
        kwargs[name] = _convert(hints[name], value, key)
    return cls(**kwargs)


def _convert(hint: Any, value: Any, key: str) -> Any:
    if dataclasses.is_dataclass(hint):
        return _build(hint, value, key)
    origin = getattr(hint, "__origin__", None)
    if origin is list:
        (item,) = hint.__args__
        if not isinstance(value, list):
            raise RecipeError(f"{key} must be a list")
        return [_convert(item, v, f"{key}[{i}]") for i, v in enumerate(value)]
    if hint is bool:
        if not isinstance(value, bool):
            raise RecipeError(f"{key} must be true or false, not {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise RecipeError(f"{key} must be an integer, not {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise RecipeError(f"{key} must be a number, not {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise RecipeError(f"{key} must be a string, not {value!r}")
        return str(value)
    return value


def recipe_json(recipe: Recipe) -> str:
    return json.dumps(recipe.to_dict(), indent=2, sort_keys=False)
