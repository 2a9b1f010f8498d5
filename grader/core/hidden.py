"""Hidden tests: which lines of a test cell are hidden, by nbgrader's own rule, in one place.

nbgrader's `ClearHiddenTests` (generate_assignment) starts a hidden block at any line that
contains its begin delimiter, wherever it stands in the line (indented, after code, with text
after it), and ends it at the next line that contains the end delimiter. Both marker lines go
with the block. Everything in the kit that hides, strips or recognises hidden tests (the
sandbox's copy of a test cell, the outside verdict, the feedback filter) reads them here.

A course may set other delimiters (`c.ClearHiddenTests.begin_test_delimeter`, `...end_test_delimeter`):
`markers_of` reads them from its configuration, and every function here takes them as `markers`.

A hidden block may say, for the student, what kind of input it checks: a comment line inside it
that starts with `# hint for students:` (the rest of that line is shown when the block fails;
nothing else of a hidden block ever is).
"""
from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from traitlets.config import Config

# nbgrader's own defaults (ClearHiddenTests.begin_test_delimeter and end_test_delimeter; a test keeps them equal),
# written out: importing nbgrader takes over a second, and the processes that run or replay notebooks (the fork
# servers, the master's recording) need only these two strings.
BEGIN = "BEGIN HIDDEN TESTS"
END = "END HIDDEN TESTS"
DEFAULT: tuple[str, str] = (BEGIN, END)
HINT = "# hint for students:"


def markers_of(config: Config) -> tuple[str, str]:
    """(begin, end): the hidden-test delimiters a course's nbgrader configuration sets
    (c.ClearHiddenTests.begin/end_test_delimeter), nbgrader's own otherwise. Read from the configuration itself:
    nbgrader's ClearHiddenTests would read the same, after half a second of importing its preprocessors."""
    clear = config.get("ClearHiddenTests", {})
    return str(clear.get("begin_test_delimeter", BEGIN)), str(clear.get("end_test_delimeter", END))


def spans(lines: Sequence[str], markers: tuple[str, str] = DEFAULT) -> list[tuple[int, int]]:
    """(first, last) line index of each hidden block in `lines`: a BEGIN line up to the next END line
    (to the last line when none follows, where generate_assignment would have refused the cell)."""
    begin, end = markers
    found: list[tuple[int, int]] = []
    start: int | None = None
    for index, line in enumerate(lines):
        if start is None and begin in line:
            start = index
        elif start is not None and end in line:
            found.append((start, index))
            start = None
    if start is not None:
        found.append((start, len(lines) - 1))
    return found


def strip(source: str, markers: tuple[str, str] = DEFAULT) -> str:
    """`source` without its hidden blocks, as students got it: each block, from its BEGIN line to its END line,
    becomes one empty line. Line by line, so that it takes linear time on anything."""
    lines = source.split("\n")
    kept: list[str] = []
    start = 0
    for first, last in spans(lines, markers):
        kept += lines[start:first] + [""]
        start = last + 1
    return "\n".join(kept + lines[start:])


def has_hidden(source: str, markers: tuple[str, str] = DEFAULT) -> bool:
    return bool(spans(source.split("\n"), markers))


def hidden_text(source: str, markers: tuple[str, str] = DEFAULT) -> set[str]:
    """The stripped text of every hidden line of 8 characters or more (the feedback filter drops lines holding one)."""
    lines = source.split("\n")
    return {line.strip() for first, last in spans(lines, markers) for line in lines[first:last + 1]
            if len(line.strip()) >= 8}


@dataclass(frozen=True)
class HiddenLines:
    """Where a test cell's hidden code is: its line numbers (1-based, as Python's tracebacks count them),
    the first top-level statement that holds any of them, and the hints its blocks give students."""
    lines: frozenset[int] = frozenset()
    first_statement: int | None = None  # index in the cell's top-level statements; None: no hidden code in the cell
    hints: tuple[str, ...] = ()
    statement_of_line: tuple[tuple[int, int], ...] = ()  # (first line, last line) of each top-level statement

    def statement(self, line: int) -> int | None:
        """The index of the top-level statement holding `line`, or None."""
        for index, (first, last) in enumerate(self.statement_of_line):
            if first <= line <= last:
                return index
        return None

    def before_hidden(self, line: int) -> bool:
        """True when a failure at top-level `line` happened before any hidden code could have run."""
        if self.first_statement is None:
            return True
        index = self.statement(line)
        return index is not None and index < self.first_statement


def hidden_lines(source: str, markers: tuple[str, str] = DEFAULT) -> HiddenLines:
    """The HiddenLines of a test cell's source (the master's, with its hidden blocks)."""
    lines = source.split("\n")
    found = spans(lines, markers)
    numbers = frozenset(n + 1 for first, last in found for n in range(first, last + 1))
    hints = tuple(dict.fromkeys(line.strip()[len(HINT):].strip() for first, last in found
                                for line in lines[first:last + 1] if line.strip().startswith(HINT)))
    try:
        body = ast.parse(source).body
    except SyntaxError:
        body = []
    ranges = tuple((node.lineno, cast(int, node.end_lineno)) for node in body)  # ast.parse sets every end_lineno
    # A block of comments only lies in no statement: nothing of it runs.
    first = next((index for index, (a, b) in enumerate(ranges) if any(a <= n <= b for n in numbers)), None)
    return HiddenLines(numbers, first, tuple(h for h in hints if h), ranges)
