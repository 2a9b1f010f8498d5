"""Taking students out of a course: from the gradebook and from every folder and output.

For leaving a demo behind (the sample students) and for a student who left the course. Only the
students named are touched; the gradebook is backed up first (see gradebook.backup), and every
assignment's outputs are then published again without them.
"""
from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from grader.core.errors import KitError
from grader.course import assignments, coursedir, gradebook
from grader.grade import batch
from grader.report import publish, reports
from grader.similarity import copy_report

STUDENT_FOLDERS = ("submitted", "autograded", "feedback")  # nbgrader's, each with a folder per student


@dataclass
class Removed:
    backup: Path | None = None
    students: list[str] = field(default_factory=list)   # taken out of the gradebook
    folders: list[Path] = field(default_factory=list)    # deleted
    republished: list[str] = field(default_factory=list)  # assignments whose outputs were written again
    copy_reports: list[Path] = field(default_factory=list)  # copy reports deleted (they named the students)


def check_names(students: Iterable[str]) -> None:
    """Refuse anything that is not a plain student id: a name must never reach beyond its own folder."""
    bad = [s for s in students if not s or s in (".", "..") or "/" in s or "\\" in s or "\0" in s]
    if bad:
        raise KitError(f"not a student id: {', '.join(map(repr, bad))} (give ids as the gradebook has them, "
                       "such as `sample_correct`)")


def holdings(course_dir: Path | str, students: Sequence[str]) -> dict[str, int | None]:
    """student -> how many graded submissions the gradebook holds for them (None: not in the gradebook)."""
    course = coursedir.course_directory(course_dir)
    with gradebook.open_gradebook(course) as gb:
        known = {s.id: len(s.submissions) for s in gb.students if s.id in set(students)}
    return {s: known.get(s) for s in students}


def remove_students(course_dir: Path | str, students: Sequence[str]) -> Removed:
    """Take `students` out of the gradebook and delete their folders; publish every assignment again."""
    check_names(students)
    course_dir = Path(course_dir)
    done = Removed(backup=gradebook.backup(course_dir))
    course = coursedir.course_directory(course_dir)
    done.students += gradebook.remove_students(course, students)
    for top in STUDENT_FOLDERS:
        for student in students:
            folder = course_dir / top / student
            if folder.is_symlink():
                folder.unlink()  # the link only, never where it points
            elif folder.is_dir():
                shutil.rmtree(folder)
            else:
                continue
            done.folders.append(folder)
    for name in assignments.names(course_dir):
        layout = assignments.Layout(course_dir, name)
        if (course_dir / "autograded" / reports.grades_csv(name)).is_file():
            publish.publish(layout, batch.load_assignment(layout))
            done.republished.append(name)
        for path in (course_dir / "autograded" / copy_report.copies_csv(name),
                     course_dir / "autograded" / copy_report.copies_html(name)):
            if path.is_file():  # the next grade (or `copies`) compares the students who are left
                path.unlink()
                done.copy_reports.append(path)
        kept = copy_report.students_cache(course_dir, name)  # it holds their fingerprints too
        if kept.is_file():
            kept.unlink()
            if not any(kept.parent.iterdir()):
                kept.parent.rmdir()
    return done
