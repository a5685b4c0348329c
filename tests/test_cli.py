"""The ``qplug`` command end to end, with the real built-in plugins, ffmpeg and files on disk."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zlib
import struct

import pytest

np = pytest.importorskip("numpy")
Image = pytest.importorskip("PIL.Image")
imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")

FFMPEG = shutil.which("ffmpeg") or imageio_ffmpeg.get_ffmpeg_exe()
ENV = dict(os.environ, OMP_NUM_THREADS="1", QPLUG_LOAD_PLUGINS="images,video,qc,reports")
ENV.pop("QPLUG_DEBUG", None)


def qplug(*args, cwd=None, privileges_dropped=False):
    """Run the real CLI in a child process, as a user would."""
    command = [sys.executable, "-m", "qplug", *map(str, args)]
    if privileges_dropped and os.geteuid() == 0:
        # Root reads any file; drop the capabilities that let it, so permissions really apply.
        command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *command]
    return subprocess.run(command, capture_output=True, text=True, env=ENV, cwd=cwd, timeout=120)


def ffmpeg(*args):
    subprocess.run([FFMPEG, "-hide_banner", "-loglevel", "error", "-y", *map(str, args)], check=True, timeout=60)


def texture(width=96, height=64, seed=0):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    big = np.kron(base, np.ones((8, 8, 1), dtype=np.uint8))
    return big


def png_header_only(path, width, height):
    """A PNG that claims width x height pixels but holds none: a decompression bomb's header."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    folder = tmp_path_factory.mktemp("clip")
    path = folder / "clip.mp4"
    # 2 s of a moving test pattern, then 2.5 s of black: one black-frame event (blackdetect's 2 s minimum).
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=10:duration=2", "-f", "lavfi",
           "-i", "color=black:size=160x120:rate=10:duration=2.5", "-filter_complex", "[0:v][1:v]concat=n=2:v=1[v]",
           "-map", "[v]", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-movflags", "+faststart", path)
    return path


