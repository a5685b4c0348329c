"""The one model backend: load a local image-text-to-text checkpoint once, prompt it, read its logits.

Where a frame is scored: :meth:`Backend.next_token_logits` (one prefill over a batch, the logits of the
next token) and :meth:`Backend.generate` (descriptions and free answers). The scorers, the describer
and the asker are thin layers over these two calls.

Loading options (keyword arguments of every ``vlm`` component, usually from ``RunOptions.model_options``):

- ``model``: a local directory saved with ``save_pretrained`` (model + processor); env ``QPLUG_MODEL``.
- ``adapter``: a local peft adapter directory applied on top; env ``QPLUG_ADAPTER``.
- ``merge_adapter``: fold the adapter into the weights (faster inference, same scores).
- ``device``: ``auto`` (cuda, then mps, then cpu), ``cpu``, ``cuda``, ``cuda:1``, ``mps``; env ``QPLUG_DEVICE``.
- ``dtype``: ``auto`` (bf16 on GPUs that have it, else fp16; fp32 on CPU), ``bfloat16``, ``float16``,
  ``float32``; env ``QPLUG_DTYPE``.
- ``trust_remote_code``: run Python shipped in the checkpoint; off unless given explicitly.
- ``attn_implementation``: ``sdpa`` by default, ``eager`` when the model lacks SDPA.

Weights are read from safetensors only (never unpickled) and nothing is ever downloaded. A checkpoint
whose tensors do not fit the model its config describes (another key layout: transformers would fill it
with random weights) is refused (:mod:`qplug_vlm.loadcheck`). Processors that need torchvision only for
videos (Qwen2.5-VL, Qwen3.5, LLaVA-OneVision) load image-only without it
(:func:`image_only_processor_class`).
"""

from __future__ import annotations

import inspect
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from qplug.errors import UsageError

if TYPE_CHECKING:
    import torch
    from PIL import Image

ENV_MODEL = "QPLUG_MODEL"
#: qplug's own model, trained by training/recipes/qplug_default.toml and shipped with the plugin; used
#: when no model is configured (see plugins/qplug_vlm/default_model/MODEL_CARD.md).
DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "default_model"
ENV_ADAPTER = "QPLUG_ADAPTER"
ENV_DEVICE = "QPLUG_DEVICE"
ENV_DTYPE = "QPLUG_DTYPE"

_DTYPES = {"bf16": "bfloat16", "bfloat16": "bfloat16", "fp16": "float16", "float16": "float16", "half": "float16",
           "fp32": "float32", "float32": "float32", "float": "float32", "auto": "auto"}
_PROCESSOR_FILES = ("processor_config.json", "preprocessor_config.json")
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "tokenizer_config.json", "vocab.json")


# ---------------------------------------------------------------------------------------------
# Options


@dataclass(frozen=True)
class LoadOptions:
    """Everything that decides which weights are loaded where; the key of the process-wide cache."""

    model: str
    adapter: str | None = None
    merge_adapter: bool = False
    device: str = "cpu"
    dtype: str = "float32"
    trust_remote_code: bool = False
    attn_implementation: str = "sdpa"


def has_default_model() -> bool:
    """True when the shipped default model is installed (a cheap file check: no torch import)."""
    return (DEFAULT_MODEL_DIR / "config.json").is_file() and (DEFAULT_MODEL_DIR / "model.safetensors").is_file()


