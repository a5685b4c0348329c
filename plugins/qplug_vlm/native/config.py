"""What a checkpoint directory must say for the native path to run it, read from its JSON files only.

:func:`read_spec` turns ``config.json``, ``processor_config.json``, ``tokenizer_config.json`` and
``generation_config.json`` into a :class:`FastVlmConfig`, or raises :class:`Unsupported` naming the first value
the native code does not implement (the backend then loads the checkpoint through transformers, which
handles it). Only the values qplug's default model layout uses are accepted: a FastVLM
(``model_type: fast_vlm``) with transformers' EfficientNet as its tower (``efficientnet``: ReLU6 or
swish, frozen batch norms), a GELU projector, a Llama text model with default RoPE, and a LLaVA
processor that centre-crops at native resolution (no resize) with a ``tokenizers`` tokenizer.

Nothing here imports torch: the backend decides cheaply which path a directory takes.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Mapping

__all__ = ["Unsupported", "TowerSpec", "TextSpec", "ImageSpec", "TokenSpec", "FastVlmConfig", "read_spec",
           "round_filters", "round_repeats", "TOWER_STRIDE"]

#: The tower's output stride: five stride-2 stages (stem and four blocks) for the EfficientNet layout.
TOWER_STRIDE: Final = 32
#: Activations of the tower, by their transformers name (``ACT2FN``), that the native tower implements.
TOWER_ACTIVATIONS: Final = ("relu6", "swish", "silu")
#: tokenizer_config.json keys that change nothing the native tokenizer does (others send the checkpoint
#: to transformers, which may rebuild the tokenizer from them).
_TOKENIZER_KEYS: Final = frozenset({
    "backend", "bos_token", "eos_token", "pad_token", "unk_token", "extra_special_tokens",
    "additional_special_tokens", "is_local", "local_files_only", "model_max_length", "processor_class",
    "tokenizer_class", "padding_side", "truncation_side", "model_input_names", "clean_up_tokenization_spaces",
    "chat_template", "name_or_path"})
_TOKENIZER_CLASSES: Final = ("TokenizersBackend", "PreTrainedTokenizerFast")
#: generation_config.json keys that greedy decoding, sampling (temperature, top-k, top-p) and the end
#: token cover; any other setting (repetition penalty, beams...) is transformers' job.
_GENERATION_KEYS: Final = frozenset({
    "_from_model_config", "bos_token_id", "eos_token_id", "pad_token_id", "transformers_version", "use_cache",
    "output_attentions", "output_hidden_states", "top_k"})


class Unsupported(Exception):
    """The checkpoint uses something the native path does not implement (the message says what).

    ``ours`` tells the two kinds apart: False for another architecture altogether (transformers is its
    only path, nothing to mention), True for qplug's own layout with a value the native path lacks (the
    user loses the fast start and should hear why).
    """

    def __init__(self, message: str, ours: bool = True) -> None:
        super().__init__(message)
        self.ours = ours


@dataclass(frozen=True)
class TowerSpec:
    """transformers' EfficientNet configuration, as the native tower builds it."""

    in_channels: tuple[int, ...]
    out_channels: tuple[int, ...]
    kernel_sizes: tuple[int, ...]
    strides: tuple[int, ...]
    expand_ratios: tuple[int, ...]
    num_block_repeats: tuple[int, ...]
    depthwise_padding: tuple[int, ...]
    width_coefficient: float
    depth_coefficient: float
    depth_divisor: int
    squeeze_expansion_ratio: float
    batch_norm_eps: float
    hidden_act: str
    hidden_dim: int
    num_channels: int


@dataclass(frozen=True)
class TextSpec:
    """The Llama text model's sizes."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    rms_norm_eps: float
    rope_theta: float
    attention_bias: bool
    mlp_bias: bool


@dataclass(frozen=True)
class ImageSpec:
    """The image processor's steps: centre crop at native resolution, rescale, normalise."""

    crop_height: int
    crop_width: int
    do_convert_rgb: bool
    do_rescale: bool
    rescale_factor: float
    do_normalize: bool
    image_mean: tuple[float, float, float]
    image_std: tuple[float, float, float]


