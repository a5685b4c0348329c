"""The model a run trains: loaded from a local checkpoint or built from a recipe, then made trainable.

- :func:`load_base`: a checkpoint directory (``AutoModelForImageTextToText`` + ``AutoProcessor``, local
  files only, safetensors only) or a LLaVA-layout model built from ``[model.from_config]`` with a
  tokenizer trained on the run's own texts (:func:`train_tokenizer`) and a LLaVA processor.
- :func:`dct_patch_init`: start a from-scratch vision tower's patch embedding as a 2-D DCT filter bank.
- :func:`prepare_tuning`: freeze what the recipe freezes, put LoRA on the language model (by regex)
  or train fully, and turn on gradient checkpointing.

Everything here runs on the CPU in the tests with tiny dimensions; the same code builds LLaVA-1.5-7B.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from qplug_vlm.configuration import LLAVA_TEMPLATE, SPECIAL_TOKENS, llava_config, llava_processor, text_config, \
    tokenizer_corpus

from .recipe import FromConfig, Recipe, RecipeError

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerFast

_GENERATION_TAG = re.compile(r"{%-?\s*generation\s*-?%}")
#: Submodule names of the vision side and of the projector across architectures in transformers.
VISION_NAMES = ("vision_tower", "vision_model")
PROJECTOR_NAMES = ("multi_modal_projector", "connector")


@dataclass
class BaseModel:
    """A loaded or built base: the model, its processor and where it came from."""

    model: Any
    processor: Any
    #: The checkpoint directory the weights came from (for adapters to refer to), or None if built.
    path: Path | None
    built: bool
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Chat templates


def llava_template() -> str:
    """LLaVA-1.5's USER:/ASSISTANT: format with ``{% generation %}`` around each answer
    (:data:`qplug_vlm.configuration.LLAVA_TEMPLATE`)."""
    return LLAVA_TEMPLATE


def resolve_template(value: str, recipe: Recipe) -> str | None:
    """The template a recipe asks for: None keeps the checkpoint's."""
    if not value:
        return None
    if value == "llava":
        return llava_template()
    path = recipe.resolve_path(value)
    if not path.is_file():
        raise RecipeError(f"model.chat_template = {value!r}: not 'llava' and not a file")
    return path.read_text(encoding="utf-8")


def check_generation_markers(processor: Any, where: str) -> None:
    """Refuse templates without ``{% generation %}``: without them no token could be told to be the assistant's."""
    template = getattr(processor, "chat_template", None) or getattr(processor.tokenizer, "chat_template", None)
    if not template:
        raise RecipeError(f"{where}: the processor has no chat template; set model.chat_template = \"llava\" "
                          "or a template file")
    if isinstance(template, dict):  # several named templates: the default one is used
        template = template.get("default", next(iter(template.values())))
    if not _GENERATION_TAG.search(template):
        raise RecipeError(f"{where}: the chat template has no {{% generation %}} markers, so assistant tokens cannot "
                          "be found for the loss; set model.chat_template = \"llava\" (LLaVA-1.5 format) or a "
                          "template file that wraps each assistant answer in {% generation %}...{% endgeneration %}")


def untrained_answer_start(processor: Any, answer: str = "Yes") -> str | None:
    """The text of a whitespace-only token that the template puts right before an answer and outside its
    generation span, or None. Such a token is never a label, so the model never learns to emit it, and an
    answer scored by its first token ("Yes", an option letter, a level word) reads an untrained logit."""
    messages = [{"role": "user", "content": [{"type": "text", "text": "Is it sharp?"}]},
                {"role": "assistant", "content": [{"type": "text", "text": answer}]}]
    out = processor.apply_chat_template([messages], tokenize=True, return_dict=True,
                                        return_assistant_tokens_mask=True)
    ids, mask = list(out["input_ids"][0]), list(out["assistant_masks"][0])
    if 1 not in mask or mask.index(1) == 0:
        return None
    before = processor.tokenizer.decode([ids[mask.index(1) - 1]])
    return before if before and not before.strip() else None


# ---------------------------------------------------------------------------------------------
# Tokenizer


