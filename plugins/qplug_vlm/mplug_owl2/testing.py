"""Tiny mPLUG-Owl2 checkpoints on disk, in the released layout, for tests and benchmarks' CPU runs.

:func:`build_tiny_mplug_owl2` writes a complete directory (``config.json`` with ``model_type:
mplug_owl2``, the tokenizer, ``preprocessor_config.json``, weights) with the seeded values of
:mod:`.tiny`. The default tokenizer is :func:`qplug_vlm.testing.tiny_tokenizer` (byte-level BPE trained
on every word qplug's prompts use, so option letters, Yes/No and level words each get a token of their
own); the reference fixtures use a tokenizer of their own instead. Weights can be written as
safetensors (what qplug loads) or as a release ships them, PyTorch ``.bin`` shards with
``pytorch_model.bin.index.json`` (what ``qplug convert mplug-owl2`` reads).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import tiny

__all__ = ["build_tiny_mplug_owl2", "tiny_config", "state_dict_shapes", "PREPROCESSOR_CONFIG", "MPLUG_OWL2_7B",
           "random_model"]

#: Q-Align's preprocessor_config.json (also shipped with q-future/one-align): CLIP's values at 448 px.
PREPROCESSOR_CONFIG: dict[str, Any] = {
    "crop_size": 448, "do_center_crop": True, "do_normalize": True, "do_resize": True,
    "feature_extractor_type": "CLIPFeatureExtractor", "image_mean": [0.48145466, 0.4578275, 0.40821073],
    "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3, "size": 448,
}


#: config.json of the released 7B (LLaMA-2-7B + ViT-L/14 at 448 px + a 6-layer abstractor of 64 queries): the
#: LLaMA fields of Q-Align / OneAlign's release; ``visual_config`` left to the released defaults
#: (:class:`~.configuration.VisionSettings`, :class:`~.configuration.AbstractorSettings`).
MPLUG_OWL2_7B: dict[str, Any] = {
    "architectures": ["MPLUGOwl2LlamaForCausalLM"], "model_type": "mplug_owl2", "vocab_size": 32000,
    "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 32, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5, "rope_theta": 10000.0,
    "rope_scaling": None, "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
    "tie_word_embeddings": False, "image_aspect_ratio": "pad",
}


def random_model(config: dict[str, Any], device: str = "cpu", dtype: Any = None, seed: int = 0) -> Any:
    """A random-init :class:`~.modeling.MPLUGOwl2ForCausalLM` built straight on ``device`` in ``dtype``
    (benchmarks: a 7B model initialised on the CPU would take minutes). Small normal weights, unit norms."""
    import torch

    from .configuration import MPLUGOwl2Config
    from .modeling import MPLUGOwl2ForCausalLM

    dtype = dtype or torch.float32
    with torch.device("meta"):
        model = MPLUGOwl2ForCausalLM(MPLUGOwl2Config.from_released(config))
    model = model.to(dtype).to_empty(device=device)  # cast on meta first: no float32 copy of 7B on the device
    generator = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if name.endswith("weight") and parameter.ndim == 1:
                parameter.fill_(1.0)
            elif name.endswith("bias"):
                parameter.zero_()
            else:
                parameter.normal_(0.0, 0.02, generator=generator)
    model.materialize_computed_buffers(device=device, dtype=dtype)
    return model.eval().requires_grad_(False)


def tiny_config(vocab_size: int, **overrides: Any) -> dict[str, Any]:
    """:data:`.tiny.TINY_CONFIG` for a tokenizer of ``vocab_size`` tokens (``overrides`` replace top-level keys)."""
    return json.loads(json.dumps(dict(tiny.TINY_CONFIG, vocab_size=int(vocab_size), **overrides)))


def state_dict_shapes(config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every tensor name and shape of the model a released-schema ``config`` describes (built on meta)."""
    import torch

    from .configuration import MPLUGOwl2Config
    from .modeling import MPLUGOwl2ForCausalLM

    with torch.device("meta"):
        model = MPLUGOwl2ForCausalLM(MPLUGOwl2Config.from_released(config))
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def build_tiny_mplug_owl2(directory: str | os.PathLike[str], tokenizer: Any = None, *, shards: int = 1,
                          weights: str = "safetensors", seed: int = tiny.SEED,
                          config_overrides: dict[str, Any] | None = None) -> Path:
    """Write a tiny random mPLUG-Owl2 checkpoint and return its directory.

    :param tokenizer: a transformers tokenizer to save with it (default: ``qplug_vlm.testing.tiny_tokenizer()``).
    :param shards: how many weight files (more than one: with an index, as releases are sharded).
    :param weights: ``"safetensors"`` or ``"bin"`` (pickled PyTorch shards as a release ships them).
    :param config_overrides: top-level ``config.json`` keys to replace.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if tokenizer is None:
        from ..testing import tiny_tokenizer

        tokenizer = tiny_tokenizer()
    tokenizer.save_pretrained(str(directory))
    config = tiny_config(len(tokenizer), **(config_overrides or {}))
    (directory / "config.json").write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    (directory / "preprocessor_config.json").write_text(json.dumps(PREPROCESSOR_CONFIG, indent=1) + "\n",
                                                        encoding="utf-8")
    state = tiny.tiny_state_dict(state_dict_shapes(config), config, seed)
    write_weights(directory, state, shards=shards, weights=weights)
    return directory


def write_weights(directory: Path, state: dict[str, np.ndarray], *, shards: int = 1,
                  weights: str = "safetensors") -> list[Path]:
    """``state`` as ``shards`` files (+ an index when more than one), safetensors or pickled ``.bin``."""
    if weights not in ("safetensors", "bin"):
        raise ValueError("weights must be 'safetensors' or 'bin'")
    names = sorted(state)
    stem, index_name = (("model", "model.safetensors.index.json") if weights == "safetensors"
                        else ("pytorch_model", "pytorch_model.bin.index.json"))
    suffix = ".safetensors" if weights == "safetensors" else ".bin"
    files, weight_map = [], {}
    for part in range(shards):
        chunk = {k: state[k] for k in names[part::shards]}
        file = directory / (f"{stem}{suffix}" if shards == 1 else f"{stem}-{part + 1:05d}-of-{shards:05d}{suffix}")
        if weights == "safetensors":
            from safetensors.numpy import save_file

            save_file(chunk, str(file), metadata={"format": "pt"})
        else:
            import torch

            torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in chunk.items()}, str(file))
        files.append(file)
        weight_map.update({k: file.name for k in chunk})
    if shards > 1:
        total = int(sum(v.nbytes for v in state.values()))
        (directory / index_name).write_text(json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map},
                                                       indent=1) + "\n", encoding="utf-8")
    return files
