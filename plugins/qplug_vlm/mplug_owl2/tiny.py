"""A tiny random mPLUG-Owl2 in the released layout, rebuilt bit for bit from a seed (tests and fixtures).

Pure numpy and the standard library (and the sibling ``tables.py``): the fixture harness
(``scripts/make_mplug_owl2_fixtures.py``) loads this file by path inside a separate transformers
4.36 environment to feed the same weights and images to the reference implementation, and the tests
load it here to rebuild them. Nothing in it imports torch, transformers or any other qplug module.

- :data:`TINY_CONFIG`: a ``config.json`` in the released schema (LLaMA fields + ``visual_config``
  with ``visual_model`` and ``visual_abstractor``), shrunk: 448-px input and 14-px patches as
  released (the abstractor's key position table is sized for that 32 x 32 grid), 64 learned queries,
  everything else a few dozen wide.
- :func:`tiny_weight`: one tensor's values from its name and shape (independent of key order).
- :func:`tiny_state_dict`: a whole checkpoint for a key list (position tables from ``tables.py``).
- :func:`tiny_images`: a few RGB frames of different shapes (uint8 arrays).
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

if __package__:
    from .tables import position_table
else:  # loaded by path (the fixture harness, outside qplug's environment): load the sibling the same way
    import importlib.util as _util
    from pathlib import Path as _Path

    _spec = _util.spec_from_file_location("qplug_mplug_owl2_tables", _Path(__file__).with_name("tables.py"))
    _tables = _util.module_from_spec(_spec)
    _spec.loader.exec_module(_tables)
    position_table = _tables.position_table

SEED = 20231104  # arXiv 2311.04257

#: config.json of the tiny model, in the released schema.
TINY_CONFIG: dict[str, Any] = {
    "architectures": ["MPLUGOwl2LlamaForCausalLM"],
    "model_type": "mplug_owl2",
    "hidden_size": 64,
    "intermediate_size": 128,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,  # the reference's multiway K/V needs MHA
    "hidden_act": "silu",
    "max_position_embeddings": 512,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "rope_scaling": None,
    "attention_bias": False,
    "attention_dropout": 0.0,
    "pretraining_tp": 1,
    "tie_word_embeddings": False,
    "bos_token_id": 1,
    "eos_token_id": 2,
    "pad_token_id": 0,
    "vocab_size": None,  # the tokenizer's size, filled in by the harness
    "image_aspect_ratio": "pad",
    "visual_config": {
        "visual_model": {
            "hidden_size": 32,
            "intermediate_size": 64,
            "projection_dim": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "num_channels": 3,
            "image_size": 448,
            "patch_size": 14,
            "hidden_act": "quick_gelu",
            "layer_norm_eps": 1e-6,
            "attention_dropout": 0.0,
            "initializer_range": 0.02,
            "initializer_factor": 1.0,
            "use_flash_attn": False,
        },
        "visual_abstractor": {
            "num_learnable_queries": 64,
            "hidden_size": 32,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "intermediate_size": 48,
            "attention_probs_dropout_prob": 0.0,
            "initializer_range": 0.02,
            "layer_norm_eps": 1e-6,
            "encoder_hidden_size": 32,
            "grid_size": 32,
        },
    },
}

_POSITION_TABLES = ("q_pos_embed", "k_pos_embed")


def _is_norm(name: str) -> bool:
    return any("norm" in part or part == "ffn_ln" for part in name.split(".")[:-1])


def tiny_weight(name: str, shape: tuple[int, ...], seed: int = SEED) -> np.ndarray:
    """Values of one tensor, float32, from a generator seeded by ``seed`` and the name alone.

    Scales keep activations of order one through the tiny stack, so logits differ visibly between
    images and a wrong sum or a swapped weight shows in the golden outputs.
    """
    rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
    shape = tuple(int(s) for s in shape)
    leaf = name.rsplit(".", 1)[-1]
    if _is_norm(name) and leaf == "weight":
        return (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
    if leaf == "bias":
        return (0.05 * rng.standard_normal(shape)).astype(np.float32)
    if len(shape) >= 2 and not name.endswith(("embed_tokens.weight", "position_embedding", "query_embeds", "cls_token",
                                               "vit_eos")):
        fan_in = int(np.prod(shape[1:]))
        return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
    return rng.standard_normal(shape).astype(np.float32)


def tiny_state_dict(shapes: dict[str, tuple[int, ...]], config: dict[str, Any] | None = None,
                    seed: int = SEED) -> dict[str, np.ndarray]:
    """Every tensor of a checkpoint with these keys and shapes (position tables computed, the rest random)."""
    abstractor = (config or TINY_CONFIG)["visual_config"]["visual_abstractor"]
    out = {}
    for name, shape in shapes.items():
        if name.rsplit(".", 1)[-1] in _POSITION_TABLES:
            out[name] = position_table(name, abstractor)
        else:
            out[name] = tiny_weight(name, shape, seed)
    return out


#: (height, width) of the fixture frames: landscape, portrait, square and small.
IMAGE_SHAPES = ((180, 300), (320, 200), (96, 96))


def tiny_images(seed: int = SEED) -> list[np.ndarray]:
    """RGB frames (uint8, H x W x 3): smooth colour ramps, a bright block and noise, one per shape."""
    images = []
    for index, (height, width) in enumerate(IMAGE_SHAPES):
        rng = np.random.default_rng([seed, index])
        y, x = np.mgrid[0:height, 0:width].astype(np.float32)
        base = np.stack([255 * x / width, 255 * y / height, 128 + 100 * np.sin((x + y) / 17.0 + index)], axis=-1)
        base[height // 4: height // 2, width // 3: width // 2] = (250, 240 - 60 * index, 30 * index)
        noisy = base + rng.normal(0, 12 + 8 * index, size=base.shape)
        images.append(np.clip(np.round(noisy), 0, 255).astype(np.uint8))
    return images
