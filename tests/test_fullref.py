"""Full-reference scoring: --reference, frame pairing by time, psnr/ssim/vmaf against ffmpeg's own filters."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .test_cli import ENV, ffmpeg, qplug

FR_ENV = dict(ENV, QPLUG_LOAD_PLUGINS="images,video,qc,reports,fullref")
SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "pan.mp4"


def fr(*args):
    return subprocess.run([sys.executable, "-m", "qplug", *map(str, args)],
                          capture_output=True, text=True, env=FR_ENV, timeout=300)


def frames(path: Path) -> dict[int, dict]:
    return {r["index"]: r["scores"] for r in map(json.loads, path.read_text().splitlines()) if r["type"] == "frame"}


@pytest.fixture(scope="module")
def ladder(tmp_path_factory):
    """A real photo pan (the sample clip's first 2 s) as the master, and x264 encodes at CRF 18, 33, 48."""
    folder = tmp_path_factory.mktemp("ladder")
    master = folder / "master.mp4"
    ffmpeg("-i", SAMPLE, "-t", "2", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", master)
    rungs = {}
    for crf in (18, 33, 48):
        rungs[crf] = folder / f"crf{crf}.mp4"
        ffmpeg("-i", master, "-c:v", "libx264", "-crf", str(crf), "-pix_fmt", "yuv420p", rungs[crf])
    return master, rungs


def ffmpeg_log(graph: str, distorted: Path, reference: Path) -> str:
    from qplug_video.binary import ffmpeg_exe

    exe = ffmpeg_exe()
    done = subprocess.run([exe, "-hide_banner", "-nostdin", "-i", str(distorted), "-i", str(reference),
                           "-lavfi", graph, "-f", "null", "-"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_vmaf_equals_ffmpegs_libvmaf_and_ranks_the_ladder(ladder, tmp_path):
    master, rungs = ladder
    means = {}
    for crf, encode in rungs.items():
        out = tmp_path / f"{crf}.jsonl"
        done = fr("score", encode, "--reference", master, "-s", "vmaf", "--out", out, "-q")
        assert done.returncode == 0, done.stderr
        ours = frames(out)
        log = tmp_path / f"{crf}.vmaf.json"
        ffmpeg_log(f"[0:v][1:v]libvmaf=log_fmt=json:log_path={log}", encode, master)
        theirs = {f["frameNum"]: f["metrics"]["vmaf"] for f in json.loads(log.read_text())["frames"]}
        assert ours.keys() == theirs.keys() and len(ours) == 50
        assert max(abs(ours[i]["vmaf"] - theirs[i]) for i in ours) < 0.1
        means[crf] = sum(v["vmaf"] for v in ours.values()) / len(ours)
    assert means[18] > means[33] > means[48]


def test_psnr_equals_ffmpegs_psnr_filter(ladder, tmp_path):
    master, rungs = ladder
    encode = rungs[33]
    out = tmp_path / "psnr.jsonl"
    done = fr("score", encode, "--reference", master, "-s", "psnr", "-s", "psnr_yuv", "-s", "ssim", "--out", out, "-q")
    assert done.returncode == 0, done.stderr
    ours = frames(out)
    stats = tmp_path / "psnr.log"
    ffmpeg_log(f"[0:v][1:v]psnr=stats_file={stats}", encode, master)
    theirs = {}
    for line in stats.read_text().splitlines():
        fields = dict(re.findall(r"(\w+):(\S+)", line))
        theirs[int(fields["n"]) - 1] = (float(fields["psnr_y"]), float(fields["psnr_avg"]))
    assert ours.keys() == theirs.keys()
    assert max(abs(ours[i]["psnr"] - theirs[i][0]) for i in ours) < 0.01
    assert max(abs(ours[i]["psnr_yuv"] - theirs[i][1]) for i in ours) < 0.01
    assert all(0.5 < v["ssim"] < 1.0 for v in ours.values())
    identical = tmp_path / "same.jsonl"
    assert fr("score", master, "--reference", master, "-s", "psnr", "-s", "ssim", "--out", identical, "-q").returncode == 0
    assert {v["psnr"] for v in frames(identical).values()} == {100.0}
    assert all(v["ssim"] == pytest.approx(1.0) for v in frames(identical).values())


def test_a_template_maps_each_input_to_its_master(ladder, tmp_path):
    master, rungs = ladder
    masters = tmp_path / "masters"
    encodes = tmp_path / "encodes"
    masters.mkdir()
    encodes.mkdir()
    for crf, encode in rungs.items():
        (masters / f"show{crf}.mp4").write_bytes(master.read_bytes())
        (encodes / f"show{crf}.mp4").write_bytes(encode.read_bytes())
    (encodes / "orphan.mp4").write_bytes(rungs[18].read_bytes())  # no master: reported, others scored
    out = tmp_path / "r.jsonl"
    done = fr("score", encodes, "--reference", f"{masters}/{{stem}}.mp4", "-s", "psnr", "-s", "sharpness", "--out", out)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert re.search(r"orphan\.mp4: reference .*orphan\.mp4: file not found", done.stderr)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    pooled = {Path(r["source"]).name: r["pooled"] for r in records if r["type"] == "source"}
    assert pooled["show18.mp4"]["psnr"]["mean"] > pooled["show33.mp4"]["psnr"]["mean"] > pooled["show48.mp4"]["psnr"]["mean"]
    assert pooled["orphan.mp4"]["sharpness"]["mean"] is not None  # the other scorers still ran
    bad = fr("score", encodes, "--reference", f"{masters}/{{basename}}.mp4", "-s", "psnr")
    assert bad.returncode == 2 and "unknown field(s) {basename}" in bad.stderr


def test_reference_problems_are_one_clear_line_each(ladder, tmp_path):
    master, rungs = ladder
    encode = rungs[18]
    short = tmp_path / "short.mp4"
    ffmpeg("-i", master, "-t", "1", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", short)
    other_rate = tmp_path / "rate.mp4"
    ffmpeg("-i", master, "-r", "10", "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv420p", other_rate)
    smaller = tmp_path / "small.mp4"
    ffmpeg("-i", encode, "-vf", "scale=iw/2:ih/2", "-c:v", "libx264", "-crf", "18", "-pix_fmt", "yuv420p", smaller)
    audio = tmp_path / "audio.mp4"
    ffmpeg("-f", "lavfi", "-i", "sine=duration=2", "-c:a", "aac", audio)
    cases = [
        (encode, short, ["psnr"], 2, "ends before this input"),
        (encode, short, ["vmaf"], 2, "has no reference"),
        (encode, tmp_path / "missing.mp4", ["psnr"], 2, "file not found"),
        (encode, audio, ["psnr"], 2, "reference"),
        (encode, other_rate, ["psnr"], 0, None),
        (smaller, master, ["psnr", "vmaf"], 0, None),
    ]
    for distorted, reference, scorers, code, message in cases:
        args = sum((["-s", s] for s in scorers), [])
        out = tmp_path / "case.jsonl"
        done = fr("score", distorted, "--reference", reference, *args, "--out", out)
        assert done.returncode == code, (reference, done.stderr)
        assert "Traceback" not in done.stderr
        if message:
            assert message in done.stderr, done.stderr
    # A different rate or size is scored, and said.
    out = tmp_path / "rate.jsonl"
    assert fr("score", encode, "--reference", other_rate, "-s", "psnr", "--out", out, "-q").returncode == 0
    (source,) = [json.loads(line) for line in out.read_text().splitlines() if '"type":"source"' in line]
    assert any("paired by presentation time" in w for w in source["media"]["warnings"])
    scores = frames(out)
    assert len(scores) == 50 and all(v["psnr"] is not None for v in scores.values())


def test_full_reference_scorers_need_a_reference_and_vice_versa(ladder):
    master, rungs = ladder
    alone = fr("score", rungs[18], "-s", "psnr")
    assert alone.returncode == 2 and "give --reference" in alone.stderr
    useless = fr("score", rungs[18], "--reference", master, "-s", "sharpness")
    assert useless.returncode == 2 and "none runs here" in useless.stderr


# -- the plugin kit's contract, on the built-in full-reference scorers -------------------------------

import qplug_fullref  # noqa: E402
from qplug.testing.conformance import ScorerConformance  # noqa: E402


class TestPsnrConformance(ScorerConformance):
    plugin = qplug_fullref
    scorer_name = "psnr"


class TestPsnrYuvConformance(ScorerConformance):
    plugin = qplug_fullref
    scorer_name = "psnr_yuv"


class TestSsimConformance(ScorerConformance):
    plugin = qplug_fullref
    scorer_name = "ssim"
