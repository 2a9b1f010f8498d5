"""The use cases behind `grade`, `publish` and `copies`: each runs the stages it needs, in order, and returns what
happened. They print nothing but the progress they are handed; the command line says the rest (grader/terminal.py)."""
from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TYPE_CHECKING

from grader.core import scratch
from grader.core.limits import Limits
from grader.course import assignments
from grader.grade import batch
from grader.judge.grading import lap
from grader.report import publish
from grader.run import memory
from grader.similarity import copy_report as copy_report_module

if TYPE_CHECKING:
    from collections.abc import Callable

    from grader.core.model import AssignmentSpec
    from grader.core.progress import Progress
    from grader.similarity.copy_report import CopyReport


@dataclass
class Graded:
    """What `grade_and_publish` did."""
    layout: assignments.Layout
    batch: batch.Batch             # the grading run: results, what it kept, skipped and noted, its stages' time
    published: publish.Published   # what was written from the gradebook
    copies: CopyReport | None = None  # the copy report written (similarity.copy_report.build), or None
    copies_error: str = ""         # why the copy report was not written (the grades all were)

    def timings(self) -> dict[str, Any]:
        """Where the time went (stage -> seconds, "submissions", "peaks" in MB, "workers"), for the benchmark."""
        done = self.batch
        peaks = {**done.peaks, **{k: v for k, v in memory.peaks().items() if k.startswith("grader")}}
        sandboxes = [done.results[s].peak_mb for s in done.graded if done.results[s].peak_mb]
        if sandboxes:
            peaks["sandbox (the largest, as its cgroup or its watch counts it)"] = max(sandboxes)
        return {**done.stages, "submissions": len(done.graded), "peaks": peaks, "workers": done.workers}


def grade_and_publish(course_dir: Path | str, name: str | None = None, students: list[str] | None = None,
                      force: bool = False, jobs: int | None = None, scheduler: str | None = None,
                      limits: Limits | None = None, confine: bool = True,
                      progress: Progress | None = None) -> Graded:
    """Grade assignment `name` (None: the course's only one), publish its outputs from the gradebook, and write
    its copy report when anyone was graded (or it is missing). A copy report that fails costs no grade."""
    layout = assignments.find(course_dir, name)
    done = batch.grade_batch(layout, students, force, jobs, scheduler, limits or Limits(), progress=progress,
                             confine=confine)
    published: list[publish.Published] = []
    failed: list[Exception] = []

    def pages():
        """The pages, published once; a failure is raised below, as publishing's own, not the copy report's."""
        clock = time.perf_counter()
        try:
            published.append(publish_from_gradebook(layout, done.spec, progress))
        except Exception as error:  # noqa: BLE001
            failed.append(error)
        lap(done.stages, "pages", clock)

    report_missing = not (layout.course_dir / "autograded" / copy_report_module.copies_html(layout.name)).is_file()
    copies, copies_error = None, ""
    if not done.pending and (done.graded or report_missing):  # after a Ctrl-C, nothing more
        clock = time.perf_counter()
        try:  # the pages are published while the copy report's workers read the students' notebooks
            copies = copy_report(layout, done.spec, progress=progress, meanwhile=pages)
        except KeyboardInterrupt:
            raise
        except Exception as error:  # noqa: BLE001 -- the grades are written; the report can be made again
            copies_error = f"{type(error).__name__}: {error}"
        done.stages["copy report"] = time.perf_counter() - clock - done.stages.get("pages", 0.0)
    if not published and not failed:
        pages()
    if failed:
        raise failed[0]
    return Graded(layout, done, published[0], copies, copies_error)


def publish_from_gradebook(layout: assignments.Layout, spec: AssignmentSpec | None = None,
                           progress: Progress | None = None) -> publish.Published:
    """The assignment's CSVs, class report and feedback pages, and the course's CSV, written from the gradebook
    (`spec`: the assignment as loaded, read again from `layout` when not given)."""
    spec = spec or batch.load_assignment(layout)
    if progress:
        progress.phase(f"{layout.name}: publishing from the gradebook (CSVs, class report, feedback pages)")
    return publish.publish(layout, spec)


def copy_report(layout: assignments.Layout, spec: AssignmentSpec | None = None, known: Path | str | None = None,
                progress: Progress | None = None, meanwhile: Callable[[], object] | None = None) -> CopyReport:
    """Write the assignment's copy report (CSV and page); the outside verdict is recorded when `spec` was
    loaded without it (it gives the master's outputs). `meanwhile`: see copy_report.build."""
    spec = spec or batch.load_assignment(layout)
    with tempfile.TemporaryDirectory(prefix=scratch.prefix("copies")) as helpers:
        return copy_report_module.build(layout, spec, known, progress=progress,
                                        recorded=lambda: batch.with_verdict(layout, spec, helpers)[0],
                                        meanwhile=meanwhile)
