"""The mPLUG-Owl2 network (arXiv 2311.04257), module names chosen so released state dicts load as they are.

Three parts, one forward:

1. **Image encoder** (``model.vision_model``): a pre-norm ViT. 14-px patches of the 448-px image
   (a bias-free convolution), a class token, learned absolute positions, a layer norm before the
   blocks and one after; each block is attention with one fused, per-head interleaved
   query/key/value projection and a quick-GELU MLP. Output: 1 + 32 x 32 = 1,025 tokens.
2. **Visual abstractor** (``model.visual_abstractor``): 64 learned queries, refined by blocks in which
   the layer-normed queries attend to themselves *and* the layer-normed image tokens together (keys
   carry fixed sine-cosine positions: 1-D for queries, 2-D for the patch grid), followed by a
   SwiGLU MLP with a layer norm inside; then a linear map to the language model's width and a learned
   end-of-image token: 65 tokens per image.
3. **Modality-adaptive LLaMA-2** (``model.layers``...): a LLaMA decoder where both RMS norms and the
   key and value projections exist twice, one copy for text tokens and one for image tokens, chosen
   per position by a modality indicator (queries, output projection and MLP are shared).

The prompt marks each image with one placeholder id, :data:`IMAGE_TOKEN_INDEX` (-200), which is
replaced by that image's 65 tokens, or by the tokens of several frames one after another (Q-Align's
video mode: ``frames_per_image``, or the reference's ``images=[clip tensors]``). Rows of a batch may
differ in length: they are left-padded after the expansion and positions count real tokens only, so a
row's logits do not depend on its padding. ``use_cache=True`` returns every layer's keys and values
(:class:`KVCache`); passing them back as ``past_key_values`` with new text tokens runs only those
tokens (decoding), with the same logits as the whole sequence recomputed.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers.modeling_outputs import CausalLMOutputWithPast

from ..native.llama import RMSNorm
from .configuration import AbstractorSettings, MPLUGOwl2Config, VisionSettings
from .tables import position_table

__all__ = ["MPLUGOwl2ForCausalLM", "KVCache", "IMAGE_TOKEN_INDEX"]

IMAGE_TOKEN_INDEX = -200
TEXT, VISUAL = 0, 1


# ---------------------------------------------------------------------------------------------
# 1. Image encoder


class VisionEmbeddings(nn.Module):
    def __init__(self, s: VisionSettings) -> None:
        super().__init__()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, s.hidden_size))
        self.patch_embed = nn.Conv2d(s.num_channels, s.hidden_size, kernel_size=s.patch_size, stride=s.patch_size,
                                     bias=False)
        self.position_embedding = nn.Parameter(torch.zeros(1, s.num_positions, s.hidden_size))
        self.pre_layernorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        patches = self.patch_embed(pixel_values).flatten(2).transpose(1, 2)  # (B, grid*grid, D)
        cls = self.cls_token.to(patches.dtype).expand(patches.shape[0], -1, -1)
        tokens = torch.cat([cls, patches], dim=1)
        tokens = tokens + self.position_embedding[:, : tokens.shape[1]].to(tokens.dtype)
        return self.pre_layernorm(tokens)


class VisionAttention(nn.Module):
    def __init__(self, s: VisionSettings) -> None:
        super().__init__()
        self.heads = s.num_attention_heads
        self.query_key_value = nn.Linear(s.hidden_size, 3 * s.hidden_size)
        self.dense = nn.Linear(s.hidden_size, s.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        # The fused projection is laid out head by head, each head's query, key and value together.
        q, k, v = self.query_key_value(x).view(b, n, self.heads, 3, d // self.heads).permute(3, 0, 2, 1, 4).unbind(0)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.dense(out.transpose(1, 2).reshape(b, n, d))


class VisionMLP(nn.Module):
    def __init__(self, s: VisionSettings) -> None:
        super().__init__()
        self.fc1 = nn.Linear(s.hidden_size, s.intermediate_size)
        self.fc2 = nn.Linear(s.intermediate_size, s.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc1(x)
        return self.fc2(h * torch.sigmoid(1.702 * h))  # quick GELU


class VisionBlock(nn.Module):
    def __init__(self, s: VisionSettings) -> None:
        super().__init__()
        self.input_layernorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.self_attn = VisionAttention(s)
        self.post_attention_layernorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)
        self.mlp = VisionMLP(s)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class _Stack(nn.Module):
    def __init__(self, make: Callable[[], nn.Module], depth: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(make() for _ in range(depth))


class VisionModel(nn.Module):
    def __init__(self, s: VisionSettings) -> None:
        super().__init__()
        self.embeddings = VisionEmbeddings(s)
        self.encoder = _Stack(lambda: VisionBlock(s), s.num_hidden_layers)
        self.post_layernorm = nn.LayerNorm(s.hidden_size, eps=s.layer_norm_eps)

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        x = self.embeddings(pixel_values)
        for block in self.encoder.layers:
            x = block(x)
        return self.post_layernorm(x)


# ---------------------------------------------------------------------------------------------
# 2. Visual abstractor


class AbstractorAttention(nn.Module):
    def __init__(self, s: AbstractorSettings) -> None:
        super().__init__()
        self.heads = s.num_attention_heads
        self.query = nn.Linear(s.hidden_size, s.hidden_size)
        self.key = nn.Linear(s.encoder_hidden_size, s.hidden_size)
        self.value = nn.Linear(s.encoder_hidden_size, s.hidden_size)
        # Fixed tables, saved with the weights in released checkpoints (recomputed when absent).
        self.register_buffer("q_pos_embed", torch.zeros(s.num_learnable_queries, s.hidden_size))
        self.register_buffer("k_pos_embed", torch.zeros(s.grid_size * s.grid_size + 1, s.hidden_size))

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        return x.view(b, n, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``queries`` (B, Q, D) attend to ``context`` = [queries; image tokens] (B, Q + N, D)."""
        q_pos = self.q_pos_embed.to(queries.dtype)
        positions = torch.cat([q_pos, self.k_pos_embed.to(queries.dtype)], dim=0)
        if positions.shape[0] != context.shape[1]:
            raise ValueError(f"the abstractor's position table covers {positions.shape[0] - q_pos.shape[0]} image "
                             f"tokens but the image encoder gave {context.shape[1] - q_pos.shape[0]} "
                             "(wrong image size?)")
        q = self._heads(self.query(queries + q_pos))
        k = self._heads(self.key(context + positions))
        v = self._heads(self.value(context))
        out = F.scaled_dot_product_attention(q, k, v)
        b, h, n, d = out.shape
        return out.transpose(1, 2).reshape(b, n, h * d)


