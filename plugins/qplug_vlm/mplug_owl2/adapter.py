"""mPLUG-Owl2 behind the backend interface, so the describer, the asker and the level scorers run on it.

:class:`qplug_vlm.backend.Backend` wraps a transformers model and its processor; mPLUG-Owl2 has
neither an auto class nor a processor, so :func:`qplug_vlm.backend.load_backend` hands a
``model_type: mplug_owl2`` directory to :class:`MplugOwl2Backend`, which offers the same calls on
qplug's own implementation:

- :meth:`~MplugOwl2Backend.render`: the prompt in mPLUG-Owl2's conversation format (Q-Align /
  mPLUG-Owl2 ``conv_templates["mplug_owl2"]``, separator style "two, no system"):
  ``USER: <|image|>{question} ASSISTANT:``, or ``... ASSISTANT: {prefix}`` to continue an assistant
  turn; an assistant turn that is complete ends with ``</s>``. Q-Instruct's mPLUG-Owl2 evaluation
  (``eval_scripts/mplug_owl_2/eval_image_quality.py``) and Q-Align's Q-Bench script put the image
  before the question this way. One exception, as data: Q-Align's own scoring questions (the
  ``qalign`` method, any aspect and medium) are laid out as Q-Align's ``scorer.py`` asks them,
  question first (:func:`~.scoring.qalign_prompt`), so a level scorer built on this backend (the
  server's ``/v1/score`` too) reads the same numbers as the ``qalign`` scorer.
- :meth:`~MplugOwl2Backend.first_tokens`: level words and option letters read from the tokenizer,
  as for every checkpoint (:func:`qplug_vlm.backend.first_tokens`).
- :meth:`~MplugOwl2Backend.next_token_logits`: one prefill for a batch (left padding).
- :meth:`~MplugOwl2Backend.generate`: greedy decoding with a key/value cache, stopping at ``</s>``
  (:mod:`.generation`).

Frames are padded to a square with the mean colour by the model's own image processor (as Q-Align
and mPLUG-Owl2 do), so :meth:`~MplugOwl2Backend.pad_fill` asks the caller for nothing.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from qplug.errors import UsageError

from .processing import IMAGE_TOKEN

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ..backend import GenerationSettings, LoadOptions

__all__ = ["MplugOwl2Backend", "ChatFormat", "load_shared", "clear_shared", "load_adapter"]

_cache: dict[tuple[str, str, str], tuple[Any, Any, Any]] = {}
_lock = threading.Lock()

USER, ASSISTANT = "USER", "ASSISTANT"
#: What ends a user turn and an assistant turn (``sep`` and ``sep2`` of the mplug_owl2 conversation).
USER_END, ASSISTANT_END = " ", "</s>"


def load_shared(model: str, device: str, dtype: str) -> tuple[Any, Any, Any]:
    """``(model, tokenizer, image_processor)`` of a checkpoint, loaded once per process for every
    component that asks for the same directory, device and dtype."""
    from .loading import load_mplug_owl2

    key = (str(model), str(device), str(dtype))
    with _lock:
        if key not in _cache:
            _cache[key] = load_mplug_owl2(model, device=device, dtype=dtype)
        return _cache[key]


def clear_shared() -> None:
    """Forget loaded mPLUG-Owl2 models."""
    with _lock:
        _cache.clear()
        _backends.clear()


class ChatFormat:
    """mPLUG-Owl2's conversation as a chat template: messages in, prompt text out.

    Messages are ``{"role": "user" | "assistant" | "system", "content": str | [parts]}`` with parts
    ``{"type": "image"}`` (written ``<|image|>``) and ``{"type": "text", "text": ...}``, as for
    transformers' processors, so code written against ``processor.apply_chat_template`` works here
    (``MplugOwl2Backend.processor`` is one, with the model's ``tokenizer`` and ``image_processor``).
    """

    def __init__(self, tokenizer: Any = None, image_processor: Any = None) -> None:
        self.tokenizer, self.image_processor = tokenizer, image_processor

    def apply_chat_template(self, messages: Sequence[Mapping[str, Any]], tokenize: bool = False,
                            add_generation_prompt: bool = False, continue_final_message: bool = False,
                            **_: Any) -> str:
        if tokenize:
            raise ValueError("mPLUG-Owl2 prompts are tokenized with tokenize_prompt (images become -200)")
        text = ""
        turns = list(messages)
        for index, message in enumerate(turns):
            role = message.get("role")
            content = _content(message.get("content"))
            last = index == len(turns) - 1
            if role == "system":
                text += content + " " if content else ""
            elif role == "user":
                text += f"{USER}: {content}{USER_END}"
            elif role == "assistant":
                text += f"{ASSISTANT}: {content}" + ("" if last and continue_final_message else ASSISTANT_END)
            else:
                raise ValueError(f"unknown role {role!r} (user, assistant or system)")
        if add_generation_prompt and not continue_final_message:
            text += f"{ASSISTANT}:"
        return text


def _qalign_turns() -> set[tuple[str, str]]:
    """(question, prefix) of Q-Align's scoring prompt for every aspect and medium."""
    from ..prompts import ASPECTS, MEDIA, METHODS

    return {METHODS["qalign"].prompt(aspect, medium) for aspect in ASPECTS for medium in MEDIA}


def _content(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = []
    for part in content:
        kind = part.get("type")
        if kind == "image":
            parts.append(IMAGE_TOKEN)
        elif kind == "text":
            parts.append(str(part.get("text", "")))
        else:
            raise ValueError(f"mPLUG-Owl2 prompts take image and text parts, not {kind!r}")
    return "".join(parts)


class MplugOwl2Backend:
    """An mPLUG-Owl2 checkpoint with the calls of :class:`qplug_vlm.backend.Backend`.

    :param model: the loaded :class:`~.modeling.MPLUGOwl2ForCausalLM`.
    :param tokenizer: its LLaMA tokenizer.
    :param image_processor: its :class:`~.processing.MPLUGOwl2ImageProcessor`.
    :param name: how messages refer to the model (its directory).
    """

    def __init__(self, model: Any, tokenizer: Any, image_processor: Any, name: str = "<model in memory>") -> None:
        self.name = name
        self.model = model
        self.tokenizer = tokenizer
        self.image_processor = image_processor
        self.chat = ChatFormat(tokenizer, image_processor)
        #: What code written for transformers processors reads: ``apply_chat_template``, ``tokenizer``.
        self.processor = self.chat
        self.device = model.device
        self.dtype = model.dtype
        self._lock = threading.Lock()

    # -- what the model is -----------------------------------------------------------------------

    @property
    def model_type(self) -> str:
        return "mplug_owl2"

    @property
    def architectures(self) -> tuple[str, ...]:
        names = getattr(self.model.config, "architectures", None) or ()
        return tuple(dict.fromkeys([*names, type(self.model).__name__]))

    @property
    def native_crop(self) -> None:
        """The whole frame is resized to 448 px: there is no native-resolution window."""
        return None

    def pad_fill(self, pad_square: bool | None) -> None:
        """``None``: the model's image processor pads to a square itself (Q-Align's ``pad``)."""
        if pad_square is False:
            raise UsageError(f"{self.name}: mPLUG-Owl2 frames are always padded to a square with the mean colour "
                             "(as Q-Align and mPLUG-Owl2 were trained); pad_square=False is not available")
        return None

    # -- prompts ---------------------------------------------------------------------------------

    def render(self, question: str, prefix: str | None = None, *, system: str | None = None,
               image_first: bool = True, template_kwargs: Mapping[str, Any] | None = None) -> str:
        """The prompt for one image and ``question`` (see the module docstring for the format).

        :param template_kwargs: chat-template switches of other families; mPLUG-Owl2 has none, so any
            given are refused rather than silently ignored.
        """
        if template_kwargs:
            raise UsageError(f"{self.name}: mPLUG-Owl2's conversation format takes no template options "
                             f"({', '.join(template_kwargs)})")
        if prefix and image_first and (question, prefix) in _qalign_turns():
            lead = f"{system} " if system else ""
            return f"{lead}{USER}: {question}\n{IMAGE_TOKEN}\n{ASSISTANT}: {prefix}"
        parts = [{"type": "image"}, {"type": "text", "text": question}]
        if not image_first:
            parts = [{"type": "text", "text": question + "\n"}, {"type": "image"}]
        messages: list[dict[str, Any]] = [{"role": "user", "content": parts}]
        if system:
            messages.insert(0, {"role": "system", "content": system})
        if prefix:
            messages.append({"role": "assistant", "content": prefix})
        return self.chat.apply_chat_template(messages, add_generation_prompt=not prefix,
                                             continue_final_message=bool(prefix))

    def first_tokens(self, context: str, words: Sequence[str], purpose: str, bare: bool = False) -> list[int]:
        """Each word's first token after ``context``; the text after the image is tokenized on its own,
        as :func:`~.processing.tokenize_prompt` does."""
        from ..backend import first_tokens

        return first_tokens(self.tokenizer, self.name, context.split(IMAGE_TOKEN)[-1], words, purpose, bare)

    # -- running ---------------------------------------------------------------------------------

    def prepare(self, images: "Sequence[Image.Image]", texts: Sequence[str]) -> dict[str, Any]:
        """Input ids (left-padded), attention mask and pixel values on the model's device."""
        from .processing import prepare_batch
        from .scoring import to_device

        if len(images) != len(texts):
            raise ValueError("one image per prompt")
        return to_device(prepare_batch(self.tokenizer, self.image_processor, images, texts), self.device)

    def forward(self, batch: dict[str, Any]) -> "torch.Tensor":
        """Float32 logits at the last position of a prepared batch, shape (batch, vocab), on the CPU."""
        import torch

        with self._lock, torch.inference_mode():
            logits = self.model(**batch, logits_to_keep=1).logits
        return logits[:, -1, :].float().cpu()

    def next_token_logits(self, images: "Sequence[Image.Image]", texts: Sequence[str]) -> "torch.Tensor":
        """Logits of the token after each prompt, shape (batch, vocab): one prefill for the whole batch."""
        return self.forward(self.prepare(images, texts))

    def generate_ids(self, images: "Sequence[Image.Image]", texts: Sequence[str],
                     settings: "GenerationSettings | None" = None, use_cache: bool = True) -> list[list[int]]:
        """New token ids of each prompt (the end-of-sequence token not included)."""
        import torch

        from ..backend import GenerationSettings
        from .generation import generate_ids

        settings = settings or GenerationSettings()
        batch = self.prepare(images, texts)
        eos = self.tokenizer.eos_token_id
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else (eos or 0)
        with self._lock:
            generator = None
            if settings.do_sample and settings.seed is not None:
                generator = torch.Generator(device=self.device).manual_seed(int(settings.seed))
            return generate_ids(self.model, batch, max_new_tokens=settings.max_new_tokens, eos_token_id=eos,
                                pad_token_id=int(pad), do_sample=settings.do_sample,
                                temperature=settings.temperature, top_p=settings.top_p, generator=generator,
                                use_cache=use_cache)

    def generate(self, images: "Sequence[Image.Image]", texts: Sequence[str],
                 settings: "GenerationSettings | None" = None) -> list[str]:
        """Generated continuations of the prompts (new text only, special tokens dropped, stripped)."""
        ids = self.generate_ids(images, texts, settings)
        return [text.strip() for text in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]


def load_adapter(options: "LoadOptions") -> MplugOwl2Backend:
    """The shared :class:`MplugOwl2Backend` for resolved loading options (model, device, dtype).

    :raises UsageError: for options mPLUG-Owl2 cannot honour (a peft adapter: none is published for it).
    """
    if options.adapter:
        raise UsageError(f"{options.model} is an mPLUG-Owl2 checkpoint: qplug cannot apply a peft adapter "
                         f"({options.adapter}) to it; merge the adapter into the weights first")
    model, tokenizer, image_processor = load_shared(options.model, options.device, options.dtype)
    with _lock:
        key = ("adapter", options.model, options.device, options.dtype)
        backend = _backends.get(key)
        if backend is None:
            backend = MplugOwl2Backend(model, tokenizer, image_processor, name=str(Path(options.model)))
            _backends[key] = backend
        return backend


_backends: dict[tuple[str, ...], MplugOwl2Backend] = {}
