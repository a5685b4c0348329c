"""``qplug serve`` and the remote backend, against real HTTP servers on loopback.

Servers run in-process on a free port (a thread) or as a ``qplug serve`` subprocess, with a tiny random
LLaVA saved to a temporary directory; remote-vs-local equality uses qplug's shipped model, whose level
words are among its top 20 next tokens (a random model's need not be). Every test is bounded in time.
"""

from __future__ import annotations

import os

os.environ["OMP_NUM_THREADS"] = "1"

import base64
import io
import json
import math
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
openai = pytest.importorskip("openai")
torch.set_num_threads(1)

from qplug.types import Frame

from qplug_vlm import backend, remote, scorers, serve
from qplug_vlm.testing import build_tiny_llava

KEY = "s3cret-test-key"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    for name in (backend.ENV_MODEL, backend.ENV_ADAPTER, backend.ENV_DEVICE, backend.ENV_DTYPE, remote.ENV_ENDPOINT,
                 remote.ENV_ENDPOINT_MODEL, remote.ENV_API_KEY, serve.ENV_API_KEY):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_llava(tmp_path_factory.mktemp("serve") / "tiny-llava")


def images(count=4, seed=3):
    rng = np.random.default_rng(seed)
    sizes = [(48, 64), (120, 40), (32, 32), (90, 160)]
    return [rng.integers(0, 256, (*sizes[i % len(sizes)], 3), dtype=np.uint8) for i in range(count)]


def data_url(rgb):
    from PIL import Image

    return remote.png_data_url(Image.fromarray(rgb))


class Running:
    """An in-process server on a free port; stopped (gracefully) on exit."""

    def __init__(self, model, **config):
        self.backend = backend.load_backend(model=str(model), device="cpu")
        config.setdefault("quiet", True)
        self.app = serve.App(self.backend, serve.Config(model_id="test-model", **config))
        self.server = serve.Server(self.app, "127.0.0.1", 0)

    def __enter__(self):
        self.server.start()
        return self

    def __exit__(self, *exc):
        self.server.stop()

    @property
    def url(self):
        return self.server.url


def post(url, body, key=None, raw=None, timeout=60):
    data = raw if raw is not None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read()), dict(error.headers)


def chat_body(rgb, model="test-model", **extra):
    return dict({"model": model, "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 5,
                 "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": data_url(rgb)}},
                                                           {"type": "text", "text": "Rate this image."}]}]}, **extra)


def assert_openai_error(body, code):
    assert set(body) == {"error"}
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code and body["error"]["message"]


def test_openai_client_gets_an_answer_with_logprobs_and_prefix(tiny):
    with Running(tiny, api_key=KEY) as running:
        client = openai.OpenAI(base_url=running.url + "/v1", api_key=KEY, max_retries=0, timeout=30)
        assert [m.id for m in client.models.list()] == ["test-model"]
        rgb = images(1)[0]
        messages = chat_body(rgb)["messages"] + [{"role": "assistant", "content": "The quality of the image is"}]
        response = client.chat.completions.create(
            model="test-model", messages=messages, max_tokens=1, temperature=0, logprobs=True, top_logprobs=20,
            extra_body={"continue_final_message": True, "add_generation_prompt": False})
        choice = response.choices[0]
        top = choice.logprobs.content[0].top_logprobs
        assert len(top) == 20 and choice.message.content is not None
        assert [t.logprob for t in top] == sorted((t.logprob for t in top), reverse=True)
        assert sum(math.exp(t.logprob) for t in top) <= 1 + 1e-9
        # Greedy: the answered token is the most likely one.
        assert choice.logprobs.content[0].token == top[0].token
        generated = client.chat.completions.create(model="test-model", messages=chat_body(rgb)["messages"],
                                                   max_tokens=5, temperature=0)
        assert isinstance(generated.choices[0].message.content, str)
        with urllib.request.urlopen(running.url + "/health", timeout=10) as health:
            assert json.loads(health.read())["status"] == "ok"


