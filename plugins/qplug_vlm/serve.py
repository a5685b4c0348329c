"""``qplug serve``: one model in memory behind a small OpenAI-compatible HTTP API, with dynamic batching.

Endpoints (see ``docs/serving.md``):

- ``GET /health``: ``{"status": "ok", ...}`` with counters (requests, forward passes); no key needed.
- ``GET /v1/models``: the one served model.
- ``POST /v1/chat/completions``: one image (a ``data:`` URL) per conversation, ``max_tokens``,
  ``temperature``, ``logprobs`` + ``top_logprobs`` (<= 20, with ``max_tokens=1``), ``n=1``, and vLLM's
  ``continue_final_message`` + ``add_generation_prompt=false`` (a final assistant message is a prefix:
  how Q-Align scores are read remotely).
- ``POST /v1/score``: qplug's own: ``{"scorer": "qalign", "images": [data URLs], "options": {...}}`` in,
  each image's score, level probabilities and extras out, exactly as ``qplug score`` computes them.

Requests that arrive within ``--batch-wait-ms`` of each other are run as one forward pass (one
prefill for scoring requests); the queue is bounded (429 + Retry-After when full), bodies are
bounded (413), each request has a timeout (504), SIGTERM stops accepting and finishes what is in
flight. Errors use OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``.

This module stays light (argparse set-up only); torch and transformers load in the handler.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hmac
import io
import json
import os
import queue
import signal
import sys
import threading
import time
import uuid
from concurrent.futures import CancelledError, Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Sequence

ENV_API_KEY = "QPLUG_API_KEY"
MAX_TOP_LOGPROBS = 20
#: The level scorers /v1/score serves: name -> (method, aspect).
SCORERS = {"qalign": ("qalign", "quality"), "qalign-aesthetics": ("qalign", "aesthetics"), "qbench": ("qbench", None)}
_SCORE_OPTIONS = {"medium", "synonyms", "preset", "windows", "window_pool", "image_max_side", "pad_square"}


# ---------------------------------------------------------------------------------------------
# Errors in OpenAI's shape


class ApiError(Exception):
    """An answer other than 200: status, OpenAI error type, message, offending parameter, code."""

    def __init__(self, status: int, message: str, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    return ApiError(400, message, "invalid_request_error", param, code)


# ---------------------------------------------------------------------------------------------
# Dynamic batching


@dataclass
class Job:
    """Work for the model: ``logits`` (one prefill, next-token logits) or ``generate`` (text)."""

    kind: str
    images: list[Any]
    texts: list[str]
    settings: Any = None
    future: Future = field(default_factory=Future)

    def key(self) -> Any:
        return ("logits",) if self.kind == "logits" else ("generate", self.settings)


_STOP = object()


class Batcher:
    """One worker thread that owns the model: takes jobs from a bounded queue and runs those that
    arrive within ``wait_s`` of the first (up to ``max_batch`` images) as one batch.

    :param max_batch: images per forward pass; 1 disables batching.
    :param max_queue: jobs waiting at most; :meth:`submit` raises ``queue.Full`` beyond it.
    """

    def __init__(self, backend: Any, max_batch: int = 16, wait_s: float = 0.005, max_queue: int = 64) -> None:
        self.backend = backend
        self.max_batch, self.wait_s = max(1, int(max_batch)), max(0.0, float(wait_s))
        self.queue: "queue.Queue[Any]" = queue.Queue(maxsize=max(1, int(max_queue)))
        self.forward_calls = 0
        self.batch_sizes: list[int] = []
        self._thread = threading.Thread(target=self._loop, name="qplug-serve-batcher", daemon=True)
        self._thread.start()

    def submit(self, job: Job) -> Future:
        self.queue.put_nowait(job)
        return job.future

    def stop(self, timeout: float | None = None) -> None:
        """Run everything already queued, then end the worker."""
        self.queue.put(_STOP)
        self._thread.join(timeout)

    def _loop(self) -> None:
        stopping = False
        while not stopping:
            first = self.queue.get()
            if first is _STOP:
                return
            jobs = [first]
            size = len(first.images)
            deadline = time.monotonic() + self.wait_s
            while size < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    job = self.queue.get(timeout=remaining) if remaining > 0 else self.queue.get_nowait()
                except queue.Empty:
                    break
                if job is _STOP:
                    stopping = True
                    break
                jobs.append(job)
                size += len(job.images)
            groups: dict[Any, list[Job]] = {}
            for job in jobs:
                groups.setdefault(job.key(), []).append(job)
            for group in groups.values():
                self._run_chunks([job for job in group if job.future.set_running_or_notify_cancel()])

    def _run_chunks(self, jobs: list[Job]) -> None:
        """Run jobs in chunks of at most ``max_batch`` images (a larger single job runs alone)."""
        chunk: list[Job] = []
        size = 0
        for job in jobs:
            if chunk and size + len(job.images) > self.max_batch:
                self._run(chunk)
                chunk, size = [], 0
            chunk.append(job)
            size += len(job.images)
        if chunk:
            self._run(chunk)

    def _run(self, jobs: list[Job]) -> None:
        try:
            outputs = self._call(jobs)
        except Exception as exc:
            if len(jobs) > 1:  # one bad request must not fail the others batched with it
                for job in jobs:
                    self._run([job])
                return
            jobs[0].future.set_exception(exc)
            return
        start = 0
        for job in jobs:
            job.future.set_result(outputs[start:start + len(job.images)])
            start += len(job.images)

    def _call(self, jobs: list[Job]) -> list[Any]:
        images = [image for job in jobs for image in job.images]
        texts = [text for job in jobs for text in job.texts]
        self.forward_calls += 1
        self.batch_sizes.append(len(images))
        if jobs[0].kind == "logits":
            batch = self.backend.prepare(images, texts)
            logits = self.backend.forward(batch)
            mask = batch.get("attention_mask") if hasattr(batch, "get") else None
            counts = [int(n) for n in mask.sum(dim=1).tolist()] if mask is not None else [0] * len(images)
            return [(logits[row], counts[row]) for row in range(len(images))]
        return self.backend.generate(images, texts, jobs[0].settings)


class BatchedBackend:
    """The backend as a :class:`~qplug_vlm.scorers.LevelScorer` sees it, with ``next_token_logits``
    going through the batcher (so /v1/score requests share prefills). Everything else is the backend's."""

    def __init__(self, backend: Any, batcher: Batcher, timeout: float) -> None:
        self._backend, self._batcher, self._timeout = backend, batcher, timeout

    def __getattr__(self, name: str) -> Any:
        return getattr(self._backend, name)

    def next_token_logits(self, images: Sequence[Any], texts: Sequence[str]) -> Any:
        import torch

        rows = wait(self._batcher, Job("logits", list(images), list(texts)), self._timeout)
        return torch.stack([row for row, _ in rows])


