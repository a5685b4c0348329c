"""Fault injection: what a QC farm and an attacker do to a run, and what must survive it.

Every test drives the real ``qplug`` command (ffmpeg, files, signals, locks) and checks the same
promises: no traceback, the right exit code, every readable frame scored or reported, and no file
other than the ``--out`` targets changed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .test_cli import ENV, ffmpeg, qplug

fcntl = pytest.importorskip("fcntl")

SCORERS = ["-s", "sharpness", "-s", "black", "-s", "frozen"]


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory):
    """1,500 small frames: long enough to signal a run in the middle, short enough to score in seconds."""
    path = tmp_path_factory.mktemp("long") / "long.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=25:duration=60", "-c:v", "libx264", "-g", "50",
           "-pix_fmt", "yuv420p", path)
    return path


@pytest.fixture(scope="module")
def short_clip(tmp_path_factory):
    path = tmp_path_factory.mktemp("short") / "short.mp4"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=96x64:rate=10:duration=2", "-c:v", "libx264",
           "-pix_fmt", "yuv420p", path)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def start(*args, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "qplug", *map(str, args)], env=env or ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_frames(path: Path, count: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b'"type":"frame"') >= count:
            return
        if proc.poll() is not None:
            return
        time.sleep(0.02)
    raise AssertionError(f"no {count} frames in {path} after {timeout} s")


# -- inputs are never outputs -------------------------------------------------------------------


def test_an_output_that_is_an_input_is_refused_before_anything_is_written(short_clip, tmp_path):
    clip = tmp_path / "v.mp4"
    clip.write_bytes(short_clip.read_bytes())
    before = digest(clip)
    (tmp_path / "link.jsonl").symlink_to(clip)
    os.link(clip, tmp_path / "hard.jsonl")
    for out in (clip, tmp_path / "link.jsonl", tmp_path / "hard.jsonl"):
        done = qplug("score", clip, "-s", "sharpness", "--out", out, "--format", "jsonl")
        assert done.returncode == 2 and "is the input" in done.stderr and "Traceback" not in done.stderr
        assert digest(clip) == before
    # Found inside a folder given as input, too.
    done = qplug("score", tmp_path, "-s", "sharpness", "--out", clip, "--format", "jsonl")
    assert done.returncode == 2 and "is the input" in done.stderr and digest(clip) == before


def test_an_out_with_an_unknown_extension_is_refused(short_clip, tmp_path):
    done = qplug("score", short_clip, "-s", "sharpness", "--out", tmp_path / "x.txt")
    assert done.returncode == 2 and "no report format has this extension" in done.stderr
    assert not (tmp_path / "x.txt").exists()
    done = qplug("score", short_clip, "-s", "sharpness", "--out", tmp_path / "x.txt", "--format", "csv")
    assert done.returncode == 0 and (tmp_path / "x.txt").read_text().startswith("source,")


# -- one writer per report ----------------------------------------------------------------------


def test_a_report_being_written_by_another_process_is_refused_naming_it(short_clip, tmp_path):
    out = tmp_path / "r.jsonl"
    out.write_text("earlier\n")
    with open(out, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        done = qplug("score", short_clip, "-s", "sharpness", "--out", out)
    assert done.returncode == 2 and "another qplug process" in done.stderr
    assert f"pid {os.getpid()}" in done.stderr
    assert out.read_text() == "earlier\n"


def test_two_processes_on_one_out_never_interleave(long_clip, tmp_path):
    out = tmp_path / "shared.jsonl"
    first = start("score", long_clip, *SCORERS, "--out", out, "-q")
    wait_for_frames(out, 1, first)
    second = start("score", long_clip, *SCORERS, "--out", out, "-q")
    codes = sorted([first.wait(timeout=120), second.wait(timeout=120)])
    assert codes == [0, 2]
    assert "another qplug process" in second.stderr.read() + first.stderr.read()
    lines = records(out)
    frames = [r for r in lines if r["type"] == "frame"]
    assert sorted(f["index"] for f in frames) == list(range(1500)) and lines[-1]["type"] == "run"


# -- write failures are errors, not tracebacks, in every format ----------------------------------


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "json", "html"])
def test_a_full_disk_is_exit_2_with_a_message(short_clip, fmt):
    done = qplug("score", short_clip, "-s", "sharpness", "--out", "/dev/full", "--format", fmt)
    assert done.returncode == 2, done.stderr
    assert "No space left on device" in done.stderr and "Traceback" not in done.stderr


def test_an_unwritable_out_is_exit_2(short_clip):
    done = qplug("score", short_clip, "-s", "sharpness", "--out", "/proc/version", "--format", "jsonl")
    assert done.returncode == 2 and "cannot write the report" in done.stderr and "Traceback" not in done.stderr


def _file_size_limit(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_report_too_big_for_the_disk_keeps_the_previous_one(short_clip, tmp_path):
    """RLIMIT_FSIZE stands in for a nearly full disk: writes past the limit fail with EFBIG."""
    outs = {ext: tmp_path / f"r.{ext}" for ext in ("html", "json", "csv")}
    for path in outs.values():
        path.write_text("the previous report\n")
    args = [sys.executable, "-m", "qplug", "score", str(short_clip), "-s", "sharpness", "-s", "black"]
    for path in outs.values():
        args += ["--out", str(path)]
    jsonl = tmp_path / "r.jsonl"
    done = subprocess.run(args + ["--out", str(jsonl)], env=ENV, capture_output=True, text=True, timeout=120,
                          preexec_fn=_file_size_limit(12_000))
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and "report failed" in done.stderr
    html_failed = "r.html" in done.stderr
    assert html_failed  # the HTML report is above 12 KB, the others below
    assert outs["html"].read_text() == "the previous report\n"
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]  # no temporary left behind
    # The reports that could be completed say the run failed, and why.
    summary = json.loads(outs["json"].read_text())
    assert summary["run"]["outcome"] == "failed" and summary["run"]["exit_code"] == 2
    assert any("r.html" in f for f in summary["run"]["failures"])
    assert records(jsonl)[-1]["outcome"] == "failed"


def test_a_small_tmpfs_fills_up_cleanly(short_clip, tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount)], capture_output=True).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        (mount / "r.html").write_text("old")
        done = qplug("score", short_clip, "-s", "sharpness", "--out", mount / "r.html", "--out", mount / "r.jsonl")
        assert done.returncode == 2 and "No space left on device" in done.stderr and "Traceback" not in done.stderr
        assert (mount / "r.html").read_text() == "old"
    finally:
        subprocess.run(["umount", str(mount)], check=False)


# -- signals ------------------------------------------------------------------------------------


@pytest.mark.parametrize("signum,code,outcome", [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")])
def test_a_signal_ends_the_run_with_complete_reports_that_say_so(long_clip, tmp_path, signum, code, outcome):
    html, summary, jsonl = tmp_path / "r.html", tmp_path / "r.json", tmp_path / "r.jsonl"
    html.write_text("previous report")
    # faulthandler: once in ~150 runs the child died of SIGSEGV instead (2026-12-05 CI, not reproduced
    # since); if it happens again, its stack is in the failure message.
    proc = start("score", long_clip, *SCORERS, "--out", html, "--out", summary, "--out", jsonl,
                 env=dict(ENV, PYTHONFAULTHANDLER="1"))
    wait_for_frames(jsonl, 50, proc)
    proc.send_signal(signum)
    returned = proc.wait(timeout=60)
    err = proc.stderr.read()
    assert returned == code, err
    assert "Traceback" not in err and outcome in err
    assert json.loads(summary.read_text())["run"]["outcome"] == outcome
    last = records(jsonl)[-1]
    assert last["type"] == "run" and last["outcome"] == outcome and last["exit_code"] == code
    text = html.read_text()
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")


def test_signals_at_random_points_never_lose_or_corrupt_anything(long_clip, short_clip, tmp_path):
    bystander = tmp_path / "keep.txt"
    bystander.write_text("not an output")
    before = digest(bystander)
    rng = random.Random(14)
    for attempt in range(6):
        outs = [tmp_path / f"r{attempt}.{ext}" for ext in ("jsonl", "json", "csv", "html")]
        proc = start("score", short_clip, long_clip, *SCORERS, *sum((["--out", str(o)] for o in outs), []))
        time.sleep(rng.uniform(0.0, 3.0))
        signum = rng.choice([signal.SIGTERM, signal.SIGINT])
        proc.send_signal(signum)
        code = proc.wait(timeout=120)
        err = proc.stderr.read()
        if before_qplug_ran(code, err):  # qplug had not begun: nothing written, nothing lost
            assert not any(out.exists() for out in outs), (code, err)
            continue
        assert "Traceback" not in err, err
        assert code in (0, 130, 143), (code, err)
        if not outs[0].exists():
            continue  # signalled before the reports were opened: nothing was written, nothing lost
        lines = records(outs[0])
        frames = [r for r in lines if r["type"] == "frame"]
        assert len({(f["source"], f["index"]) for f in frames}) == len(frames)
        if lines and lines[-1]["type"] == "run":
            assert lines[-1]["exit_code"] == code
        for out in outs[1:]:  # renamed into place whole, or not there at all
            assert not out.exists() or out.stat().st_size > 0
        if outs[1].exists():
            assert json.loads(outs[1].read_text())["run"]["exit_code"] == code
    assert digest(bystander) == before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


# -- honest reports -------------------------------------------------------------------------------


def test_a_setup_failure_is_recorded_as_failed_not_passed(short_clip, tmp_path):
    out = tmp_path / "r.jsonl"
    env = dict(ENV, QPLUG_LOAD_PLUGINS="images,video,qc,reports,vlm")
    done = subprocess.run([sys.executable, "-m", "qplug", "score", str(short_clip), "-s", "qalign", "--model",
                           str(tmp_path / "no-such-model"), "--out", str(out)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (run,) = records(out)
    assert run["type"] == "run" and run["outcome"] == "failed" and run["exit_code"] == 2 and run["failures"]


def test_quiet_keeps_the_error_lines(tmp_path):
    done = qplug("score", tmp_path / "missing.mp4", "-q", "-o", tmp_path / "x.jsonl")
    assert done.returncode == 2
    assert "missing.mp4" in done.stderr and "error" in done.stderr
    assert "input(s)" not in done.stderr  # the summary line is what quiet drops


# -- resume -----------------------------------------------------------------------------------------


def test_resume_refuses_scorers_the_report_does_not_hold(short_clip, tmp_path):
    out = tmp_path / "r.jsonl"
    assert qplug("score", short_clip, "-s", "sharpness", "-s", "black", "--out", out).returncode == 0
    before = out.read_text()
    done = qplug("score", short_clip, "-s", "noise", "--out", out, "--resume")
    assert done.returncode == 2 and "noise" in done.stderr and "PASS" not in done.stderr
    assert out.read_text() == before


def test_a_run_killed_and_resumed_equals_an_uninterrupted_one_frame_for_frame(long_clip, tmp_path):
    whole = tmp_path / "whole.jsonl"
    assert qplug("score", long_clip, *SCORERS, "--out", whole, "-q").returncode == 0
    killed = tmp_path / "killed.jsonl"
    proc = start("score", long_clip, *SCORERS, "--out", killed, "-q")
    wait_for_frames(killed, 300, proc)
    proc.kill()  # SIGKILL: nothing gets closed
    proc.wait(timeout=30)
    assert qplug("score", long_clip, *SCORERS, "--out", killed, "--resume", "-q").returncode == 0
    expected = {r["index"]: r["scores"] for r in records(whole) if r["type"] == "frame"}
    got = {r["index"]: r["scores"] for r in records(killed) if r["type"] == "frame"}
    assert got.keys() == expected.keys()
    mismatched = [i for i in expected if got[i] != expected[i]]
    assert not mismatched, [(i, got[i], expected[i]) for i in mismatched[:3]]


# -- special files ----------------------------------------------------------------------------------


def test_fifos_and_devices_are_reported_and_the_good_files_scored(short_clip, tmp_path):
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "a.mp4").write_bytes(short_clip.read_bytes())
    os.mkfifo(folder / "x.mp4")
    os.mkfifo(folder / "x.jpg")
    (folder / "z.mp4").write_bytes(short_clip.read_bytes())
    out = tmp_path / "r.jsonl"
    done = qplug("score", folder, "-s", "sharpness", "--out", out)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("not a regular file (FIFO)") == 2
    scored = {Path(r["source"]).name for r in records(out) if r["type"] == "frame"}
    assert scored == {"a.mp4", "z.mp4"}
    alone = qplug("score", folder / "x.jpg", "/dev/zero", "-s", "sharpness", "-q")
    assert alone.returncode == 2 and "not a regular file" in alone.stderr


# -- damaged streams ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["ts", "mp4", "mkv"])
def test_a_damaged_stream_is_an_error_with_a_timecoded_gap_never_a_pass(tmp_path, ext):
    clean = tmp_path / f"clean.{ext}"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25:duration=4", "-c:v", "libx264", "-g", "25",
           "-pix_fmt", "yuv420p", clean)
    data = bytearray(clean.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 8_000] = bytes((i * 97 + 13) % 256 for i in range(8_000))  # a bad sector
    damaged = tmp_path / f"damaged.{ext}"
    damaged.write_bytes(bytes(data))
    out = tmp_path / "r.jsonl"
    done = qplug("score", damaged, "-s", "sharpness", "--out", out)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "PASS" not in done.stderr
    lines = records(out)
    frames = [r for r in lines if r["type"] == "frame"]
    (source,) = [r for r in lines if r["type"] == "source"]
    assert 0 < len(frames) < 100
    assert any(e["stage"] == "read" and ("decode_gap" in e["reason"] or "decode_error" in e["reason"])
               for e in source["errors"])
    gaps = [e for e in source["events"] if e["scorer"] == "decode_gap"]
    assert gaps and "decode_gap" in done.stderr
    for gap in gaps:  # frames keep their true numbers: none is scored inside a gap
        assert not [f for f in frames if gap["start"] < f["pts"] < gap["end"]]
        assert gap["start_timecode"] and gap["end_timecode"]
    indices = [f["index"] for f in frames]
    assert indices == sorted(indices) and all(abs(f["index"] - round(f["pts"] * 25)) == 0 for f in frames)


def before_qplug_ran(code: int, err: str) -> bool:
    """True when the signal hit the Python interpreter's own start-up (importing ``site``), before any
    qplug code could install a handler: the interpreter, not qplug, prints that traceback."""
    return code < 0 and ("Fatal Python error" in err or "Traceback" not in err)


@pytest.mark.parametrize("delay", [0.1, 0.2, 0.3])
def test_a_signal_during_start_up_prints_no_traceback(short_clip, tmp_path, delay):
    for signum in (signal.SIGINT, signal.SIGTERM):
        proc = start("score", short_clip, "-s", "sharpness", "--out", tmp_path / "r.html")
        time.sleep(delay)
        proc.send_signal(signum)
        code = proc.wait(timeout=60)
        err = proc.stderr.read()
        if before_qplug_ran(code, err):
            continue
        assert "Traceback" not in err, err
        assert code in (-signum, 128 + signum, 0), (code, err)
        assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


# -- worker processes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def library(tmp_path_factory, long_clip, short_clip):
    """A folder of clips and stills, as a QC farm's watch folder holds them."""
    from PIL import Image
    import numpy as np

    folder = tmp_path_factory.mktemp("library")
    (folder / "long.mp4").write_bytes(long_clip.read_bytes())
    for i in range(3):
        (folder / f"short{i}.mp4").write_bytes(short_clip.read_bytes())
    for i in range(8):
        Image.fromarray(np.random.default_rng(i).integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def frame_scores(path: Path) -> dict:
    return {(r["source"], r["index"]): r["scores"] for r in records(path) if r["type"] == "frame"}


def test_jobs_give_the_same_results_as_one_process(library, tmp_path):
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert qplug("score", library, *SCORERS, "--out", one, "-q").returncode == 0
    done = qplug("score", library, *SCORERS, "--out", two, "--jobs", "2", "-q")
    assert done.returncode == 0, done.stderr
    assert frame_scores(two) == frame_scores(one) and len(frame_scores(one)) == 1500 + 3 * 20 + 8
    lines = records(two)
    sources = [r for r in lines if r["type"] == "source"]
    assert {s["source"]: s["pooled"] for s in sources} == {
        s["source"]: s["pooled"] for s in records(one) if s["type"] == "source"}
    # Each source's frames form one block, followed by its summary.
    order = [r["source"] for r in lines if r["type"] in ("frame", "source")]
    blocks = [order[0]] + [b for a, b in zip(order, order[1:]) if a != b]
    assert len(blocks) == len(sources) and lines[-1]["frames"] == 1568


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        pytest.skip("no /proc children list here")
    return [int(p) for p in text.split()]


def _has_open(pid: int, name: str) -> bool:
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}").endswith(name) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:  # gone, or a descriptor closed while looking
        return False