def test_score_endpoint_equals_local_scoring(tiny):
    frames = [Frame.from_rgb(rgb, index=i) for i, rgb in enumerate(images(4))]
    for name, factory in (("qalign", scorers.qalign), ("qbench", scorers.qbench)):
        local = factory(model=str(tiny), device="cpu").score(frames)
        with Running(tiny) as running:
            status, body, _ = post(running.url + "/v1/score",
                                   {"scorer": name, "images": [data_url(f.rgb) for f in frames]})
        assert status == 200, body
        for mine, theirs in zip(local, body["results"]):
            assert theirs["score"] == pytest.approx(mine.value, abs=1e-4)
            for word, p in mine.levels.items():
                assert theirs["levels"][word] == pytest.approx(p, abs=1e-4)


def test_remote_backend_equals_local_scores_with_the_shipped_model():
    if not backend.has_default_model():
        pytest.skip("the shipped model is not installed")
    frames = [Frame.from_rgb(rgb, index=i) for i, rgb in enumerate(images(4, seed=11))]
    # Larger than the model's window, with its only detail in one corner: the client places the window.
    patchy = np.full((300, 520, 3), 90, np.uint8)
    patchy[40:280, 250:500] = np.random.default_rng(2).integers(0, 256, (240, 250, 3), dtype=np.uint8)
    frames.append(Frame.from_rgb(patchy, index=4))
    with Running(backend.DEFAULT_MODEL_DIR) as running:
        for name in ("qalign", "qalign_aesthetics", "qbench"):
            local = getattr(scorers, name)(device="cpu").score(frames)
            assert local[4].extra["window"]["left"] >= 250 - 224 + 1  # the noisy part, not the flat centre
            far = getattr(scorers, name)(endpoint=running.url, retries=0)
            # The server says its model sees a native 224 window, so only that window travels.
            assert far.server.native_crop == running.backend.native_crop == (224, 224)
            try:
                got = far.score(frames)
            finally:
                far.close()
            for mine, theirs in zip(local, got):
                if name == "qalign_aesthetics" and "error" in (theirs.extra or {}):
                    # This small model's aesthetics answers can leave a level word out of its top 20:
                    # then the frame is an error that says so, never a renormalised subset.
                    assert "not among the server's top 20" in theirs.extra["error"]
                    continue
                assert "error" not in (theirs.extra or {}), theirs.extra
                assert theirs.extra["window"] == mine.extra["window"]
                assert theirs.value == pytest.approx(mine.value, abs=1e-4)
                for word, p in mine.levels.items():
                    assert theirs.levels[word] == pytest.approx(p, abs=1e-4)