def wait(batcher: Batcher, job: Job, timeout: float) -> Any:
    """Queue ``job`` and wait for it: 429 when the queue is full, 504 past ``timeout``."""
    try:
        future = batcher.submit(job)
    except queue.Full:
        raise ApiError(429, "the server's queue is full; retry later", "rate_limit_exceeded", None,
                       "queue_full", headers={"Retry-After": "1"}) from None
    try:
        return future.result(timeout=timeout)
    except FutureTimeout:
        future.cancel()
        raise ApiError(504, f"the request was not answered within {timeout:g} s", "timeout", None,
                       "timeout") from None
    except CancelledError:
        raise ApiError(503, "the server is shutting down", "server_error", None, "shutting_down") from None
    except ApiError:
        raise
    except Exception as exc:
        raise ApiError(400 if _is_input_problem(exc) else 500, f"the model failed on this request: "
                       f"{type(exc).__name__}: {exc}", "invalid_request_error" if _is_input_problem(exc)
                       else "server_error") from exc


def _is_input_problem(exc: BaseException) -> bool:
    from qplug.errors import QplugError

    return isinstance(exc, (QplugError, ValueError))


# ---------------------------------------------------------------------------------------------
# The application (independent of HTTP: the handler below only moves bytes)


def default_max_batch(device: Any) -> int:
    """Images per forward pass when ``--max-batch`` is not given.

    On a CPU a forward pass gains from batching only while the batch's activations fit the caches:
    the default model (EfficientNet-Lite0 tower) on 2 cores ran 23 ms an image at batch 1, 12-13 at
    batch 4-8 and 17 at batch 16 (bench/bench_serve.py), so larger batches run as chunks of 8. A GPU
    is far from saturated at 16 images of a 7B model; 32 keeps its prefill busy.
    """
    return 8 if str(getattr(device, "type", device)).startswith("cpu") else 32


