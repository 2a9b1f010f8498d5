"""What one notebook may use while it is graded (a light module: the CLI reads its defaults)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    cell_timeout: float = 30.0    # seconds a single cell may run
    notebook_budget: float = 60.0  # seconds all cells of one notebook may run together
    memory_mb: int = 2048         # memory the child may map beyond what its warm parent maps
    output_chars: int = 100_000   # stdout/stderr characters kept for the whole notebook
    disk_mb: int = 64             # size of each of the sandbox's two writable folders (working copy, /tmp)
    processes: int = 4            # processes and threads the sandbox may run at once (memory_mb each, at most)


def budget_for(cell_timeout: float) -> float:
    """The notebook's budget that goes with a cell timeout: at least twice it, and never under the default."""
    return max(Limits.notebook_budget, 2 * cell_timeout)