def test_remote_describer_and_asker_equal_local_ones_with_the_shipped_model():
    from qplug_vlm import asker as local_asker
    from qplug_vlm import describer as local_describer

    if not backend.has_default_model():
        pytest.skip("the shipped model is not installed")
    frames = [Frame.from_rgb(rgb, index=i) for i, rgb in enumerate(images(3, seed=5))]
    # Larger than the model's window, detail in one corner: both sides must look at that corner.
    patchy = np.full((300, 520, 3), 90, np.uint8)
    patchy[40:280, 250:500] = np.random.default_rng(2).integers(0, 256, (240, 250, 3), dtype=np.uint8)
    frames.append(Frame.from_rgb(patchy, index=3))
    questions = [("Is this image blurry?", ["yes", "no"]),
                 ("Which distortion is most visible?", ["noise", "blur", "compression", "none"]),
                 ("What is the main problem of this image?", None)]
    questions += [("Is the picture crisp?", ["yes", "no"]),  # read, the reader asks the other way round
                  ("Which problem does this image have?", ["grainy specks", "out of focus", "looks fine"]),
                  # read as about the whole picture: answered from the rating levels on both sides
                  ("Is this picture of poor quality?", ["yes", "no"]),
                  ("How would you rate the quality of this photo?", ["low", "medium", "high"]),
                  # one attribute's level: the kind's severity question, mapped the same way
                  ("How much noise does this image have?", ["high", "medium", "low"]),
                  # exposure with no direction named: both kinds asked, combined the same way
                  ("Is this image correctly exposed?", ["yes", "no"]),
                  ("How would you rate the exposure of this photo?", ["good", "fair", "poor"]),
                  # an option near no trained name, read by the head
                  ("Which of these spoils the shot?", ["glaring", "smeared", "grainy"])]
    with Running(backend.DEFAULT_MODEL_DIR) as running:
        describer = remote.describer(endpoint=running.url, retries=0, max_new_tokens=24)
        asker = remote.asker(endpoint=running.url, retries=0, max_new_tokens=12)
        # The shipped model's reader, here, reading for the server's copy of that model.
        read = remote.asker(endpoint=running.url, retries=0, max_new_tokens=12, reader=str(backend.DEFAULT_MODEL_DIR))
        assert describer.window == asker.window == "detail"
        try:
            local = local_describer.build(device="cpu", max_new_tokens=24).describe(frames)
            assert describer.describe(frames) == local  # greedy: the same words
            # A remote asker sends questions as written unless reader= names a reader's directory.
            pairs = [(local_asker.build(device="cpu", max_new_tokens=12, reader="off"), asker),
                     (local_asker.build(device="cpu", max_new_tokens=12), read)]
            for mine, theirs in pairs:
                for question, choices in questions:
                    expected, got = mine.ask(frames, question, choices), theirs.ask(frames, question, choices)
                    for want, have in zip(expected, got):
                        assert have.text == want.text and have.choice == want.choice
                        for option, p in (want.probabilities or {}).items():  # every letter is in the top 20 here
                            assert have.probabilities[option] == pytest.approx(p, abs=1e-4)
            assert read.reader is not None and asker.reader is None
        finally:
            describer.close()
            asker.close()
            read.close()


def test_remote_asker_turns_each_kind_at_the_readers_thresholds_as_the_local_one(tmp_path):
    """A reader directory with yes/no thresholds (qplug_vlm.thresholds): the same answers both sides."""
    import shutil

    from qplug_vlm import asker as local_asker
    from qplug_vlm import reader

    if not backend.has_default_model():
        pytest.skip("the shipped model is not installed")
    directory = tmp_path / "reader"
    directory.mkdir()
    shutil.copy(backend.DEFAULT_MODEL_DIR / reader.WEIGHTS_FILE, directory / reader.WEIGHTS_FILE)
    config = json.loads((backend.DEFAULT_MODEL_DIR / reader.CONFIG_FILE).read_text(encoding="utf-8"))
    config["yes_no_thresholds"] = {"blur": 0.97, "underexposure": 0.03, "overexposure": 0.9}
    (directory / reader.CONFIG_FILE).write_text(json.dumps(config), encoding="utf-8")
    frames = [Frame.from_rgb(rgb, index=i) for i, rgb in enumerate(images(3, seed=5))]
    questions = ["Is this image blurry?", "Is the picture crisp?", "Is this image correctly exposed?"]
    mine = local_asker.build(device="cpu", reader=str(directory))
    untouched = local_asker.build(device="cpu")
    with Running(backend.DEFAULT_MODEL_DIR) as running:
        theirs = remote.asker(endpoint=running.url, retries=0, reader=str(directory))
        try:
            for question in questions:
                expected, got = mine.ask(frames, question, ["yes", "no"]), theirs.ask(frames, question, ["yes", "no"])
                for want, have in zip(expected, got):
                    assert have.choice == want.choice
                    assert have.probabilities["yes"] == pytest.approx(want.probabilities["yes"], abs=1e-4)
        finally:
            theirs.close()
    # The thresholds did move the answers (else the comparison above shows nothing about them).
    moved = [a.probabilities["yes"] - b.probabilities["yes"]
             for a, b in zip(mine.ask(frames, questions[0], ["yes", "no"]), untouched.ask(frames, questions[0], ["yes", "no"]))]
    assert all(m < -1e-3 for m in moved)


