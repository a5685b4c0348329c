"""mPLUG-Owl2 behind the backend interface: generation, the describer, the asker, qbench, Q-Align's video mode.

Two tiny checkpoints: the reference one (tests/fixtures/mplug_owl2_reference, rebuilt from its seed),
against goldens of Q-Future/Q-Align's own code (reference_video.json: its conversation template, its
greedy ``generate`` with a KV cache, its video read-out), and one with qplug's tiny byte-level tokenizer,
in which option letters and Yes/No have tokens of their own, for the describer, the asker and qbench
through the real CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
from PIL import Image  # noqa: E402

from qplug.errors import UsageError  # noqa: E402
from qplug.types import Frame  # noqa: E402
from qplug_vlm.backend import GenerationSettings  # noqa: E402
from qplug_vlm.mplug_owl2 import load_mplug_owl2, score_qalign, tiny, tokenize_prompt  # noqa: E402
from qplug_vlm.mplug_owl2.adapter import MplugOwl2Backend  # noqa: E402
from qplug_vlm.mplug_owl2.scoring import score_qalign_video  # noqa: E402
from qplug_vlm.mplug_owl2.testing import build_tiny_mplug_owl2  # noqa: E402

from .bench_scripts import load_bench  # noqa: E402
from .test_mplug_owl2 import FIXTURES, _write_checkpoint  # noqa: E402

TOLERANCE = 1e-4
ENV = dict(os.environ, QPLUG_LOAD_PLUGINS="images,vlm,reports", OMP_NUM_THREADS="1")


@pytest.fixture(scope="module")
def golden() -> tuple[dict, dict[str, np.ndarray]]:
    meta = json.loads((FIXTURES / "reference.json").read_text(encoding="utf-8"))
    video = json.loads((FIXTURES / "reference_video.json").read_text(encoding="utf-8"))
    with np.load(FIXTURES / "reference_video.npz") as arrays:
        return dict(video, reference=meta), {name: arrays[name] for name in arrays.files}


@pytest.fixture(scope="module")
def reference_backend(tmp_path_factory, golden) -> MplugOwl2Backend:
    directory = _write_checkpoint(tmp_path_factory.mktemp("mplug_ref") / "tiny", golden[0]["reference"])
    return MplugOwl2Backend(*load_mplug_owl2(directory), name=str(directory))


@pytest.fixture(scope="module")
def images() -> list[Image.Image]:
    return [Image.fromarray(array) for array in tiny.tiny_images()]


@pytest.fixture(scope="module")
def bpe_checkpoint(tmp_path_factory) -> Path:
    return build_tiny_mplug_owl2(tmp_path_factory.mktemp("mplug_bpe") / "tiny")


@pytest.fixture(scope="module")
def image_paths(tmp_path_factory, images) -> list[Path]:
    folder = tmp_path_factory.mktemp("frames")
    paths = []
    for index, image in enumerate(images):
        paths.append(folder / f"frame{index}.png")
        image.save(paths[-1])
    return paths


# ---------------------------------------------------------------------------------------------
# Prompts and generation against the reference


def test_render_is_the_reference_conversation(reference_backend, golden):
    """``render`` writes what Q-Align's ``conv_templates["mplug_owl2"]`` writes, token for token."""
    for case in golden[0]["generation"]:
        prompt = reference_backend.render(case["question"])
        assert prompt == case["prompt"]
        assert tokenize_prompt(reference_backend.tokenizer, prompt) == case["input_ids"]
    assert reference_backend.render("Rate it.", "The quality is") == "USER: <|image|>Rate it. ASSISTANT: The quality is"


@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_generation_equals_the_reference_generate(reference_backend, golden, images, use_cache):
    settings = GenerationSettings(max_new_tokens=len(golden[0]["generation"][0]["generated_ids"]))
    for case in golden[0]["generation"]:
        [ids] = reference_backend.generate_ids([images[case["image"]]], [case["prompt"]], settings, use_cache=use_cache)
        assert ids == case["generated_ids"]


