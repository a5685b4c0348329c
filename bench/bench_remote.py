"""Overhead of the remote path: ``qalign`` scored in-process vs through ``--option qalign.endpoint=URL``
to a ``qplug serve`` on this machine (same model, same frames), with the real ``qplug`` command.

Both share this machine's cores, and the server's model runs with the same threads as the local
one, so the difference is the remote path's own cost: PNG encoding, HTTP, JSON, the server's
parsing and batching. Prints one JSON line per path and the ratio; scores must agree within 1e-4.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_remote.py [--clip samples/pan.mp4] [--fps N] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QPLUG = [str(Path(sys.executable).with_name("qplug"))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def score(clip: str, fps: float | None, out: Path, extra: list[str]) -> tuple[float, dict, dict[int, float]]:
    """Wall seconds of the whole command, its run record, and the qalign value of each frame."""
    sampling = ["--fps", str(fps)] if fps else []
    start = time.perf_counter()
    subprocess.run([*QPLUG, "score", clip, "-s", "qalign", *sampling, "--out", str(out), "--quiet", *extra],
                   check=True)
    wall = time.perf_counter() - start
    records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    run = next(r for r in records if r.get("type") == "run")
    values = {r["index"]: r["scores"]["qalign"] for r in records if r.get("type") == "frame"}
    return wall, run, values


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clip", default=str(ROOT / "samples" / "pan.mp4"))
    parser.add_argument("--fps", type=float, help="sample N frames a second (default: every frame)")
    parser.add_argument("--repeat", type=int, default=2, help="runs of each path; the fastest is kept")
    args = parser.parse_args()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([*QPLUG, "serve", "--port", str(port), "--quiet"], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(url + "/health", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("qplug serve did not come up")
                time.sleep(0.2)
        with tempfile.TemporaryDirectory() as tmp:
            rows = {}
            for name, extra in (("local", []), ("remote", ["--option", f"qalign.endpoint={url}"])):
                best = None
                for attempt in range(args.repeat):
                    result = score(args.clip, args.fps, Path(tmp) / f"{name}{attempt}.jsonl", extra)
                    if best is None or result[1]["wall_seconds"] < best[1]["wall_seconds"]:
                        best = result
                wall, run, values = best
                rows[name] = values
                print(json.dumps({"path": name, "frames": run["frames"], "command_s": round(wall, 2),
                                  "run_s": run["wall_seconds"], "frames_per_s": round(run["frames"] / run["wall_seconds"], 1),
                                  "exit_code": run["exit_code"]}), flush=True)
            diff = max(abs(rows["local"][i] - rows["remote"][i]) for i in rows["local"])
            print(json.dumps({"max_abs_score_difference": diff}))
    finally:
        server.terminate()
        server.wait(30)
    os._exit(0)


if __name__ == "__main__":
    main()
