"""The visual abstractor's fixed sine-cosine position tables (numpy only).

Keys of the abstractor's attention carry positions: a 1-D table over the learned queries and a 2-D
table over the image encoder's patch grid with a zero row for the class token, built as in MAE
(He et al. 2021, arXiv 2111.06377): half of the channels encode one coordinate, half the other, each
as sines then cosines of position x 10000^(-2i/d). Released checkpoints store them as buffers; the
model computes them when a checkpoint leaves them out.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["sincos_1d", "sincos_2d", "position_table"]


def sincos_1d(dim: int, positions: np.ndarray) -> np.ndarray:
    """Sine-cosine table (len(positions), dim): sines of position x 10000^(-2i/dim) first, then cosines."""
    if dim % 2:
        raise ValueError("sine-cosine tables need an even width")
    frequencies = 1.0 / 10000 ** (np.arange(dim // 2, dtype=np.float32) / (dim / 2.0))
    angles = np.outer(positions.reshape(-1).astype(np.float32), frequencies.astype(np.float32))
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1)


def sincos_2d(dim: int, grid: int, leading_zero_row: bool = True) -> np.ndarray:
    """2-D table for a grid x grid patch grid, patches in row-major order: the first half of each row
    encodes the patch's column, the second half its row; a zero row in front for the class token."""
    rows, cols = np.meshgrid(np.arange(grid, dtype=np.float32), np.arange(grid, dtype=np.float32), indexing="ij")
    table = np.concatenate([sincos_1d(dim // 2, cols), sincos_1d(dim // 2, rows)], axis=1)
    if leading_zero_row:
        table = np.concatenate([np.zeros((1, dim)), table], axis=0)
    return table


def position_table(name: str, visual_abstractor: dict[str, Any]) -> np.ndarray:
    """The value of a ``q_pos_embed`` / ``k_pos_embed`` buffer (float32)."""
    width = int(visual_abstractor.get("hidden_size", 1024))
    if name.endswith("q_pos_embed"):
        queries = int(visual_abstractor.get("num_learnable_queries", 64))
        return sincos_1d(width, np.arange(queries, dtype=np.float32)).astype(np.float32)
    return sincos_2d(width, int(visual_abstractor.get("grid_size") or 32)).astype(np.float32)