def test_cached_steps_are_the_argmax_of_the_full_forward(reference_backend, golden, images):
    """Each cached greedy step picks the argmax of a full no-cache forward over prompt + tokens so far
    (the forward whose logits are tied to the reference's), and its logits agree within 1e-4."""
    model = reference_backend.model
    case = golden[0]["generation"][1]
    image = images[case["image"]]
    batch = reference_backend.prepare([image], [case["prompt"]])
    with torch.inference_mode():
        step = model(**batch, logits_to_keep=1, use_cache=True)
        generated: list[int] = []
        for _ in range(10):
            ids = torch.tensor([case["input_ids"] + generated])
            full = model(ids, pixel_values=batch["pixel_values"]).logits[0, -1]
            np.testing.assert_allclose(step.logits[0, -1].numpy(), full.numpy(), atol=TOLERANCE, rtol=0)
            token = int(full.argmax())
            assert int(step.logits[0, -1].argmax()) == token
            generated.append(token)
            step = model(torch.tensor([[token]]), past_key_values=step.cache, logits_to_keep=1, use_cache=True)
    assert generated == case["generated_ids"][:10]


def test_generation_batch_equals_single(reference_backend, images):
    """Rows of different lengths (prompts and images differ) generate what they generate alone."""
    prompts = [reference_backend.render("Rate the quality of the image."),
               reference_backend.render("How would you rate the quality of this image?", "The quality of the image is"),
               reference_backend.render("Describe the image.")]
    settings = GenerationSettings(max_new_tokens=8)
    together = reference_backend.generate_ids(images, prompts, settings)
    alone = [reference_backend.generate_ids([image], [prompt], settings)[0] for image, prompt in zip(images, prompts)]
    assert together == alone
    assert len({tuple(ids) for ids in together}) > 1


def test_generation_stops_at_the_end_token(reference_backend, images, monkeypatch):
    """A row ends at </s> (not included); the others go on."""
    model = reference_backend.model
    eos = reference_backend.tokenizer.eos_token_id
    prompt = reference_backend.render("Rate the quality of the image.")
    [free] = reference_backend.generate_ids([images[0]], [prompt], GenerationSettings(max_new_tokens=6))
    # Make the third token the end token by steering the LM head towards it after two steps.
    original = model.forward
    calls = {"n": 0}

    def forward(*args, **kwargs):
        out = original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 3:
            out.logits[0, -1, eos] = out.logits[0, -1].max() + 10
        return out

    monkeypatch.setattr(model, "forward", forward)
    [stopped] = reference_backend.generate_ids([images[0]], [prompt], GenerationSettings(max_new_tokens=6))
    assert stopped == free[:2]


def test_sampling_is_repeatable_with_a_seed(reference_backend, images):
    prompt = reference_backend.render("Rate the quality of the image.")
    settings = GenerationSettings(max_new_tokens=8, do_sample=True, temperature=1.5, top_p=0.9, seed=3)
    first = reference_backend.generate_ids([images[0]], [prompt], settings)
    assert first == reference_backend.generate_ids([images[0]], [prompt], settings)


# ---------------------------------------------------------------------------------------------
# Q-Align's video mode


def test_video_scores_equal_the_reference(reference_backend, golden, images):
    meta, arrays = golden
    backend = reference_backend
    for number, clip in enumerate(meta["videos"]):
        frames = [images[i] for i in clip["frames"]]
        [score] = score_qalign_video(backend.model, backend.tokenizer, backend.image_processor, [frames])
        assert abs(score.value - clip["score"]) < TOLERANCE
        np.testing.assert_allclose(list(score.levels.values()), clip["level_probabilities"], atol=TOLERANCE)
        batch = backend.prepare([frames], [meta["video_prompt"]])
        assert batch["input_ids"][0].tolist() == meta["video_input_ids"]
        with torch.inference_mode():
            logits = backend.model(**batch).logits
        assert logits.shape[1] == clip["sequence_length"]
        np.testing.assert_allclose(logits[0, -1].numpy(), arrays[f"video_{number}_last_logits"], atol=TOLERANCE,
                                   rtol=0)
    pair = [[images[i] for i in clip] for clip in meta["video_batch"]["clips"]]
    scored = score_qalign_video(backend.model, backend.tokenizer, backend.image_processor, pair, batch_size=2)
    np.testing.assert_allclose([s.value for s in scored], meta["video_batch"]["scores"], atol=TOLERANCE)


