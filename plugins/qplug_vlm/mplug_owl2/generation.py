"""Text generation with the native mPLUG-Owl2: greedy (or sampled) decoding, one token at a time.

The prompt is run once (a prefill that keeps every layer's keys and values, :class:`~.modeling.KVCache`);
each new token then costs one position, not the whole prompt again. ``use_cache=False`` recomputes the
full sequence at every step instead (slower, same tokens: the tests compare both). A row stops at the
tokenizer's end-of-sequence token (``</s>``, which mPLUG-Owl2's conversation ends each assistant turn
with) or after ``max_new_tokens``; rows of a batch stop independently and are left-padded, so a
frame's text does not depend on the other frames of its batch.
"""

from __future__ import annotations

from typing import Any

import torch

__all__ = ["generate_ids"]


def _pick(logits: torch.Tensor, do_sample: bool, temperature: float, top_p: float | None,
          generator: torch.Generator | None) -> torch.Tensor:
    """The next token of each row: the argmax, or a draw from the (nucleus-truncated) softmax."""
    logits = logits.float()
    if not do_sample:
        return logits.argmax(dim=-1)
    probabilities = torch.softmax(logits / temperature, dim=-1)
    if top_p is not None and top_p < 1:
        ordered, order = probabilities.sort(dim=-1, descending=True)
        # Keep the smallest set of tokens whose mass reaches top_p (the most likely one always).
        drop = ordered.cumsum(dim=-1) - ordered >= top_p
        ordered = ordered.masked_fill(drop, 0.0)
        probabilities = torch.zeros_like(probabilities).scatter(-1, order, ordered)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(-1)


def generate_ids(model: Any, batch: dict[str, Any], *, max_new_tokens: int, eos_token_id: int | None,
                 pad_token_id: int = 0, do_sample: bool = False, temperature: float = 1.0, top_p: float | None = None,
                 generator: torch.Generator | None = None, use_cache: bool = True) -> list[list[int]]:
    """New token ids of each row of a prepared batch (:func:`~.processing.prepare_batch`), end token excluded.

    :param max_new_tokens: the longest continuation.
    :param eos_token_id: stop a row when it produces this token (None: never).
    :param pad_token_id: what finished rows are fed while the others go on (their output is ignored).
    :param use_cache: keep keys and values between steps (default) or recompute the whole sequence.
    """
    rows = int(batch["input_ids"].shape[0])
    out: list[list[int]] = [[] for _ in range(rows)]
    done = [False] * rows
    with torch.inference_mode():
        step = model(**batch, logits_to_keep=1, use_cache=use_cache)
        input_ids, mask = batch["input_ids"], batch["attention_mask"]
        for produced in range(1, max_new_tokens + 1):
            chosen = _pick(step.logits[:, -1], do_sample, temperature, top_p, generator)
            for row, token in enumerate(chosen.tolist()):
                if done[row]:
                    continue
                if eos_token_id is not None and token == eos_token_id:
                    done[row] = True
                else:
                    out[row].append(int(token))
            if all(done) or produced == max_new_tokens:
                break
            fed = torch.tensor([[pad_token_id if done[row] else int(chosen[row])] for row in range(rows)],
                               dtype=input_ids.dtype, device=input_ids.device)
            if use_cache:
                step = model(fed, past_key_values=step.cache, logits_to_keep=1, use_cache=True)
            else:
                # Finished rows get a masked position, which the model drops before re-padding on the left.
                live = torch.tensor([[0 if done[row] else 1] for row in range(rows)], dtype=mask.dtype,
                                    device=mask.device)
                input_ids, mask = torch.cat([input_ids, fed], dim=1), torch.cat([mask, live], dim=1)
                rest = {k: v for k, v in batch.items() if k not in ("input_ids", "attention_mask")}
                step = model(input_ids=input_ids, attention_mask=mask, logits_to_keep=1, **rest)
    return out
