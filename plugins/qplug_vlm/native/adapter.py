"""The native FastVLM behind :class:`qplug_vlm.backend.Backend`'s calls.

:class:`NativeBackend` is a :class:`~qplug_vlm.backend.Backend` whose model, processor and tokenizer
are this package's: prompts are rendered, checked and tokenized by the same ``Backend`` code
(:meth:`~qplug_vlm.backend.Backend.render`, :meth:`~qplug_vlm.backend.Backend.first_tokens`,
:meth:`~qplug_vlm.backend.Backend.pad_fill`, :attr:`~qplug_vlm.backend.Backend.native_crop`), and only
the three calls that run a model differ: :meth:`~NativeBackend.prepare`, :meth:`~NativeBackend.forward`
and :meth:`~NativeBackend.generate`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..backend import Backend, GenerationSettings

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ..backend import LoadOptions
    from .config import FastVlmConfig

__all__ = ["NativeBackend", "build"]


class NativeBackend(Backend):
    """A FastVLM checkpoint on the native path (see :mod:`qplug_vlm.native`).

    :param model: the loaded :class:`~.model.FastVlm`.
    :param processor: its :class:`~.processing.Processor` (chat template, tokenizer, image processor).
    :param name: how messages refer to the model (its directory).
    """

    #: Which path loaded the model (``Backend`` and the mPLUG-Owl2 adapter have none: transformers').
    native = True

    @property
    def model_type(self) -> str:
        return "fast_vlm"

    @property
    def architectures(self) -> tuple[str, ...]:
        """config.json's architectures (what the transformers path reports too, for presets)."""
        return tuple(dict.fromkeys([*self.model.config.architectures, "FastVlmForConditionalGeneration"]))

    def prepare(self, images: Sequence["Image.Image"], texts: Sequence[str]) -> dict[str, Any]:
        """Input ids and attention mask (left-padded) and pixel values, on the model's device and dtype."""
        if len(images) != len(texts):
            raise ValueError("one image per prompt")
        batch = self.processor(images=[[image] for image in images], text=list(texts))
        return {name: value.to(self.device, dtype=self.dtype) if value.is_floating_point() else value.to(self.device)
                for name, value in batch.items()}

    def forward(self, batch: dict[str, Any]) -> "torch.Tensor":
        """Float32 logits at the last position of a prepared batch, shape (batch, vocab), on the CPU."""
        import torch

        with self._lock, torch.inference_mode():
            logits = self.model(batch["input_ids"], batch["attention_mask"], batch["pixel_values"])
        return logits[:, -1, :].float().cpu()

    def generate_ids(self, images: Sequence["Image.Image"], texts: Sequence[str],
                     settings: GenerationSettings = GenerationSettings()) -> list[list[int]]:
        """New token ids of each prompt (its end token not included)."""
        import torch

        from .generation import DEFAULT_TOP_K, generate_ids

        batch = self.prepare(images, texts)
        config = self.model.generation_config
        eos = config.eos_token_id
        eos_ids = [] if eos is None else list(eos) if isinstance(eos, (list, tuple)) else [int(eos)]
        with self._lock, torch.inference_mode():
            if settings.do_sample and settings.seed is not None:
                torch.manual_seed(settings.seed)
            return generate_ids(self.model, batch, max_new_tokens=settings.max_new_tokens, eos_token_ids=eos_ids,
                                pad_token_id=int(self.tokenizer.pad_token_id), do_sample=settings.do_sample,
                                temperature=settings.temperature,
                                top_k=config.top_k if config.top_k is not None else DEFAULT_TOP_K,
                                top_p=settings.top_p)

    def generate(self, images: Sequence["Image.Image"], texts: Sequence[str],
                 settings: GenerationSettings = GenerationSettings()) -> list[str]:
        """Generated continuations of the prompts (new text only, special tokens dropped, stripped)."""
        ids = self.generate_ids(images, texts, settings)
        return [text.strip() for text in self.tokenizer.batch_decode(ids, skip_special_tokens=True)]


def build(options: "LoadOptions", spec: "FastVlmConfig") -> NativeBackend:
    """Tokenizer, processor and weights of ``spec.path``, simplified for inference as the transformers path
    simplifies its model (batch norms folded, constant gates dropped, the tower channels-last).

    :raises qplug_vlm.native.config.Unsupported: for a tokenizer or image token the native path cannot take.
    """
    from ..backend import prefer_channels_last
    from ..fusion import simplify_for_inference
    from .model import load_model
    from .processing import Processor
    from .text import Tokenizer

    processor = Processor(spec, Tokenizer(spec.path, spec.tokens))
    model = load_model(spec, options.device, options.dtype)
    simplify_for_inference(model)
    prefer_channels_last(model)
    return NativeBackend(model, processor, name=str(spec.path))
