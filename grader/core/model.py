"""The engine's data: what an assignment asks (its notebooks' tasks, the master's cells), what a student hands in,
and what grading gives back (a result, per test), with the statuses a result can have. Plain frozen dataclasses
over plain values: they travel to a grading worker, a Dask worker, and to the results kept in autograded/.
"""
from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from grader.core import hidden
from grader.core.limits import Limits

# Statuses, from worst to best. Anything but "graded" needs an instructor's attention.
INVALID = "invalid notebook"
MISSING = "missing notebook"
CRASHED = "crashed"
TIMED_OUT = "timed out"
RESTORED = "test cells restored"
GRADED = "graded"
ERROR = "grader error"
TAMPERING = "tampering suspected"
STATUSES = [ERROR, INVALID, MISSING, TAMPERING, CRASHED, TIMED_OUT, RESTORED, GRADED]
# Nothing of the student's ran: no automatic score, the gradebook asks for a manual grade.
NOT_RUN = (INVALID, MISSING, ERROR)
# A regrade that ends in one of these says more about the run than about the student.
FAILURES = {ERROR, CRASHED, TIMED_OUT}

RESTORED_NOTE = "# Restored by the autograder: this test cell was missing from the submission.\n"


@dataclass(frozen=True)
class MasterCell:
    """A cell the grader knows from the gradebook (what nbgrader stored at generate_assignment)."""
    grade_id: str
    cell_type: str
    source: str
    locked: bool
    checksum: str
    points: float | None = None  # set for grade (test) cells
    solution: bool = False
    release_source: str | None = None  # the cell as students got it (hidden tests removed)

    @property
    def is_test(self) -> bool:
        return self.points is not None and not self.solution


@dataclass(frozen=True)
class NotebookTask:
    """Everything a worker needs to grade one notebook of an assignment, as plain data."""
    name: str                      # the assignment's
    notebook: str                  # notebook name without .ipynb
    cells: tuple[MasterCell, ...]  # in the master's order
    files: tuple[tuple[str, bytes], ...]  # (relative path, bytes): the source folder's other files
    parts: tuple[tuple[str, str], ...] = ()  # (test grade_id, "graded" or "optional")
    limits: Limits = Limits()
    # test grade_id -> verdict.TestPlan (judge's, a stage above: Any here)
    plans: dict[str, Any] = field(default_factory=dict, compare=False)
    inside: dict[str, str] = field(default_factory=dict, compare=False)  # test grade_id -> why judged inside only
    helpers: str = ""              # folder for the trusted copies of the helper files (see verdict.py)
    confine: bool = True           # run student code in the sandbox (False only with --unconfined)
    released_text: frozenset[str] = frozenset()  # text_digest of the release's Markdown and raw cells
    memory_cgroup: str = field(default="", compare=False)  # the batch's memory cgroup (memory.py), if any
    release: bytes = field(default=b"", compare=False, repr=False)  # the released notebook, for one not handed in
    hidden_markers: tuple[str, str] = hidden.DEFAULT  # the course's hidden-test delimiters (hidden.markers_of)

    @functools.cached_property
    def fingerprint(self) -> str:
        """Changes when anything that decides a grade changes (not when limits do). Computed once."""
        digest = hashlib.sha256()
        for cell in self.cells:
            digest.update(json.dumps(asdict(cell), sort_keys=True).encode())
        for path, data in self.files:
            digest.update(path.encode() + b"\0" + hashlib.sha256(data).digest())
        if self.hidden_markers != hidden.DEFAULT:
            digest.update("\0".join(self.hidden_markers).encode())
        return digest.hexdigest()[:16]

    def tests(self) -> list[MasterCell]:
        return [c for c in self.cells if c.is_test]

    def part_of(self, grade_id: str) -> str:
        return dict(self.parts).get(grade_id, "graded")

    def hidden_lines(self) -> set[str]:
        """The lines of hidden test code, which feedback must never show."""
        return set().union(*(hidden.hidden_text(cell.source, self.hidden_markers) for cell in self.cells))


@dataclass(frozen=True)
class AssignmentSpec:
    """An assignment as workers grade it: one NotebookTask per notebook, each run in a process of its own
    (as stock autograde runs each notebook in a kernel of its own), all sharing the assignment's files."""
    notebooks: tuple[NotebookTask, ...]  # in the order of their names

    @property
    def name(self) -> str:
        return self.notebooks[0].name

    @property
    def confine(self) -> bool:
        return self.notebooks[0].confine

    @property
    def several(self) -> bool:
        return len(self.notebooks) > 1

    @functools.cached_property
    def fingerprint(self) -> str:
        if not self.several:
            return self.notebooks[0].fingerprint  # as before notebooks were counted: records stay current
        return hashlib.sha256(" ".join(f"{t.notebook}:{t.fingerprint}" for t in self.notebooks).encode()
                              ).hexdigest()[:16]

    def replace(self, **changes: Any) -> AssignmentSpec:
        """The same assignment with `changes` made to every notebook's task."""
        return AssignmentSpec(tuple(dataclasses.replace(t, **changes) for t in self.notebooks))

    def task(self, notebook: str) -> NotebookTask:
        return next(t for t in self.notebooks if t.notebook == notebook)

    def judged_inside(self, why: Mapping[str, str]) -> AssignmentSpec:
        """The same assignment with the tests in `why` ("<notebook>/<grade_id>" -> why) judged inside the sandbox
        only, no longer replayed."""
        tasks = []
        for t in self.notebooks:
            moved = {key.split("/", 1)[1]: reason for key, reason in why.items() if key.split("/", 1)[0] == t.notebook}
            tasks.append(dataclasses.replace(t, plans={g: p for g, p in t.plans.items() if g not in moved},
                                             inside={**t.inside, **moved}))
        return AssignmentSpec(tuple(tasks))

    def tests(self) -> list[tuple[str, MasterCell]]:
        """(notebook, MasterCell) of every test cell, notebook by notebook."""
        return [(t.notebook, c) for t in self.notebooks for c in t.tests()]

    def graded_cells(self) -> list[tuple[str, MasterCell]]:
        """(notebook, MasterCell) of every cell with points: tests, and answers and tasks graded by hand."""
        return [(t.notebook, c) for t in self.notebooks for c in t.cells if c.points is not None]

    def part_of(self, grade_id: str) -> str:
        """The part a test counts towards, as the master notebook holding it tags it."""
        return "optional" if any(t.part_of(grade_id) == "optional" for t in self.notebooks) else "graded"

    def hidden_lines(self) -> set[str]:
        return set().union(*(t.hidden_lines() for t in self.notebooks))