def train_tokenizer(texts: Iterable[str], vocab_size: int) -> "PreTrainedTokenizerFast":
    """A byte-level BPE tokenizer trained on ``texts`` plus every prompt and level word qplug uses
    (:func:`qplug_vlm.configuration.tokenizer_corpus`).

    Llama-like behaviour: BOS is added when encoding, ``<pad>`` pads. The scoring prompts are in the
    training text so each level word ("excellent", "good"...) gets its own first token, which
    qplug's scorers require (they refuse tokenizers that cannot tell the words apart).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator([*tokenizer_corpus(), *texts], trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B",
                                                       special_tokens=[("<s>", bos)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
                                   pad_token="<pad>")
    fast.add_special_tokens({"additional_special_tokens": ["<image>"]})
    return fast


# ---------------------------------------------------------------------------------------------
# Loading and building


def torch_dtype(name: str, recipe: Recipe) -> "torch.dtype":
    """Weights dtype. ``auto``: bf16 for LoRA on a bf16-capable GPU (the frozen base needs no fp32 master
    copy), else fp32 (full fine-tuning keeps fp32 master weights; DeepSpeed casts for itself)."""
    import torch

    if name == "auto":
        lora_on_gpu = recipe.tuning.method == "lora" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return torch.bfloat16 if lora_on_gpu else torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
                "float16": torch.float16, "fp16": torch.float16}[name]
    except KeyError:
        raise RecipeError(f"model.dtype must be auto, float32, bfloat16 or float16, not {name!r}") from None


def load_checkpoint(path: Path, recipe: Recipe, device_map: Any = None) -> BaseModel:
    """A local checkpoint (model + processor), never downloaded, never unpickled."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from qplug_vlm.backend import from_pretrained

    if not (path / "config.json").is_file():
        raise RecipeError(f"model.path = {path}: not a checkpoint directory (no config.json)")
    processor = AutoProcessor.from_pretrained(path, local_files_only=True)
    kwargs: dict[str, Any] = {"local_files_only": True, "use_safetensors": True,
                              "dtype": torch_dtype(recipe.model.dtype, recipe),
                              "attn_implementation": recipe.model.attn_implementation}
    if device_map is not None:
        kwargs["device_map"] = device_map
    model = from_pretrained(AutoModelForImageTextToText, path, kwargs)
    return BaseModel(model=model, processor=processor, path=path, built=False)


def build_from_config(recipe: Recipe, texts: Sequence[str]) -> BaseModel:
    """A model of the recipe's dimensions with its tokenizer and processor: a random-init LLaVA (CLIP +
    Llama), or FastVLM's layout around the pretrained EfficientNet-Lite0 tower (random-init Llama)."""
    notes: list[str] = []
    tokenizer = _tokenizer(recipe, texts, notes)
    if recipe.model.from_config.architecture == "fast_vlm":
        model, processor = _fast_vlm(recipe, tokenizer, notes)
    else:
        model, processor = _llava(recipe, tokenizer, notes)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    return BaseModel(model=model, processor=processor, path=None, built=True, notes=notes)


def _tokenizer(recipe: Recipe, texts: Sequence[str], notes: list[str]) -> Any:
    from transformers import AutoTokenizer

    if recipe.tokenizer.path:
        tokenizer = AutoTokenizer.from_pretrained(recipe.resolve_path(recipe.tokenizer.path), local_files_only=True)
        if tokenizer.convert_tokens_to_ids("<image>") in (None, tokenizer.unk_token_id):
            tokenizer.add_special_tokens({"additional_special_tokens": ["<image>"]})
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.unk_token or tokenizer.eos_token
        return tokenizer
    tokenizer = train_tokenizer(texts, recipe.tokenizer.vocab_size)
    notes.append(f"trained a byte-level BPE tokenizer: {len(tokenizer)} tokens on {len(texts)} texts")
    return tokenizer


