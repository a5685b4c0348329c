"""Training data: reading/validating Q-Instruct records, feedback conversion, mixing, CLI.

The OpenAI-compatible converter is tested against a real HTTP server on loopback that speaks the
chat-completions protocol; the real ``openai`` client talks to it (nothing is mocked).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable

import pytest

from qplug_training.data import (
    IMAGE_MARKER,
    MPLUG_MARKER,
    Feedback,
    MixSource,
    Record,
    RuleConverter,
    Turn,
    load_feedback,
    load_records,
    mix,
    validate_records,
    write_records,
)
from qplug_training.data.attributes import analyse
from qplug_training.data.cli import main as cli_main
from qplug_training.data.converters import balance_yes_no, yes_no_answer

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------- helpers


def rec(id: str, *values: str, image: str | None = "img/a.png", roles: tuple[str, str] = ("human", "gpt"),
        **extra: Any) -> dict:
    convs = [{"from": roles[i % 2], "value": v} for i, v in enumerate(values)]
    out: dict[str, Any] = {"id": id, "conversations": convs, **extra}
    if image is not None:
        out["image"] = image
    return out


def write_jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("".join((i if isinstance(i, str) else json.dumps(i)) + "\n" for i in items), encoding="utf-8")
    return path


@pytest.fixture()
def image_root(tmp_path: Path) -> Path:
    from PIL import Image

    root = tmp_path / "images"
    (root / "img").mkdir(parents=True)
    for name in ("a", "b", "c"):
        Image.new("RGB", (8, 8), (10, 20, 30)).save(root / "img" / f"{name}.png")
    (root / "img" / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


GOOD = [
    rec("r1", "<image>\nHow is the quality?", "The quality is good."),
    rec("r2", "<|image|>\nIs it blurry?", "No.", image="img/b.png"),
    rec("r3", "<image>\nRate it.", "Fair.", "Why?", "It is a bit noisy.", "Anything else?", "Colours are dull."),
    rec("r4", "What is JPEG?", "A compression format.", image=None),
    rec("r5", "<image>\nDescribe.", "Sharp and vivid.", roles=("user", "assistant"), image="img/c.png", task="x"),
]


# ---------------------------------------------------------------------------- reading


def test_json_array_and_jsonl_read_the_same(tmp_path: Path, image_root: Path) -> None:
    arr = tmp_path / "d.json"
    arr.write_text(json.dumps(GOOD, indent=2), encoding="utf-8")
    lines = write_jsonl(tmp_path / "d.jsonl", GOOD)
    a, ra = load_records(arr, image_root)
    b, rb = load_records(lines, image_root)
    assert ra.ok and rb.ok, (str(ra), str(rb))
    assert a == b and len(a) == 5
    assert ra.seen == ra.kept == 5


def test_jsonl_content_in_a_dot_json_file_and_gzip(tmp_path: Path) -> None:
    import gzip

    mislabelled = write_jsonl(tmp_path / "lines.json", GOOD[:2])
    gz = tmp_path / "d.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r) for r in GOOD[2:]))
    records, report = load_records([mislabelled, gz])
    assert report.ok and [r.id for r in records] == ["r1", "r2", "r3", "r4", "r5"]


def test_markers_roles_multi_turn_and_text_only(tmp_path: Path) -> None:
    records, report = load_records(write_jsonl(tmp_path / "d.jsonl", GOOD))
    assert report.ok
    by = {r.id: r for r in records}
    # <|image|> becomes the internal marker, and can be written back in either spelling.
    assert by["r2"].turns[0].value == f"{IMAGE_MARKER}\nIs it blurry?"
    assert by["r2"].to_dict(MPLUG_MARKER)["conversations"][0]["value"].startswith(MPLUG_MARKER)
    # user/assistant are read as human/gpt; unknown top-level keys survive.
    assert [t.role for t in by["r5"].turns] == ["human", "gpt"] and by["r5"].meta == {"task": "x"}
    assert by["r5"].to_dict()["task"] == "x"
    # Multi-turn keeps every exchange.
    assert len(by["r3"].pairs()) == 3 and by["r3"].pairs()[2][1] == Turn("gpt", "Colours are dull.")
    # Text-only record: no image, no marker.
    assert by["r4"].image is None and not by["r4"].has_image and "image" not in by["r4"].to_dict()


@pytest.mark.parametrize("marker", ["llava", "mplug"])
def test_write_round_trip(tmp_path: Path, marker: str) -> None:
    from qplug_training.data.records import MARKERS

    records, _ = validate_records(GOOD)
    for name in ("out.json", "out.jsonl"):
        write_records(records, tmp_path / name, marker=MARKERS[marker])
        back, report = load_records(tmp_path / name)
        assert report.ok and back == records
    raw = (tmp_path / "out.jsonl").read_text()
    assert (MPLUG_MARKER in raw) == (marker == "mplug")


BAD_CASES: list[tuple[str, Any]] = [
    ("broken_json", '{"id": "x", "conversations": ['),
    ("not_an_object", [1, 2]),
    ("bad_field", {"id": 3.5, "image": "img/a.png", "conversations": []}),
    ("bad_field", rec("img-not-str", "<image>\nq", "a", image=["img/a.png"])),
    ("missing_conversations", {"id": "nc", "image": "img/a.png"}),
    ("missing_conversations", {"id": "ec", "conversations": []}),
    ("bad_turn", {"id": "bt", "conversations": [{"from": "human"}, {"from": "gpt", "value": "a"}]}),
    ("unknown_role", rec("ur", "<image>\nq", "a", roles=("human", "robot"))),
    ("empty_turn", rec("et", "<image>\nq", "   ")),
    ("not_starting_with_human", rec("sh", "a", "<image>\nq", roles=("gpt", "human"))),
    ("not_alternating", {"id": "na", "image": "img/a.png", "conversations": [
        {"from": "human", "value": "<image>\nq"}, {"from": "human", "value": "q2"}, {"from": "gpt", "value": "a"}]}),
    ("ends_with_human", rec("eh", "<image>\nq", "a", "q2")),
    ("marker_without_image", rec("mwi", "<image>\nq", "a", image=None)),
    ("image_without_marker", rec("iwm", "q", "a")),
    ("multiple_markers", rec("mm", "<image>\nq <|image|>", "a")),
    ("marker_in_answer", rec("mia", "<image>\nq", "see <image>")),
    ("missing_image_file", rec("mif", "<image>\nq", "a", image="img/nope.png")),
]


def test_every_skip_reason_is_counted(tmp_path: Path, image_root: Path) -> None:
    data = write_jsonl(tmp_path / "bad.jsonl", [GOOD[0]] + [item for _, item in BAD_CASES] + [GOOD[3]])
    records, report = load_records(data, image_root)
    assert [r.id for r in records] == ["r1", "r4"]
    assert report.skipped == Counter(reason for reason, _ in BAD_CASES)
    assert report.seen == len(BAD_CASES) + 2 and report.kept == 2 and not report.ok
    # Examples say where: file and line number, and the id when there is one.
    ex = report.examples["broken_json"][0]
    assert ex.where == f"{data}:2"
    assert report.examples["ends_with_human"][0].id == "eh"
    text, doc = str(report), json.loads(report.to_json())
    for reason, _ in BAD_CASES:
        assert reason in text and doc["skipped"][reason]["count"] >= 1 and doc["skipped"][reason]["meaning"]
    assert doc["skipped_total"] == len(BAD_CASES)


def test_whole_file_problems_and_image_checks(tmp_path: Path, image_root: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('[{"id": "a", "conversations": [}]', encoding="utf-8")
    corrupt = write_jsonl(tmp_path / "c.jsonl", [rec("c", "<image>\nq", "a", image="img/corrupt.png"), GOOD[0]])
    records, report = load_records([tmp_path / "missing.jsonl", broken, corrupt], image_root, verify_images=True)
    assert [r.id for r in records] == ["r1"]
    assert report.skipped == Counter({"unreadable_file": 1, "broken_json": 1, "unreadable_image": 1})
    # Without an image root nothing is looked up on disk; add_missing_marker repairs instead of skipping.
    records, report = load_records(corrupt)
    assert len(records) == 2
    records, report = validate_records([rec("iwm", "q", "a"), rec("d", "<image>\nq", "a"), rec("d", "<image>\nq", "b")],
                                       add_missing_marker=True)
    assert len(records) == 3 and records[0].turns[0].value == f"{IMAGE_MARKER}\nq"
    assert report.notes == Counter({"added_marker": 1, "duplicate_id": 1})


# ---------------------------------------------------------------------------- feedback and rules

FEEDBACK_TEXTS = [
    "The image shows a cat on a sofa. The focus is sharp and the fur details are clear. However, there is "
    "noticeable noise in the dark areas, and the colors are a bit dull. Overall, the quality of this image is fair.",
    "This street photo at night is blurry and underexposed. There is no noise. The overall quality is very poor.",
    "A landscape with vivid colours and good lighting. The image is in focus. I would rate it as excellent.",
    "The noise is low and the image is well exposed, but there are blocky compression artifacts. Its quality is good.",
    "The picture lacks sharpness and has low contrast. The quality of this picture is not good.",
    "A portrait, overexposed, with washed-out colours and heavy grain. The image has bad quality.",
]


def feedback_set(n: int) -> list[Feedback]:
    return [Feedback(image=f"img/{'abc'[i % 3]}.png", text=FEEDBACK_TEXTS[i % len(FEEDBACK_TEXTS)], id=f"fb{i}")
            for i in range(n)]


def test_analyse_attributes_negation_and_level() -> None:
    a = analyse(FEEDBACK_TEXTS[0])
    assert a.level == "fair" and a.attributes == {"sharpness": "sharp", "noise": "noisy", "colour": "dull"}
    b = analyse(FEEDBACK_TEXTS[1])
    assert b.level == "bad" and b.attributes["noise"] == "clean" and b.defects() == ["blur", "underexposure"]
    assert analyse(FEEDBACK_TEXTS[3]).attributes["noise"] == "clean"  # "the noise is low"
    assert analyse(FEEDBACK_TEXTS[4]).level == "poor"  # "not good"
    assert analyse("Nothing to see here.").level is None


def test_load_feedback_jsonl(tmp_path: Path, image_root: Path) -> None:
    path = write_jsonl(tmp_path / "fb.jsonl", [
        {"id": "f1", "image": "img/a.png", "text": FEEDBACK_TEXTS[0], "level": "Average"},
        {"img_path": "img/b.png", "feedback": FEEDBACK_TEXTS[1], "attributes": {"sharpness": "blurry"}},
        {"id": "f3", "image": "img/a.png", "text": "  "},
        {"id": "f4", "image": "img/a.png", "text": "ok", "level": "splendid"},
        {"id": "f5", "image": "img/gone.png", "text": "ok"},
        "{oops",
    ])
    fbs, report = load_feedback(path, image_root)
    assert [f.id for f in fbs][0] == "f1" and fbs[0].level == "fair"  # synonyms map onto the five levels
    assert fbs[1].image == "img/b.png" and fbs[1].id.startswith("fb-") and fbs[1].attributes == {"sharpness": "blurry"}
    assert report.skipped == Counter({"empty_feedback": 1, "bad_field": 1, "missing_image_file": 1, "broken_json": 1})


def test_rule_converter_output_is_valid_balanced_and_deterministic(image_root: Path) -> None:
    fbs = feedback_set(41) + [Feedback(image=None, text=FEEDBACK_TEXTS[2], id="textonly")]
    conv = RuleConverter(seed=7, yes_no=1, what_how=2)
    records = conv.convert_many(fbs)
    valid, report = validate_records(records, image_root=image_root)
    assert report.ok, str(report)
    tasks = Counter(r.task for r in valid)
    assert tasks["pathway"] == len(fbs) and tasks["yes_no"] == len(fbs) and tasks["conversation"] > 0
    answers = Counter(yes_no_answer(r) for r in valid if r.task == "yes_no")
    assert answers["yes"] + answers["no"] == len(fbs) and abs(answers["yes"] - answers["no"]) <= 1
    assert any(len(r.turns) >= 4 for r in valid)  # extended, multi-turn conversations
    text_only = [r for r in valid if r.meta["source"] == "textonly"]
    assert text_only and all(r.image is None and IMAGE_MARKER not in r.turns[0].value for r in text_only)
    # Same seed, same output; another seed, other phrasings.
    assert RuleConverter(seed=7).convert_many(fbs) == records
    assert RuleConverter(seed=8).convert_many(fbs) != records
    assert conv.stats.converted == len(fbs) and conv.stats.failed == 0
    # Two yes/no per feedback stay balanced too.
    two = RuleConverter(seed=1, yes_no=2, kinds=["yes_no"]).convert_many(feedback_set(9))
    c2 = Counter(yes_no_answer(r) for r in two)
    assert abs(c2["yes"] - c2["no"]) <= 1 and sum(c2.values()) == 18


def test_balance_yes_no_drops_only_the_surplus() -> None:
    def yn(i: int, word: str) -> Record:
        return Record(id=str(i), turns=(Turn("human", "q?"), Turn("gpt", f"{word}. x")), meta={"task": "yes_no"})

    records = [yn(i, "Yes") for i in range(7)] + [yn(10 + i, "No") for i in range(2)]
    kept, dropped = balance_yes_no(records, seed=3)
    c = Counter(yes_no_answer(r) for r in kept)
    assert dropped == 4 and c == Counter({"yes": 3, "no": 2})
    assert balance_yes_no(records, seed=3) == (kept, 4)


# ---------------------------------------------------------------------------- mixing


def _records(prefix: str, n: int, image: str | None = "img/a.png") -> list[Record]:
    marker = "<image>\n" if image else ""
    return [Record(id=f"{prefix}{i}", image=image, turns=(Turn("human", f"{marker}q{i}"), Turn("gpt", "a")))
            for i in range(n)]


def test_mix_weights_totals_and_determinism(tmp_path: Path) -> None:
    low, high = _records("low", 20), _records("high", 50, image=None)
    path = tmp_path / "low.jsonl"
    write_records(low, path)
    out, report = mix([(path, 1.0), (high, 0.5)], seed=3)
    ids = Counter(r.id[:3] for r in out)
    assert ids == Counter({"low": 20, "hig": 25}) and report.total == 45
    assert len({r.id for r in out}) == 45  # without replacement: no repeats below one pass
    assert mix([(path, 1.0), (high, 0.5)], seed=3)[0] == out
    assert mix([(path, 1.0), (high, 0.5)], seed=4)[0] != out
    # Weight 2.5 = two full passes plus a random half.
    out, report = mix([(low, 2.5)], seed=0, shuffle=False)
    assert len(out) == 50 and Counter(Counter(r.id for r in out).values()) == Counter({3: 10, 2: 10})
    assert report.sources[0]["repeats"] == 2
    # With a total, weights are shares; the quotas add up exactly.
    out, report = mix([(low, 1), (high, 3)], seed=0, total=41)
    assert len(out) == 41 and [s["taken"] for s in report.sources] == [10, 31]
    out, _ = mix([(low, 1)], seed=0, total=200, replacement=True)
    assert len(out) == 200 and len({r.id for r in out}) <= 20
    # Prefixes rebase image paths; changing another source's weight leaves this one's draw alone.
    a, _ = mix([MixSource(low, 0.5, image_prefix="qi"), MixSource(high, 0.2)], seed=5, shuffle=False)
    b, _ = mix([MixSource(low, 0.5, image_prefix="qi"), MixSource(high, 0.8)], seed=5, shuffle=False)
    assert a[:10] == b[:10] and a[0].image == "qi/img/a.png"
    with pytest.raises(ValueError):
        mix([(low, -1)])


# ---------------------------------------------------------------------------- CLI


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    full_env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "qplug_training.data", *args], cwd=ROOT, env=full_env,
                          capture_output=True, text=True, timeout=60)


def test_cli_validate_convert_mix(tmp_path: Path, image_root: Path, capsys: pytest.CaptureFixture) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", GOOD)
    bad = write_jsonl(tmp_path / "bad.jsonl", [GOOD[0], "{broken"])
    assert cli_main(["validate", str(good), "--image-root", str(image_root)]) == 0
    assert "5 kept" in capsys.readouterr().out
    assert cli_main(["validate", str(bad), "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["skipped"]["broken_json"]["count"] == 1
    fb = write_jsonl(tmp_path / "fb.jsonl", [f.to_dict() for f in feedback_set(6)])
    out = tmp_path / "qi.json"
    assert cli_main(["convert", str(fb), "-o", str(out), "--converter", "rule", "--marker", "mplug",
                     "--stats", str(tmp_path / "stats.json")]) == 0
    assert MPLUG_MARKER in out.read_text()
    assert cli_main(["validate", str(out), "--image-root", str(image_root)]) == 0
    assert json.loads((tmp_path / "stats.json").read_text())["conversion"]["converted"] == 6
    mixed = tmp_path / "mix.jsonl"
    assert cli_main(["mix", "--source", str(out), "1", "--source", str(good), "2", "--seed", "1",
                     "-o", str(mixed), "--report", str(tmp_path / "mix.json")]) == 0
    n_qi = len(json.loads(out.read_text()))
    assert len(mixed.read_text().splitlines()) == n_qi + 10


def test_cli_user_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    for args in (["validate", str(tmp_path / "nope.jsonl")],
                 ["mix", "--source", str(tmp_path / "nope.jsonl"), "x", "-o", str(tmp_path / "o.jsonl")],
                 ["convert", str(tmp_path / "nope.jsonl"), "-o", str(tmp_path / "o.jsonl")],
                 ["frobnicate"]):
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert "Traceback" not in proc.stderr and "error" in proc.stderr


# ---------------------------------------------------------------------------- OpenAI-compatible endpoint

API_KEY = "sk-qplug-TEST-7f3a9c51d2"


def good_answer(body: dict) -> str:
    """A valid model answer in the documented schema, derived from the request."""
    user = body["messages"][-1]["content"]
    tag = "blurry" if "blurry" in user else "noisy"
    return json.dumps({
        "yes_no": [{"question": f"Is this image {tag}?", "answer": "yes", "explanation": f"It is {tag}."},
                   {"question": "Is this image excellent?", "answer": "no", "explanation": "It is not."}],
        "what_how": [{"question": "How is the exposure?", "answer": "Slightly dark."},
                     {"question": "What is the main distortion?", "answer": f"It is {tag}."}],
        "conversation": [{"question": "How is the quality?", "answer": "Fair."},
                         {"question": "Why?", "answer": f"Because it is {tag}."}],
    })


class ChatServer:
    """A chat-completions server on 127.0.0.1:0; ``script(n, body, headers)`` picks each reply.

    A reply is ``("ok", content)``, ``("status", code, body_text)`` or ``("sleep", seconds, content)``.
    """

    def __init__(self, script: Callable[[int, dict, Any], tuple] | None = None) -> None:
        self.script = script or (lambda n, body, headers: ("ok", good_answer(body)))
        self.count = 0
        self.bodies: list[dict] = []
        self.auth: list[str | None] = []
        self.inflight = 0
        self.max_inflight = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server.lock:
                    n = server.count
                    server.count += 1
                    server.bodies.append(body)
                    server.auth.append(self.headers.get("Authorization"))
                    server.inflight += 1
                    server.max_inflight = max(server.max_inflight, server.inflight)
                try:
                    if self.path != "/v1/chat/completions":
                        return self._send(404, {"error": {"message": "not found"}})
                    action = server.script(n, body, self.headers)
                    if action[0] == "sleep":
                        time.sleep(action[1])
                        action = ("ok", action[2])
                    if action[0] == "status":
                        return self._send(action[1], {"error": {"message": action[2], "type": "server_error"}})
                    self._send(200, {
                        "id": f"chatcmpl-{n}", "object": "chat.completion", "created": int(time.time()),
                        "model": body.get("model"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": action[1]},
                                     "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
                    })
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)
                finally:
                    with server.lock:
                        server.inflight -= 1

            def _send(self, code: int, doc: dict) -> None:
                data = json.dumps(doc).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


_OPEN: list[Any] = []  # converters to close after each test (HTTP connections, cache files)


@pytest.fixture()
def chat_server():
    servers: list[ChatServer] = []

    def start(script=None) -> ChatServer:
        servers.append(ChatServer(script))
        return servers[-1]

    yield start
    while _OPEN:
        _OPEN.pop().close()
    for s in servers:
        s.close()


def make_converter(server: ChatServer, tmp_path: Path | None = None, **config: Any):
    from qplug_training.data.converters.openai_api import OpenAIConfig, OpenAIConverter

    opts = {"timeout": 5.0, "max_retries": 2, "backoff": 0.01, "backoff_max": 0.05, "concurrency": 3, **config}
    cfg = OpenAIConfig(model="qplug-test-model", base_url=server.base_url, api_key=API_KEY, **opts)
    cache = tmp_path / "cache.sqlite" if tmp_path is not None else None
    conv = OpenAIConverter(cfg, cache=cache, seed=0)
    _OPEN.append(conv)
    return conv


def test_openai_converter_works_and_cache_makes_reruns_free(chat_server, tmp_path: Path, image_root: Path) -> None:
    server = chat_server(lambda n, body, h: ("sleep", 0.05, good_answer(body)))
    fbs = feedback_set(6)
    conv = make_converter(server, tmp_path)
    records = conv.convert_many(fbs)
    valid, report = validate_records(records, image_root=image_root)
    assert report.ok, str(report)
    assert Counter(r.task for r in valid) == Counter(pathway=6, yes_no=12, what_how=12, conversation=6)
    yn = Counter(yes_no_answer(r) for r in valid if r.task == "yes_no")
    assert yn == Counter(yes=6, no=6)
    assert server.count == 6 and conv.stats.requests == 6 and conv.stats.cache_misses == 6
    assert 1 <= server.max_inflight <= 3  # the concurrency limit holds
    assert server.auth[0] == f"Bearer {API_KEY}" and server.bodies[0]["model"] == "qplug-test-model"
    assert server.bodies[0]["response_format"] == {"type": "json_object"}
    # A fresh converter with the same cache makes no request at all, and produces the same records.
    again = make_converter(server, tmp_path)
    assert again.convert_many(fbs) == records
    assert server.count == 6 and again.stats.cache_hits == 6 and again.stats.requests == 0


def test_openai_retries_after_500_and_after_timeout(chat_server, tmp_path: Path) -> None:
    server = chat_server(lambda n, body, h: ("status", 500, "boom") if n == 0 else ("ok", good_answer(body)))
    conv = make_converter(server)
    assert len(conv.convert(feedback_set(1)[0])) == 6
    assert server.count == 2 and conv.stats.retries == 1 and conv.stats.converted == 1

    slow = chat_server(lambda n, body, h: ("sleep", 1.5, good_answer(body)) if n == 0 else ("ok", good_answer(body)))
    conv = make_converter(slow, timeout=0.5)
    t0 = time.monotonic()
    assert len(conv.convert(feedback_set(1)[0])) == 6
    assert slow.count == 2 and conv.stats.retries == 1 and time.monotonic() - t0 < 1.5

    # Out of retries: counted as a failed feedback, no exception; the pathway record still stands.
    down = chat_server(lambda n, body, h: ("status", 503, "busy"))
    conv = make_converter(down, max_retries=1)
    out = conv.convert(feedback_set(1)[0])
    assert [r.task for r in out] == ["pathway"] and down.count == 2
    assert conv.stats.failed == 1 and conv.stats.errors == Counter({"http_503": 1})
    # An endpoint that stays down stops the run instead of burning through every feedback.
    from qplug_training.data.converters import ConversionError

    conv = make_converter(down, max_retries=0, give_up_after=3, concurrency=1)
    with pytest.raises(ConversionError, match="3 feedbacks in a row"):
        conv.convert_many(feedback_set(10))
    assert down.count == 2 + 3


def test_openai_resumes_after_failures(chat_server, tmp_path: Path) -> None:
    fbs = feedback_set(4)
    # First run: every request about fb2 fails (a crash would leave the same state: no cache entry).
    server = chat_server(lambda n, body, h: ("status", 502, "bad gateway")
                         if "street" in body["messages"][-1]["content"] else ("ok", good_answer(body)))
    conv = make_converter(server, tmp_path, max_retries=0)
    conv.convert_many(fbs)
    assert conv.stats.failed == 1 and server.count == 4
    fixed = chat_server()
    rerun = make_converter(fixed, tmp_path)
    records = rerun.convert_many(fbs)
    assert fixed.count == 1 and rerun.stats.cache_hits == 3 and rerun.stats.failed == 0
    assert Counter(r.task for r in records)["conversation"] == 4


def test_openai_malformed_output_is_rejected_and_counted(chat_server) -> None:
    ok = json.loads(good_answer({"messages": [{"content": "x"}]}))
    bad_yes_no = {**ok, "yes_no": [{"question": "Is it sharp?", "answer": "maybe"}, ok["yes_no"][1]]}
    empty_answer = {**ok, "what_how": [{"question": "How?", "answer": "  "}, ok["what_how"][1]]}
    replies = ["this is not json", json.dumps({"answer": "wrong schema"}), json.dumps(bad_yes_no),
               json.dumps(empty_answer), "```json\n" + json.dumps(ok) + "\n```", json.dumps([1, 2]),
               json.dumps({"yes_no": [], "what_how": [], "conversation": []})]
    server = chat_server(lambda n, body, h: ("ok", replies[n]))
    conv = make_converter(server, concurrency=1)
    records = [r for fb in feedback_set(len(replies)) for r in conv.convert(fb)]
    assert conv.stats.rejected == Counter(not_json=1, bad_schema=2, bad_yes_no=1, empty_answer=1, empty_output=1)
    assert conv.stats.failed == 4 and conv.stats.converted == 3
    _, report = validate_records(records)
    assert report.ok
    assert server.count == len(replies)  # rejected output is not retried within the run


def test_openai_key_never_leaks(chat_server, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from qplug_training.data.converters import ConversionError

    def echo_key(n: int, body: dict, headers: Any) -> tuple:
        # A hostile or careless server echoing the Authorization header in its error bodies.
        auth = headers.get("Authorization")
        return [("status", 500, f"bad {auth}"), ("status", 400, f"refused {auth}")][n % 2]

    caplog.set_level(logging.DEBUG)
    server = chat_server(echo_key)
    conv = make_converter(server, tmp_path, max_retries=1)
    conv.convert_many(feedback_set(2))
    assert server.count >= 2 and server.auth[0] == f"Bearer {API_KEY}"
    assert "refused" in caplog.text  # the error was logged ... with the key scrubbed
    dumped = " ".join([caplog.text, repr(conv), repr(conv.config), str(conv.config.api_key), str(conv.stats),
                       conv.stats.to_json()])
    assert API_KEY not in dumped

    denied = chat_server(lambda n, body, h: ("status", 401, f"invalid key {h.get('Authorization')}"))
    conv = make_converter(denied)
    with pytest.raises(ConversionError) as info:
        conv.convert_many(feedback_set(3))
    # Nothing chained: the client's exception holds the request, Authorization header included.
    assert info.value.__cause__ is None and info.value.__context__ is None
    shown = str(info.value) + "".join(traceback.format_exception(info.value))
    assert "401" in shown and API_KEY not in shown and API_KEY not in caplog.text


def test_cli_convert_with_openai_endpoint(chat_server, tmp_path: Path) -> None:
    server = chat_server()
    fb = write_jsonl(tmp_path / "fb.jsonl", [f.to_dict() for f in feedback_set(3)])
    out = tmp_path / "qi.jsonl"
    env = {"QPLUG_OPENAI_BASE_URL": server.base_url, "QPLUG_OPENAI_MODEL": "m", "OPENAI_API_KEY": API_KEY}
    args = ["-v", "convert", str(fb), "-o", str(out), "--converter", "openai", "--retries", "1", "--backoff", "0.01"]
    first = run_cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    assert server.count == 3 and len(out.read_text().splitlines()) == 3 * 6
    second = run_cli(*args, env=env)  # resumes from OUTPUT.cache.sqlite: nothing to ask
    assert second.returncode == 0 and server.count == 3 and "3 cache hits" in second.stderr
    assert API_KEY not in first.stderr + first.stdout + second.stderr + second.stdout
    missing_model = run_cli(*args[1:], env={**env, "QPLUG_OPENAI_MODEL": ""})
    assert missing_model.returncode == 2 and "QPLUG_OPENAI_MODEL" in missing_model.stderr
    assert "Traceback" not in missing_model.stderr