def resolve_options(model: str | os.PathLike[str] | None = None, adapter: str | os.PathLike[str] | None = None,
                    merge_adapter: bool = False, device: str | None = None, dtype: str | None = None,
                    trust_remote_code: bool = False, attn_implementation: str = "sdpa") -> LoadOptions:
    """Fill in options from the environment and pick a device and dtype; check what can be checked cheaply."""
    model = model or os.environ.get(ENV_MODEL) or (DEFAULT_MODEL_DIR if has_default_model() else None)
    if not model:
        raise UsageError(f"no model configured: pass model=DIR (qplug --model DIR) or set {ENV_MODEL} to a local "
                         "checkpoint directory saved with save_pretrained")
    adapter = adapter or os.environ.get(ENV_ADAPTER) or None
    if trust_remote_code not in (True, False):
        # Only a real boolean True enables it: a stray string such as "false" must never switch it on.
        raise UsageError(f"trust_remote_code must be True or False, not {trust_remote_code!r}")
    resolved_device = _resolve_device(device or os.environ.get(ENV_DEVICE) or "auto")
    resolved_dtype = _resolve_dtype(dtype or os.environ.get(ENV_DTYPE) or "auto", resolved_device)
    return LoadOptions(model=_absolute(model), adapter=_absolute(adapter) if adapter else None,
                       merge_adapter=bool(merge_adapter) and adapter is not None, device=resolved_device,
                       dtype=resolved_dtype, trust_remote_code=trust_remote_code,
                       attn_implementation=attn_implementation)


