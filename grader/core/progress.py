"""How long work tells its progress, as every stage sees it: a Progress makes a Bar for so many items and
names each step that has no bar of its own. The stages only call it; the command line's own, a bar on the
terminal, is grader/terminal.py's Progress, and None means silence.
"""
from __future__ import annotations

from typing import Protocol


class Bar(Protocol):
    """A bar over `total` items (submissions graded, students read): told of each one as it is done."""

    def update(self, item: str, status: str, /) -> None: ...

    def close(self) -> None: ...


class Progress(Protocol):
    """What makes a Bar for `total` items (`label`: what is being done to them; `normal`: the status of an item
    that went as expected), and says each step before the work itself in a line (`phase`)."""

    def __call__(self, total: int, /, label: str = ..., normal: str = ...) -> Bar: ...

    def phase(self, text: str, /) -> None: ...
