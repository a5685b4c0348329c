"""The EfficientNet tower of a FastVLM checkpoint (transformers' ``efficientnet`` layout), in plain torch.

Tan & Le 2019, *EfficientNet*, arXiv 1905.11946; qplug's default model uses the Lite0 variant
(ReLU6, no squeeze-excite: transformers expresses its blocks with always-open gates). The module and
parameter names follow the checkpoint's keys (``model.vision_tower.embeddings.convolution.weight``,
``...encoder.blocks.N.expansion.expand_conv.weight``...), so the safetensors file loads by name and
:func:`qplug_vlm.fusion.simplify_for_inference` (batch norms folded into their convolutions,
constant gates dropped) applies to it as to the transformers model.

Layout, as the checkpoint's ``vision_config`` describes it:

- stem: zero pad right and bottom by one, 3x3 stride-2 convolution, batch norm, activation;
- blocks (stage by stage, ``num_block_repeats`` each, the first of a stage with the stage's stride):
  1x1 expansion (when ``expand_ratio`` > 1), depthwise k x k convolution ("same" padding at stride 1;
  at stride 2 padded by k//2 - 1 before and k//2 after, or k//2 on both sides for the blocks listed in
  ``depthwise_padding``), squeeze-excite gate, 1x1 projection; a residual connection on every block
  but the first of each stage;
- head: 1x1 convolution to ``hidden_dim`` channels, batch norm, activation. Its (B, C, H/32, W/32)
  map is what the projector reads; the tower's pooled output is not used.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import TowerSpec, round_filters, round_repeats

__all__ = ["EfficientNetTower"]


def _activation(name: str) -> nn.Module:
    return nn.ReLU6() if name == "relu6" else nn.SiLU()  # "swish" and "silu" are the same function


def _norm(channels: int, spec: TowerSpec) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=spec.batch_norm_eps)


class Stem(nn.Module):
    """``embeddings``: the first stride-2 convolution."""

    def __init__(self, spec: TowerSpec) -> None:
        super().__init__()
        out = round_filters(spec, 32)
        self.convolution = nn.Conv2d(spec.num_channels, out, kernel_size=3, stride=2, bias=False)
        self.batchnorm = _norm(out, spec)
        self.activation = _activation(spec.hidden_act)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.activation(self.batchnorm(self.convolution(F.pad(pixels, (0, 1, 0, 1)))))


class Expansion(nn.Module):
    def __init__(self, spec: TowerSpec, channels: int, expanded: int) -> None:
        super().__init__()
        self.expand_conv = nn.Conv2d(channels, expanded, kernel_size=1, bias=False)
        self.expand_bn = _norm(expanded, spec)
        self.expand_act = _activation(spec.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand_act(self.expand_bn(self.expand_conv(x)))


class Depthwise(nn.Module):
    def __init__(self, spec: TowerSpec, channels: int, kernel: int, stride: int, adjust: bool) -> None:
        super().__init__()
        half = kernel // 2
        # Stride 2: explicit asymmetric padding then a "valid" convolution; stride 1: symmetric "same".
        self.padding = ((half - 1, half, half - 1, half) if adjust else (half,) * 4) if stride == 2 else None
        self.depthwise_conv = nn.Conv2d(channels, channels, kernel_size=kernel, stride=stride,
                                        padding=0 if stride == 2 else half, groups=channels, bias=False)
        self.depthwise_norm = _norm(channels, spec)
        self.depthwise_act = _activation(spec.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.padding is not None:
            x = F.pad(x, self.padding)
        return self.depthwise_act(self.depthwise_norm(self.depthwise_conv(x)))


class SqueezeExcite(nn.Module):
    def __init__(self, spec: TowerSpec, channels: int, inner: int) -> None:
        super().__init__()
        self.reduce = nn.Conv2d(channels, inner, kernel_size=1)
        self.expand = nn.Conv2d(inner, channels, kernel_size=1)
        self.act_reduce = _activation(spec.hidden_act)
        self.act_expand = nn.Sigmoid()  # the attribute name fusion.drop_identity_gates looks for

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate = self.act_expand(self.expand(self.act_reduce(self.reduce(F.adaptive_avg_pool2d(x, 1)))))
        return x * gate


class Projection(nn.Module):
    def __init__(self, spec: TowerSpec, channels: int, out: int, residual: bool) -> None:
        super().__init__()
        self.project_conv = nn.Conv2d(channels, out, kernel_size=1, bias=False)
        self.project_bn = _norm(out, spec)
        self.residual = residual

    def forward(self, block_input: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        x = self.project_bn(self.project_conv(x))
        return x + block_input if self.residual else x


class Block(nn.Module):
    def __init__(self, spec: TowerSpec, channels: int, out: int, stride: int, expand_ratio: int, kernel: int,
                 first: bool, adjust: bool) -> None:
        super().__init__()
        expanded = channels * expand_ratio
        self.expansion = Expansion(spec, channels, expanded) if expand_ratio != 1 else None
        self.depthwise_conv = Depthwise(spec, expanded, kernel, stride, adjust)
        inner = max(1, int(channels * spec.squeeze_expansion_ratio))  # of the block's input, not its expansion
        self.squeeze_excite: nn.Module = SqueezeExcite(spec, expanded, inner)
        self.projection = Projection(spec, expanded, out, residual=stride == 1 and not first)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hidden = self.expansion(x) if self.expansion is not None else x
        hidden = self.squeeze_excite(self.depthwise_conv(hidden))
        return self.projection(x, hidden)


class Encoder(nn.Module):
    def __init__(self, spec: TowerSpec) -> None:
        super().__init__()
        blocks: list[nn.Module] = []
        out = round_filters(spec, spec.in_channels[0])
        for stage in range(len(spec.in_channels)):
            channels = round_filters(spec, spec.in_channels[stage])
            out = round_filters(spec, spec.out_channels[stage])
            for repeat in range(round_repeats(spec, spec.num_block_repeats[stage])):
                blocks.append(Block(spec, channels if repeat == 0 else out, out,
                                    spec.strides[stage] if repeat == 0 else 1, spec.expand_ratios[stage],
                                    spec.kernel_sizes[stage], first=repeat == 0,
                                    adjust=len(blocks) not in spec.depthwise_padding))
        self.blocks = nn.ModuleList(blocks)
        self.top_conv = nn.Conv2d(out, spec.hidden_dim, kernel_size=1, bias=False)
        self.top_bn = _norm(spec.hidden_dim, spec)
        self.top_activation = _activation(spec.hidden_act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.top_activation(self.top_bn(self.top_conv(x)))


class EfficientNetTower(nn.Module):
    """Pixels (B, 3, H, W) in, the head's feature map (B, hidden_dim, H/32, W/32) out."""

    def __init__(self, spec: TowerSpec) -> None:
        super().__init__()
        self.embeddings = Stem(spec)
        self.encoder = Encoder(spec)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.embeddings(pixels))
