"""Exact inference-time simplifications of convolutional towers (EfficientNet, as in qplug's default model).

At inference a batch norm is a fixed per-channel affine map, so it folds into the convolution before it;
a squeeze-excite gate whose weights are zero and whose bias saturates the sigmoid (how EfficientNet-Lite
is expressed in transformers' EfficientNet, see training/pretrained.py) multiplies by exactly 1. Both
are removed once, after loading, for a model that is only used for inference: on 2 CPU cores the
batch norms were about 15% of the tower's time and each gate costs a pooling and a full-size multiply.
"""

from __future__ import annotations

from typing import Any

#: (convolution, batch norm) attribute pairs of transformers' EfficientNet modules (embeddings, the
#: expansion / depthwise / projection layers of each block, and the head).
CONV_NORM_PAIRS = (("convolution", "batchnorm"), ("expand_conv", "expand_bn"),
                   ("depthwise_conv", "depthwise_norm"), ("project_conv", "project_bn"), ("top_conv", "top_bn"))


def fold_batch_norms(model: Any) -> int:
    """Fold each eval-mode batch norm into the convolution that feeds it. Returns how many."""
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = 0
    for module in list(model.modules()):
        for conv_name, norm_name in CONV_NORM_PAIRS:
            conv, norm = getattr(module, conv_name, None), getattr(module, norm_name, None)
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d) and not norm.training \
                    and norm.track_running_stats:
                setattr(module, conv_name, fuse_conv_bn_eval(conv, norm))
                setattr(module, norm_name, nn.Identity())
                folded += 1
    return folded


def drop_identity_gates(model: Any) -> int:
    """Replace squeeze-excite gates that always output 1 by identities. Returns how many."""
    import torch
    from torch import nn

    dropped = 0
    for module in list(model.modules()):
        gate = getattr(module, "squeeze_excite", None)
        expand = getattr(gate, "expand", None)
        if not isinstance(expand, nn.Conv2d) or expand.bias is None:
            continue
        act = getattr(gate, "act_expand", None)
        if not isinstance(act, nn.Sigmoid):
            continue
        with torch.no_grad():
            # The gate is sigmoid(expand(anything)); with zero weights that is sigmoid(bias) for every input.
            constant_one = bool((expand.weight == 0).all()) and bool((torch.sigmoid(expand.bias) == 1).all())
        if constant_one:
            module.squeeze_excite = nn.Identity()
            dropped += 1
    return dropped


def simplify_for_inference(model: Any) -> dict[str, int]:
    """Both simplifications on a model in eval mode; counts of what changed (all zero for other models)."""
    return {"batch_norms_folded": fold_batch_norms(model), "identity_gates_dropped": drop_identity_gates(model)}