def _absolute(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(os.path.expanduser(os.fspath(path)))


def _resolve_device(name: str) -> str:
    import torch

    name = name.strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        return "mps" if mps is not None and mps.is_available() else "cpu"
    kind = name.split(":")[0]
    if kind == "cuda" and not torch.cuda.is_available():
        raise UsageError(f"device={name!r} but this torch has no CUDA device (use device=cpu or auto)")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise UsageError(f"device={name!r} but MPS is not available here (use device=cpu or auto)")
    if kind not in {"cpu", "cuda", "mps", "xpu"}:
        raise UsageError(f"unknown device {name!r} (use auto, cpu, cuda, cuda:N or mps)")
    return name


def _resolve_dtype(name: str, device: str) -> str:
    key = _DTYPES.get(name.strip().lower())
    if key is None:
        raise UsageError(f"unknown dtype {name!r} (use auto, bfloat16, float16 or float32)")
    if key != "auto":
        return key
    if device.startswith("cuda"):
        import torch

        # bf16 keeps fp32's range (no overflow in long prefills); older GPUs only have fp16.
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    if device.startswith("mps"):
        return "float16"
    return "float32"  # CPU: half precision is slow there and changes scores


# ---------------------------------------------------------------------------------------------
# Generation settings


@dataclass(frozen=True)
class GenerationSettings:
    """How text is generated. Greedy by default, so the same frame always gets the same text.

    :param max_new_tokens: longest answer, in tokens.
    :param do_sample: sample instead of greedy decoding.
    :param temperature: sampling temperature (only with ``do_sample``).
    :param top_p: nucleus sampling mass (only with ``do_sample``).
    :param seed: seed torch's generator before sampling, for repeatable samples.
    """

    max_new_tokens: int = 160
    do_sample: bool = False
    temperature: float = 1.0
    top_p: float | None = None
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise UsageError("max_new_tokens must be >= 1")
        if not self.temperature > 0:
            raise UsageError("temperature must be > 0")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise UsageError("top_p must be in (0, 1]")

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``generate``; sampling knobs only when sampling (greedy ignores them)."""
        out: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "do_sample": self.do_sample}
        if self.do_sample:
            out["temperature"] = self.temperature
            if self.top_p is not None:
                out["top_p"] = self.top_p
        else:
            # A checkpoint's generation_config may ask for sampling; greedy must not inherit its knobs.
            out.update(temperature=None, top_p=None, top_k=None)
        return out


# ---------------------------------------------------------------------------------------------
# The backend


class Backend:
    """A loaded model and its processor, ready to prompt with images.

    Build it with :func:`load_backend` (cached, from a directory) or directly from objects in memory
    (``Backend(model, processor)``: tests, training-time evaluation).

    :param model: an image-text-to-text model (or a peft model around one).
    :param processor: its multimodal processor, with a chat template.
    :param name: how messages refer to the model (its directory).
    """

    def __init__(self, model: Any, processor: Any, name: str = "<model in memory>") -> None:
        self.name = name
        self.model = model.eval()
        self.processor = processor
        tokenizer = getattr(processor, "tokenizer", None)
        if tokenizer is None or getattr(processor, "image_processor", None) is None:
            raise UsageError(f"{name}: the processor ({type(processor).__name__}) is not a multimodal processor "
                             "with an image processor and a tokenizer")
        if not (getattr(processor, "chat_template", None) or getattr(tokenizer, "chat_template", None)):
            raise UsageError(f"{name}: the processor has no chat template, so qplug cannot build prompts for this "
                             "checkpoint; save one with processor.save_pretrained (chat_template=...)")
        self.tokenizer = tokenizer
        # Left padding puts every prompt's real last token at position -1, where the next token is read.
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token is None:
                raise UsageError(f"{name}: the tokenizer has neither a pad nor an end-of-sequence token to pad batches")
            tokenizer.pad_token = tokenizer.eos_token
        self._bos_text = self._bos_to_add()
        parameter = next(iter(model.parameters()))
        self.device = parameter.device
        self.dtype = parameter.dtype
        base = model.get_base_model() if hasattr(model, "get_base_model") else model
        self._keeps_logits = "logits_to_keep" in inspect.signature(base.forward).parameters
        self._pad_fill = _pad_colour(processor.image_processor)
        self._lock = threading.Lock()

    # -- prompts ---------------------------------------------------------------------------------

    @property
    def model_type(self) -> str | None:
        """``config.json``'s ``model_type`` (how presets recognise a model family)."""
        return getattr(getattr(self.model, "config", None), "model_type", None)

    @property
    def architectures(self) -> tuple[str, ...]:
        """``config.json``'s ``architectures``, or the loaded class's name for a model built in memory."""
        names = getattr(getattr(self.model, "config", None), "architectures", None) or ()
        base = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return tuple(dict.fromkeys([*names, type(base).__name__]))

    def render(self, question: str, prefix: str | None = None, *, system: str | None = None,
               image_first: bool = True, template_kwargs: Mapping[str, Any] | None = None) -> str:
        """The prompt text for one image and ``question``, ending where the model should continue.

        With ``prefix`` the assistant turn is opened and continued from ``prefix`` (the model's next
        token follows it, trailing space included); without, the prompt ends with the template's
        generation prompt.

        :param system: a system turn before the user's (models trained with one, e.g. Q-Insight).
        :param image_first: the image before the question in the user turn (after it for Q-SiT).
        :param template_kwargs: extra chat-template variables (``enable_thinking=False`` for Qwen3.5).
        """
        content = [{"type": "image"}, {"type": "text", "text": question}]
        messages: list[dict[str, Any]] = [{"role": "user", "content": content if image_first else content[::-1]}]
        if system:
            messages.insert(0, {"role": "system", "content": [{"type": "text", "text": system}]})
        if prefix:
            messages.append({"role": "assistant", "content": [{"type": "text", "text": prefix}]})
        try:
            text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=not prefix,
                                                      continue_final_message=bool(prefix),
                                                      **dict(template_kwargs or {}))
        except Exception as exc:  # a template that cannot take an image, or a broken template
            raise UsageError(f"{self.name}: its chat template failed on an image prompt: "
                             f"{type(exc).__name__}: {exc}") from exc
        if isinstance(text, list):  # some processors return one string per conversation
            text = text[0]
        if prefix:
            # Templates that strip the final message drop a trailing space the model must see (Q-SiT's
            # "... is " reads the level word as a token of its own after that space).
            trailing = prefix[len(prefix.rstrip()):]
            if trailing and not text.endswith(trailing):
                text += trailing
        if self._bos_text and not text.startswith(self._bos_text):
            text = self._bos_text + text
        self._check_prompt_end(text)
        return text

    def _check_prompt_end(self, text: str) -> None:
        """Refuse processors that append text after the prompt: the next token would be read in the wrong place.

        PaliGemma's processor, for one, always appends its prefix/suffix separator "\n".
        """
        from PIL import Image

        expected = self.tokenizer(text, add_special_tokens=False)["input_ids"][-4:]
        try:
            batch = self.processor(images=[[Image.new("RGB", (32, 32), (128, 128, 128))]], text=[text],
                                   add_special_tokens=False, return_tensors="pt")
        except Exception as exc:  # a processor whose settings do not fit its model or its template
            raise UsageError(f"{self.name}: the processor fails on an image prompt: {type(exc).__name__}: "
                             f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from exc
        actual = batch["input_ids"][0, -len(expected):].tolist()
        if actual != list(expected):
            added = self.tokenizer.decode(batch["input_ids"][0, -len(expected):])
            raise UsageError(f"{self.name}: the processor ({type(self.processor).__name__}) changes the end of the "
                             f"prompt (it ends in {added!r}, not in the prompt's own last tokens), so qplug cannot "
                             "read the next token after it; this checkpoint's processor is not supported")

    def _bos_to_add(self) -> str:
        """The BOS text the tokenizer would add itself, or "" (prompts are tokenized without special tokens).

        Tokenizing with special tokens could also append an end token after the prompt, which would
        then sit where the next token is read; so qplug adds BOS by hand and nothing else.
        """
        tokenizer = self.tokenizer
        bos_id = tokenizer.bos_token_id
        if bos_id is None:
            return ""
        with_special = tokenizer("a", add_special_tokens=True)["input_ids"]
        return tokenizer.bos_token if with_special and with_special[0] == bos_id else ""

    def first_tokens(self, context: str, words: Sequence[str], purpose: str, bare: bool = False) -> list[int]:
        """The id of each word's first sub-token as it follows ``context`` (:func:`first_tokens`)."""
        return first_tokens(self.tokenizer, self.name, context, words, purpose, bare)

    # -- running ---------------------------------------------------------------------------------

    def pad_fill(self, pad_square: bool | None) -> tuple[int, ...] | None:
        """The colour to pad frames to a square with: ``None`` means no padding.

        ``pad_square=None`` pads exactly when the processor would centre-crop (CLIP-style), as
        LLaVA-1.5 and Q-Align do; processors that keep the aspect ratio get the frame as it is.
        """
        if pad_square is None:
            # A native-resolution crop (no resize) sees the centre of the frame whatever its shape.
            pad_square = self.native_crop is None and bool(getattr(self.processor.image_processor, "do_center_crop", False))
        return self._pad_fill if pad_square else None

    @property
    def native_crop(self) -> tuple[int, int] | None:
        """(height, width) of the centre window when the processor crops without resizing, else None."""
        processor = getattr(self.processor, "image_processor", None)
        if processor is None or getattr(processor, "do_resize", True) or not getattr(processor, "do_center_crop", False):
            return None
        size = getattr(processor, "crop_size", None)
        # A plain dict in older transformers, a SizeDict (attributes) in 5.x.
        height = size.get("height") if isinstance(size, dict) else getattr(size, "height", None)
        width = size.get("width") if isinstance(size, dict) else getattr(size, "width", None)
        return (int(height), int(width)) if height and width else None

    def prepare(self, images: Sequence["Image.Image"], texts: Sequence[str]) -> Any:
        """The processor's batch for one image per prompt, left-padded, on the model's device and dtype."""
        if len(images) != len(texts):
            raise ValueError("one image per prompt")
        batch = self.processor(images=[[image] for image in images], text=list(texts), padding=True,
                               add_special_tokens=False, return_tensors="pt")
        if "attention_mask" in batch and not bool(batch["attention_mask"][:, -1].all()):
            raise RuntimeError(f"{self.name}: the processor padded on the right; scores would be read at padding")
        return batch.to(self.device, dtype=self.dtype)

    def forward(self, batch: Any) -> "torch.Tensor":
        """Float32 logits at the last position of a prepared batch, shape (batch, vocab), on the CPU."""
        import torch

        # logits_to_keep=1 projects only the last position onto the vocabulary (32k floats a row, not 32k x ~600).
        extra = {"logits_to_keep": 1} if self._keeps_logits else {}
        with self._lock, torch.inference_mode():
            output = self.model(**batch, use_cache=False, **extra)
        return output.logits[:, -1, :].float().cpu()

    def next_token_logits(self, images: Sequence["Image.Image"], texts: Sequence[str]) -> "torch.Tensor":
        """Logits of the token after each prompt, shape (batch, vocab): one prefill for the whole batch."""
        return self.forward(self.prepare(images, texts))

    def generate(self, images: Sequence["Image.Image"], texts: Sequence[str],
                 settings: GenerationSettings = GenerationSettings()) -> list[str]:
        """Generated continuations of the prompts (new text only, special tokens dropped, stripped)."""
        import torch

        batch = self.prepare(images, texts)
        with self._lock, torch.inference_mode():
            if settings.do_sample and settings.seed is not None:
                torch.manual_seed(settings.seed)
            output = self.model.generate(**batch, pad_token_id=self.tokenizer.pad_token_id, **settings.kwargs())
        sequences = output.sequences if hasattr(output, "sequences") else output
        new_tokens = sequences[:, batch["input_ids"].shape[1]:]
        return [text.strip() for text in self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)]