@dataclass(frozen=True)
class TokenSpec:
    """The special tokens (their text; ids come from the tokenizer file)."""

    bos_token: str | None
    eos_token: str | None
    pad_token: str | None
    unk_token: str | None
    extra_special_tokens: tuple[str, ...]


@dataclass(frozen=True)
class FastVlmConfig:
    """Everything the native path reads from a FastVLM checkpoint directory besides its weights and tokenizer
    (named like transformers' config class, so load errors name the same architecture)."""

    path: Path
    architectures: tuple[str, ...]
    tower: TowerSpec
    text: TextSpec
    image: ImageSpec
    tokens: TokenSpec
    image_token: str
    image_token_id: int
    image_seq_length: int
    projector_bias: bool
    chat_template: str
    eos_token_ids: tuple[int, ...]
    top_k: int | None
    raw: Mapping[str, Any] = field(repr=False, compare=False, default_factory=dict)

    @property
    def model_type(self) -> str:
        return "fast_vlm"

    def to_dict(self) -> dict[str, Any]:
        """config.json as read (what :mod:`qplug_vlm.loadcheck`'s hints look at)."""
        return dict(self.raw)


def round_filters(tower: TowerSpec, channels: int) -> int:
    """Channels of a stage after the width multiplier, rounded to the divisor (EfficientNet's rule)."""
    divisor = tower.depth_divisor
    scaled = channels * tower.width_coefficient
    rounded = max(divisor, int(scaled + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * scaled:
        rounded += divisor
    return int(rounded)


def round_repeats(tower: TowerSpec, repeats: int) -> int:
    """Blocks of a stage after the depth multiplier."""
    return int(math.ceil(tower.depth_coefficient * repeats))


def read_spec(path: str | Path) -> FastVlmConfig:
    """The :class:`FastVlmConfig` of a checkpoint directory.

    :raises Unsupported: for any file or value outside what the native path implements.
    """
    path = Path(path)
    config = _json(path / "config.json")
    if config.get("model_type") != "fast_vlm":
        raise Unsupported(f"model_type {config.get('model_type')!r} is not fast_vlm", ours=False)
    if config.get("auto_map"):
        raise Unsupported("the checkpoint ships its own code (auto_map)", ours=False)
    vision, text = config.get("vision_config") or {}, config.get("text_config") or {}
    if vision.get("model_type") != "efficientnet":
        raise Unsupported(f"vision tower {vision.get('model_type')!r} is not efficientnet", ours=False)
    if text.get("model_type") != "llama":
        raise Unsupported(f"text model {text.get('model_type')!r} is not llama", ours=False)
    _expect(config, "vision_feature_select_strategy", "full")
    _expect(config, "vision_feature_layer", -1)
    _expect(config, "projector_hidden_act", "gelu")
    if config.get("tie_word_embeddings") or text.get("tie_word_embeddings"):
        raise Unsupported("tied input and output embeddings")
    tower = _tower(vision)
    text_spec = _text(text)
    if vision.get("hidden_size", tower.hidden_dim) != tower.hidden_dim:
        raise Unsupported("vision_config.hidden_size differs from hidden_dim")
    processor = _json(path / "processor_config.json")
    image = _image(processor)
    if image.crop_height % TOWER_STRIDE or image.crop_width % TOWER_STRIDE:
        raise Unsupported(f"crop {image.crop_height}x{image.crop_width} is not a multiple of {TOWER_STRIDE}")
    tokens_per_image = (image.crop_height // TOWER_STRIDE) * (image.crop_width // TOWER_STRIDE)
    if processor.get("patch_size") != TOWER_STRIDE or processor.get("num_additional_image_tokens", 0) != 0 \
            or processor.get("vision_feature_select_strategy", "full") != "full":
        raise Unsupported("the processor's image-token count does not follow the tower's 32-pixel grid")
    if config.get("image_seq_length", tokens_per_image) != tokens_per_image:
        raise Unsupported(f"image_seq_length {config.get('image_seq_length')} != {tokens_per_image}")
    image_token_id = config.get("image_token_index", config.get("image_token_id"))
    if not isinstance(image_token_id, int):
        raise Unsupported("config.json has no image_token_index")
    generation = _json(path / "generation_config.json", required=False)
    unknown = sorted(k for k, v in generation.items() if k not in _GENERATION_KEYS and v not in (None, False))
    if unknown:
        raise Unsupported(f"generation_config.json sets {', '.join(unknown)}")
    eos = generation.get("eos_token_id", text.get("eos_token_id"))
    eos_ids = tuple(int(i) for i in (eos if isinstance(eos, list) else [eos] if eos is not None else []))
    return FastVlmConfig(path=path, architectures=tuple(config.get("architectures") or ()), tower=tower, text=text_spec,
                image=image, tokens=_tokens(path), image_token=str(processor.get("image_token", "<image>")),
                image_token_id=image_token_id, image_seq_length=tokens_per_image,
                projector_bias=bool(config.get("multimodal_projector_bias", True)),
                chat_template=_chat_template(path, processor), eos_token_ids=eos_ids,
                top_k=generation.get("top_k"), raw=config)


def _json(file: Path, required: bool = True) -> dict[str, Any]:
    try:
        value = json.loads(file.read_text())
    except FileNotFoundError:
        if required:
            raise Unsupported(f"no {file.name}") from None
        return {}
    except (OSError, ValueError) as exc:
        raise Unsupported(f"{file.name} is unreadable: {exc}") from None
    if not isinstance(value, dict):
        raise Unsupported(f"{file.name} is not a JSON object")
    return value


def _expect(config: Mapping[str, Any], key: str, value: Any) -> None:
    if config.get(key, value) != value:
        raise Unsupported(f"{key} = {config.get(key)!r} (the native path implements {value!r})")


def _tower(vision: Mapping[str, Any]) -> TowerSpec:
    lists = ("in_channels", "out_channels", "kernel_sizes", "strides", "expand_ratios", "num_block_repeats")
    try:
        spec = TowerSpec(**{k: tuple(int(v) for v in vision[k]) for k in lists},
                         depthwise_padding=tuple(int(v) for v in vision.get("depthwise_padding") or ()),
                         width_coefficient=float(vision["width_coefficient"]),
                         depth_coefficient=float(vision["depth_coefficient"]),
                         depth_divisor=int(vision["depth_divisor"]),
                         squeeze_expansion_ratio=float(vision["squeeze_expansion_ratio"]),
                         batch_norm_eps=float(vision["batch_norm_eps"]), hidden_act=str(vision["hidden_act"]),
                         hidden_dim=int(vision["hidden_dim"]), num_channels=int(vision.get("num_channels", 3)))
    except (KeyError, TypeError, ValueError) as exc:
        raise Unsupported(f"vision_config lacks or misstates {exc}") from None
    if len({len(getattr(spec, k)) for k in lists}) != 1:
        raise Unsupported("vision_config's per-stage lists differ in length")
    if spec.hidden_act not in TOWER_ACTIVATIONS:
        raise Unsupported(f"tower activation {spec.hidden_act!r}")
    if any(s not in (1, 2) for s in spec.strides) or any(k % 2 == 0 for k in spec.kernel_sizes):
        raise Unsupported("tower strides other than 1 and 2, or even kernels")
    if sum(1 for s in spec.strides if s == 2) != 4:  # with the stem's: an output stride of 32
        raise Unsupported("the tower's output stride is not 32")
    if spec.hidden_dim != round_filters(spec, 1280):
        raise Unsupported("vision_config.hidden_dim does not match the head convolution")
    if spec.num_channels != 3:
        raise Unsupported(f"{spec.num_channels} input channels")
    return spec


def _text(text: Mapping[str, Any]) -> TextSpec:
    if text.get("hidden_act", "silu") != "silu":
        raise Unsupported(f"text activation {text.get('hidden_act')!r}")
    rope = text.get("rope_parameters")
    if rope is None:  # transformers 4.x layout
        if text.get("rope_scaling"):
            raise Unsupported("rope_scaling")
        rope = {"rope_type": "default", "rope_theta": text.get("rope_theta", 10000.0)}
    if rope.get("rope_type", "default") != "default" or set(rope) - {"rope_type", "rope_theta"}:
        raise Unsupported(f"RoPE {rope!r} (the native path implements the default RoPE)")
    try:
        heads = int(text["num_attention_heads"])
        hidden = int(text["hidden_size"])
        spec = TextSpec(vocab_size=int(text["vocab_size"]), hidden_size=hidden,
                        intermediate_size=int(text["intermediate_size"]),
                        num_hidden_layers=int(text["num_hidden_layers"]), num_attention_heads=heads,
                        num_key_value_heads=int(text.get("num_key_value_heads") or heads),
                        head_dim=int(text.get("head_dim") or hidden // heads),
                        rms_norm_eps=float(text.get("rms_norm_eps", 1e-6)), rope_theta=float(rope["rope_theta"]),
                        attention_bias=bool(text.get("attention_bias", False)),
                        mlp_bias=bool(text.get("mlp_bias", False)))
    except (KeyError, TypeError, ValueError) as exc:
        raise Unsupported(f"text_config lacks or misstates {exc}") from None
    if spec.num_attention_heads % spec.num_key_value_heads:
        raise Unsupported("attention heads are not a multiple of key/value heads")
    return spec


def _image(processor: Mapping[str, Any]) -> ImageSpec:
    if processor.get("processor_class") != "LlavaProcessor":
        raise Unsupported(f"processor {processor.get('processor_class')!r} is not LlavaProcessor")
    image = processor.get("image_processor") or {}
    kind = str(image.get("image_processor_type", ""))
    if kind not in ("CLIPImageProcessor", "CLIPImageProcessorPil", "CLIPImageProcessorFast"):
        raise Unsupported(f"image processor {kind!r}")
    if image.get("do_resize", True) or not image.get("do_center_crop", False):
        raise Unsupported("the image processor resizes (the native path implements the native-resolution crop)")
    if image.get("do_pad"):
        raise Unsupported("the image processor pads")
    crop = image.get("crop_size") or {}
    mean, std = image.get("image_mean") or [], image.get("image_std") or []
    if len(mean) != 3 or len(std) != 3 or not {"height", "width"} <= set(crop):
        raise Unsupported("the image processor's crop size, mean or std is missing")
    return ImageSpec(crop_height=int(crop["height"]), crop_width=int(crop["width"]),
                     do_convert_rgb=bool(image.get("do_convert_rgb", True)),
                     do_rescale=bool(image.get("do_rescale", True)),
                     rescale_factor=float(image.get("rescale_factor", 1 / 255)),
                     do_normalize=bool(image.get("do_normalize", True)),
                     image_mean=tuple(float(m) for m in mean),  # type: ignore[arg-type]
                     image_std=tuple(float(s) for s in std))  # type: ignore[arg-type]


def _tokens(path: Path) -> TokenSpec:
    if not (path / "tokenizer.json").is_file():
        raise Unsupported("no tokenizer.json")
    config = _json(path / "tokenizer_config.json")
    if config.get("tokenizer_class") not in _TOKENIZER_CLASSES:
        raise Unsupported(f"tokenizer class {config.get('tokenizer_class')!r}")
    unknown = sorted(k for k in config if k not in _TOKENIZER_KEYS)
    if unknown:
        raise Unsupported(f"tokenizer_config.json sets {', '.join(unknown)}")
    if config.get("clean_up_tokenization_spaces"):
        raise Unsupported("clean_up_tokenization_spaces")
    if config.get("padding_side", "left") not in ("left", "right"):
        raise Unsupported("padding_side")

    def text(value: Any) -> str | None:
        return value.get("content") if isinstance(value, dict) else value

    extra = config.get("extra_special_tokens") or config.get("additional_special_tokens") or []
    if isinstance(extra, dict):  # named extra tokens ({"image_token": "<image>"})
        extra = list(extra.values())
    return TokenSpec(bos_token=text(config.get("bos_token")), eos_token=text(config.get("eos_token")),
                     pad_token=text(config.get("pad_token")), unk_token=text(config.get("unk_token")),
                     extra_special_tokens=tuple(str(text(t)) for t in extra))


def _chat_template(path: Path, processor: Mapping[str, Any]) -> str:
    file = path / "chat_template.jinja"
    if file.is_file():
        return file.read_text()
    template = processor.get("chat_template")
    if isinstance(template, str) and template:
        return template
    raise Unsupported("no chat template (chat_template.jinja or processor_config.json)")