def test_a_killed_worker_loses_nothing_and_the_run_says_so(library, tmp_path):
    out = tmp_path / "r.jsonl"
    proc = start("score", library, *SCORERS, "--out", out, "--jobs", "2")
    deadline = time.monotonic() + 120
    holder = None
    while time.monotonic() < deadline and holder is None and proc.poll() is None:
        # The worker that has the long clip open is scoring it (wall-clock guesses fail on a busy machine).
        holder = next((p for p in _children(proc.pid) if _has_open(p, "long.mp4")), None)
        time.sleep(0.02)
    assert holder is not None, "no worker opened the long clip"
    os.kill(holder, signal.SIGKILL)
    code = proc.wait(timeout=120)
    err = proc.stderr.read()
    assert code == 2 and "Traceback" not in err and "died (signal 9)" in err
    whole = tmp_path / "whole.jsonl"
    assert qplug("score", library, *SCORERS, "--out", whole, "-q").returncode == 0
    assert frame_scores(out) == frame_scores(whole)  # the inputs it held were scored again, identically
    assert records(out)[-1]["outcome"] == "failed"


def test_jobs_resume_a_killed_run(library, tmp_path):
    out = tmp_path / "r.jsonl"
    proc = start("score", library, *SCORERS, "--out", out, "--jobs", "2", "-q")
    wait_for_frames(out, 30, proc)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) in (0, 143)
    done = qplug("score", library, *SCORERS, "--out", out, "--resume", "--jobs", "2", "-q")
    assert done.returncode == 0, done.stderr
    whole = tmp_path / "whole.jsonl"
    assert qplug("score", library, *SCORERS, "--out", whole, "-q").returncode == 0
    assert frame_scores(out) == frame_scores(whole)