def first_tokens(tokenizer: Any, name: str, context: str, words: Sequence[str], purpose: str,
                 bare: bool = False) -> list[int]:
    """The id of each word's first sub-token as it follows ``context`` in the model's own tokenization.

    Tokenizing ``context + " " + word`` and taking the first token past the context works for
    SentencePiece ('▁word'), byte-level BPE ('Ġword') and tokenizers without either, where
    encoding the word alone would not (no hard-coded ids: those differ between checkpoints).

    :param bare: read the first token of the word encoded on its own instead: the prompt already
        ends with a space token ("... is "), so the next token cannot carry a space (Q-SiT's read-out).
    :param name: how messages name the model.
    :raises UsageError: when a word is unknown to the tokenizer or two words share a token.
    """
    joiner = "" if context[-1:].isspace() else " "
    base = tokenizer(context, add_special_tokens=False)["input_ids"]
    ids: list[int] = []
    for word in words:
        if bare:
            alone = tokenizer(word, add_special_tokens=False)["input_ids"]
            if not alone:
                raise UsageError(f"{name}: the word {word!r} has no tokens")
            ids.append(int(alone[0]))
            continue
        full = tokenizer(context + joiner + word, add_special_tokens=False)["input_ids"]
        common = 0
        while common < min(len(base), len(full)) and base[common] == full[common]:
            common += 1
        if common >= len(full):
            raise UsageError(f"{name}: the word {word!r} adds no token after the {purpose} prompt")
        ids.append(int(full[common]))
    unk = tokenizer.unk_token_id
    unknown = [w for w, i in zip(words, ids) if unk is not None and i == unk]
    if unknown:
        raise UsageError(f"{name}: the tokenizer has no token for {_quote(unknown)} (they map to the unknown "
                         f"token {tokenizer.unk_token!r}), so {purpose} cannot read them; use a checkpoint whose "
                         "tokenizer knows these words")
    seen: dict[int, str] = {}
    for word, token in zip(words, ids):
        if token in seen:
            piece = tokenizer.convert_ids_to_tokens(token)
            raise UsageError(f"{name}: {purpose} cannot tell {seen[token]!r} from {word!r}: both start with "
                             f"the token {piece!r} (id {token}); use a checkpoint whose tokenizer gives each "
                             "word its own first token")
        seen[token] = word
    return ids