@dataclass
class Config:
    """Server settings (``qplug serve``'s arguments)."""

    model_id: str
    api_key: str | None = None
    max_batch: int = 16
    batch_wait_ms: float = 5.0
    max_queue: int = 64
    max_body_bytes: int = 32 * 1024 * 1024
    request_timeout: float = 120.0
    allow_remote_images: bool = False
    quiet: bool = False


class App:
    """Requests in, answers out: parsing, prompts, the batcher, the scorers of /v1/score."""

    def __init__(self, backend: Any, config: Config) -> None:
        self.backend, self.config = backend, config
        self.batcher = Batcher(backend, config.max_batch, config.batch_wait_ms / 1000, config.max_queue)
        self.batched = BatchedBackend(backend, self.batcher, config.request_timeout)
        self.created = int(time.time())
        self.requests = 0
        self._scorers: dict[Any, Any] = {}
        self._scorers_lock = threading.Lock()
        self._count_lock = threading.Lock()

    # -- authentication --------------------------------------------------------------------------

    def check_key(self, header: str | None) -> None:
        key = self.config.api_key
        if not key:
            return
        given = ""
        if header and header[:7].lower() == "bearer ":
            given = header[7:].strip()
        if not hmac.compare_digest(given.encode("utf-8"), key.encode("utf-8")):
            raise ApiError(401, "missing or wrong API key (send Authorization: Bearer KEY)", "invalid_request_error",
                           None, "invalid_api_key")

    # -- routes ----------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "model": self.config.model_id, "requests": self.requests,
                "forward_calls": self.batcher.forward_calls, "queued": self.batcher.queue.qsize()}

    def models(self) -> dict[str, Any]:
        model: dict[str, Any] = {"id": self.config.model_id, "object": "model", "created": self.created,
                                 "owned_by": "qplug"}
        crop = self.backend.native_crop
        if crop is not None:
            # The model sees only this centre window at native resolution: qplug's remote components
            # send just that window (the same pixels the server would crop, a fraction of the bytes).
            model["qplug"] = {"native_crop": list(crop)}
        return {"object": "list", "data": [model]}

    def _count(self) -> None:
        with self._count_lock:
            self.requests += 1

    def _check_model(self, body: dict[str, Any], required: bool) -> None:
        model = body.get("model")
        if model is None and not required:
            return
        if model != self.config.model_id:
            raise ApiError(404, f"the model {model!r} does not exist (this server has {self.config.model_id!r})",
                           "invalid_request_error", "model", "model_not_found")

    def chat_completions(self, body: dict[str, Any]) -> dict[str, Any]:
        self._count()
        self._check_model(body, required=True)
        n = body.get("n", 1)
        if n not in (1, None):
            raise bad_request("only n=1 is supported", "n")
        if body.get("stream"):
            raise bad_request("streaming is not supported", "stream")
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens", 16))
        if max_tokens is None:
            max_tokens = 16
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= 4096:
            raise bad_request("max_tokens must be a whole number from 1 to 4096", "max_tokens")
        temperature = body.get("temperature", 1.0)
        temperature = 1.0 if temperature is None else temperature
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            raise bad_request("temperature must be a number from 0 to 2", "temperature")
        logprobs = bool(body.get("logprobs", False))
        top = body.get("top_logprobs")
        if top is not None:
            if isinstance(top, bool) or not isinstance(top, int) or not 0 <= top <= MAX_TOP_LOGPROBS:
                raise bad_request(f"top_logprobs must be a whole number from 0 to {MAX_TOP_LOGPROBS}", "top_logprobs")
            if not logprobs:
                raise bad_request("top_logprobs needs logprobs=true", "top_logprobs")
        if logprobs and max_tokens != 1:
            raise bad_request("logprobs are returned with max_tokens=1 only (one prefill) on this server", "logprobs")
        add_generation_prompt = body.get("add_generation_prompt", True)
        continue_final = bool(body.get("continue_final_message", False))
        if continue_final and add_generation_prompt:
            raise bad_request("continue_final_message needs add_generation_prompt=false", "continue_final_message")
        template_kwargs = body.get("chat_template_kwargs") or {}
        if not isinstance(template_kwargs, dict):
            raise bad_request("chat_template_kwargs must be an object", "chat_template_kwargs")
        image, text = self.render_chat(body.get("messages"), bool(add_generation_prompt), continue_final,
                                       template_kwargs)
        if max_tokens == 1:
            ((logits, prompt_tokens),) = wait(self.batcher, Job("logits", [image], [text]),
                                              self.config.request_timeout)
            token_id, entry = self._first_token(logits, float(temperature), top if logprobs else None)
            content = self.backend.tokenizer.decode([token_id], skip_special_tokens=True)
            finish = "stop" if token_id == self.backend.tokenizer.eos_token_id else "length"
            choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": content},
                                      "logprobs": {"content": [entry]} if logprobs else None, "finish_reason": finish}
            completion_tokens = 1
        else:
            from .backend import GenerationSettings

            settings = GenerationSettings(max_new_tokens=max_tokens, do_sample=temperature > 0,
                                          temperature=float(temperature) if temperature > 0 else 1.0)
            (content,) = wait(self.batcher, Job("generate", [image], [text], settings), self.config.request_timeout)
            prompt_tokens = 0
            completion_tokens = len(self.backend.tokenizer(content, add_special_tokens=False)["input_ids"])
            choice = {"index": 0, "message": {"role": "assistant", "content": content}, "logprobs": None,
                      "finish_reason": "length" if completion_tokens >= max_tokens else "stop"}
        return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
                "model": self.config.model_id, "choices": [choice],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}

    def _first_token(self, logits: Any, temperature: float, top: int | None) -> tuple[int, dict[str, Any]]:
        import torch

        logprobs = torch.log_softmax(logits.double(), dim=-1)
        if temperature > 0:
            probabilities = torch.softmax(logits.double() / temperature, dim=-1)
            token_id = int(torch.multinomial(probabilities, 1)[0])
        else:
            token_id = int(torch.argmax(logits))
        entry = self._logprob(token_id, float(logprobs[token_id]))
        if top:
            values, ids = torch.topk(logprobs, min(top, logprobs.shape[-1]))
            entry["top_logprobs"] = [self._logprob(int(i), float(v)) for v, i in zip(values.tolist(), ids.tolist())]
        else:
            entry["top_logprobs"] = []
        return token_id, entry

    def _logprob(self, token_id: int, value: float) -> dict[str, Any]:
        text = self.backend.tokenizer.decode([token_id])
        return {"token": text, "logprob": value, "bytes": list(text.encode("utf-8"))}

    def render_chat(self, messages: Any, add_generation_prompt: bool, continue_final: bool,
                    template_kwargs: dict[str, Any]) -> tuple[Any, str]:
        """The one image and the prompt text of an OpenAI ``messages`` list, rendered as
        :meth:`Backend.render <qplug_vlm.backend.Backend.render>` renders qplug's own prompts."""
        if not isinstance(messages, list) or not messages:
            raise bad_request("messages must be a non-empty list", "messages")
        converted: list[dict[str, Any]] = []
        images: list[Any] = []
        for number, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
                raise bad_request(f"messages[{number}] needs a role of system, user or assistant", "messages")
            content = message.get("content")
            parts: list[dict[str, Any]] = []
            if isinstance(content, str):
                parts.append({"type": "text", "text": content})
            elif isinstance(content, list):
                for part in content:
                    kind = part.get("type") if isinstance(part, dict) else None
                    if kind == "text" and isinstance(part.get("text"), str):
                        parts.append({"type": "text", "text": part["text"]})
                    elif kind == "image_url":
                        url = part.get("image_url")
                        url = url.get("url") if isinstance(url, dict) else url
                        images.append(self.read_image(url))
                        parts.append({"type": "image"})
                    else:
                        raise bad_request(f"messages[{number}]: content parts must be text or image_url", "messages")
            else:
                raise bad_request(f"messages[{number}]: content must be a string or a list of parts", "messages")
            converted.append({"role": message["role"], "content": parts})
        if len(images) != 1:
            raise bad_request(f"exactly one image per conversation is supported (got {len(images)})", "messages")
        if continue_final and converted[-1]["role"] != "assistant":
            raise bad_request("continue_final_message needs a final assistant message", "messages")
        backend = self.backend
        try:
            text = backend.processor.apply_chat_template(converted, tokenize=False,
                                                         add_generation_prompt=add_generation_prompt,
                                                         continue_final_message=continue_final, **template_kwargs)
        except Exception as exc:
            raise bad_request(f"the chat template failed on these messages: {type(exc).__name__}: {exc}",
                              "messages") from None
        if isinstance(text, list):
            text = text[0]
        if continue_final:
            final = "".join(p.get("text", "") for p in converted[-1]["content"])
            trailing = final[len(final.rstrip()):]
            if trailing and not text.endswith(trailing):
                text += trailing
        bos = getattr(backend, "_bos_text", "")
        if bos and not text.startswith(bos):
            text = bos + text
        return self._prepare_image(images[0]), text

    def _prepare_image(self, image: Any) -> Any:
        """As qplug's scorers do: long side bounded, padded to a square or centre-cropped as the model wants."""
        import numpy as np

        from qplug.types import Frame

        from .images import DEFAULT_MAX_SIDE, to_pil

        frame = Frame.from_rgb(np.asarray(image), source_id="request")
        return to_pil(frame, DEFAULT_MAX_SIDE, self.backend.pad_fill(None), self.backend.native_crop)

    def read_image(self, url: Any) -> Any:
        """A PIL RGB image from a ``data:`` URL (remote URLs only with ``--allow-remote-images``)."""
        if not isinstance(url, str) or not url:
            raise bad_request("image_url needs a url", "messages", "invalid_image_url")
        if url.startswith(("http://", "https://")):
            if not self.config.allow_remote_images:
                raise bad_request("remote image URLs are refused; send the image as a data: URL (or start the "
                                  "server with --allow-remote-images)", "messages", "invalid_image_url")
            data = _fetch(url, self.config.max_body_bytes)
        elif url.startswith("data:"):
            header, comma, payload = url.partition(",")
            if not comma or ";base64" not in header:
                raise bad_request("image data URLs must be base64 (data:image/png;base64,...)", "messages",
                                  "invalid_image_url")
            try:
                data = base64.b64decode(payload, validate=True)
            except (binascii.Error, ValueError):
                raise bad_request("the image data URL is not valid base64", "messages", "invalid_image") from None
        else:
            raise bad_request("image_url must be a data: URL", "messages", "invalid_image_url")
        return decode_image(data)

    # -- /v1/score -------------------------------------------------------------------------------

    def score(self, body: dict[str, Any]) -> dict[str, Any]:
        self._count()
        self._check_model(body, required=False)
        name = body.get("scorer", "qalign")
        if name not in SCORERS:
            raise ApiError(404, f"unknown scorer {name!r} (this server scores with {', '.join(SCORERS)})",
                           "invalid_request_error", "scorer", "scorer_not_found")
        options = body.get("options") or {}
        if not isinstance(options, dict) or set(options) - _SCORE_OPTIONS:
            raise bad_request(f"options must be an object with keys among {sorted(_SCORE_OPTIONS)}", "options")
        urls = body.get("images")
        if not isinstance(urls, list) or not urls:
            raise bad_request("images must be a non-empty list of data: URLs", "images")
        scorer = self._scorer(name, options)
        import numpy as np

        from qplug.types import Frame

        frames = [Frame.from_rgb(np.asarray(self.read_image(url)), source_id="request", index=i)
                  for i, url in enumerate(urls)]
        results = []
        for score in scorer.score(frames):
            results.append({"score": score.value, "levels": dict(score.levels or {}), "extra": dict(score.extra or {})})
        return {"object": "score", "model": self.config.model_id, "scorer": name, "results": results}

    def _scorer(self, name: str, options: dict[str, Any]) -> Any:
        from qplug.errors import QplugError

        from .prompts import method as lookup_method
        from .scorers import LevelScorer

        key = (name, json.dumps(options, sort_keys=True))
        with self._scorers_lock:
            scorer = self._scorers.get(key)
            if scorer is None:
                method, aspect = SCORERS[name]
                kwargs = dict(options)
                kwargs.setdefault("preset", "auto")
                if aspect:
                    kwargs["aspect"] = aspect
                try:
                    scorer = LevelScorer(self.batched, lookup_method(method), **kwargs)
                except (QplugError, TypeError, ValueError) as exc:
                    raise bad_request(f"{name}: {exc}", "options") from None
                self._scorers[key] = scorer
            return scorer


