"""FastVLM (tower -> flattened head map -> 2-layer projector -> Llama -> lm_head) and its checked loading.

Vasu et al. 2025, *FastVLM*, arXiv 2412.13303: the tower's last feature map, flattened row by row,
is the sequence of image tokens (49 for a 224x224 crop); each ``<image>`` placeholder of a prompt is
replaced by them in order. The parameter names are the checkpoint's (``model.vision_tower...``,
``model.multi_modal_projector...``, ``model.language_model...``, ``lm_head.weight``).

:func:`load_model` reads the safetensors file(s) and refuses, as one :class:`~qplug_vlm.loadcheck.IncompatibleWeights`
line naming the checkpoint, any tensor the model lacks, any tensor the file lacks, and any shape that
differs; an unreadable or truncated file is a one-line error naming that file.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn
from torch.nn import functional as F

from qplug.errors import UsageError

from .config import FastVlmConfig
from .efficientnet import EfficientNetTower
from .llama import KVCache, LlamaText

__all__ = ["FastVlm", "load_model", "attention_inputs"]


class Projector(nn.Module):
    def __init__(self, spec: FastVlmConfig) -> None:
        super().__init__()
        hidden = spec.text.hidden_size
        self.linear_1 = nn.Linear(spec.tower.hidden_dim, hidden, bias=spec.projector_bias)
        self.linear_2 = nn.Linear(hidden, hidden, bias=spec.projector_bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear_2(F.gelu(self.linear_1(features)))


class Core(nn.Module):
    """``model.*``: the tower, the projector and the text model."""

    def __init__(self, spec: FastVlmConfig) -> None:
        super().__init__()
        self.vision_tower = EfficientNetTower(spec.tower)
        self.multi_modal_projector = Projector(spec)
        self.language_model = LlamaText(spec.text)


class FastVlm(nn.Module):
    """The whole model. :meth:`forward` gives the logits of the last ``keep`` positions."""

    def __init__(self, spec: FastVlmConfig) -> None:
        super().__init__()
        self.config = spec
        self.model = Core(spec)
        self.lm_head = nn.Linear(spec.text.hidden_size, spec.text.vocab_size, bias=False)
        #: What generation reads (as transformers' ``model.generation_config``): the end token(s).
        self.generation_config = SimpleNamespace(eos_token_id=list(spec.eos_token_ids) or None, top_k=spec.top_k)

    def image_tokens(self, pixels: torch.Tensor) -> torch.Tensor:
        """(batch, tokens, hidden): the projected head map of each image, row by row."""
        features = self.model.vision_tower(pixels)
        return self.model.multi_modal_projector(features.flatten(2).permute(0, 2, 1))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, pixel_values: torch.Tensor | None = None,
                cache: KVCache | None = None, keep: int = 1) -> torch.Tensor:
        """Logits (batch, keep, vocab) after ``input_ids`` (left-padded; ``attention_mask`` covers the cached
        tokens too when ``cache`` holds a prefix)."""
        embeds = self.model.language_model.embed_tokens(input_ids)
        if pixel_values is not None:
            features = self.image_tokens(pixel_values).to(embeds.dtype)
            slots = input_ids == self.config.image_token_id
            if int(slots.sum()) != features.shape[0] * features.shape[1]:
                raise ValueError(f"image tokens and image features do not match: {int(slots.sum())} placeholders "
                                 f"for {features.shape[0]} image(s) of {features.shape[1]} tokens")
            embeds = embeds.masked_scatter(slots.unsqueeze(-1), features)
        positions, mask = attention_inputs(attention_mask, input_ids.shape[1])
        hidden = self.model.language_model(embeds, positions, mask, cache)
        return self.lm_head(hidden[:, -keep:, :])


def attention_inputs(attention_mask: torch.Tensor, length: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Positions (batch, length) of the last ``length`` tokens, counted over real tokens only, and the
    boolean attention mask (batch, 1, length, total): causal, padding hidden. None when nothing is padded
    (a plain causal prompt, or one new token that sees everything before it)."""
    positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)[:, -length:]
    if bool(attention_mask.all()):
        return positions, None
    total = attention_mask.shape[1]
    query = torch.arange(total - length, total, device=attention_mask.device)
    causal = torch.arange(total, device=attention_mask.device)[None, :] <= query[:, None]
    mask = causal[None, None] & attention_mask.bool()[:, None, None, :]
    # A padding position sees nothing: let it see everything instead (its output is never read), so no
    # row of the softmax is empty.
    return positions, mask | ~mask.any(dim=-1, keepdim=True)


def checkpoint_files(path: Path) -> list[Path]:
    """The safetensors files of a checkpoint (one file, or the shards its index names)."""
    index = path / "model.safetensors.index.json"
    if index.is_file():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (OSError, ValueError, KeyError) as exc:
            raise UsageError(f"{index}: unreadable safetensors index ({type(exc).__name__}: {exc})") from exc
        return [path / name for name in sorted(set(weight_map.values()))]
    return [path / "model.safetensors"]


def read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of the checkpoint, as stored; an unreadable file is a one-line error naming it."""
    from safetensors.torch import load_file

    state: dict[str, torch.Tensor] = {}
    for file in checkpoint_files(path):
        try:
            state.update(load_file(str(file), device="cpu"))
        except Exception as exc:  # missing, truncated or corrupt: safetensors' own message, first line
            text = str(exc).strip().splitlines()
            raise UsageError(f"{file}: not a readable safetensors file ({type(exc).__name__}: "
                             f"{text[0] if text else ''})") from exc
    return state


def load_model(spec: FastVlmConfig, device: str = "cpu", dtype: str = "float32") -> FastVlm:
    """The model of ``spec.path`` with every stored tensor in place, in eval mode, on ``device`` in ``dtype``.

    :raises qplug_vlm.loadcheck.IncompatibleWeights: when the file's tensors and the model's differ.
    """
    from .. import loadcheck

    with torch.device("meta"):  # no memory and no random initialisation: every tensor comes from the file
        model = FastVlm(spec)
    expected = {name: tuple(t.shape) for name, t in model.state_dict().items()}
    state = read_tensors(spec.path)
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(k for k in set(state) & set(expected) if tuple(state[k].shape) != expected[k])
    if missing or unexpected or mismatched:
        raise loadcheck.IncompatibleWeights(loadcheck.message(spec.path, spec, missing, unexpected, len(expected),
                                                              mismatched))
    target = getattr(torch, dtype)
    state = {k: v.to(target) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    return model.to(device).eval().requires_grad_(False)