def _pad_colour(image_processor: Any) -> tuple[int, ...]:
    """The processor's mean colour in 0..255, the colour LLaVA-1.5 pads with (grey if it has none)."""
    mean = getattr(image_processor, "image_mean", None)
    if not mean or len(mean) != 3:
        return (127, 127, 127)
    # int(), not round(): LLaVA's expand2square and Q-Align pad with tuple(int(x * 255) for x in mean),
    # (122, 116, 104) for CLIP's mean; rounding gave (123, 117, 104) and moved their logits.
    return tuple(int(float(m) * 255) for m in mean)


def _quote(words: Sequence[str]) -> str:
    return ", ".join(repr(w) for w in words)


# ---------------------------------------------------------------------------------------------
# Loading, once per process

_cache: dict[tuple[LoadOptions, str], Backend] = {}
_cache_lock = threading.RLock()
_loads = 0


def checked_options(**options: Any) -> LoadOptions:
    """:func:`resolve_options`, with an unknown option name a one-line error rather than a TypeError."""
    known = inspect.signature(resolve_options).parameters
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise UsageError(f"unknown option(s) {', '.join(unknown)} (model options: {', '.join(known)})")
    return resolve_options(**options)


def load_backend(**options: Any) -> Backend:
    """The backend for these loading options, loaded on first use and shared afterwards.

    Takes the keyword arguments of :func:`resolve_options`. Scorers, describers and askers of one
    run call this with the same options, so one process holds one copy of the weights. A
    ``model_type: mplug_owl2`` directory (Q-Align, OneAlign, Co-Instruct) gives
    :class:`qplug_vlm.mplug_owl2.adapter.MplugOwl2Backend`, the same calls on qplug's own mPLUG-Owl2. A
    checkpoint of qplug's default-model layout (FastVLM: EfficientNet + Llama) gives
    :class:`qplug_vlm.native.adapter.NativeBackend`, which runs it without importing transformers
    (``QPLUG_NATIVE=0`` turns that off).
    """
    key = checked_options(**options)
    from .mplug_owl2 import is_mplug_owl2

    if is_mplug_owl2(key.model):
        # No auto class reads mPLUG-Owl2 (Q-Align, OneAlign, Co-Instruct): qplug's own implementation,
        # behind the same calls (qplug_vlm.mplug_owl2.adapter).
        from .mplug_owl2.adapter import load_adapter

        return load_adapter(key)  # type: ignore[return-value]
    # -- native path (qplug_vlm.native): qplug's default-model layout without transformers; the cache key
    # -- holds $QPLUG_NATIVE too, so both paths can be compared in one process.
    from .native import mode as native_mode

    cache_key = (key, native_mode())
    with _cache_lock:
        backend = _cache.get(cache_key)
        if backend is None:
            backend = _load_native(key) or _load(key)
            _cache[cache_key] = backend
        return backend