def test_video_of_one_frame_is_the_image_score_with_the_video_prompt(reference_backend, images):
    backend = reference_backend
    for image in images:
        [video] = score_qalign_video(backend.model, backend.tokenizer, backend.image_processor, [[image]])
        [still] = score_qalign(backend.model, backend.tokenizer, backend.image_processor, [image], medium="video")
        assert abs(video.value - still.value) < 1e-6


def test_videos_of_different_lengths_batch_like_single(reference_backend, images):
    """Left padding: clips of 3, 1 and 2 frames in one batch score as alone (the reference pads on
    the right and reads unequal clips at padding; qplug does not)."""
    backend = reference_backend
    clips = [[images[0], images[1], images[2]], [images[2]], [images[1], images[0]]]
    alone = [score_qalign_video(backend.model, backend.tokenizer, backend.image_processor, [c])[0].value for c in clips]
    together = score_qalign_video(backend.model, backend.tokenizer, backend.image_processor, clips, batch_size=3)
    np.testing.assert_allclose([s.value for s in together], alone, atol=TOLERANCE, rtol=0)
    reversed_batch = score_qalign_video(backend.model, backend.tokenizer, backend.image_processor, clips[::-1],
                                        batch_size=3)
    np.testing.assert_allclose([s.value for s in reversed_batch][::-1], alone, atol=TOLERANCE, rtol=0)
    with pytest.raises(UsageError, match="at least one frame"):
        score_qalign_video(backend.model, backend.tokenizer, backend.image_processor, [[]])


def test_qalign_scorer_scores_a_clip_as_one_video(bpe_checkpoint, images):
    from qplug_vlm import scorers

    scorer = scorers.build("qalign", model=str(bpe_checkpoint), device="cpu", dtype="float32")
    frames = [Frame.from_rgb(np.asarray(image)) for image in images]
    [clip] = scorer.score_video([frames])
    assert 1 <= clip.value <= 5 and clip.extra["frames"] == 3
    assert abs(sum(clip.levels.values()) - 1) < 1e-9
    [one] = scorer.score_video([frames[:1]])
    scorer_video = scorers.build("qalign", model=str(bpe_checkpoint), device="cpu", dtype="float32", medium="video")
    assert abs(one.value - scorer_video.score(frames[:1])[0].value) < 1e-6


# ---------------------------------------------------------------------------------------------
# The components on the shared backend


def test_components_share_one_model(bpe_checkpoint):
    from qplug_vlm import asker, describer, scorers

    options = dict(model=str(bpe_checkpoint), device="cpu", dtype="float32")
    qbench = scorers.build("qbench", **options)
    ask = asker.build(**options)
    describe = describer.build(**options)
    qalign = scorers.build("qalign", **options)
    assert qbench.backend is ask.backend is describe.backend
    assert qalign.model is ask.backend.model


def test_qbench_batch_equals_single(bpe_checkpoint, images):
    from qplug_vlm import scorers

    scorer = scorers.build("qbench", model=str(bpe_checkpoint), device="cpu", dtype="float32")
    frames = [Frame.from_rgb(np.asarray(image)) for image in images]
    single = [scorer.score([frame])[0].value for frame in frames]
    together = [s.value for s in scorer.score(frames)]
    np.testing.assert_allclose(together, single, atol=TOLERANCE, rtol=0)
    assert max(single) - min(single) > 1e-4
    assert scorer.prompt == "USER: <|image|>Rate the quality of the image. ASSISTANT: The quality of the image is"
    boosted = scorers.build("qbench", model=str(bpe_checkpoint), device="cpu", dtype="float32", synonyms=True)
    assert 0 <= boosted.score(frames[:1])[0].value <= 1