class AbstractorMLP(nn.Module):
    def __init__(self, s: AbstractorSettings) -> None:
        super().__init__()
        self.w1 = nn.Linear(s.hidden_size, s.intermediate_size)
        self.w2 = nn.Linear(s.intermediate_size, s.hidden_size)
        self.w3 = nn.Linear(s.hidden_size, s.intermediate_size)
        self.ffn_ln = nn.LayerNorm(s.intermediate_size, eps=s.layer_norm_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(self.ffn_ln(F.silu(self.w1(x)) * self.w3(x)))


class AbstractorOutput(nn.Module):
    def __init__(self, s: AbstractorSettings) -> None:
        super().__init__()
        self.out_proj = nn.Linear(s.hidden_size, s.hidden_size)
        self.norm2 = nn.LayerNorm(s.hidden_size)  # torch's default epsilon, as released
        self.mlp = AbstractorMLP(s)

    def forward(self, attended: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        x = residual + self.out_proj(attended)
        return x + self.mlp(self.norm2(x))


class AbstractorCrossAttention(nn.Module):
    def __init__(self, s: AbstractorSettings) -> None:
        super().__init__()
        self.attention = AbstractorAttention(s)
        self.output = AbstractorOutput(s)
        self.norm1 = nn.LayerNorm(s.hidden_size)
        self.normk = nn.LayerNorm(s.hidden_size)

    def forward(self, queries: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        # The residual stream continues from the *normalised* queries.
        queries = self.norm1(queries)
        context = torch.cat([queries, self.normk(image_tokens)], dim=1)
        return self.output(self.attention(queries, context), queries)


class AbstractorLayer(nn.Module):
    def __init__(self, s: AbstractorSettings) -> None:
        super().__init__()
        self.crossattention = AbstractorCrossAttention(s)

    def forward(self, queries: torch.Tensor, image_tokens: torch.Tensor) -> torch.Tensor:
        return self.crossattention(queries, image_tokens)


class VisualAbstractor(nn.Module):
    def __init__(self, s: AbstractorSettings, language_width: int) -> None:
        super().__init__()
        if s.encoder_hidden_size != s.hidden_size:
            raise ValueError("the visual abstractor needs encoder_hidden_size == hidden_size (queries and image "
                             "tokens share one attention context)")
        self.settings = s
        self.encoder = _Stack(lambda: AbstractorLayer(s), s.num_hidden_layers)
        self.visual_fc = nn.Linear(s.hidden_size, language_width)
        self.query_embeds = nn.Parameter(torch.zeros(1, s.num_learnable_queries, s.hidden_size))
        self.vit_eos = nn.Parameter(torch.zeros(1, 1, language_width))

    def forward(self, image_tokens: torch.Tensor) -> torch.Tensor:
        x = self.query_embeds.to(image_tokens.dtype).expand(image_tokens.shape[0], -1, -1)
        for layer in self.encoder.layers:
            x = layer(x, image_tokens)
        x = self.visual_fc(x)
        return torch.cat([x, self.vit_eos.to(x.dtype).expand(x.shape[0], -1, -1)], dim=1)

    def fill_position_tables(self, device: torch.device, dtype: torch.dtype, skip: set[str] = frozenset(),
                             prefix: str = "") -> None:
        """Compute the sine-cosine tables (those not in ``skip``, full state-dict names)."""
        table_settings = {"hidden_size": self.settings.hidden_size, "grid_size": self.settings.grid_size,
                          "num_learnable_queries": self.settings.num_learnable_queries}
        for index, layer in enumerate(self.encoder.layers):
            attention = layer.crossattention.attention
            for name in ("q_pos_embed", "k_pos_embed"):
                full = f"{prefix}encoder.layers.{index}.crossattention.attention.{name}"
                if full in skip:
                    continue
                value = torch.from_numpy(np.ascontiguousarray(position_table(name, table_settings)))
                setattr(attention, name, value.to(device=device, dtype=dtype))


# ---------------------------------------------------------------------------------------------
# 3. Modality-adaptive LLaMA-2


class Multiway(nn.Module):
    """Two copies of a module, ``multiway.0`` for text and ``multiway.1`` for image positions."""

    def __init__(self, make: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.multiway = nn.ModuleList([make(), make()])

    def forward(self, x: torch.Tensor, visual: torch.Tensor | None) -> torch.Tensor:
        """``x`` (B, S, D); ``visual`` (B, S) bool, or None for text only (decoding: no device sync).
        Each position goes through its own modality's copy."""
        if visual is None or not bool(visual.any()):
            return self.multiway[TEXT](x)
        text_out = self.multiway[TEXT](x[~visual])
        visual_out = self.multiway[VISUAL](x[visual])
        out = x.new_empty(*x.shape[:-1], visual_out.shape[-1])
        out[~visual] = text_out
        out[visual] = visual_out
        return out


def _rotate(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


class Attention(nn.Module):
    def __init__(self, config: MPLUGOwl2Config) -> None:
        super().__init__()
        self.heads = config.num_attention_heads
        self.kv_heads = config.num_key_value_heads
        self.head_dim = config.hidden_size // self.heads
        width, bias = config.hidden_size, bool(config.attention_bias)
        self.q_proj = nn.Linear(width, self.heads * self.head_dim, bias=bias)
        self.k_proj = Multiway(lambda: nn.Linear(width, self.kv_heads * self.head_dim, bias=bias))
        self.v_proj = Multiway(lambda: nn.Linear(width, self.kv_heads * self.head_dim, bias=bias))
        self.o_proj = nn.Linear(self.heads * self.head_dim, width, bias=bias)

    def forward(self, x: torch.Tensor, visual: torch.Tensor | None, rope: tuple[torch.Tensor, torch.Tensor],
                mask: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Attention output and this call's keys and values (rotated, with ``past``'s in front)."""
        b, n, _ = x.shape
        q = self.q_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x, visual).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x, visual).view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
        cos, sin = rope
        q = q * cos + _rotate(q) * sin
        k = k * cos + _rotate(k) * sin
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        present = (k, v)
        if self.kv_heads != self.heads:
            k = k.repeat_interleave(self.heads // self.kv_heads, dim=1)
            v = v.repeat_interleave(self.heads // self.kv_heads, dim=1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.o_proj(out.transpose(1, 2).reshape(b, n, self.heads * self.head_dim)), present


class MLP(nn.Module):
    def __init__(self, config: MPLUGOwl2Config) -> None:
        super().__init__()
        if config.hidden_act != "silu":
            raise ValueError(f"mPLUG-Owl2's LLaMA uses silu, not {config.hidden_act!r}")
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, config: MPLUGOwl2Config) -> None:
        super().__init__()
        width, eps = config.hidden_size, config.rms_norm_eps
        self.self_attn = Attention(config)
        self.mlp = MLP(config)
        self.input_layernorm = Multiway(lambda: RMSNorm(width, eps))
        self.post_attention_layernorm = Multiway(lambda: RMSNorm(width, eps))

    def forward(self, x: torch.Tensor, visual: torch.Tensor | None, rope: tuple[torch.Tensor, torch.Tensor],
                mask: torch.Tensor, past: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        attended, present = self.self_attn(self.input_layernorm(x, visual), visual, rope, mask, past)
        x = x + attended
        return x + self.mlp(self.post_attention_layernorm(x, visual)), present


class MPLUGOwl2Model(nn.Module):
    """``model.*`` of the checkpoint: the decoder and, beside it, the image encoder and abstractor."""

    def __init__(self, config: MPLUGOwl2Config) -> None:
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_hidden_layers))
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.vision_model = VisionModel(config.vision)
        self.visual_abstractor = VisualAbstractor(config.abstractor, config.hidden_size)


def _rope_frequencies(config: MPLUGOwl2Config) -> tuple[torch.Tensor, float]:
    """Inverse frequencies (on the CPU) and the position divisor (linear scaling); other RoPE variants are
    refused."""
    head_dim = config.hidden_size // config.num_attention_heads
    params = dict(getattr(config, "rope_parameters", None) or {})
    theta = float(params.get("rope_theta", getattr(config, "rope_theta", 10000.0)) or 10000.0)
    kind = params.get("rope_type", params.get("type", "default")) or "default"
    if kind not in ("default", "linear"):
        raise ValueError(f"RoPE scaling {kind!r} is not supported for mPLUG-Owl2 (default or linear)")
    factor = float(params.get("factor", 1.0)) if kind == "linear" else 1.0
    exponents = torch.arange(0, head_dim, 2, dtype=torch.int64, device="cpu").float() / head_dim
    inv_freq = 1.0 / (theta ** exponents)
    return inv_freq, factor


class MPLUGOwl2ForCausalLM(nn.Module):
    """mPLUG-Owl2 for next-token logits: ``model`` (decoder, image encoder, abstractor) + ``lm_head``.

    Built directly from an :class:`MPLUGOwl2Config` (random weights) or by
    :func:`~qplug_vlm.mplug_owl2.load_mplug_owl2` from a released checkpoint.
    """

    def __init__(self, config: MPLUGOwl2Config) -> None:
        super().__init__()
        self.config = config
        self.model = MPLUGOwl2Model(config)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)
        self._inv_freq, self._rope_divisor = _rope_frequencies(config)
        if not self.lm_head.weight.is_meta:
            self.materialize_computed_buffers()

    # -- properties the rest of qplug reads ------------------------------------------------------

    @property
    def device(self) -> torch.device:
        return self.lm_head.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.lm_head.weight.dtype

    @property
    def num_visual_tokens(self) -> int:
        return self.config.num_visual_tokens

    def materialize_computed_buffers(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None,
                                     present: set[str] = frozenset()) -> None:
        """Fill the abstractor's sine-cosine tables, except those in ``present`` (loaded from a checkpoint)."""
        self.model.visual_abstractor.fill_position_tables(
            device=torch.device(device) if device is not None else self.device, dtype=dtype or self.dtype,
            skip=set(present), prefix="model.visual_abstractor.")

    # -- images ----------------------------------------------------------------------------------

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """(N, 3, 448, 448) -> (N, 65, hidden): the language-model tokens of each image."""
        pixel_values = pixel_values.to(device=self.device, dtype=self.dtype)
        return self.model.visual_abstractor(self.model.vision_model(pixel_values))

    def group_image_tokens(self, image_tokens: torch.Tensor, frames_per_image: Sequence[int] | None
                           ) -> list[torch.Tensor]:
        """One (tokens, hidden) tensor per image placeholder: ``frames_per_image[i]`` frames' tokens one
        after another (Q-Align's video mode: a clip's frames fill one placeholder), or one frame each."""
        if frames_per_image is None:
            return list(image_tokens)
        counts = [int(c) for c in frames_per_image]
        if any(c < 1 for c in counts) or sum(counts) != image_tokens.shape[0]:
            raise ValueError(f"frames_per_image {counts} does not add up to the {image_tokens.shape[0]} frames given")
        return [group.flatten(0, 1) for group in torch.split(image_tokens, counts)]

    def embed_multimodal(self, input_ids: torch.Tensor, image_tokens: "torch.Tensor | Sequence[torch.Tensor] | None",
                         attention_mask: torch.Tensor | None = None
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Replace each :data:`IMAGE_TOKEN_INDEX` by its image's tokens (images in order, row by row).

        ``image_tokens``: (N, T, D), one image per placeholder, or a list of (T_i, D), one entry per
        placeholder (a clip's frames together). Padding (``attention_mask == 0``) is dropped first and
        the expanded rows are left-padded again. Returns embeddings (B, L, D), the modality indicator
        (B, L; True at image positions) and the attention mask (B, L).
        """
        embed = self.model.embed_tokens
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        attention_mask = attention_mask.to(input_ids.device)
        placeholders = list(image_tokens) if image_tokens is not None else []
        rows, kinds = [], []
        used = 0
        for ids, keep in zip(input_ids, attention_mask.bool()):
            ids = ids[keep]
            where = (ids == IMAGE_TOKEN_INDEX).nonzero().flatten().tolist()
            pieces, modality, start = [], [], 0
            for at in where + [len(ids)]:
                if at > start:
                    pieces.append(embed(ids[start:at].to(embed.weight.device)))
                    modality.append(torch.full((at - start,), TEXT))
                if at < len(ids):
                    if used >= len(placeholders):
                        raise ValueError("the prompts hold more image placeholders than images were given")
                    tokens = placeholders[used]
                    pieces.append(tokens.to(embed.weight.dtype))
                    modality.append(torch.full((tokens.shape[0],), VISUAL))
                    used += 1
                start = at + 1
            rows.append(torch.cat(pieces) if pieces else embed.weight.new_zeros(0, embed.embedding_dim))
            kinds.append(torch.cat(modality) if modality else torch.zeros(0, dtype=torch.long))
        if used != len(placeholders):
            raise ValueError(f"{len(placeholders)} image(s) given for {used} image placeholder(s) in the prompts")
        length = max(len(r) for r in rows)
        batch = len(rows)
        embeds = rows[0].new_zeros(batch, length, rows[0].shape[-1]) if length else embed.weight.new_zeros(batch, 0, 1)
        visual = torch.zeros(batch, length, dtype=torch.bool, device=embeds.device)
        mask = torch.zeros(batch, length, dtype=torch.long, device=embeds.device)
        for i, (row, kind) in enumerate(zip(rows, kinds)):
            if len(row):
                embeds[i, length - len(row):] = row
                visual[i, length - len(row):] = kind.to(embeds.device) == VISUAL
                mask[i, length - len(row):] = 1
        return embeds, visual, mask

    # -- forward ---------------------------------------------------------------------------------

    def _rope(self, positions: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        inv_freq = self._inv_freq.to(positions.device)
        angles = (positions.float() / self._rope_divisor)[..., None] * inv_freq  # (B, S, head_dim / 2)
        angles = torch.cat([angles, angles], dim=-1)[:, None]  # (B, 1, S, head_dim)
        return angles.cos().to(dtype), angles.sin().to(dtype)

    def forward(self, input_ids: torch.Tensor, pixel_values: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, logits_to_keep: int = 0,
                images: torch.Tensor | Sequence[torch.Tensor] | None = None,
                frames_per_image: Sequence[int] | None = None, past_key_values: "KVCache | None" = None,
                use_cache: bool = False, **_: Any) -> CausalLMOutputWithPast:
        """Logits (B, L, vocab) (or the last ``logits_to_keep`` positions) for prompts with image placeholders.

        :param input_ids: (B, S) token ids with one :data:`IMAGE_TOKEN_INDEX` per image, left-padded;
            with ``past_key_values``, the new text tokens only (B, 1 or more), no padding.
        :param pixel_values: (N, 3, 448, 448) frames in reading order.
        :param attention_mask: (B, S), 0 at padding (ignored with ``past_key_values``).
        :param images: the reference's argument: a tensor like ``pixel_values``, or a list of (F_i, 3,
            448, 448) tensors, one per placeholder, whose F_i frames fill that placeholder together
            (Q-Align's video mode).
        :param frames_per_image: how many of ``pixel_values``' frames fill each placeholder (default one).
        :param past_key_values: the :class:`KVCache` a previous call returned (``use_cache=True``).
        :param use_cache: return a :class:`KVCache` (the output's ``cache``) to pass as ``past_key_values`` next.
        :param logits_to_keep: project only the last this many positions onto the vocabulary (0 = all).
        """
        if past_key_values is not None:
            return self._decode_step(input_ids, past_key_values, logits_to_keep, use_cache)
        if pixel_values is None and images is not None:
            if isinstance(images, (list, tuple)):
                frames_per_image = [int(t.shape[0]) for t in images]
                pixel_values = torch.cat(list(images))
            elif images.ndim == 5:
                frames_per_image = [int(images.shape[1])] * int(images.shape[0])
                pixel_values = images.flatten(0, 1)
            else:
                pixel_values = images
        image_tokens = None
        if pixel_values is not None:
            image_tokens = self.group_image_tokens(self.encode_images(pixel_values), frames_per_image)
        x, visual, mask = self.embed_multimodal(input_ids, image_tokens, attention_mask)
        batch, length = mask.shape
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        rope = self._rope(positions, x.dtype)
        allowed = torch.ones(length, length, dtype=torch.bool, device=x.device).tril()
        allowed = allowed[None] & mask.bool()[:, None, :]
        allowed |= torch.eye(length, dtype=torch.bool, device=x.device)  # padding rows see themselves: no NaN
        additive = torch.zeros(batch, 1, length, length, dtype=x.dtype, device=x.device)
        additive.masked_fill_(~allowed[:, None], torch.finfo(x.dtype).min)
        presents = []
        for layer in self.model.layers:
            x, present = layer(x, visual, rope, additive)
            presents.append(present)
        cache = KVCache(presents, mask, positions[:, -1] + 1) if use_cache else None
        return self._logits(x, logits_to_keep, cache)

    def _decode_step(self, input_ids: torch.Tensor, cache: "KVCache", logits_to_keep: int,
                     use_cache: bool) -> CausalLMOutputWithPast:
        """Text tokens appended to every row of a cached batch: attend to the cache and to each other."""
        if bool((input_ids == IMAGE_TOKEN_INDEX).any()):
            raise ValueError("images can only be given with the prompt, not in a cached decoding step")
        embed = self.model.embed_tokens
        x = embed(input_ids.to(embed.weight.device))
        batch, new = input_ids.shape
        visual = None  # new tokens are text: every Multiway takes its text copy without looking
        positions = cache.next_position[:, None] + torch.arange(new, device=x.device)[None]
        rope = self._rope(positions, x.dtype)
        past = cache.mask.shape[1]
        mask = torch.cat([cache.mask, torch.ones(batch, new, dtype=cache.mask.dtype, device=x.device)], dim=1)
        causal = torch.ones(new, past + new, dtype=torch.bool, device=x.device).tril(diagonal=past)
        allowed = causal[None] & mask.bool()[:, None, :]
        additive = torch.zeros(batch, 1, new, past + new, dtype=x.dtype, device=x.device)
        additive.masked_fill_(~allowed[:, None], torch.finfo(x.dtype).min)
        presents = []
        for layer, layer_past in zip(self.model.layers, cache.layers):
            x, present = layer(x, visual, rope, additive, layer_past)
            presents.append(present)
        return self._logits(x, logits_to_keep, KVCache(presents, mask, positions[:, -1] + 1) if use_cache else None)

    def _logits(self, x: torch.Tensor, logits_to_keep: int, cache: "KVCache | None") -> CausalLMOutputWithPast:
        x = self.model.norm(x)
        if logits_to_keep:
            x = x[:, -logits_to_keep:]
        return CausalLMOutputWithPast(logits=self.lm_head(x), cache=cache)


class KVCache:
    """Keys and values of every layer for the tokens seen so far (greedy decoding without recomputing).

    :param layers: per layer, (keys, values) of shape (B, kv_heads, L, head_dim), rotated.
    :param mask: (B, L), 0 at left padding.
    :param next_position: (B,), the rotary position of each row's next token.
    """

    def __init__(self, layers: list[tuple[torch.Tensor, torch.Tensor]], mask: torch.Tensor,
                 next_position: torch.Tensor) -> None:
        self.layers, self.mask, self.next_position = layers, mask, next_position

    def __len__(self) -> int:
        return int(self.mask.shape[1])