@pytest.fixture(scope="module")
def mixed_folder(tmp_path_factory, clip):
    """Good and bad files side by side, as a real delivery folder looks."""
    folder = tmp_path_factory.mktemp("mixed")
    Image.fromarray(texture()).save(folder / "good.png")
    Image.fromarray(texture(seed=1)).save(folder / "good.jpg", quality=90)
    Image.fromarray(np.zeros((1, 1, 3), np.uint8) + 128).save(folder / "one_pixel.png")
    shutil.copy(clip, folder / "good.mp4")
    (folder / "empty.jpg").write_bytes(b"")
    jpeg = (folder / "good.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    data = clip.read_bytes()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 3])
    (folder / "text.mp4").write_text("this is not a video\n" * 20)
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=440:duration=1", "-c:a", "aac", folder / "audio_only.mp4")
    png_header_only(folder / "bomb.png", 30000, 30000)
    locked = folder / "locked.png"
    shutil.copy(folder / "good.png", locked)
    locked.chmod(0)
    (folder / "notes.txt").write_text("not media: skipped inside a folder")
    os.chmod(folder, 0o755)
    return folder


GOOD = {"good.png", "good.jpg", "one_pixel.png", "good.mp4"}
BAD = {"empty.jpg", "truncated.jpg", "truncated.mp4", "text.mp4", "audio_only.mp4", "bomb.png", "locked.png"}


def test_mixed_folder_scores_every_good_file_and_reports_every_bad_one(mixed_folder, tmp_path):
    report = tmp_path / "out.jsonl"
    missing = mixed_folder / "missing.mp4"
    result = qplug("score", mixed_folder, missing, "--out", report, privileges_dropped=True)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    records = [json.loads(line) for line in report.read_text().splitlines()]
    scored = {os.path.basename(r["source"]) for r in records if r["type"] == "frame"}
    assert GOOD <= scored
    errors = {}
    for record in records:
        if record["type"] == "error" and record["index"] is None:
            errors.setdefault(os.path.basename(record["source"]), []).append(record["reason"])
    # truncated.mp4 may keep its first frames; it still ends with one error record.
    assert set(errors) == BAD | {"missing.mp4"}, errors
    assert all(len(reasons) == 1 and reasons[0] for reasons in errors.values()), errors
    assert "no video stream" in errors["audio_only.mp4"][0].lower()
    assert "decompression-bomb" in errors["bomb.png"][0]
    assert "permission" in errors["locked.png"][0].lower()
    assert "empty" in errors["empty.jpg"][0].lower()
    for name in BAD | {"missing.mp4"}:
        assert name in result.stderr  # one clear line per bad file on stderr too
    assert records[-1]["type"] == "run" and records[-1]["exit_code"] == 2


def test_video_report_has_pts_timecodes_and_the_black_event(clip, tmp_path):
    out = tmp_path / "r.jsonl"
    result = qplug("score", clip, "--out", out, "--out", tmp_path / "r.html", "--out", tmp_path / "r.csv",
                   "--out", tmp_path / "r.json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in out.read_text().splitlines()]
    frames = [r for r in records if r["type"] == "frame"]
    assert len(frames) == 45
    assert frames[0]["timecode"] == "00:00:00:00" and frames[12]["pts"] == pytest.approx(1.2)
    (source,) = [r for r in records if r["type"] == "source"]
    black = [e for e in source["events"] if e["scorer"] == "black"]
    assert len(black) == 1 and black[0]["start"] == pytest.approx(2.0, abs=0.11)
    assert black[0]["end"] == pytest.approx(4.5, abs=0.11)
    assert source["media"]["codec"] == "h264" and source["media"]["fps"] == pytest.approx(10)
    assert "<svg" in (tmp_path / "r.html").read_text()
    assert json.loads((tmp_path / "r.json").read_text())["sources"][0]["frames"] == 45
    assert (tmp_path / "r.csv").read_text().count("\n") == 46


def test_sampling_options_reach_the_decoder(clip, tmp_path):
    out = tmp_path / "s.jsonl"
    assert qplug("score", clip, "--fps", "2", "--start", "1", "--end", "3", "-s", "sharpness", "--out", out).returncode == 0
    frames = [json.loads(line) for line in out.read_text().splitlines() if '"frame"' in line]
    assert [round(f["pts"], 2) for f in frames] == [1.0, 1.5, 2.0, 2.5]
    assert qplug("score", clip, "--every", "10", "--max-frames", "3", "-s", "sharpness", "--out", out).returncode == 0
    frames = [json.loads(line) for line in out.read_text().splitlines() if '"frame"' in line]
    assert [f["index"] for f in frames] == [0, 10, 20]


def test_gates_set_the_exit_code(clip, tmp_path):
    args = ["score", clip, "-s", "black", "-q", "--format", "json"]
    assert qplug(*args, "--fail-over", "black.max=0.98").returncode == 1
    assert qplug(*args, "--fail-over", "black.p10=0.98").returncode == 0
    passed = qplug(*args, "--fail-under", "black.mean=0")
    assert passed.returncode == 0 and json.loads(passed.stdout)["sources"][0]["gate_failures"] == []


def test_resume_continues_a_killed_run(clip, tmp_path):
    full = tmp_path / "full.jsonl"
    assert qplug("score", clip, "-s", "sharpness", "-s", "black", "--out", full, "-q").returncode == 0
    lines = full.read_text().splitlines()
    partial = tmp_path / "partial.jsonl"
    partial.write_text("\n".join(lines[:20]) + "\n" + lines[20][:15])  # as if killed while writing
    assert qplug("score", clip, "-s", "sharpness", "-s", "black", "--out", partial, "--resume", "-q").returncode == 0
    resumed = [json.loads(line) for line in partial.read_text().splitlines()]
    frames = [r for r in resumed if r["type"] == "frame"]
    assert sorted(f["index"] for f in frames) == list(range(45))
    source = [r for r in resumed if r["type"] == "source"][-1]
    original = [json.loads(line) for line in lines if '"type":"source"' in line.replace(" ", "")][0]
    assert source["pooled"]["sharpness"]["mean"] == pytest.approx(original["pooled"]["sharpness"]["mean"], rel=1e-6)
    assert [e["start"] for e in source["events"]] == [e["start"] for e in original["events"]]
    again = qplug("score", clip, "-s", "sharpness", "--out", partial, "--resume", "-q")
    assert again.returncode == 0 and partial.read_text().count('"type":"frame"') == 45  # finished: nothing redone


def test_user_errors_are_one_line_without_traceback(tmp_path):
    cases = [
        (["score", tmp_path, "--scorer", "nope"], "unknown scorer 'nope'"),
        (["score", tmp_path, "--fail-under", "sharpness"], "NAME=VALUE"),
        (["score", tmp_path, "--start", "5", "--end", "2"], "end must be after start"),
        (["score", tmp_path, "--out", tmp_path / "no" / "such" / "dir.jsonl"], "does not exist"),
        (["score", tmp_path, "--resume"], "--resume needs a report it can append to"),
        (["score", tmp_path, "--format", "pdf"], "unknown format 'pdf'"),
    ]
    for args, message in cases:
        result = qplug(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_listing_commands(tmp_path):
    plugins = json.loads(qplug("plugins").stdout)
    names = {p["name"]: p for p in plugins}
    assert {"images", "video", "qc", "reports"} <= set(names)
    assert "sharpness" in names["qc"]["registers"]["scorers"]
    scorers = json.loads(qplug("scorers", "--json").stdout)
    assert all({"name", "range", "higher_is_better"} <= set(s) for s in scorers)
    assert ".mp4" in qplug("sources").stdout and "jsonl" in qplug("formats").stdout


def test_help_does_not_import_heavy_modules():
    code = ("import sys; from qplug.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'cv2', 'numpy', 'ffmpeg', 'PIL', 'transformers') if m in sys.modules]\n"
            "print('HEAVY:' + ','.join(heavy))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ENV, timeout=60)
    assert result.stdout.strip().splitlines()[-1] == "HEAVY:", result.stdout


def test_writer_options_are_settable_from_the_command_line(clip, tmp_path):
    out = tmp_path / "r.html"
    done = qplug("score", clip, "-s", "sharpness", "--out", out, "--option", "html.thumbnails=0", "-q")
    assert done.returncode == 0, done.stderr
    assert "<img" not in out.read_text()
    with_thumbs = tmp_path / "t.html"
    assert qplug("score", clip, "-s", "sharpness", "--out", with_thumbs, "-q").returncode == 0
    assert "<img" in with_thumbs.read_text()
    unused = qplug("score", clip, "-s", "sharpness", "--out", tmp_path / "r.jsonl", "--option", "html.thumbnails=0")
    assert unused.returncode == 2 and "report writer called 'html'" in unused.stderr


def test_inputs_from_a_list_file_or_stdin(tmp_path):
    images = []
    for i, name in enumerate(["a.png", "b c.png", "d.png"]):
        Image.fromarray(texture(seed=i)).save(tmp_path / name)
        images.append(str(tmp_path / name))
    listing = tmp_path / "inputs.txt"
    listing.write_text("\n".join(images[1:]) + "\n\n")
    out = tmp_path / "r.jsonl"
    done = qplug("score", images[0], "--from-list", listing, "-s", "sharpness", "--out", out, "-q")
    assert done.returncode == 0, done.stderr
    assert {json.loads(line)["source"] for line in out.read_text().splitlines() if '"frame"' in line} == set(images)
    piped = subprocess.run([sys.executable, "-m", "qplug", "score", "--from-list", "-", "-s", "sharpness", "-q"],
                           input="\n".join(images), capture_output=True, text=True, env=ENV, timeout=120)
    assert piped.returncode == 0 and piped.stdout.count('"type":"frame"') == 3
    nothing = qplug("score", "-s", "sharpness")
    assert nothing.returncode == 2 and "no input" in nothing.stderr


def test_shards_are_disjoint_and_cover_every_input(tmp_path):
    for i in range(12):
        Image.fromarray(texture(32, 24, seed=i)).save(tmp_path / f"{i:02d}.png")
    seen = []
    for index in range(3):
        out = tmp_path / f"shard{index}.jsonl"
        done = qplug("score", tmp_path, "--shard", f"{index}/3", "-s", "sharpness", "--out", out, "-q")
        assert done.returncode == 0, done.stderr
        seen.append({json.loads(line)["source"] for line in out.read_text().splitlines() if '"frame"' in line})
    assert sum(len(s) for s in seen) == 12 and len(set().union(*seen)) == 12
    bad = qplug("score", tmp_path, "--shard", "3/3")
    assert bad.returncode == 2 and "0 <= I < N" in bad.stderr


def test_fail_on_event_sets_exit_code_1(clip):
    failing = qplug("score", clip, "-s", "black", "--fail-on-event", "black=2")
    assert failing.returncode == 1 and "FAIL black event (at least 2 s)" in failing.stderr
    assert qplug("score", clip, "-s", "black", "--fail-on-event", "black=3").returncode == 0
    assert qplug("score", clip, "-s", "black", "--fail-on-event", "decode_gap").returncode == 0
    typo = qplug("score", clip, "-s", "black", "--fail-on-event", "blak")
    assert typo.returncode == 2 and "known: black, decode_gap" in typo.stderr