def _load_native(options: LoadOptions) -> Backend | None:
    """The checkpoint on the native path (:func:`qplug_vlm.native.load_native`), or None for transformers."""
    global _loads
    from .native import load_native

    backend = load_native(options)
    if backend is not None:
        _loads += 1
    return backend
# -- end of the native path


def load_count() -> int:
    """How many times weights were actually loaded in this process (cache misses)."""
    return _loads


def clear_cache() -> None:
    """Forget loaded models (frees their memory once no component holds them)."""
    with _cache_lock:
        _cache.clear()
    from .mplug_owl2.adapter import clear_shared

    clear_shared()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a dependency of this plugin
        pass


def _load(options: LoadOptions) -> Backend:
    global _loads
    import torch

    from .fusion import simplify_for_inference
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor
    from transformers.utils import logging as hf_logging

    # qplug draws its own progress; transformers' per-file bars would garble it and logs of QC runs.
    hf_logging.disable_progress_bar()
    path = Path(options.model)
    _check_model_dir(path)
    common: dict[str, Any] = {"local_files_only": True, "trust_remote_code": options.trust_remote_code}
    # The processor first: it is cheap, and a missing or template-less processor should fail before
    # gigabytes of weights are read.
    processor = _load_processor(AutoProcessor, path, common)
    try:
        config = AutoConfig.from_pretrained(path, **common)
    except Exception as exc:
        raise UsageError(f"{path} is not a model transformers recognises: {_first_line(exc)}"
                         f"{_remote_code_hint(exc, options)}") from exc
    dtype = getattr(torch, options.dtype)
    kwargs: dict[str, Any] = dict(common, use_safetensors=True, attn_implementation=options.attn_implementation)
    kwargs[_dtype_keyword()] = dtype
    if options.device != "cpu":
        kwargs["device_map"] = options.device  # place weights straight on the device, no CPU copy
    try:
        model = from_pretrained(AutoModelForImageTextToText, path, kwargs, config=config)
    except UsageError:
        raise
    except Exception as exc:
        message = _first_line(exc)
        if "Unrecognized configuration class" in message:
            kind = getattr(config, "model_type", "?")
            raise UsageError(f"{path}: a {kind!r} checkpoint is not an image-text-to-text model (qplug needs a "
                             "multimodal model with a vision tower)") from exc
        raise UsageError(f"{path}: the model could not be loaded: {message}{_remote_code_hint(exc, options)}") from exc
    if "device_map" not in kwargs:
        model = model.to(options.device)
    if options.adapter:
        model = _apply_adapter(model, Path(options.adapter), options.merge_adapter)
    # Loaded here for inference only, so exact simplifications may change the modules in place.
    simplify_for_inference(model.eval())
    prefer_channels_last(model)
    _loads += 1
    return Backend(model, processor, name=str(path))


