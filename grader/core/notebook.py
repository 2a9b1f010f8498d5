"""Reading a notebook, and nbgrader's metadata on its cells: one definition of each rule that reads it."""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nbformat

if TYPE_CHECKING:
    from nbformat import NotebookNode


def read(path: str | Path) -> NotebookNode:
    return nbformat.read(str(path), as_version=4)


# nbgrader's cell metadata, read in one place (nbgrader's own utils.is_grade, is_solution, is_locked read the same
# keys). A value that is not a mapping, as a hand-edited notebook can hold, reads as no metadata.

def nbgrader_meta(cell: Mapping[str, Any]) -> dict[str, Any]:
    """The cell's nbgrader metadata ({} when it has none)."""
    metadata = cell.get("metadata", {})
    meta = metadata.get("nbgrader", {}) if isinstance(metadata, dict) else {}
    return meta if isinstance(meta, dict) else {}


def cell_grade_id(cell: Mapping[str, Any]) -> str | None:
    """The cell's nbgrader grade_id, or None."""
    return nbgrader_meta(cell).get("grade_id")


def is_graded_cell(cell: Mapping[str, Any]) -> bool:
    """A cell nbgrader scores: a test cell, or an answer graded by hand."""
    return bool(nbgrader_meta(cell).get("grade"))


def is_solution_cell(cell: Mapping[str, Any]) -> bool:
    return bool(nbgrader_meta(cell).get("solution"))


def is_locked_cell(cell: Mapping[str, Any]) -> bool:
    return bool(nbgrader_meta(cell).get("locked"))


def cell_by_id(nb: NotebookNode, grade_id: str) -> NotebookNode:
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            return cell
    raise KeyError(f"the notebook has no cell with grade_id {grade_id!r}")
