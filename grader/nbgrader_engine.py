"""The kit behind nbgrader's own buttons: `nbgrader autograde`, `nbgrader generate_feedback` and formgrader's.

nbgrader's converters read each notebook through an exporter that the configuration names
(`c.Autograde.exporter_class`, `c.GenerateFeedback.exporter_class`). The kit's lines in a course's
nbgrader_config.py (`enable`, written by `nbgrader-config enable`) name the two of nbgrader_exporters.py:
`KitAutograde` grades each submission with the kit, `KitFeedback` writes the kit's feedback page.

This module is what those lines import: nbgrader loads the course's configuration in each of its commands, and
the kit in each of its own, so it imports nothing heavy (the exporters, which need nbconvert, are named here by
their dotted names and imported by nbgrader only when it converts a notebook).

What stays stock: nbgrader's own steps around them (finding submissions, the student and submission rows,
copying the source folder's files, permissions), and every other command.
"""
from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    from traitlets.config import Config

BEGIN = "# >>> course kit: trusted grading for nbgrader's own commands and formgrader's buttons >>>"
END = "# <<< course kit: trusted grading <<<"
# What generate_feedback must never copy from autograded/ into the feedback folder it hands out: the kit's
# record (with the instructor's details) and a notebook kept as the student sent it.
NOT_FOR_FEEDBACK = [".kit_result.json", "*.ipynb.as-submitted"]
MISSING = ("This course grades with the course kit's trusted grader (its lines at the end of nbgrader_config.py), "
           "and the kit is not installed in the Python that runs nbgrader. Install it there (pip install -e "
           "<the kit's folder>), or delete its lines from nbgrader_config.py (between the two 'course kit' "
           "comments) to grade with stock nbgrader.")

_MESSAGE = "\n".join(f"                {line!r}" for line in textwrap.wrap(MISSING, 84, drop_whitespace=False))

# The lines `nbgrader-config enable` writes. Without the kit installed they refuse to grade, in one line:
# grading unconfined behind the instructor's back would be worse than not grading.
BLOCK = f'''{BEGIN}
# Written by the kit's `nbgrader-config enable`; its `nbgrader-config disable` takes it out again.
try:
    from grader import nbgrader_engine as _kit
except ImportError:
    _kit = None
if _kit is not None:
    _kit.enable(c)  # noqa: F821
else:
    from nbconvert.exporters import NotebookExporter as _Stock
    from nbgrader.converters.base import NbGraderException as _Refused

    class _KitMissing(_Stock):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.log.error(
{_MESSAGE}
            )
            raise _Refused("the course kit is not installed")

    c.Autograde.exporter_class = c.GenerateFeedback.exporter_class = _KitMissing  # noqa: F821
{END}
'''


def enable(c: Config) -> None:
    """Point nbgrader's autograde and generate_feedback at the kit (called from nbgrader_config.py)."""
    # By name, not as classes: formgrader shows the configuration, and serializes it to do so.
    c.Autograde.exporter_class = AUTOGRADE
    c.GenerateFeedback.exporter_class = FEEDBACK
    c.CourseDirectory.ignore.extend(NOT_FOR_FEEDBACK)


def dotted(value: type | str) -> str:
    """A class, or the name of one, as its dotted name."""
    return value if isinstance(value, str) else f"{value.__module__}.{value.__qualname__}"


# ---------------------------------------------------------------- the course's nbgrader_config.py

def is_enabled(text: str) -> bool:
    return BEGIN in text


def with_block(text: str) -> str:
    """`text` (an nbgrader_config.py) with the kit's lines at its end, where nothing after them can undo them;
    lines written by an older kit are replaced."""
    text = without_block(text) if is_enabled(text) else text
    return text.rstrip("\n") + "\n\n" + BLOCK if text.strip() else BLOCK


def without_block(text: str) -> str:
    """`text` without the kit's lines (and the blank line `with_block` put before them); the rest as it was."""
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.rstrip("\n") == BEGIN]
    ends = [i for i, line in enumerate(lines) if line.rstrip("\n") == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ValueError(f"the kit's lines are damaged (expected one {BEGIN!r} line and, after it, one {END!r} "
                         "line): remove what is left of them by hand")
    start, end = starts[0], ends[0]
    if start > 0 and not lines[start - 1].strip():
        start -= 1
    return "".join(lines[:start] + lines[end + 1:])


def in_use(config: Config) -> tuple[dict[str, str | None], bool]:
    """{"Autograde": ..., "GenerateFeedback": ...}: the exporter each of nbgrader's converters will use under
    `config` (dotted names; None: stock's own), and whether both are the kit's."""
    used = {name: dotted(config[name].exporter_class) if "exporter_class" in config[name] else None
            for name in ("Autograde", "GenerateFeedback")}
    return used, used == {"Autograde": AUTOGRADE, "GenerateFeedback": FEEDBACK}


def switch(path: Path, on: bool) -> str:
    """Write the kit's lines into the nbgrader_config.py at `path` (`on`), or take them out; the rest of the file
    stays as it was. Returns what happened: "added", "updated", "removed" or "unchanged". ValueError: the lines
    are damaged."""
    import os

    text = path.read_text()
    if not on and not is_enabled(text):
        return "unchanged"
    changed = with_block(text) if on else without_block(text)
    if changed == text:
        return "unchanged"
    partial = path.with_name(path.name + ".part")
    partial.write_text(changed)
    os.chmod(partial, path.stat().st_mode & 0o7777)
    os.replace(partial, path)
    return ("updated" if is_enabled(text) else "added") if on else "removed"


# The exporters, by name (nbgrader imports them when it converts a notebook).
AUTOGRADE = "grader.nbgrader_exporters.KitAutograde"
FEEDBACK = "grader.nbgrader_exporters.KitFeedback"
