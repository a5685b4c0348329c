"""``qplug serve`` throughput: images/s and p50/p99 latency of /v1/chat/completions Q-Align requests
(max_tokens=1, top_logprobs=20, prefix) at 1, 4 and 16 concurrent clients, batched and unbatched.

    OMP_NUM_THREADS=2 .venv/bin/python bench/bench_serve.py [--model DIR] [--requests N] [--no-batching-only]
"""

from __future__ import annotations

import argparse
import json
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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model")
    parser.add_argument("--requests", type=int, default=64)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    backend = load_backend(**({"model": args.model} if args.model else {}))
    rgb = np.random.default_rng(0).integers(0, 256, (224, 224, 3), dtype=np.uint8)
    payload = body(remote.png_data_url(Image.fromarray(rgb)))
    rows = []
    for batching in (True, False):
        app = serve.App(backend, serve.Config(model_id="bench", quiet=True, max_batch=16 if batching else 1,
                                              max_queue=256))
        server = serve.Server(app, "127.0.0.1", 0)
        server.start()
        run(server.url, payload, 2, 4)  # warm-up
        for clients in args.clients:
            rate, lat = run(server.url, payload, clients, args.requests)
            lat.sort()
            rows.append({"batching": batching, "clients": clients, "images_per_s": round(rate, 1),
                         "p50_ms": round(1000 * statistics.median(lat), 1),
                         "p99_ms": round(1000 * lat[min(len(lat) - 1, int(0.99 * len(lat)))], 1)})
            print(json.dumps(rows[-1]), flush=True)
        server.stop()


if __name__ == "__main__":
    main()
