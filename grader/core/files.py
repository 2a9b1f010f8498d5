"""Files the kit writes so that a reader, or a run killed halfway, never meets half of one: written beside their
place under a name of this process's, then put in place in one step (os.replace)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

_P = TypeVar("_P", str, Path)  # the path, given back as it was given


def part_of(path: str | Path) -> Path:
    """Where a file is written before it takes the place of `path` (beside it: the same file system)."""
    return Path(f"{path}.{os.getpid()}.part")


def write_atomically(path: _P, data: bytes | str, encoding: str = "utf-8", errors: str = "strict") -> _P:
    """Write `data` (bytes, or text in `encoding`) to `path` in one step: the old file or the new, never part."""
    partial = part_of(path)
    with open(partial, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode(encoding, errors))
    os.replace(partial, path)
    return path