def test_asker_and_describer_batch_equal_single(bpe_checkpoint, images):
    from qplug_vlm import asker, describer

    frames = [Frame.from_rgb(np.asarray(image)) for image in images]
    ask = asker.build(model=str(bpe_checkpoint), device="cpu", dtype="float32", max_new_tokens=6)
    for choices in (["yes", "no"], ["low", "medium", "high"]):
        together = ask.ask(frames, "Is this image blurry?", choices)
        alone = [ask.ask([frame], "Is this image blurry?", choices)[0] for frame in frames]
        for a, b in zip(together, alone):
            assert a.choice == b.choice
            np.testing.assert_allclose(list(a.probabilities.values()), list(b.probabilities.values()), atol=TOLERANCE)
    free = ask.ask(frames, "How is the noise?")
    assert [a.text for a in free] == [ask.ask([f], "How is the noise?")[0].text for f in frames]
    describe = describer.build(model=str(bpe_checkpoint), device="cpu", dtype="float32", max_new_tokens=6)
    assert describe.describe(frames) == [describe.describe([frame])[0] for frame in frames]


def test_unsupported_options_are_refused(bpe_checkpoint):
    from qplug_vlm import asker, scorers

    options = dict(model=str(bpe_checkpoint), device="cpu", dtype="float32")
    with pytest.raises(UsageError, match="windows=3"):
        scorers.build("qbench", windows=3, **options)
    with pytest.raises(UsageError, match="always padded"):
        scorers.build("qbench", pad_square=False, **options)
    with pytest.raises(UsageError, match="peft adapter"):
        asker.build(adapter=str(bpe_checkpoint), **options)
    with pytest.raises(UsageError, match="windows"):
        scorers.build("qalign", windows=2, **options)


# ---------------------------------------------------------------------------------------------
# Through the real CLI


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qplug", *args], capture_output=True, text=True, env=ENV, timeout=300)


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_cli_qbench_describe_and_ask(bpe_checkpoint, image_paths, tmp_path, images):
    model = ["--model", str(bpe_checkpoint), "--device", "cpu"]
    paths = [str(p) for p in image_paths]

    scores = tmp_path / "qbench.jsonl"
    done = _run("score", *paths, "-s", "qbench", *model, "--batch-size", "4", "--out", str(scores))
    assert done.returncode == 0, done.stderr
    frames = [r for r in _records(scores) if r["type"] == "frame"]
    assert len(frames) == 3 and all(0 <= r["scores"]["qbench"] <= 1 for r in frames)
    single = tmp_path / "qbench1.jsonl"
    assert _run("score", *paths, "-s", "qbench", *model, "--batch-size", "1", "--out", str(single)).returncode == 0
    one = {r["source"]: r["scores"]["qbench"] for r in _records(single) if r["type"] == "frame"}
    for record in frames:
        assert abs(record["scores"]["qbench"] - one[record["source"]]) < TOLERANCE

    described = tmp_path / "describe.jsonl"
    done = _run("describe", *paths[:2], *model, "--option", "vlm.max_new_tokens=8", "--out", str(described))
    assert done.returncode == 0, done.stderr
    texts = [r for r in _records(described) if r["type"] == "frame"]
    assert len(texts) == 2 and all(r["descriptions"]["vlm"] for r in texts)

    asked = tmp_path / "ask.jsonl"
    done = _run("ask", *paths, "Is this image blurry?", "--choices", "yes", "no", *model, "--out", str(asked))
    assert done.returncode == 0, done.stderr
    answers = [r["answers"]["vlm"] for r in _records(asked) if r["type"] == "frame"]
    assert len(answers) == 3
    for answer in answers:
        assert answer["choice"] in ("yes", "no") and abs(sum(answer["probabilities"].values()) - 1) < 1e-9
        assert answer["probabilities"][answer["choice"]] == max(answer["probabilities"].values())

    mcq = tmp_path / "mcq.jsonl"
    done = _run("ask", paths[0], "How is the noise?", "--choices", "low", "medium", "high", *model, "--out", str(mcq))
    assert done.returncode == 0, done.stderr
    [answer] = [r["answers"]["vlm"] for r in _records(mcq) if r["type"] == "frame"]
    assert answer["choice"] in ("low", "medium", "high") and len(answer["probabilities"]) == 3


def test_a_level_scorer_on_the_backend_reads_qalign_as_the_reference(reference_backend, golden, images):
    """Q-Align's question is laid out as Q-Align asks it even through the generic level scorer (the
    server's /v1/score builds one), so both paths give the reference's scores."""
    from qplug_vlm.prompts import METHODS
    from qplug_vlm.scorers import LevelScorer

    meta = golden[0]["reference"]
    for spec in meta["cases"]:
        aspect = "aesthetics" if "aesthetics" in spec["prompt"] else "quality"
        scorer = LevelScorer(reference_backend, METHODS["qalign"], aspect=aspect)
        assert scorer.prompt == spec["prompt"]
        assert scorer.token_ids[0] == meta["level_ids"]
        [score] = scorer.score([Frame.from_rgb(np.asarray(images[spec["image"]]))])
        assert abs(score.value - spec["score"]) < TOLERANCE


