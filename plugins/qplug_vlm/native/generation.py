"""Decoding with the native FastVLM: greedy or sampled, one token at a time over a key/value cache.

The prompt is run once (the prefill fills :class:`~.llama.KVCache`); each new token then costs one
position. Tokens are chosen as transformers' ``generate`` chooses them for the settings qplug passes:
the argmax of the float32 logits, or with sampling: temperature, then top-k (the checkpoint's
``generation_config.json`` ``top_k``, else transformers' default of 50), then top-p, then one draw
from the softmax with torch's global generator (so ``torch.manual_seed`` makes it repeatable). A row
stops at an end token; rows of a batch stop independently (finished rows are fed the pad token and
their output ignored), so a frame's text does not depend on the other frames of its batch.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from .llama import KVCache

__all__ = ["generate_ids", "pick"]

#: transformers' default ``top_k`` when sampling and the checkpoint sets none.
DEFAULT_TOP_K = 50


def pick(logits: torch.Tensor, do_sample: bool, temperature: float = 1.0, top_k: int | None = DEFAULT_TOP_K,
         top_p: float | None = None) -> torch.Tensor:
    """The next token of each row of float32 ``logits`` (batch, vocab)."""
    if not do_sample:
        return logits.argmax(dim=-1)
    scores = logits / temperature if temperature != 1.0 else logits
    if top_k:
        kth = torch.topk(scores, min(int(top_k), scores.shape[-1])).values[..., -1, None]
        scores = scores.masked_fill(scores < kth, -float("inf"))
    if top_p is not None and top_p < 1.0:
        ordered, order = torch.sort(scores, descending=False)
        drop = ordered.softmax(dim=-1).cumsum(dim=-1) <= 1 - top_p
        drop[..., -1:] = False  # the most likely token always stays
        scores = scores.masked_fill(drop.scatter(1, order, drop), -float("inf"))
    return torch.multinomial(scores.softmax(dim=-1), num_samples=1).squeeze(1)


def generate_ids(model: Any, batch: dict[str, torch.Tensor], *, max_new_tokens: int,
                 eos_token_ids: Sequence[int] | None, pad_token_id: int, do_sample: bool = False,
                 temperature: float = 1.0, top_k: int | None = DEFAULT_TOP_K,
                 top_p: float | None = None) -> list[list[int]]:
    """New token ids of each row of a prepared batch, up to (not including) its end token."""
    stop = set(eos_token_ids or ())
    ids, mask = batch["input_ids"], batch["attention_mask"]
    rows = int(ids.shape[0])
    out: list[list[int]] = [[] for _ in range(rows)]
    done = [False] * rows
    cache = KVCache()
    logits = model(ids, mask, batch.get("pixel_values"), cache=cache)[:, -1].float()
    for produced in range(1, max_new_tokens + 1):
        chosen = pick(logits, do_sample, temperature, top_k, top_p).tolist()
        for row, token in enumerate(chosen):
            if done[row]:
                continue
            if token in stop:
                done[row] = True
            else:
                out[row].append(int(token))
        if all(done) or produced == max_new_tokens:
            break
        fed = torch.tensor([[pad_token_id if done[row] else chosen[row]] for row in range(rows)],
                           dtype=ids.dtype, device=ids.device)
        mask = torch.cat([mask, mask.new_ones((rows, 1))], dim=1)
        logits = model(fed, mask, cache=cache)[:, -1].float()
    return out