def prefer_channels_last(model: Any) -> bool:
    """Store the weights of a convolutional tower (EfficientNet, ConvNeXt...) channels-last: PyTorch's CPU
    depthwise and pointwise kernels run about 1.2-1.4x faster on it (EfficientNet-Lite0 on 2 cores: 24 ->
    21 ms at batch 1, 32 -> 23 ms per image at batch 8) and GPUs prefer it too. Only weights with 4
    dimensions change layout; a model without depthwise convolutions is left as it is. Training uses it
    too (``qplug_training.train``): a bf16 step of the fast chain's stage 2, 2.68 -> 2.51 s on 2 cores."""
    from torch import nn

    if not any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in model.modules()):
        return False
    import torch

    model.to(memory_format=torch.channels_last)
    return True


def from_pretrained(auto: Any, path: Path, kwargs: dict[str, Any], config: Any = None) -> Any:
    """``auto.from_pretrained`` with every weight accounted for.

    Refused with :class:`~qplug_vlm.loadcheck.IncompatibleWeights` (a ``UsageError``) when the
    checkpoint's tensors do not fit the model its config describes: checked before loading when most
    are missing (no random 7B model is ever allocated), and exactly afterwards from transformers'
    loading report. When SDPA was asked for and a sub-model has no SDPA kernel (an EfficientNet or
    other convolutional tower), retried with transformers' own choice, which is SDPA for each sub-model
    that has it and eager attention for the rest.

    :param config: the checkpoint's config when already loaded (read here otherwise).
    """
    from . import loadcheck

    trust = bool(kwargs.get("trust_remote_code", False))
    if config is None:
        try:
            from transformers import AutoConfig

            config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=trust)
        except Exception:  # from_pretrained below reports an unreadable config itself
            config = None
    if config is not None:
        loadcheck.preflight(auto, Path(path), config, trust)
    kwargs = dict(kwargs, output_loading_info=True)
    try:
        model, info = auto.from_pretrained(path, **kwargs)
    except (ValueError, ImportError) as exc:
        text = str(exc).lower()
        if kwargs.get("attn_implementation") == "sdpa" and ("sdpa" in text or "scaled_dot_product" in text):
            model, info = auto.from_pretrained(path, **{k: v for k, v in kwargs.items() if k != "attn_implementation"})
        else:
            raise
    loadcheck.check_loading_info(Path(path), config if config is not None else model.config, info)
    return model


def _load_processor(auto: Any, path: Path, common: dict[str, Any]) -> Any:
    """``AutoProcessor`` for the checkpoint, or its class without the video processor when only that failed.

    Qwen2.5-VL, Qwen3.5 and LLaVA-OneVision processors carry a video processor that needs torchvision,
    which a CPU-only install may lack (ANCHORS: it is not installable beside torch 2.13); their image
    processors have PIL versions. qplug sends images only, so the processor is rebuilt without it.
    """
    try:
        return auto.from_pretrained(path, **common)
    except Exception as exc:
        failure = exc
    cls = _processor_class(path)
    if cls is not None and "video_processor" in cls.get_attributes():
        try:
            return image_only_processor_class(cls).from_pretrained(path, **common)
        except Exception:
            pass  # the original error says more
    raise UsageError(f"{path}: its processor could not be loaded: {_first_line(failure)}") from failure