def test_serve_answers_chat_and_score_on_an_mplug_owl2_checkpoint(reference_backend, golden, images):
    """The OpenAI-compatible server on an mPLUG-Owl2 model: a chat completion with logprobs after an
    assistant prefix, and /v1/score with the reference's Q-Align score."""
    import urllib.request

    from qplug_vlm import remote, serve

    app = serve.App(reference_backend, serve.Config(model_id="owl", quiet=True))
    server = serve.Server(app, "127.0.0.1", 0)
    server.start()
    spec = golden[0]["reference"]["cases"][0]
    try:
        url = remote.png_data_url(images[spec["image"]])
        body = {"model": "owl", "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 5,
                "continue_final_message": True, "add_generation_prompt": False,
                "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                                          {"type": "text", "text": "Rate the quality of the image."}]},
                             {"role": "assistant", "content": "The quality of the image is"}]}
        request = urllib.request.Request(server.url + "/v1/chat/completions", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        assert len(answer["choices"][0]["logprobs"]["content"][0]["top_logprobs"]) == 5
        request = urllib.request.Request(server.url + "/v1/score", data=json.dumps(
            {"scorer": "qalign", "images": [url]}).encode(), headers={"Content-Type": "application/json"},
            method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            served = json.loads(response.read())
    finally:
        server.stop()
    assert abs(served["results"][0]["score"] - spec["score"]) < TOLERANCE


def test_source_level_video_score_from_frames_as_they_arrive(bpe_checkpoint, images):
    """reset / score / score_source (what the pipeline calls per source): frames at 4 fps arrive in
    batches, one per second is kept, and the source's value is Q-Align's video score of those frames in
    one prompt; the frames' own scores are unchanged."""
    from qplug_vlm import scorers

    scorer = scorers.build("qalign", model=str(bpe_checkpoint), device="cpu", dtype="float32")
    arrays = [np.asarray(images[i % 3]) for i in range(10)]
    frames = [Frame.from_rgb(rgb, index=i, pts=i / 4) for i, rgb in enumerate(arrays)]  # 0, .25, ... 2.25 s
    scorer.reset()
    per_frame = scorer.score(frames[:3]) + scorer.score(frames[3:])
    clip = scorer.score_source()
    kept = [frames[0], frames[4], frames[8]]  # 0 s, 1 s, 2 s
    [expected] = scorer.score_video([kept])
    assert abs(clip.value - expected.value) < 1e-6
    assert (clip.extra["seen"], clip.extra["kept"], clip.extra["used"]) == (10, 3, 3)
    assert clip.extra["seconds"] == [0, 1, 2]
    assert [s.value for s in per_frame] == [s.value for s in scorer.score(frames)]
    scorer.reset()
    assert scorer.score_source() is None  # the next source starts empty
    # Stills have no whole-source score by default; video=True reads them as one clip.
    stills = [Frame.from_rgb(np.asarray(images[i % 3]), index=i) for i in range(8)]
    scorer.score(stills)
    assert scorer.score_source() is None
    every = scorers.build("qalign", model=str(bpe_checkpoint), device="cpu", dtype="float32", video=True)
    every.score(stills)
    # The tiny model has 512 positions: (512 - 64) // 65 = 6 frames fit, read evenly spaced.
    many = every.score_source()
    assert every.max_video_frames == 6 and (many.extra["kept"], many.extra["used"]) == (8, 6)
    off = scorers.build("qalign", model=str(bpe_checkpoint), device="cpu", dtype="float32", video=False)
    off.score(frames)
    assert off.score_source() is None
    with pytest.raises(UsageError, match="needs an mPLUG-Owl2"):
        scorers.build("qbench", model=str(bpe_checkpoint), device="cpu", dtype="float32", video=True)


def test_long_sources_keep_a_bounded_evenly_spaced_set(bpe_checkpoint, images):
    """A 40 s source at 1 fps on a model that takes 6 frames: at most 12 are ever kept (every 2nd, then
    every 4th second...), and the 6 used are spread over the whole source."""
    from qplug_vlm import scorers

    scorer = scorers.build("qalign", model=str(bpe_checkpoint), device="cpu", dtype="float32")
    small = np.asarray(images[2])
    scorer.reset()
    for second in range(40):
        scorer.add_frames([Frame.from_rgb(small, index=second, pts=float(second))])
        assert len(scorer._kept) <= 2 * scorer.max_video_frames
    clip = scorer.score_source()
    assert clip.extra["stride"] == 4 and clip.extra["kept"] == 10 and clip.extra["used"] == 6
    seconds = clip.extra["seconds"]
    assert seconds[0] == 0 and seconds[-1] == 36 and all(t % 4 == 0 for t in seconds)


def test_qplug_score_reports_the_clip_score_beside_the_frames(bpe_checkpoint, tmp_path, images):
    """Through the real CLI on a 3-second video: per-frame qalign scores and, when the core reports
    whole-source scores, the clip's Q-Align video score as pooled["qalign"]["source"]."""
    from qplug.types import SourceSummary

    if "source_scores" not in SourceSummary.__dataclass_fields__:
        pytest.skip("this core has no whole-source score channel")
    from qplug_video.binary import ffmpeg_exe

    clip = tmp_path / "clip.mp4"
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=s=160x120:r=4:d=3", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    str(clip)], check=True)
    report = tmp_path / "r.jsonl"
    env = dict(ENV, QPLUG_LOAD_PLUGINS="images,video,vlm,reports")
    done = subprocess.run([sys.executable, "-m", "qplug", "score", str(clip), "-s", "qalign", "--model",
                           str(bpe_checkpoint), "--device", "cpu", "--out", str(report)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    records = _records(report)
    frames = [r for r in records if r["type"] == "frame"]
    [source] = [r for r in records if r["type"] == "source"]
    assert len(frames) == 12
    whole = source["source_scores"]["qalign"]
    assert source["pooled"]["qalign"]["source"] == whole["value"] and 1 <= whole["value"] <= 5
    assert (whole["extra"]["seen"], whole["extra"]["kept"]) == (12, 3)
    assert abs(sum(whole["levels"].values()) - 1) < 1e-9
    # The same three frames (0, 1 and 2 s) scored as one clip from Python give the same value.
    from qplug_video.source import VideoSource
    from qplug.types import Sampling

    from qplug_vlm import scorers

    reader = VideoSource().open(str(clip), Sampling())
    try:
        decoded = [frame for frame in reader if frame.index in (0, 4, 8)]
        [expected] = scorers.build("qalign", model=str(bpe_checkpoint), device="cpu",
                                   dtype="float32").score_video([decoded])
    finally:
        reader.close()
    assert abs(expected.value - whole["value"]) < TOLERANCE
    done = subprocess.run([sys.executable, "-m", "qplug", "score", str(clip), "-s", "qalign", "--model",
                           str(bpe_checkpoint), "--device", "cpu", "--option", "qalign.video=false", "--out",
                           str(tmp_path / "off.jsonl")], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    [off] = [r for r in _records(tmp_path / "off.jsonl") if r["type"] == "source"]
    assert "qalign" not in off.get("source_scores", {}) and "source" not in off["pooled"]["qalign"]


def test_gpu_benchmark_code_path_runs_on_the_cpu_with_tiny_shapes(capsys):
    """bench/bench_vlm.py --gpu --dry-run-cpu: the mPLUG-Owl2 rows (images, then a clip in one prompt)."""
    import argparse

    bench = load_bench("bench_vlm")
    bench.run_gpu(argparse.Namespace(dry_run_cpu=True, threads=1, batches=[1], iterations=1, family=["mplug-owl2"]))
    lines = capsys.readouterr().out.strip().splitlines()
    assert "mPLUG-Owl2 layout" in lines[0] and "65 image tokens" in lines[0]
    assert [line.split()[0] for line in lines[2:4]] == ["1", "2"]
    assert "8 frames in one prompt" in lines[4] and lines[5].split()[0] == "8"