@dataclass(frozen=True)
class Submission:
    student: str
    files: tuple[tuple[str, bytes], ...]  # (relative path, bytes), all in submitted/<student>/<assignment>/ read
    timestamp: str | None = None
    late: bool = False  # the LMS marked it late (intake keeps the mark beside the files)
    refused: tuple[tuple[str, str], ...] = ()  # (path, why): what was handed in but broke a rule of student_files.py

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for path, data in sorted(self.files):
            digest.update(path.encode() + b"\0" + hashlib.sha256(data).digest())
        for path, why in self.refused:
            digest.update(f"refused\0{path}\0{why}".encode())
        digest.update(f"timestamp\0{self.timestamp}".encode())
        return digest.hexdigest()[:16]


@dataclass
class TestResult:
    grade_id: str
    part: str            # "graded" or "optional"
    score: float
    max_score: float
    message: str = ""    # for the student: what failed, never the hidden test code nor anything it produced
    scored: bool = True  # False while the test waits for a manual grade (nothing could run)
    manual: bool = False  # the score was given by an instructor in formgrader (see gradebook.standings)
    notebook: str = ""   # the notebook it is in (its name without .ipynb)
    detail: str = ""     # for the instructor, when it says more than `message`: the whole failure
    by_hand: bool = False  # an answer or a task graded by hand in formgrader, not a test (see reports.final)

    @property
    def label(self) -> str:
        """The test's name in columns and charts (see reports.labels)."""
        return self.grade_id.removeprefix("test_")

    @property
    def passed(self) -> bool:
        return self.scored and self.score >= self.max_score


@dataclass
class Result:
    student: str
    status: str
    reason: str = ""
    flags: list[str] = field(default_factory=list)  # everything worth a look, for the instructor
    notes: list[str] = field(default_factory=list)  # the same, in words for the student's feedback page
    tests: list[TestResult] = field(default_factory=list)  # per test cell, in notebook order
    # "<notebook>/<solution grade_id>" -> nbgrader auto comment
    comments: dict[str, str | None] = field(default_factory=dict)
    # "<notebook>/<grade_id>" of a hand-graded answer -> 0 if left as released, else None (a person grades it)
    answers: dict[str, float | None] = field(default_factory=dict)
    review: list[str] = field(default_factory=list)  # what the code scan found worth a look (never scored)
    confined: bool = True                         # False when graded with --unconfined
    # notebook name -> the graded notebook (JSON text), for autograded/
    notebooks: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    submission_fingerprint: str = ""
    assignment_fingerprint: str = ""
    timestamp: str | None = None
    graded_at: str = ""
    late: bool = False                            # the LMS marked the submission late (see intake.py)
    refused: list[str] = field(default_factory=list)  # paths handed in but left out (student_files.py)
    # "<notebook>/<grade_id>" of tests judged inside the sandbox only
    inside: list[str] = field(default_factory=list)
    # "<notebook>/<grade_id>" of tests judged inside that passed in a submission whose code has what forging uses
    # (`_mark_forgeable`)
    forgeable: list[str] = field(default_factory=list)
    peak_mb: float = 0.0                          # the most memory its sandbox held (where a cgroup measured it)
    # "<notebook>/<grade_id>" -> why, for each test that passed in the student's process and failed in the
    # grader's replay
    replay_failed: dict[str, str] = field(default_factory=dict)
    # "<notebook>/<test grade_id>:<call>" -> digest of what the student's function returned on that recorded call
    # (copies.py; None for code never written)
    behaviour: dict[str, int | None] = field(default_factory=dict)
    stages: dict[str, float] = field(default_factory=dict)  # stage -> seconds this grading spent in it (see STAGES)
    # Set from the gradebook when the results are published (reports.final), never by grading:
    late_penalty: float = 0.0                     # nbgrader's late-submission penalty
    instructor_comments: dict[str, str] = field(default_factory=dict)  # grade_id -> comment given in formgrader

    def part(self, name: str) -> float:
        return sum(t.score for t in self.tests if t.part == name)

    @property
    def total(self) -> float:
        """The raw score: every test, extra credit included, before any late penalty."""
        return sum(t.score for t in self.tests)

    @property
    def score(self) -> float:
        """The final score, as `nbgrader export` computes it."""
        return max(0.0, self.total - self.late_penalty)

    @property
    def awaiting_manual_grade(self) -> bool:
        return any(not t.scored for t in self.tests)

    @property
    def points_waiting(self) -> float:
        """Points of the cells still waiting for a hand grade."""
        return sum(t.max_score for t in self.tests if not t.scored)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("notebooks")
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        data = dict(data)
        data["tests"] = [TestResult(**t) for t in data.get("tests", [])]
        return cls(**data)
