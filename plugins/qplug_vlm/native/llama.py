"""The Llama text model of a FastVLM checkpoint, in plain torch, with a key/value cache for decoding.

Touvron et al. 2023, *LLaMA*, arXiv 2302.13971: pre-norm decoder layers (RMSNorm, attention with
rotary position embeddings, RMSNorm, SiLU-gated MLP) and a final RMSNorm. Grouped-query attention when
the config has fewer key/value heads than query heads. The module names follow the checkpoint's keys
(``model.language_model.layers.N.self_attn.q_proj.weight``...), so the weights load by name.

Numerics as transformers computes them: RMSNorm in float32 and cast back before the weight; RoPE's
angles in float32 (``position * inv_freq`` with ``inv_freq = 1 / theta^(2i/d)``), cos and sin cast to
the activations' dtype; attention through :func:`torch.nn.functional.scaled_dot_product_attention`.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import TextSpec

__all__ = ["LlamaText", "KVCache"]


class KVCache:
    """Every layer's keys and values so far, (batch, kv_heads, length, head_dim) each."""

    def __init__(self) -> None:
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []

    @property
    def length(self) -> int:
        return int(self.keys[0].shape[2]) if self.keys else 0

    def update(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's keys and values to ``layer``'s; the whole sequence's come back."""
        if layer == len(self.keys):
            self.keys.append(keys)
            self.values.append(values)
        else:
            self.keys[layer] = torch.cat([self.keys[layer], keys], dim=2)
            self.values[layer] = torch.cat([self.values[layer], values], dim=2)
        return self.keys[layer], self.values[layer]


class RMSNorm(nn.Module):
    def __init__(self, size: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.to(torch.float32)
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    turned = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + turned * sin


class Attention(nn.Module):
    def __init__(self, spec: TextSpec, layer: int) -> None:
        super().__init__()
        self.layer = layer
        self.head_dim = spec.head_dim
        self.groups = spec.num_attention_heads // spec.num_key_value_heads
        self.scaling = spec.head_dim ** -0.5
        bias = spec.attention_bias
        self.q_proj = nn.Linear(spec.hidden_size, spec.num_attention_heads * spec.head_dim, bias=bias)
        self.k_proj = nn.Linear(spec.hidden_size, spec.num_key_value_heads * spec.head_dim, bias=bias)
        self.v_proj = nn.Linear(spec.hidden_size, spec.num_key_value_heads * spec.head_dim, bias=bias)
        self.o_proj = nn.Linear(spec.num_attention_heads * spec.head_dim, spec.hidden_size, bias=bias)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                cache: KVCache | None) -> torch.Tensor:
        batch, length, _ = x.shape
        shape = (batch, length, -1, self.head_dim)
        query = self.q_proj(x).view(shape).transpose(1, 2)
        key = self.k_proj(x).view(shape).transpose(1, 2)
        value = self.v_proj(x).view(shape).transpose(1, 2)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        query, key = _rotate(query, cos, sin), _rotate(key, cos, sin)
        if cache is not None:
            key, value = cache.update(self.layer, key, value)
        if self.groups > 1:
            key = key.repeat_interleave(self.groups, dim=1)
            value = value.repeat_interleave(self.groups, dim=1)
        out = F.scaled_dot_product_attention(query, key, value, attn_mask=mask,
                                             is_causal=mask is None and length > 1, scale=self.scaling)
        return self.o_proj(out.transpose(1, 2).reshape(batch, length, -1))


class MLP(nn.Module):
    def __init__(self, spec: TextSpec) -> None:
        super().__init__()
        self.gate_proj = nn.Linear(spec.hidden_size, spec.intermediate_size, bias=spec.mlp_bias)
        self.up_proj = nn.Linear(spec.hidden_size, spec.intermediate_size, bias=spec.mlp_bias)
        self.down_proj = nn.Linear(spec.intermediate_size, spec.hidden_size, bias=spec.mlp_bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, spec: TextSpec, layer: int) -> None:
        super().__init__()
        self.self_attn = Attention(spec, layer)
        self.mlp = MLP(spec)
        self.input_layernorm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.post_attention_layernorm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, mask: torch.Tensor | None,
                cache: KVCache | None) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask, cache)
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaText(nn.Module):
    """Token embeddings and the decoder stack; :meth:`forward` takes embeddings (image features already in)."""

    def __init__(self, spec: TextSpec) -> None:
        super().__init__()
        # Built on the meta device and filled from the checkpoint: an explicit (empty) weight skips the random
        # initialisation, which on the meta device would import torch._dynamo (1.5 s).
        self.embed_tokens = nn.Embedding(spec.vocab_size, spec.hidden_size,
                                         _weight=torch.empty(spec.vocab_size, spec.hidden_size))
        self.layers = nn.ModuleList(DecoderLayer(spec, i) for i in range(spec.num_hidden_layers))
        self.norm = RMSNorm(spec.hidden_size, spec.rms_norm_eps)
        self.rope_theta, self.head_dim = spec.rope_theta, spec.head_dim
        self._inv_freq: torch.Tensor | None = None  # not a buffer: the checkpoint does not store it

    def rope(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin (batch, length, head_dim) for integer ``positions`` (batch, length)."""
        inv_freq = self._inv_freq
        if inv_freq is None or inv_freq.device != positions.device:
            steps = torch.arange(0, self.head_dim, 2, dtype=torch.float32) / self.head_dim
            inv_freq = self._inv_freq = (1.0 / (self.rope_theta ** steps)).to(positions.device)
        angles = positions[..., None].to(torch.float32) * inv_freq
        angles = torch.cat((angles, angles), dim=-1)
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def forward(self, embeds: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor | None,
                cache: KVCache | None = None) -> torch.Tensor:
        """Hidden states after the final norm, (batch, length, hidden).

        :param positions: each token's position (batch, length).
        :param mask: boolean (batch, 1, length, cached + length), True where a query may look; None for
            a plain causal prompt without padding.
        """
        cos, sin = self.rope(positions, embeds.dtype)
        x = embeds
        for layer in self.layers:
            x = layer(x, cos, sin, mask, cache)
        return self.norm(x)