SWALLOWED = """
import sys, time, weakref
from qplug import cli
from qplug.errors import Terminated
cli._terminate_on_sigterm()
if sys.argv[2] == "hook":
    cli._redeliver_swallowed_interrupts()
class Held: pass
def finalizer(_):  # where a signal at start-up can land: importlib's module-lock cleanup is one
    raise {"int": KeyboardInterrupt, "term": Terminated}[sys.argv[1]]()
held = Held(); ref = weakref.ref(held, finalizer); del held
try:
    for _ in range(50): time.sleep(0.01)
    print("went on")
except KeyboardInterrupt:
    print("interrupted")
except Terminated:
    print("terminated")
"""


@pytest.mark.parametrize("kind, said", [("int", "interrupted"), ("term", "terminated")])
def test_an_interrupt_swallowed_by_a_finalizer_still_ends_the_run(kind, said):
    def run(hook: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", SWALLOWED, kind, hook], env=ENV, capture_output=True,
                              text=True, timeout=60)

    done = run("hook")
    assert done.stdout.strip() == said and "Traceback" not in done.stderr, done.stderr
    bare = run("none")  # without the hook Python prints the traceback and carries on
    assert bare.stdout.strip() == "went on" and "Exception ignored" in bare.stderr


def test_an_interrupt_just_after_a_report_file_is_created_leaves_no_part_file(tmp_path, monkeypatch):
    # The temporary report is named and remembered before it exists: a Ctrl-C landing right after
    # the file is created (inside tempfile.mkstemp, before its name came back, in the old code) is
    # still cleaned up, and the target is not created either.
    from qplug import reporting
    from qplug.plugins import get_host

    real_open = os.open

    def created_then_interrupted(path, flags, *args):
        fd = real_open(path, flags, *args)
        if str(path).endswith(".part"):
            os.close(fd)
            raise KeyboardInterrupt
        return fd

    monkeypatch.setattr(reporting.os, "open", created_then_interrupted)
    with pytest.raises(KeyboardInterrupt):
        reporting.Reporter([reporting.Output(str(tmp_path / "r.html"))], get_host().catalog())
    assert list(tmp_path.iterdir()) == []


def test_draining_a_queue_whose_lock_a_signal_abandoned_does_not_hang():
    # A signal raised right after Queue.get took the queue's lock leaves it taken (bpo-29988); the
    # run's clean-up then drained that queue and waited forever (a SIGTERM'd `qplug score` hung).
    import queue
    import threading

    from qplug.pipeline import _drain

    channel: "queue.Queue[int]" = queue.Queue(maxsize=4)
    for i in range(3):
        channel.put(i)
    channel.mutex.acquire()  # as the interrupted get left it
    done = threading.Event()
    worker = threading.Thread(target=lambda: (_drain(channel), done.set()), daemon=True)
    worker.start()
    assert done.wait(timeout=10), "_drain waited forever on an abandoned queue lock"
    assert channel.empty()
    channel.put(7)  # the queue works again
    assert channel.get_nowait() == 7