def _processor_class(path: Path) -> Any:
    """The transformers processor class a checkpoint names (processor_config.json, else its model type)."""
    import transformers

    name = None
    for file in ("processor_config.json", "preprocessor_config.json"):
        try:
            name = json.loads((path / file).read_text()).get("processor_class")
        except (OSError, ValueError):
            continue
        if name:
            break
    if not name:
        try:
            from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

            model_type = json.loads((path / "config.json").read_text()).get("model_type")
            name = PROCESSOR_MAPPING_NAMES.get(model_type)
        except (OSError, ValueError, ImportError):
            return None
    return getattr(transformers, name, None) if isinstance(name, str) else None


def image_only_processor_class(cls: Any) -> Any:
    """``cls`` (a multimodal processor class) without its video processor, under the same name.

    Its parts (``get_attributes``) no longer include ``video_processor``, so transformers neither loads
    nor type-checks one (the check needs torchvision's video classes); ``cls.__init__`` still receives
    ``video_processor=None`` and drops it. Images and text go through ``cls``'s own code unchanged, and
    saved processors keep ``cls``'s name and settings, so a full install loads them normally.
    """
    attributes = [name for name in cls.get_attributes() if name != "video_processor"]
    if len(attributes) == len(cls.get_attributes()):
        return cls

    def get_attributes(klass: Any) -> list[str]:
        return list(attributes)

    return type(cls.__name__, (cls,), {"get_attributes": classmethod(get_attributes), "__module__": cls.__module__,
                                       "__doc__": f"{cls.__name__} for images only (no video processor)."})


def _dtype_keyword() -> str:
    """transformers 4.56 renamed ``torch_dtype`` to ``dtype``; older versions would ignore ``dtype``."""
    import transformers

    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    return "dtype" if (major, minor) >= (4, 56) else "torch_dtype"


def _check_model_dir(path: Path) -> None:
    """Clear messages for the common mistakes, before transformers says something less direct."""
    if not path.exists():
        raise UsageError(f"model directory {path} does not exist")
    if not path.is_dir():
        raise UsageError(f"model={path} is a file; give the checkpoint directory (saved with save_pretrained)")
    if not (path / "config.json").is_file():
        raise UsageError(f"{path} is not a model directory: it has no config.json (save checkpoints with "
                         "model.save_pretrained and processor.save_pretrained)")
    if not (any(path.glob("*.safetensors")) or (path / "model.safetensors.index.json").is_file()):
        pickled = any(path.glob("*.bin")) or any(path.glob("*.pt"))
        raise UsageError(f"{path} has no .safetensors weights" + (
            " (only pickled .bin/.pt files, which qplug never loads: re-save with save_pretrained)" if pickled else ""))
    if not any((path / name).is_file() for name in _PROCESSOR_FILES):
        raise UsageError(f"{path} has no processor files ({' or '.join(_PROCESSOR_FILES)}): save the processor next "
                         "to the model with processor.save_pretrained(DIR)")
    if not any((path / name).is_file() for name in _TOKENIZER_FILES):
        raise UsageError(f"{path} has no tokenizer files: save the processor (with its tokenizer) next to the model")


def _apply_adapter(model: Any, adapter: Path, merge: bool) -> Any:
    """Put a peft adapter on ``model``; merged, it becomes plain weights again."""
    if not (adapter / "adapter_config.json").is_file():
        raise UsageError(f"adapter {adapter} is not a peft adapter directory (no adapter_config.json)")
    if not (adapter / "adapter_model.safetensors").is_file():
        raise UsageError(f"adapter {adapter} has no adapter_model.safetensors (qplug never loads pickled .bin "
                         "adapters: re-save with save_pretrained)")
    try:
        from peft import PeftModel
    except ImportError as exc:
        raise UsageError("adapters need peft: pip install 'qplug[model]'") from exc
    try:
        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False)
    except Exception as exc:
        raise UsageError(f"adapter {adapter} does not fit this model: {_first_line(exc)}") from exc
    return model.merge_and_unload() if merge else model


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def _remote_code_hint(exc: BaseException, options: LoadOptions) -> str:
    if "trust_remote_code" in str(exc) and not options.trust_remote_code:
        return " (this checkpoint ships its own code: pass trust_remote_code=True only if you trust it)"
    return ""
