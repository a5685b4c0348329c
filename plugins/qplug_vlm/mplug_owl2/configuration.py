"""The mPLUG-Owl2 configuration, read from a released ``config.json`` (model_type ``mplug_owl2``).

The released schema is a LLaMA configuration plus ``visual_config`` with two sections:
``visual_model`` (the ViT: width, depth, heads, 448-px input, 14-px patches) and
``visual_abstractor`` (learned queries, width, depth, grid of the key position table). Missing
entries take the values of the released architecture (ViT-L/14 at 448 px, a 6-layer abstractor of
64 queries, Ye et al. 2023, arXiv 2311.04257).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

from transformers import LlamaConfig

__all__ = ["MPLUGOwl2Config", "VisionSettings", "AbstractorSettings"]


@dataclass(frozen=True)
class VisionSettings:
    """``visual_config["visual_model"]``: the ViT image encoder."""

    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    num_channels: int = 3
    image_size: int = 448
    patch_size: int = 14
    layer_norm_eps: float = 1e-6

    @property
    def grid(self) -> int:
        return self.image_size // self.patch_size

    @property
    def num_positions(self) -> int:
        """Class token + patches."""
        return self.grid * self.grid + 1


@dataclass(frozen=True)
class AbstractorSettings:
    """``visual_config["visual_abstractor"]``: learned queries cross-attending to the ViT tokens."""

    num_learnable_queries: int = 64
    hidden_size: int = 1024
    num_hidden_layers: int = 6
    num_attention_heads: int = 16
    intermediate_size: int = 2816
    layer_norm_eps: float = 1e-6
    encoder_hidden_size: int = 1024
    grid_size: int = 32


def _settings(cls: type, values: Mapping[str, Any] | None) -> Any:
    names = {f.name for f in fields(cls)}
    given = {k: v for k, v in (values or {}).items() if k in names and v is not None}
    return cls(**given)


class MPLUGOwl2Config(LlamaConfig):
    """LLaMA-2 fields (vocabulary, width, depth, heads, RoPE, RMS-norm epsilon) + ``visual_config``.

    Reads a released ``config.json`` as it is; unknown keys (``auto_map``, ``freeze_vision_model``...)
    are kept as attributes and ignored.
    """

    model_type = "mplug_owl2"

    visual_config: dict | None = None

    def __post_init__(self, **kwargs: Any) -> None:
        visual = dict(self.visual_config or {})
        # Complete both sections so a saved config always states the whole architecture.
        visual["visual_model"] = {**VisionSettings().__dict__, **dict(visual.get("visual_model") or {})}
        visual["visual_abstractor"] = {**AbstractorSettings().__dict__, **dict(visual.get("visual_abstractor") or {})}
        self.visual_config = visual
        super().__post_init__(**kwargs)

    @classmethod
    def from_released(cls, raw: Mapping[str, Any]) -> "MPLUGOwl2Config":
        """The configuration of a released ``config.json`` (a dict): its legacy ``rope_theta`` and
        ``rope_scaling`` (``{"type": "linear", "factor": 2.0}`` or null) become transformers 5's
        ``rope_parameters``; ``model_type`` and the ``transformers_version`` that wrote it are dropped."""
        values = {k: v for k, v in raw.items() if k not in ("model_type", "transformers_version")}
        if "rope_parameters" not in values:
            scaling = values.pop("rope_scaling", None) or {}
            theta = values.pop("rope_theta", None) or 10000.0
            rope: dict[str, Any] = {"rope_type": scaling.get("rope_type", scaling.get("type", "default")),
                                    "rope_theta": float(theta)}
            if "factor" in scaling:
                rope["factor"] = float(scaling["factor"])
            values["rope_parameters"] = rope
        return cls(**values)

    @property
    def vision(self) -> VisionSettings:
        return _settings(VisionSettings, self.visual_config["visual_model"])

    @property
    def abstractor(self) -> AbstractorSettings:
        return _settings(AbstractorSettings, self.visual_config["visual_abstractor"])

    @property
    def num_visual_tokens(self) -> int:
        """Language-model positions one image takes: the learned queries and an end-of-image token."""
        return self.abstractor.num_learnable_queries + 1
