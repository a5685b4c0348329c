"""mPLUG-Owl2 (Q-Align, OneAlign, Q-Instruct's and Co-Instruct's base) written natively for transformers 5.

Ye et al. 2023, *mPLUG-Owl2: Revolutionizing Multi-modal Large Language Model with Modality
Collaboration*, arXiv 2311.04257: a ViT-L/14 image encoder at 448 px, a visual abstractor that
compresses its 1,025 tokens into 64 learned queries (+ an end-of-image token), and a LLaMA-2 whose
layer norms and key/value projections are separate for image and text tokens ("modality-adaptive").
Released checkpoints (``model_type: mplug_owl2``) ship as remote code for transformers 4.3x; this
package reads their safetensors as they are, with no remote code.

Entry points for the backend (importing this package imports neither torch nor transformers):

- :func:`is_mplug_owl2` ``(model_dir) -> bool``: does ``config.json`` say ``mplug_owl2``?
- :func:`load_mplug_owl2` ``(model_dir, device="cpu", dtype="float32") -> (model, tokenizer, image_processor)``.
- :func:`score_qalign` ``(model, tokenizer, image_processor, images, ...) -> list[QAlignScore]``:
  Q-Align's one-forward read-out (softmax over the level words' logits, weights 5..1).
- :func:`score_qalign_video` ``(model, tokenizer, image_processor, clips, ...)``: Q-Align's video mode,
  all frames of a clip in one prompt, one score per clip.
- :func:`prepare_batch`: input ids with the image placeholder, left padding, pixel values (one image,
  or one clip of frames, per prompt).
- :class:`MplugOwl2Backend`: the checkpoint behind the calls of :class:`qplug_vlm.backend.Backend`
  (prompts in mPLUG-Owl2's conversation format, next-token logits, greedy generation with a KV
  cache), which :func:`qplug_vlm.backend.load_backend` returns for ``mplug_owl2`` directories, so
  the describer, the asker and ``qbench`` run on it.

Modules: ``configuration`` (the config), ``modeling`` (the model, with a key/value cache for
decoding), ``tables`` (the abstractor's sine-cosine position tables), ``processing`` (pad-to-square
448-px CLIP pre-processing, ``<|image|>`` tokenization), ``loading``, ``scoring``, ``scorer`` (the
``qalign`` scorer), ``generation`` (greedy/sampled decoding), ``adapter`` (the backend interface),
``tiny`` (a seeded tiny checkpoint for tests and the reference fixtures; numpy only) and ``testing``
(tiny checkpoints on disk, the 7B configuration and random models for benchmarks).
"""

from __future__ import annotations

import importlib
from typing import Any

from .loading import is_mplug_owl2

__all__ = ["is_mplug_owl2", "load_mplug_owl2", "score_qalign", "score_qalign_video", "QAlignScore", "prepare_batch",
           "qalign_prompt", "tokenize_prompt", "MPLUGOwl2Config", "MPLUGOwl2ForCausalLM", "MPLUGOwl2ImageProcessor",
           "MplugOwl2Backend", "KVCache", "IMAGE_TOKEN", "IMAGE_TOKEN_INDEX"]

_LAZY = {
    "load_mplug_owl2": "loading",
    "score_qalign": "scoring",
    "score_qalign_video": "scoring",
    "MplugOwl2Backend": "adapter",
    "KVCache": "modeling",
    "QAlignScore": "scoring",
    "qalign_prompt": "scoring",
    "prepare_batch": "processing",
    "tokenize_prompt": "processing",
    "MPLUGOwl2ImageProcessor": "processing",
    "IMAGE_TOKEN": "processing",
    "IMAGE_TOKEN_INDEX": "processing",
    "MPLUGOwl2Config": "configuration",
    "MPLUGOwl2ForCausalLM": "modeling",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
