"""A BERT encoder in plain torch: the question reader's all-MiniLM-L6-v2 without transformers.

Devlin et al. 2019, *BERT*, arXiv 1810.04805: word + position + token-type embeddings and a LayerNorm,
then post-norm encoder layers (self-attention, residual, LayerNorm; GELU MLP, residual, LayerNorm).
The module names follow the checkpoint's keys (``encoder.layer.N.attention.self.query.weight``...), so
the weights load by name from safetensors; the tokenizer is the checkpoint's ``tokenizer.json`` run by
the ``tokenizers`` library, padded to the longest text of a batch.

Why not transformers' ``AutoModel``: importing it costs 2-3 s on a 2-core machine, paid by the
first question a user asks (the reader loads then), while the default model itself never imports
transformers (:mod:`qplug_vlm.native`). The numerics are transformers' (exact GELU, LayerNorm eps from
the config, padded keys masked before the softmax); tests compare the two on the shipped encoder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["BertEncoder", "load_bert"]


class _SelfAttention(nn.Module):
    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query, self.key, self.value = nn.Linear(width, width), nn.Linear(width, width), nn.Linear(width, width)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(batch, length, self.heads, width // self.heads).transpose(1, 2)

        out = F.scaled_dot_product_attention(split(self.query(x)), split(self.key(x)), split(self.value(x)),
                                             attn_mask=bias)
        return out.transpose(1, 2).reshape(batch, length, width)


class _Output(nn.Module):
    """Dense, residual, LayerNorm: the closing step of both halves of a layer."""

    def __init__(self, width_in: int, width: int, eps: float) -> None:
        super().__init__()
        self.dense = nn.Linear(width_in, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)

    def forward(self, x: torch.Tensor, residual: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(x) + residual)


class _Attention(nn.Module):
    def __init__(self, width: int, heads: int, eps: float) -> None:
        super().__init__()
        self.self = _SelfAttention(width, heads)
        self.output = _Output(width, width, eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(x, bias), x)


class _Intermediate(nn.Module):
    def __init__(self, width: int, inner: int) -> None:
        super().__init__()
        self.dense = nn.Linear(width, inner)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(self.dense(x))  # exact (erf) GELU, BERT's "gelu"


class _Layer(nn.Module):
    def __init__(self, width: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.attention = _Attention(width, heads, eps)
        self.intermediate = _Intermediate(width, inner)
        self.output = _Output(inner, width, eps)

    def forward(self, x: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
        x = self.attention(x, bias)
        return self.output(self.intermediate(x), x)


class _Encoder(nn.Module):
    def __init__(self, layers: int, width: int, heads: int, inner: int, eps: float) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(width, heads, inner, eps) for _ in range(layers))


class _Embeddings(nn.Module):
    def __init__(self, vocab: int, positions: int, types: int, width: int, eps: float) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, width)
        self.position_embeddings = nn.Embedding(positions, width)
        self.token_type_embeddings = nn.Embedding(types, width)
        self.LayerNorm = nn.LayerNorm(width, eps=eps)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        # One segment: every token is of type 0, as the tokenizer marks a single text.
        x = self.word_embeddings(ids) + self.position_embeddings(positions) + self.token_type_embeddings.weight[0]
        return self.LayerNorm(x)


class BertEncoder(nn.Module):
    """BERT's embeddings and encoder layers (no pooler: the reader pools token states itself)."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        if config.get("hidden_act", "gelu") != "gelu" or config.get("position_embedding_type", "absolute") != "absolute":
            raise ValueError("only BERT with GELU and absolute positions is supported")
        width, eps = int(config["hidden_size"]), float(config.get("layer_norm_eps", 1e-12))
        self.width = width
        self.embeddings = _Embeddings(int(config["vocab_size"]), int(config["max_position_embeddings"]),
                                      int(config.get("type_vocab_size", 2)), width, eps)
        self.encoder = _Encoder(int(config["num_hidden_layers"]), width, int(config["num_attention_heads"]),
                                int(config["intermediate_size"]), eps)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """Hidden states: the embeddings' output, then every layer's (as ``output_hidden_states`` gives them)."""
        # Additive key mask, broadcast over heads and queries: padded keys get the dtype's minimum.
        bias = (1.0 - mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
        states = [self.embeddings(ids)]
        for layer in self.encoder.layer:
            states.append(layer(states[-1], bias))
        return states


class BertTokenizer:
    """The checkpoint's ``tokenizer.json``: [CLS] text [SEP], truncated to ``max_length``, padded to the longest."""

    def __init__(self, path: Path, max_length: int) -> None:
        from tokenizers import Tokenizer

        try:
            self._tokenizer = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception for a missing or malformed file
            raise ValueError(f"{path}: not a tokenizer file ({exc})") from exc
        pad = self._tokenizer.token_to_id("[PAD]")
        if pad is None:
            raise ValueError(f"{path} has no [PAD] token")
        self._tokenizer.enable_truncation(max_length)
        self._tokenizer.enable_padding(pad_id=pad, pad_token="[PAD]")  # no fixed length: the batch's longest

    def __call__(self, texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = torch.tensor([e.ids for e in encodings], dtype=torch.long)
        mask = torch.tensor([e.attention_mask for e in encodings], dtype=torch.long)
        return ids, mask


def load_bert(directory: Path) -> BertEncoder:
    """The encoder of a BERT checkpoint directory (``config.json`` + ``model.safetensors``), in eval mode."""
    from safetensors.torch import load_file

    config = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    model = BertEncoder(config)
    weights = {k: v for k, v in load_file(str(directory / "model.safetensors")).items()
               if not k.startswith("pooler.") and not k.endswith("position_ids")}
    missing, unexpected = model.load_state_dict(weights, strict=False)
    if missing or unexpected:
        raise ValueError(f"{directory}: weights do not fit a BERT encoder "
                         f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})")
    return model.eval()
