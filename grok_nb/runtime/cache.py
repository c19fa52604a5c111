"""The video cache on disk: temporary download files that say which process writes them, and cached MP4s
checked against what was downloaded before they are handed back as done."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

from ..api.probe import mp4_problem
from ..history.owners import owner_alive, process_owner

#: A temporary file whose writer cannot be told (another host, an older name) is left this long.
STALE_PART_S = 60 * 60.0


def part_path(dest: Path) -> Path:
    """Where a download of ``dest`` is written first; the name carries this process (to sweep it if it dies)."""
    owner = process_owner().encode().hex()  # a host name may hold dots
    return dest.with_name(f"{dest.name}.{owner}.{uuid.uuid4().hex[:8]}.part")


def sweep_parts(cache_dir: Path) -> list[Path]:
    """Delete the temporary files of downloads whose process is gone (killed, or cut off at exit); returns them."""
    removed = []
    now = time.time()
    for part in cache_dir.glob("*.part"):
        bits = part.name.split(".")
        try:
            owner: str | None = bytes.fromhex(bits[-3]).decode() if len(bits) >= 4 else None
        except ValueError:  # an older name, without its writer
            owner = None
        alive = owner_alive(owner) if owner else None
        try:
            stale = alive is False or (alive is None and now - part.stat().st_mtime > STALE_PART_S)
            if stale:
                part.unlink()
                removed.append(part)
        except OSError:  # another process swept it first, or it is not ours to delete
            continue
    return removed


def cached_problem(path: Path | None, expected_bytes: int | None = None) -> str | None:
    """Why a cached MP4 cannot be handed back as done (None when it can): missing, or not the whole file."""
    if path is None:
        return "there is no cached file"
    if not os.path.exists(path):
        return f"{path} is missing"
    return mp4_problem(path, expected_bytes)
