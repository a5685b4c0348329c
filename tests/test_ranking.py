"""The ranking objective (qplug_training.ranking) and the severity ladders it reads (corpus.ladders).

The ladders are built by the real builder from synthetic photos; the objective runs real forward and
backward passes of a tiny random LLaVA, and its score is checked against qplug's own qalign scorer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from qplug_training.corpus import ladders as ladder_cli
from qplug_training.recipe import RankingSection, RecipeError, load_recipe
from qplug_training.ranking import (LadderError, RankingObjective, Rung, draw_pairs, fidelity_loss, from_level,
                                    load_ladders, pair_probability)
from tests.test_corpus import _make_photo_dir

torch.set_num_threads(1)
TYPES = "gaussian_blur,desaturation,jpeg"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ladder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ladders")
    src = _make_photo_dir(root)
    out = root / "ladders"
    assert ladder_cli.main(["--photos", str(src), "--out", str(out), "--types", TYPES, "--workers", "1"]) == 0
    return out


def _rows(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def test_ladders_cover_training_photos_only_and_resume(ladder_dir: Path, tmp_path: Path) -> None:
    rows = _rows(ladder_dir)
    # One crop of the one training photo: pristine + 3 types x 5 severities; the validation photo never enters.
    assert len(rows) == 1 + 3 * 5
    assert {r["photo"] for r in rows} == {"synth0"} and {r["split"] for r in rows} == {"train"}
    for r in rows:
        assert (ladder_dir / r["image"]).is_file() and r["image"].startswith("ladders/images/")
    by_type: dict[str, list[dict]] = {}
    for r in rows:
        if r["eval"]["type"]:
            by_type.setdefault(r["eval"]["type"], []).append(r)
    for kind, members in by_type.items():
        members.sort(key=lambda r: r["eval"]["severity_level"])
        assert [r["eval"]["severity_level"] for r in members] == [1, 2, 3, 4, 5]
        mos = [r["pseudo_mos"] for r in members]
        assert mos == sorted(mos, reverse=True), (kind, mos)  # severity is the only thing that changes
    stamps = {p: p.stat().st_mtime_ns for p in ladder_dir.rglob("*.png")}
    args = ["--photos", str(ladder_dir.parent / "src"), "--out", str(ladder_dir), "--types", TYPES, "--workers", "1"]
    assert ladder_cli.main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in ladder_dir.rglob("*.png")} == stamps  # nothing rebuilt
    assert ladder_cli.main(args[:-4] + ["--types", "jpeg", "--workers", "1"]) == 2  # other settings refused


def test_reserved_photo_packages_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    src = _make_photo_dir(tmp_path)
    manifest = json.loads((src / "manifest.json").read_text())
    manifest["photos"][0]["package"] = "digikam-data"
    (src / "manifest.json").write_text(json.dumps(manifest))
    assert ladder_cli.main(["--photos", str(src), "--out", str(tmp_path / "out")]) == 2
    assert "refused" in capsys.readouterr().err


def test_load_ladders_puts_pristine_first_and_drops_unchanged(ladder_dir: Path, tmp_path: Path) -> None:
    ladders = load_ladders(ladder_dir / "metadata.jsonl")
    assert len(ladders) == 3
    for ladder in ladders:
        assert [r.level for r in ladder] == [0, 1, 2, 3, 4, 5] and ladder[0].mos == 5.0
        assert all(Path(r.image).is_file() for r in ladder)
    # A ladder whose strongest version is unchanged (desaturating a grey crop) has nothing to order.
    rows = _rows(ladder_dir)
    for r in rows:
        if r["eval"]["type"] == "desaturation":
            r["measures"]["distortion"] = 0.0
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    kept = load_ladders(tmp_path / "metadata.jsonl", image_root=ladder_dir)
    assert len(kept) == 2 and all(Path(r.image).is_file() for ladder in kept for r in ladder)
    (tmp_path / "bad.jsonl").write_text(json.dumps({"id": "x", "image": "a.png", "pseudo_mos": 4}) + "\n")
    with pytest.raises(LadderError, match="bad.jsonl:1: not a ladder line"):
        load_ladders(tmp_path / "bad.jsonl")
    with pytest.raises(LadderError, match="cannot read ladders"):
        load_ladders(tmp_path / "missing.jsonl")


def test_pairs_are_ordered_by_label_and_a_function_of_the_step() -> None:
    ladder = [Rung(f"/x/{i}.png", i, mos) for i, mos in enumerate((5.0, 4.6, 4.2, 3.1, 2.0, 1.5))]
    ladders = [ladder, ladder[:1] + ladder[3:]]
    first = draw_pairs(ladders, 32, seed=3, step=10)
    assert first == draw_pairs(ladders, 32, seed=3, step=10)  # a resumed run draws the same pairs
    assert first != draw_pairs(ladders, 32, seed=3, step=11)
    assert first != draw_pairs(ladders, 32, seed=3, step=10, process=1)  # each process its own pairs
    assert all(p.better.mos > p.worse.mos and p.better.level < p.worse.level for p in first)
    assert {p.mirror for p in first} == {True, False}


def test_lowest_level_ranks_distorted_versions_only() -> None:
    ladder = [Rung(f"/x/{i}.png", i, mos) for i, mos in enumerate((5.0, 4.6, 4.2, 3.1, 2.0, 1.5))]
    short = [ladder[0], ladder[5]]  # pristine and one severity: nothing left to rank without the pristine
    assert from_level([ladder, short], 0) == [ladder, short]
    kept = from_level([ladder, short], 1)
    assert kept == [ladder[1:]]
    pairs = draw_pairs(kept, 64, seed=1, step=0)
    assert min(p.better.level for p in pairs) == 1 and all(p.better.level < p.worse.level for p in pairs)
    with pytest.raises(LadderError, match="severity 5 or above"):
        from_level([ladder], 5)


def test_fidelity_loss_is_zero_at_the_labels_margin_and_pulls_towards_it() -> None:
    sigma = 0.3
    gap = torch.tensor([0.2, 1.0, 2.5])
    label = pair_probability(gap, sigma)
    assert torch.allclose(pair_probability(-gap, sigma), 1 - label)
    assert float(label[0]) == pytest.approx(0.6813, abs=1e-3)  # Phi(0.2 / (sqrt 2 * 0.3))
    assert float(fidelity_loss(label, label)) == pytest.approx(0.0, abs=1e-3)
    margin = torch.zeros(3, requires_grad=True)  # the model cannot tell the versions apart yet
    loss = fidelity_loss(pair_probability(margin, sigma), label)
    loss.backward()
    assert float(loss.detach()) > 0.05 and bool((margin.grad < 0).all())  # descending widens every margin
    assert float(fidelity_loss(pair_probability(-gap, sigma), label)) > float(loss.detach())  # reversed order costs most


def test_recipe_section_is_checked() -> None:
    recipe = load_recipe(REPO / "training/recipes/tiny_cpu.toml")
    assert recipe.ranking == RankingSection() and not recipe.ranking.ladders  # off unless asked for
    for override, message in (("ranking.pairs_per_step=0", "pairs_per_step"), ("ranking.weight=0", "weight"),
                              ("ranking.sigma=-1", "sigma"), ("ranking.anchor=-0.1", "anchor"),
                              ("ranking.lowest_level=5", "lowest_level"), ("ranking.lowest_level=-1", "lowest_level"),
                              ("ranking.hold_level=-1", "hold_level")):
        with pytest.raises(RecipeError, match=message):
            load_recipe(REPO / "training/recipes/tiny_cpu.toml", ["ranking.ladders=x", override])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory):
    from qplug_vlm.backend import load_backend
    from qplug_vlm.testing import build_tiny_llava

    directory = build_tiny_llava(tmp_path_factory.mktemp("rank") / "llava")
    return load_backend(model=str(directory), device="cpu", dtype="float32")


def _objective(tiny, ladder_dir: Path, pairs: int = 6, anchor: float = 0.0,
               hold_level: float = 0.0) -> RankingObjective:
    from PIL import Image, ImageOps

    def load(path: str, mirror: bool) -> Image.Image:
        with Image.open(path) as im:
            image = im.convert("RGB")
        return ImageOps.mirror(image) if mirror else image

    section = RankingSection(ladders=str(ladder_dir), pairs_per_step=pairs, anchor=anchor, hold_level=hold_level)
    return RankingObjective(section, tiny.model, tiny.processor, load, seed=0)


def test_objective_scores_exactly_what_the_qalign_scorer_reports(tiny, ladder_dir: Path) -> None:
    from PIL import Image

    from qplug_vlm.prompts import method
    from qplug_vlm.scorers import LevelScorer

    side = tiny.processor.tokenizer.padding_side
    objective = _objective(tiny, ladder_dir)
    assert tiny.processor.tokenizer.padding_side == side  # training's padding side is left as it was
    scorer = LevelScorer(tiny, method("qalign"), pad_square=False, image_max_side=None)
    assert objective.prompt == scorer.prompt and objective.token_ids == scorer.token_ids[0]
    batch, _ = objective.inputs(step=0)
    with torch.inference_mode():
        ours = objective.scores(tiny.model(**batch, use_cache=False).logits[:, -1, :])
    pairs = draw_pairs(objective.ladders, 6, seed=0, step=0)
    paths = [p.better.image for p in pairs] + [p.worse.image for p in pairs]
    mirrors = [p.mirror for p in pairs] * 2
    images = []
    for path, mirror in zip(paths, mirrors):
        with Image.open(path) as im:
            image = im.convert("RGB")
        images.append(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT) if mirror else image)
    theirs = [value for value, _, _ in scorer._score_images(images)]
    assert np.allclose(ours.numpy(), theirs, atol=1e-4)


def test_a_step_on_the_objective_lowers_it(tiny, ladder_dir: Path) -> None:
    import copy

    model = copy.deepcopy(tiny.model).train()
    objective = _objective(tiny, ladder_dir, pairs=8)
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.05)
    before = objective.loss(model, step=5, process=0, to=lambda v: v)
    before.backward()
    optimizer.step()
    with torch.no_grad():
        after = objective.loss(model, step=5, process=0, to=lambda v: v)
    assert float(after) < float(before.detach())


def test_training_with_the_objective_logs_it_and_resumes_exactly(tmp_path: Path, ladder_dir: Path) -> None:
    from qplug_vlm.testing import build_tiny_llava

    from qplug_training.synthetic import write_dataset
    from qplug_training.train import train

    base = build_tiny_llava(tmp_path / "base")
    data = write_dataset(tmp_path / "data", count=8, size=40, seed=3)
    common = [f"model.path={base}", "train.max_steps=5", "train.save_every=0", "train.per_device_batch_size=2",
              "train.gradient_accumulation_steps=2", "export.merge=false", "image.hflip=0.5", "data.synthetic=0",
              f"data.image_root={tmp_path / 'data' / 'images'}", f'data.sources=[{{path="{data}"}}]',
              f"ranking.ladders={ladder_dir}", "ranking.pairs_per_step=3"]

    def recipe(out: Path, *extra: str):
        return load_recipe(REPO / "training/recipes/tiny_cpu.toml", [f"run.output_dir={out}", *common, *extra])

    whole = train(recipe(tmp_path / "whole"), echo=False)
    log = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert [e["step"] for e in log] == [1, 2, 3, 4, 5] and all(0 < e["rank_loss"] < 1 for e in log)
    plain = train(recipe(tmp_path / "plain", "ranking.ladders="), echo=False)
    assert plain.losses[5] != pytest.approx(whole.losses[5], abs=1e-6)  # the objective changes the weights
    cut = train(recipe(tmp_path / "cut", "train.stop_after=2"), echo=False)
    assert cut.stopped_early
    resumed = train(recipe(tmp_path / "cut"), resume=True, echo=False)
    for step in (3, 4, 5):
        assert resumed.losses[step] == pytest.approx(whole.losses[step], abs=1e-6)
    ranks = [json.loads(line)["rank_loss"] for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert ranks == pytest.approx([e["rank_loss"] for e in log], abs=1e-6)
    with pytest.raises(RecipeError, match="no ladder"):
        empty = tmp_path / "empty"
        empty.mkdir()
        (empty / "metadata.jsonl").write_text("")
        train(recipe(tmp_path / "none", f"ranking.ladders={empty}"), echo=False)


def test_the_v13_recipe_is_v12_plus_the_objective_alone() -> None:
    v12, v13 = (load_recipe(REPO / f"training/recipes/qplug_default_{v}.toml") for v in ("v12", "v13"))
    assert v13.ranking.ladders and not v12.ranking.ladders
    assert v13.run.output_dir != v12.run.output_dir
    same = []
    for recipe in (v12, v13):
        d = recipe.to_dict()
        for key in ("source", "ranking"):
            d.pop(key)
        d["run"] = {"seed": d["run"]["seed"]}  # same seed: same batches and mirror flips
        same.append(d)
    assert same[0] == same[1]


def _added_by(tiny, ladder_dir: Path, step: int, **term: float) -> tuple[float, "torch.Tensor", "torch.Tensor"]:
    """What a level term (``anchor=`` or ``hold_level=``) adds to the step's loss, with the step's
    scores and labels."""
    plain, with_term = _objective(tiny, ladder_dir), _objective(tiny, ladder_dir, **term)
    with torch.no_grad():
        base = plain.loss(tiny.model, step=step, process=0, to=lambda v: v)
        total = with_term.loss(tiny.model, step=step, process=0, to=lambda v: v)
        batch, mos = plain.inputs(step=step)
        values = plain.scores(tiny.model(**batch, use_cache=False).logits[:, -1, :])
    return float(total - base), values, mos


def test_the_anchor_adds_the_squared_error_to_each_images_label(tiny, ladder_dir: Path) -> None:
    added, values, mos = _added_by(tiny, ladder_dir, step=2, anchor=0.5)
    pairs = draw_pairs(_objective(tiny, ladder_dir).ladders, 6, seed=0, step=2)
    assert mos.tolist() == pytest.approx([p.better.mos for p in pairs] + [p.worse.mos for p in pairs])
    assert added == pytest.approx(0.5 * float(((values - mos) ** 2).mean()), rel=1e-4)
    assert added > 0.01  # a random model is far from the labels


def _same_run_but_ranking(base, other, *keys: str) -> bool:
    """Two recipes equal but for these ``[ranking]`` keys, their output folders and source notes
    (same seed: same batches and mirror flips)."""
    a, b = base.to_dict(), other.to_dict()
    for d in (a, b):
        d.pop("source")
        for key in keys:
            d["ranking"].pop(key)
        d["run"] = {"seed": d["run"]["seed"]}
    return a == b


def test_the_v14_recipe_is_v13_plus_the_anchor_alone() -> None:
    v13, v14 = (load_recipe(REPO / f"training/recipes/qplug_default_{v}.toml") for v in ("v13", "v14"))
    assert (v13.ranking.anchor, v14.ranking.anchor) == (0.0, 0.5)
    assert _same_run_but_ranking(v13, v14, "anchor")


def test_the_v15_recipe_is_v13_with_distorted_pairs_at_a_lower_weight() -> None:
    v13, v15 = (load_recipe(REPO / f"training/recipes/qplug_default_{v}.toml") for v in ("v13", "v15"))
    assert (v13.ranking.lowest_level, v15.ranking.lowest_level) == (0, 1)
    assert (v13.ranking.weight, v15.ranking.weight) == (1.0, 0.3)
    assert _same_run_but_ranking(v13, v15, "lowest_level", "weight")


def test_hold_level_adds_the_square_of_the_mean_residual_only(tiny, ladder_dir: Path) -> None:
    added, values, mos = _added_by(tiny, ladder_dir, step=3, hold_level=2.0)
    residual = values - mos
    assert added == pytest.approx(2.0 * float(residual.mean() ** 2), rel=1e-4)
    # unlike the anchor, images above and below their labels cancel: only the level is held
    assert float(residual.mean() ** 2) < float((residual ** 2).mean())


def test_the_v16_recipe_is_v13_plus_the_held_level_alone() -> None:
    v13, v16 = (load_recipe(REPO / f"training/recipes/qplug_default_{v}.toml") for v in ("v13", "v16"))
    assert (v13.ranking.hold_level, v16.ranking.hold_level) == (0.0, 0.1)
    assert _same_run_but_ranking(v13, v16, "hold_level")
