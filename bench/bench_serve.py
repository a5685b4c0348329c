"""``qplug serve`` throughput: images/s and p50/p99 latency of /v1/chat/completions Q-Align requests
(max_tokens=1, top_logprobs=20, prefix) at 1, 4 and 16 concurrent clients, batched and unbatched.

The clients run in a separate process (as they would on other machines), so their JSON and HTTP
work does not compete with the server for its interpreter lock.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_serve.py [--model DIR] [--requests N] [--max-batch N ...]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import threading
import time
import urllib.request

import numpy as np
from PIL import Image

from qplug_vlm import remote, serve
from qplug_vlm.backend import load_backend


def body(url: str) -> bytes:
    return json.dumps({"model": "bench", "max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 20,
                       "continue_final_message": True, "add_generation_prompt": False,
                       "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                                                 {"type": "text", "text": "How would you rate the quality of this image?"}]},
                                    {"role": "assistant", "content": "The quality of the image is"}]}).encode()


def run(server_url: str, payload: bytes, clients: int, requests: int) -> tuple[float, list[float]]:
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = max(1, requests // clients)

    def client() -> None:
        for _ in range(per_client):
            start = time.perf_counter()
            req = urllib.request.Request(server_url + "/v1/chat/completions", data=payload,
                                         headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(req, timeout=120) as response:
                response.read()
            with lock:
                latencies.append(time.perf_counter() - start)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return len(latencies) / (time.perf_counter() - start), latencies


def _client_process(server_url: str, payload: bytes, clients: int, requests: int, out: "multiprocessing.Queue") -> None:
    out.put(run(server_url, payload, clients, requests))


def run_elsewhere(server_url: str, payload: bytes, clients: int, requests: int) -> tuple[float, list[float]]:
    """:func:`run` in a child process."""
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    child = context.Process(target=_client_process, args=(server_url, payload, clients, requests, out))
    child.start()
    result = out.get(timeout=600)
    child.join(60)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-batch", type=int, nargs="+", default=[0, 1],
                        help="server --max-batch values to compare (0: the server's default for the device; 1: unbatched)")
    parser.add_argument("--batch-wait-ms", type=float, default=serve.Config.batch_wait_ms)
    args = parser.parse_args()
    backend = load_backend(**({"model": args.model} if args.model else {}))
    rgb = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    payload = body(remote.png_data_url(Image.fromarray(rgb)))
    rows = []
    forward_only(backend, Image.fromarray(rgb))
    for max_batch in args.max_batch:
        config = serve.Config(model_id="bench", quiet=True, max_queue=256, batch_wait_ms=args.batch_wait_ms,
                              max_batch=max_batch or serve.default_max_batch(backend.device))
        server = serve.Server(serve.App(backend, config), "127.0.0.1", 0)
        server.start()
        run_elsewhere(server.url, payload, 2, 8)  # warm-up
        for clients in args.clients:
            rate, lat = run_elsewhere(server.url, payload, clients, args.requests)
            lat.sort()
            rows.append({"max_batch": config.max_batch, "batch_wait_ms": config.batch_wait_ms, "clients": clients,
                         "images_per_s": round(rate, 1),
                         "p50_ms": round(1000 * statistics.median(lat), 1),
                         "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1),
                         "forward_calls": app_calls(server)})
            print(json.dumps(rows[-1]), flush=True)
        server.stop()


def forward_only(backend: object, image: Image.Image) -> None:
    """The model's own batching gain (prepare + forward, no HTTP): the ceiling for the server's."""
    text = backend.render("How would you rate the quality of this image?", "The quality of the image is")
    for size in (1, serve.default_max_batch(backend.device)):
        backend.forward(backend.prepare([image] * size, [text] * size))
        start = time.perf_counter()
        for _ in range(max(2, 32 // size)):
            backend.forward(backend.prepare([image] * size, [text] * size))
        per_image = (time.perf_counter() - start) / (max(2, 32 // size) * size)
        print(json.dumps({"forward_only_batch": size, "images_per_s": round(1 / per_image, 1)}), flush=True)


def app_calls(server: "serve.Server") -> int:
    """Forward passes the server has run so far (its /health figure)."""
    return server.app.batcher.forward_calls


if __name__ == "__main__":
    main()