def test_cli_endpoint_runs_every_model_component_remotely(tmp_path):
    """qplug score/describe/ask --endpoint against a real server equal the same commands run locally."""
    from PIL import Image

    if not backend.has_default_model():
        pytest.skip("the shipped model is not installed")
    for i, rgb in enumerate(images(2, seed=8)):
        Image.fromarray(np.ascontiguousarray(np.kron(rgb, np.ones((3, 3, 1), dtype=np.uint8)))).save(tmp_path / f"{i}.png")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    commands = [("score", "-s", "qalign", "-s", "qbench"), ("describe", "--option", "vlm.max_new_tokens=20"),
                ("ask", "Is this image blurry?", "--choices", "yes", "no")]

    def outputs(extra):
        found = []
        for command in commands:
            out = tmp_path / f"{command[0]}-{len(extra)}.jsonl"
            done = subprocess.run(qplug(command[0], str(tmp_path / "0.png"), str(tmp_path / "1.png"), *command[1:],
                                        "--out", str(out), *extra), env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr[-2000:]
            records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
            found.append([{k: r.get(k) for k in ("scores", "descriptions", "answers")} for r in records
                          if r.get("type") == "frame"])
        return found

    with Running(backend.DEFAULT_MODEL_DIR) as running:
        far = outputs(["--endpoint", running.url])
        forward_calls = running.app.batcher.forward_calls
    near = outputs([])
    assert forward_calls >= 2 * 3  # every command's frames went to the server
    for remote_records, local_records in zip(far, near):
        assert len(remote_records) == len(local_records) == 2
        for theirs, mine in zip(remote_records, local_records):
            assert any(mine[key] for key in ("scores", "descriptions", "answers")), mine
            assert theirs["descriptions"] == mine["descriptions"]
            for name, value in (mine["scores"] or {}).items():
                assert theirs["scores"][name] == pytest.approx(value, abs=1e-4)
            for name, answer in (mine["answers"] or {}).items():
                assert theirs["answers"][name]["choice"] == answer["choice"]


def test_remote_asker_reads_letters_and_fails_a_frame_without_them():
    asker = remote.RemoteAsker.__new__(remote.RemoteAsker)

    class Server:
        def __init__(self, top):
            self.top = top

        def complete(self, messages, **options):
            entries = [type("E", (), {"token": t, "logprob": lp})() for t, lp in self.top]
            content = [type("C", (), {"top_logprobs": entries})()]
            return type("R", (), {"choices": [type("X", (), {"logprobs": type("L", (), {"content": content})()})()]})()

    from PIL import Image

    image = Image.new("RGB", (8, 8))
    asker.server = Server([("B", -0.2), (" A", -1.9), ("the", -3.0)])
    # C is not among the top tokens: it gets the last one's log-probability, an upper bound
    assert asker._letter_logprobs(image, "q", ["A", "B", "C"]) == [-1.9, -0.2, -3.0]
    asker.server = Server([("the", -0.1), ("a", -1.0)])
    with pytest.raises(remote.RemoteError, match="none of the answer tokens"):
        asker._letter_logprobs(image, "q", ["A", "B"])


def test_level_word_outside_top_k_or_no_logprobs_is_a_frame_error():
    scorer = remote.RemoteLevelScorer.__new__(remote.RemoteLevelScorer)
    from qplug_vlm.prompts import method

    scorer.sets = method("qalign").level_sets(False)
    scorer.low, scorer.high, scorer.prefill = 1, 5, True
    top = [(" good", -0.1), (" fair", -2.0), (" poor", -3.0), (" bad", -4.0), (" the", -5.0)]
    with pytest.raises(remote._NoLevels, match="'excellent' not among"):
        scorer._from_logprobs(top)
    full = scorer._from_logprobs(top + [(" excellent", -6.0)])
    assert sum(full.levels.values()) == pytest.approx(1.0)

    class Empty:
        choices = [type("C", (), {"logprobs": None})()]

    with pytest.raises(remote._NoLevels, match="no logprobs"):
        remote._top_logprobs(Empty())


def test_concurrent_requests_are_batched(tiny):
    with Running(tiny, batch_wait_ms=50, max_batch=16) as running:
        before = running.app.batcher.forward_calls
        results = []

        def one(rgb):
            results.append(post(running.url + "/v1/chat/completions", chat_body(rgb)))

        threads = [threading.Thread(target=one, args=(rgb,)) for rgb in images(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        calls = running.app.batcher.forward_calls - before
    assert [status for status, _, _ in results] == [200] * 8
    assert calls < 8, running.app.batcher.batch_sizes


def test_full_queue_answers_429_with_retry_after(tiny):
    gate = threading.Event()
    with Running(tiny, max_batch=1, max_queue=1, batch_wait_ms=0) as running:
        real_forward = running.backend.forward

        def slow_forward(batch):
            gate.wait(30)
            return real_forward(batch)

        running.app.batcher.backend = type("Slow", (), {"prepare": running.backend.prepare,
                                                         "forward": staticmethod(slow_forward)})()
        results = []

        def one(rgb):
            results.append(post(running.url + "/v1/chat/completions", chat_body(rgb)))

        threads = [threading.Thread(target=one, args=(rgb,)) for rgb in images(4)]
        for thread in threads:
            thread.start()
            time.sleep(0.2)  # one runs (blocked), one waits in the queue, the rest find it full
        deadline = time.monotonic() + 20
        while len(results) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        gate.set()
        for thread in threads:
            thread.join(60)
    statuses = sorted(status for status, _, _ in results)
    assert statuses.count(429) >= 1 and statuses.count(200) >= 2, statuses
    status, body, headers = next(r for r in results if r[0] == 429)
    assert headers.get("Retry-After") == "1"
    assert_openai_error(body, "queue_full")
    assert body["error"]["type"] == "rate_limit_exceeded"


def test_bad_requests_get_openai_errors(tiny):
    rgb = images(1)[0]
    with Running(tiny, api_key=KEY, max_body_bytes=200_000) as running:
        chat = running.url + "/v1/chat/completions"
        status, body, _ = post(chat, chat_body(rgb))
        assert status == 401
        assert_openai_error(body, "invalid_api_key")
        status, body, _ = post(chat, chat_body(rgb), key="wrong")
        assert status == 401
        status, body, _ = post(chat, chat_body(rgb, model="nope"), key=KEY)
        assert status == 404
        assert_openai_error(body, "model_not_found")
        bad = chat_body(rgb)
        bad["messages"][0]["content"][0]["image_url"]["url"] = "data:image/png;base64," + base64.b64encode(
            b"not a png").decode()
        status, body, _ = post(chat, bad, key=KEY)
        assert status == 400
        assert_openai_error(body, "invalid_image")
        remote_url = chat_body(rgb)
        remote_url["messages"][0]["content"][0]["image_url"]["url"] = "http://example.com/x.png"
        status, body, _ = post(chat, remote_url, key=KEY)
        assert status == 400
        assert_openai_error(body, "invalid_image_url")
        status, body, _ = post(chat, chat_body(rgb, top_logprobs=21), key=KEY)
        assert status == 400 and body["error"]["param"] == "top_logprobs"
        status, body, _ = post(chat, None, raw=b"x" * 300_000, key=KEY)
        assert status == 413
        assert_openai_error(body, "request_too_large")
        status, body, _ = post(running.url + "/v1/nothing", {}, key=KEY)
        assert status == 404
        status, body, _ = post(running.url + "/v1/score", {"scorer": "nope", "images": [data_url(rgb)]}, key=KEY)
        assert status == 404
        assert_openai_error(body, "scorer_not_found")
        # The server still answers after all that.
        status, body, _ = post(chat, chat_body(rgb), key=KEY)
        assert status == 200


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(url, process, seconds=90):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"qplug serve exited {process.returncode}: {process.stderr.read()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("qplug serve did not come up")


def qplug(*args):
    return [sys.executable, "-m", "qplug", *args] if (ROOT / "qplug" / "__main__.py").is_file() else \
        [str(Path(sys.executable).with_name("qplug")), *args]


def test_killed_server_gives_frame_errors_not_a_hang(tiny, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = dict(os.environ, OMP_NUM_THREADS="1", QPLUG_API_KEY=KEY)
    server = subprocess.Popen(qplug("serve", "--model", str(tiny), "--device", "cpu", "--port", str(port), "--quiet"),
                              env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(url, server)
        out = tmp_path / "scores.jsonl"
        env_score = dict(os.environ, OMP_NUM_THREADS="1", OPENAI_API_KEY=KEY)
        scoring = subprocess.Popen(
            qplug("score", str(ROOT / "samples" / "pan.mp4"), "-s", "qalign", "--fps", "8", "--batch-size", "2",
                  "--option", f"qalign.endpoint={url}", "--option", "qalign.retries=1", "--option", "qalign.timeout=5",
                  "--out", str(out), "--quiet"),
            env=env_score, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and scoring.poll() is None:
            if out.is_file() and '"index"' in out.read_text():
                break
            time.sleep(0.1)
        server.kill()  # mid-run: some frames scored, the rest must become errors
        server.wait(10)
        _, stderr = scoring.communicate(timeout=150)
    finally:
        for process in (server,):
            if process.poll() is None:
                process.kill()
    records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    frames = [r for r in records if "index" in r and r.get("type", "frame") == "frame"]
    errors = [r for r in frames if r.get("errors")]
    assert errors, stderr
    assert any("qalign" in json.dumps(r["errors"]) for r in errors)
    run = next(r for r in records if r.get("type") == "run")
    assert scoring.returncode == run["exit_code"] == 2, (scoring.returncode, stderr[-2000:])
    assert run["outcome"] == "errors"


def test_sigterm_finishes_in_flight_requests(tiny):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(qplug("serve", "--model", str(tiny), "--device", "cpu", "--port", str(port), "--quiet",
                                    "--batch-wait-ms", "300"),
                              env=dict(os.environ, OMP_NUM_THREADS="1"), stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(url, server)
        result = []
        thread = threading.Thread(target=lambda: result.append(
            post(url + "/v1/chat/completions", chat_body(images(1)[0], model="tiny-llava"))))
        thread.start()
        time.sleep(0.1)  # the request is waiting for its batch
        server.send_signal(signal.SIGTERM)
        thread.join(60)
        assert server.wait(60) == 0
    finally:
        if server.poll() is None:
            server.kill()
    assert result and result[0][0] == 200, result
    assert KEY not in server.stderr.read()


def test_components_that_cannot_run_remotely_say_so():
    from qplug.errors import UsageError
    from qplug_vlm import asker, textscore

    with pytest.raises(UsageError, match="qscore-text runs only with the model in this process"):
        textscore.build(endpoint="http://127.0.0.1:9")
    with pytest.raises(UsageError, match="pad_square cannot be used with endpoint="):
        remote._refuse_local_options({"pad_square": True})
    with pytest.raises(UsageError, match="could not be asked for its models"):
        asker.build(endpoint="http://127.0.0.1:9", retries=0, timeout=2)  # nothing listens on port 9


def test_endpoint_and_model_together_are_a_usage_error(tmp_path):
    done = subprocess.run(qplug("score", str(tmp_path), "--endpoint", "http://127.0.0.1:9", "--model", str(tmp_path)),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--endpoint runs the model on the server" in done.stderr
    assert "Traceback" not in done.stderr