def _image_processor(recipe: Recipe, **normalisation: Any) -> Any:
    from transformers import CLIPImageProcessorPil

    spec: FromConfig = recipe.model.from_config
    crop = recipe.image.crop or spec.image_size
    if crop != spec.image_size:
        raise RecipeError(f"image.crop = {crop} but model.from_config.image_size = {spec.image_size}: the tower's "
                          "input size fixes the number of image tokens, so they must be equal")
    shortest = recipe.image.size or crop
    return CLIPImageProcessorPil(do_resize=recipe.image.resize, size={"shortest_edge": shortest},
                                 crop_size={"height": crop, "width": crop}, do_center_crop=True, **normalisation)


def _llava(recipe: Recipe, tokenizer: Any, notes: list[str]) -> tuple[Any, Any]:
    import torch
    from transformers import LlavaForConditionalGeneration

    spec: FromConfig = recipe.model.from_config  # a LlavaSize: the same builders as qplug_vlm's
    _check_vocab(spec, tokenizer)
    processor = llava_processor(tokenizer, spec, image_processor=_image_processor(recipe))
    config = llava_config(tokenizer, spec)
    torch.manual_seed(recipe.run.seed)
    model = LlavaForConditionalGeneration(config)
    if spec.patch_init == "dct":
        dct_patch_init(model)
        notes.append("patch embedding initialised with a 2-D DCT filter bank")
    return model, processor


