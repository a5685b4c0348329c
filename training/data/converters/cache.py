"""A small on-disk response cache: what the model answered to a given request, by hash.

SQLite rather than one JSON file per entry: one file to copy around, atomic commits (an
interrupted run loses at most the answer in flight), and safe for several threads and processes.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any


def cache_key(payload: Any) -> str:
    """SHA-256 of the canonical JSON of ``payload`` (model, messages, sampling options)."""
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ResponseCache:
    """Key -> model output text, persisted in a SQLite file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, timeout=30)
        with self._lock, self._db:
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS responses ("
                " key TEXT PRIMARY KEY, model TEXT NOT NULL, content TEXT NOT NULL, created REAL NOT NULL)"
            )

    def get(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT content FROM responses WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, model: str, content: str) -> None:
        # Commit per entry: this is what makes a crashed run resumable.
        with self._lock, self._db:
            self._db.execute(
                "INSERT OR REPLACE INTO responses (key, model, content, created) VALUES (?, ?, ?, ?)",
                (key, model, content, time.time()),
            )

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.path)!r})"
