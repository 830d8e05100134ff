"""The audit log's unsigned window under load: how many entries, and how old the oldest,
no signed checkpoint covers while audited accesses run flat out (trust round 2, item 8:
before `audit.checkpoint_max_delay_seconds` and the one-second check, 8,625 entries at
855 audited requests/s).

The window is read from the catalog every 50 ms by a separate read-only SQLite connection
while wrk sends audited 64 KiB ranges with 32 connections.

Run: .venv/bin/python bench/checkpoint_window.py [--seconds N]
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import MB, figure, service, wav_bytes, wrk
from streaming import cycle_lua


def _window(catalog: Path) -> tuple[int, float]:
    """Entries no checkpoint covers, and the age in seconds of the oldest of them."""
    with sqlite3.connect(f"file:{catalog}?mode=ro", uri=True) as db:
        size = db.execute("SELECT size FROM audit_head WHERE id = 1").fetchone()[0]
        covered = db.execute("SELECT coalesce(max(size), 0) FROM audit_checkpoints"
                             ).fetchone()[0]
        if size <= covered:
            return 0, 0.0
        at = db.execute("SELECT at FROM audit_entries WHERE seq = ?", (covered + 1,)
                        ).fetchone()[0]
    first = datetime.fromisoformat(str(at)).replace(tzinfo=UTC)
    return size - covered, (datetime.now(UTC) - first).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=20)
    args = parser.parse_args()
    with service(scheduler=True) as svc:
        rid = svc.upload(wav_bytes(8 * MB, 3), "window")
        catalog = svc.data_dir / "catalog.sqlite3"
        worst_count, worst_age, stop = 0, 0.0, threading.Event()

        def sample() -> None:
            nonlocal worst_count, worst_age
            while not stop.is_set():
                try:
                    count, age = _window(catalog)
                except sqlite3.OperationalError:
                    count, age = 0, 0.0  # busy for a moment: the next sample
                worst_count, worst_age = max(worst_count, count), max(worst_age, age)
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        result = wrk(svc.url, 32, args.seconds, headers={
            "Authorization": f"Bearer {svc.tokens['supervisor']}",
            "Access-Purpose": "training"},
            lua=cycle_lua([f"/v1/recordings/{rid}/audio"], random_range_of=8 * MB))
        stop.set()
        sampler.join()
    print(f"audited accesses: {result.requests_per_s:.0f}/s, errors {result.errors}")
    print(figure("unsigned window under load: most entries", f"{worst_count}",
                 "<= checkpoint_every_entries (1000) + 1 s of traffic",
                 worst_count <= 1000 + result.requests_per_s))
    print(figure("unsigned window under load: oldest entry", f"{worst_age:.1f} s",
                 "<= checkpoint_max_delay_seconds (10) + 1 s", worst_age <= 11.5))


if __name__ == "__main__":
    main()