def _fast_vlm(recipe: Recipe, tokenizer: Any, notes: list[str]) -> tuple[Any, Any]:
    """FastVLM's layout (tower -> last feature map flattened -> 2-layer projector -> LM) around Lite0: its
    stride-32 head map gives (image_size / 32)^2 image tokens, 1280 wide."""
    import torch
    from transformers import FastVlmConfig, FastVlmForConditionalGeneration, LlavaProcessor

    from .pretrained import LITE0_MEAN, LITE0_STD, lite0_config, load_tower_weights

    spec: FromConfig = recipe.model.from_config
    _check_vocab(spec, tokenizer)
    stride = 32
    processor = LlavaProcessor(image_processor=_image_processor(recipe, image_mean=list(LITE0_MEAN),
                                                                image_std=list(LITE0_STD)),
                               tokenizer=tokenizer, patch_size=stride, vision_feature_select_strategy="full",
                               num_additional_image_tokens=0, chat_template=llava_template())
    text = text_config(tokenizer, hidden=spec.text_hidden, intermediate=spec.text_intermediate,
                       layers=spec.text_layers, heads=spec.text_heads, initializer_range=spec.initializer_range,
                       max_position_embeddings=spec.max_position_embeddings, vocab_size=spec.vocab_size)
    config = FastVlmConfig(vision_config=lite0_config(image_size=spec.image_size), text_config=text,
                           image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
                           image_seq_length=(spec.image_size // stride) ** 2, projector_hidden_act=spec.projector_act,
                           vision_feature_select_strategy="full", vision_feature_layer=-1)
    torch.manual_seed(recipe.run.seed)
    model = FastVlmForConditionalGeneration(config)
    weights = recipe.resolve_path(spec.vision_weights)
    load_tower_weights(model.model.vision_tower, weights)
    notes.append(f"vision tower: ImageNet EfficientNet-Lite0 from {weights}")
    return model, processor


def _check_vocab(spec: FromConfig, tokenizer: Any) -> None:
    if spec.vocab_size and spec.vocab_size < len(tokenizer):
        raise RecipeError(f"model.from_config.vocab_size = {spec.vocab_size} is smaller than the tokenizer's "
                          f"{len(tokenizer)} tokens (0 sizes the embeddings to the tokenizer)")


def load_base(recipe: Recipe, texts: Sequence[str], device_map: Any = None) -> BaseModel:
    """The recipe's base model and processor, with the chat template it asks for (checked for markers)."""
    if recipe.model.path:
        base = load_checkpoint(recipe.resolve_path(recipe.model.path), recipe, device_map)
    else:
        base = build_from_config(recipe, texts)
    template = resolve_template(recipe.model.chat_template, recipe)
    if template is not None:
        base.processor.chat_template = template
        base.notes.append("chat template replaced by the recipe's")
    check_generation_markers(base.processor, str(base.path or "model.from_config"))
    space = untrained_answer_start(base.processor)
    if space is not None:
        base.notes.append(f"warning: answers start after the token {space!r}, which lies outside the template's "
                          "generation span and is never trained; first-token scoring (yes/no, options, levels) "
                          "will read an untrained logit. Use a tokenizer that merges the space into the answer's "
                          "first word, or move the space inside {% generation %}")
    if base.processor.tokenizer.pad_token_id is None:
        base.processor.tokenizer.pad_token = base.processor.tokenizer.eos_token
    return base


# ---------------------------------------------------------------------------------------------
# DCT patch embedding


def dct_basis(patch: int) -> "torch.Tensor":
    """The orthonormal 2-D DCT-II basis over a ``patch`` x ``patch`` window, shape (patch², patch, patch),
    ordered from low to high frequency (by u + v, then u)."""
    import torch

    n = torch.arange(patch, dtype=torch.float64)
    k = torch.arange(patch, dtype=torch.float64)[:, None]
    one_d = torch.cos(math.pi * (2 * n + 1) * k / (2 * patch))  # (freq, position)
    one_d *= math.sqrt(2 / patch)
    one_d[0] /= math.sqrt(2)
    order = sorted(((u, v) for u in range(patch) for v in range(patch)), key=lambda uv: (uv[0] + uv[1], uv[0]))
    return torch.stack([torch.outer(one_d[u], one_d[v]) for u, v in order])


def dct_patch_init(model: Any) -> int:
    """Set the vision tower's patch embedding (a conv with kernel = stride = patch) to DCT filters.

    Output channel ``i`` is DCT function ``i // C`` applied to input channel ``i % C``, so the lowest
    frequencies of every colour channel come first; channels beyond ``C x patch²`` keep their random
    init. The filters are orthonormal (energy-preserving): from step 0 the tower's tokens carry how
    much fine-frequency energy each patch has, which is what blur (too little), noise (too much,
    everywhere) and 8x8 blocking (peaks at block frequencies) change. A random init has to learn
    such filters first. Returns the number of filters set.
    """
    import torch

    conv = patch_embedding(model)
    out_channels, in_channels, kh, kw = conv.weight.shape
    if kh != kw:
        raise RecipeError("dct patch init needs square patches")
    basis = dct_basis(kh)  # (p², p, p)
    count = min(out_channels, in_channels * basis.shape[0])
    with torch.no_grad():
        for i in range(count):
            frequency, channel = divmod(i, in_channels)
            weight = torch.zeros(in_channels, kh, kw, dtype=torch.float64)
            weight[channel] = basis[frequency]
            conv.weight[i] = weight.to(conv.weight.dtype)
        if conv.bias is not None:
            conv.bias[:count] = 0
    return count


def patch_embedding(model: Any) -> Any:
    """The vision tower's patch embedding conv (kernel size == stride)."""
    import torch

    tower = find_module(model, VISION_NAMES)
    if tower is None:
        raise RecipeError("the model has no vision tower to initialise")
    for module in tower.modules():
        if isinstance(module, torch.nn.Conv2d) and module.kernel_size == module.stride:
            return module
    raise RecipeError("the vision tower has no patch-embedding convolution")


# ---------------------------------------------------------------------------------------------
# Tuning


def find_module(model: Any, names: Sequence[str]) -> Any:
    """The first submodule whose own name is one of ``names`` (shortest path first), or None."""
    hits = [(name.count("."), module) for name, module in model.named_modules() if name.rsplit(".", 1)[-1] in names]
    return min(hits, key=lambda hit: hit[0])[1] if hits else None


def module_name(model: Any, names: Sequence[str]) -> str | None:
    """The own name (last component) of the first submodule called one of ``names``."""
    for name, _ in model.named_modules():
        if name.rsplit(".", 1)[-1] in names:
            return name.rsplit(".", 1)[-1]
    return None


def prepare_tuning(model: Any, recipe: Recipe) -> tuple[Any, dict[str, int]]:
    """Freeze, wrap with LoRA or leave fully trainable, per the recipe. Returns (model, parameter counts)."""
    tuning = recipe.tuning
    vision = find_module(model, VISION_NAMES)
    projector_name = module_name(model, PROJECTOR_NAMES)
    vision_name = module_name(model, VISION_NAMES)
    if tuning.gradient_checkpointing and getattr(model, "supports_gradient_checkpointing", False):
        # Non-reentrant checkpointing needs no input gradients, so it works with a frozen embedding (LoRA).
        # transformers 5 renamed the method (the old name warns); older versions only have the old one.
        if hasattr(model, "activation_checkpointing_enable"):
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if tuning.method == "full":
        for parameter in model.parameters():
            parameter.requires_grad_(True)
        if tuning.freeze_vision and vision is not None:
            vision.requires_grad_(False)
            thawed = [p for name, p in vision.named_parameters()
                      if any(name == prefix or name.startswith(prefix + ".") for prefix in tuning.vision_trainable)]
            if tuning.vision_trainable and not thawed:
                raise RecipeError(f"tuning.vision_trainable {tuning.vision_trainable} names no vision-tower parameter")
            for parameter in thawed:
                parameter.requires_grad_(True)
        if not tuning.train_projector and projector_name:
            find_module(model, PROJECTOR_NAMES).requires_grad_(False)
    else:
        from peft import LoraConfig, get_peft_model

        model.requires_grad_(False)
        to_save = []
        if tuning.train_projector and projector_name:
            to_save.append(projector_name)
        if not tuning.freeze_vision and vision_name:
            to_save.append(vision_name)  # trained fully: LoRA targets the language model only
        matched = [n for n, _ in model.named_modules() if re.fullmatch(recipe.lora.target, n)]
        if not matched:
            raise RecipeError(f"lora.target {recipe.lora.target!r} matches no module of this model")
        config = LoraConfig(r=recipe.lora.r, lora_alpha=recipe.lora.alpha, lora_dropout=recipe.lora.dropout,
                            target_modules=recipe.lora.target, modules_to_save=to_save or None, bias="none")
        model = get_peft_model(model, config)
    return model, parameter_counts(model)


def freeze_batch_norm(model: Any) -> int:
    """Put every batch norm in eval mode, so that ``model.train()`` keeps their running statistics while
    their scale and shift may still train. Batches of 16 crops from one corpus would overwrite a
    pretrained tower's ImageNet statistics, and transformers' EfficientNet passes TensorFlow's momentum
    (0.99) to PyTorch, where it means "keep 1%": the statistics would become the last batch's.
    Returns how many."""
    from torch import nn

    frozen = 0
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
            frozen += 1
    return frozen


def upcast_trainable(model: Any) -> int:
    """Keep trainable weights in fp32 when the frozen base is bf16/fp16 (LoRA on a GPU): AdamW updates of
    ~1e-6 relative size vanish in bf16's 8-bit mantissa. Autocast still computes in bf16. Returns how
    many tensors were cast (peft already keeps LoRA matrices in fp32; the projector copy is the usual one)."""
    import torch

    cast = 0
    for parameter in model.parameters():
        if parameter.requires_grad and parameter.dtype in (torch.bfloat16, torch.float16):
            parameter.data = parameter.data.float()
            cast += 1
    return cast


def parameter_counts(model: Any) -> dict[str, int]:
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"total": total, "trainable": trainable}


def parameter_groups(model: Any, recipe: Recipe) -> list[dict[str, Any]]:
    """AdamW groups: no weight decay on biases and norms (the usual convention), and the projector at
    its own learning rate when ``tuning.projector_lr`` is set (LLaVA's LoRA recipe: 2e-5)."""
    train = recipe.train
    groups: dict[tuple[bool, bool], list[Any]] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        no_decay = parameter.ndim < 2 or "norm" in name.lower()
        projector = any(p in name for p in PROJECTOR_NAMES)
        groups.setdefault((no_decay, projector and recipe.tuning.projector_lr > 0), []).append(parameter)
    out = []
    for (no_decay, projector), params in sorted(groups.items()):
        out.append({"params": params, "weight_decay": 0.0 if no_decay else train.weight_decay,
                    "lr": recipe.tuning.projector_lr if projector else train.learning_rate})
    return out