def decode_image(data: bytes) -> Any:
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.convert("RGB")
    except Exception as exc:  # truncated, not an image, a decompression bomb
        raise bad_request(f"the image could not be decoded: {type(exc).__name__}: {exc}", "messages",
                          "invalid_image") from None


def _fetch(url: str, limit: int) -> bytes:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - asked for with --allow-remote-images
            data = response.read(limit + 1)
    except Exception as exc:
        raise bad_request(f"the image URL could not be fetched: {type(exc).__name__}", "messages",
                          "invalid_image_url") from None
    if len(data) > limit:
        raise ApiError(413, "the remote image is too large", "invalid_request_error", "messages", "image_too_large")
    return data


# ---------------------------------------------------------------------------------------------
# HTTP


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "qplug-serve"
    #: Idle keep-alive connections are closed after this many seconds, so a graceful stop (which joins
    #: every connection's thread) never waits on a client that keeps its connection open.
    timeout = 5

    @property
    def app(self) -> App:
        return self.server.app  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        if not self.app.config.quiet:  # method, path and status only: never headers (the API key)
            sys.stderr.write(f"qplug serve: {self.address_string()} {format % args}\n")

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._dispatch("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        try:
            path = self.path.split("?", 1)[0].rstrip("/") or "/"
            if method == "GET" and path == "/health":
                return self._send(200, self.app.health())
            routes: dict[tuple[str, str], Callable[..., Any]] = {
                ("GET", "/v1/models"): self.app.models,
                ("POST", "/v1/chat/completions"): self.app.chat_completions,
                ("POST", "/v1/score"): self.app.score,
            }
            route = routes.get((method, path))
            if route is None:
                self._drain()
                raise ApiError(404, f"no route {method} {path}", "invalid_request_error", None, "not_found")
            if method == "POST":
                body = self._body()  # size first: an oversized body is refused before the key is even checked
                self.app.check_key(self.headers.get("Authorization"))
                return self._send(200, route(body))
            self.app.check_key(self.headers.get("Authorization"))
            return self._send(200, route())
        except ApiError as exc:
            self._send(exc.status, exc.body(), exc.headers)
        except Exception as exc:  # a bug: answer 500 rather than drop the connection
            self._send(500, ApiError(500, f"internal error: {type(exc).__name__}", "server_error").body())

    def _drain(self) -> None:
        length = self.headers.get("Content-Length")
        if length and length.isdigit() and int(length) <= self.app.config.max_body_bytes:
            self.rfile.read(int(length))
        elif length:
            self.close_connection = True

    def _body(self) -> dict[str, Any]:
        length = self.headers.get("Content-Length")
        if length is None or not length.strip().isdigit():
            self.close_connection = True
            raise bad_request("a JSON body with Content-Length is required")
        size = int(length)
        if size > self.app.config.max_body_bytes:
            self.close_connection = True  # the body is left unread
            raise ApiError(413, f"the request body ({size} bytes) exceeds the limit of "
                                f"{self.app.config.max_body_bytes} bytes", "invalid_request_error", None,
                           "request_too_large")
        raw = self.rfile.read(size)
        try:
            body = json.loads(raw)
        except ValueError:
            raise bad_request("the body is not valid JSON") from None
        if not isinstance(body, dict):
            raise bad_request("the body must be a JSON object")
        return body

    def _send(self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


class Server(ThreadingHTTPServer):
    """The HTTP server around an :class:`App`; request threads are joined on close (graceful stop)."""

    daemon_threads = False
    block_on_close = True
    allow_reuse_address = True
    # The listen backlog: socketserver's default of 5 made a sixth simultaneous connection wait for
    # the kernel's SYN retry (1 s, then 3 s) or be reset; a QC farm opens dozens at once.
    request_queue_size = 256

    def __init__(self, app: App, host: str = "127.0.0.1", port: int = 8000) -> None:
        self.app = app
        super().__init__((host, port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> threading.Thread:
        """Serve in a background thread (tests, benchmarks)."""
        thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        """Stop accepting, finish the requests in flight, then the batcher's queue."""
        self.shutdown()
        self.server_close()
        self.app.batcher.stop(timeout=30)


# ---------------------------------------------------------------------------------------------
# The command


def setup(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    """``qplug serve``'s arguments; returns its handler."""
    parser.add_argument("--model", help="checkpoint directory (default: $QPLUG_MODEL, else qplug's own model)")
    parser.add_argument("--adapter", help="peft adapter directory")
    parser.add_argument("--device", help="auto, cpu, cuda, cuda:N, mps (default: auto)")
    parser.add_argument("--dtype", help="auto, bfloat16, float16, float32")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", help=f"require Authorization: Bearer KEY (default: ${ENV_API_KEY})")
    parser.add_argument("--served-model-name", help="the model id clients name (default: the directory's name)")
    parser.add_argument("--max-batch", type=int, help="images per forward pass (default 8 on a CPU, 32 on a GPU)")
    parser.add_argument("--batch-wait-ms", type=float, default=5.0,
                        help="how long the first request of a batch waits for others (default 5)")
    parser.add_argument("--no-batching", action="store_true", help="one request per forward pass")
    parser.add_argument("--max-queue", type=int, default=64, help="requests waiting at most; then 429 (default 64)")
    parser.add_argument("--max-body-mb", type=float, default=32.0, help="largest request body (default 32 MB)")
    parser.add_argument("--request-timeout", type=float, default=120.0, help="seconds per request (default 120)")
    parser.add_argument("--allow-remote-images", action="store_true", help="fetch http(s) image URLs")
    parser.add_argument("--quiet", action="store_true", help="no access log")
    return handle


def build_app(args: argparse.Namespace) -> App:
    from .backend import load_backend

    options = {k: v for k, v in (("model", args.model), ("adapter", args.adapter), ("device", args.device),
                                 ("dtype", args.dtype)) if v}
    backend = load_backend(**options)
    name = args.served_model_name or os.path.basename(backend.name.rstrip("/")) or "qplug"
    config = Config(model_id=name, api_key=args.api_key or os.environ.get(ENV_API_KEY) or None,
                    max_batch=1 if args.no_batching else args.max_batch or default_max_batch(backend.device),
                    batch_wait_ms=args.batch_wait_ms,
                    max_queue=args.max_queue, max_body_bytes=int(args.max_body_mb * 1024 * 1024),
                    request_timeout=args.request_timeout, allow_remote_images=args.allow_remote_images,
                    quiet=args.quiet)
    return App(backend, config)


def handle(args: argparse.Namespace) -> int:
    from qplug.errors import UsageError

    app = build_app(args)
    try:
        server = Server(app, args.host, args.port)
    except OSError as exc:
        raise UsageError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}") from None
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    auth = "API key required" if app.config.api_key else "no API key"
    print(f"qplug serve: {app.config.model_id} on {server.url} ({auth}); SIGTERM or Ctrl-C stops", file=sys.stderr,
          flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()  # joins the request threads: in-flight requests are answered
        app.batcher.stop(timeout=60)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("qplug serve: stopped", file=sys.stderr, flush=True)
    return 0
