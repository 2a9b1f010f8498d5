"""Intake: lay out submissions as submitted/<student>/<assignment>/ from a folder or an LMS zip.

Accepted sources, mixed freely:
- an LMS download: files named the LMS way, by default Canvas's
  `<login>_[LATE_]<lms user id>_<submission id>_<file name>` (a resubmission's
  file name gains "-1", "-2", ...); give another regular expression with --pattern.
  Canvas's LATE_ mark is kept (LATE_FILE beside the files: the flag and the CSV's
  `late` column); a pattern with a `timestamp` group (as nbgrader's zip_collect
  reads it) gives nbgrader's timestamp.txt, so the course's late penalty applies;
- a folder per student: `<student>/<any path>` (e.g. an earlier submitted/ layout);
- one notebook per student: `<student>.ipynb`.
Zip (and .tar.gz) archives are unpacked with nbgrader's zip-collect extractor,
nested ones included. The file-name pattern follows zip-collect's convention
(named groups student_id and file_id), so a pattern written for
`nbgrader zip_collect` works here too.
Whatever cannot be matched to a student, or to this assignment, is listed with
the reason, and nothing is guessed.
"""
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from . import course, gradebook
from .release import KitError

CANVAS = (r"^(?P<student_id>[A-Za-z0-9.\-]+)_(?P<late>LATE_|late_)?(?P<lms_id>\d+)_(?P<submission_id>\d+)_"
          r"(?P<file_id>.+)$")
LATE_FILE = ".lms_late"  # in submitted/<student>/<assignment>/: the LMS marked the submission late
# Names the grader reads from a submission folder as facts about the submission: a student's file by one
# of these names could move its own deadline.
RESERVED = {"timestamp.txt", LATE_FILE, "submission_secret.txt"}
_RESUBMISSION = re.compile(r"^(?P<stem>.+?)-(?P<n>\d+)(?P<ext>\.[A-Za-z0-9]+)$")
_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-@]*$")
_SKIP = ("__MACOSX", ".DS_Store", ".ipynb_checkpoints", "Thumbs.db")


@dataclass
class Intake:
    files: dict = field(default_factory=dict)      # student -> {file name in the assignment: source path}
    lms_ids: dict = field(default_factory=dict)    # student -> LMS user id
    unmatched: list = field(default_factory=list)  # (file, why)
    notes: list = field(default_factory=list)      # what was decided, e.g. the newest resubmission kept
    late: set = field(default_factory=set)         # students whose kept notebook the LMS marked late
    timestamps: dict = field(default_factory=dict)  # student -> submission time, where the file name has one


def _unpack(source, into):
    """Copy a folder, or extract an archive (nested archives too), into `into`."""
    from nbgrader.plugins import ExtractorPlugin

    source = Path(source)
    if not source.exists():
        raise KitError(f"{source} does not exist: give a folder of notebooks or the zip downloaded from the LMS.")
    staging = Path(into) / "archive"
    staging.mkdir()
    if source.is_dir():
        shutil.copytree(source, staging / "folder")
    elif source.suffix in (".zip", ".gz"):
        shutil.copy(source, staging / source.name)
    else:
        raise KitError(f"{source} is neither a folder nor a .zip or .tar.gz archive.")
    extracted = Path(into) / "extracted"
    quiet = logging.getLogger("grader.intake.extractor")
    quiet.setLevel(logging.CRITICAL)
    try:
        ExtractorPlugin(log=quiet).extract(str(staging), str(extracted))
    except Exception as error:  # zipfile and tarfile raise their own types for damaged archives
        raise KitError(f"cannot unpack {source.name}: {error}. Download it again from the LMS.") from None
    root = extracted / "folder" if source.is_dir() else extracted
    # nbgrader unpacks an archive into a folder named after it: look inside that folder.
    inner = [p for p in root.iterdir() if not p.name.startswith(_SKIP)] if root.is_dir() else []
    if not source.is_dir() and len(inner) == 1 and inner[0].is_dir():
        root = inner[0]
    return root


def _resubmission(name):
    """(name without the LMS's resubmission suffix, resubmission number)."""
    match = _RESUBMISSION.match(name)
    if match and match["stem"] + match["ext"] == f"{course.NOTEBOOK}.ipynb":
        return match["stem"] + match["ext"], int(match["n"])
    return name, 0


def match_files(root, pattern=None):
    """An Intake describing where each file under `root` belongs; nothing is copied."""
    lms_name = re.compile(pattern or CANVAS)
    notebook = f"{course.NOTEBOOK}.ipynb"
    found = Intake()
    version = {}
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):
        relative = path.relative_to(root)
        if any(part.startswith(_SKIP) for part in relative.parts):
            continue
        groups = lms_name.match(relative.name) if len(relative.parts) == 1 else None
        lms_id, late, timestamp = None, False, None
        if groups:
            student, name = groups["student_id"], groups["file_id"]
            extra = groups.groupdict()
            lms_id, late, timestamp = extra.get("lms_id"), bool(extra.get("late")), extra.get("timestamp")
        elif len(relative.parts) > 1:
            student = relative.parts[0]
            inner = Path(*relative.parts[1:])
            # An earlier submitted/ layout: <student>/<assignment>/<files>.
            if inner.parts[0] == course.ASSIGNMENT and len(inner.parts) > 1:
                inner = Path(*inner.parts[1:])
            name = str(inner)
        elif relative.suffix == ".ipynb" and relative.stem != course.NOTEBOOK:
            student, name = relative.stem, notebook
        else:
            found.unmatched.append((str(relative), "the name does not say whose it is (expected an LMS file name, "
                                    "<student>.ipynb, or a <student>/ folder)"))
            continue
        if not _STUDENT_ID.match(student):
            found.unmatched.append((str(relative), f"{student!r} cannot be a student id (letters, digits, . _ - @)"))
            continue
        name, number = _resubmission(name)
        if Path(name).name in RESERVED:
            found.unmatched.append((str(relative), f"{Path(name).name} is the grader's own record of a submission "
                                    "(its time, its late mark): it is never taken from what a student hands in"))
            continue
        if name.endswith(".ipynb") and name != notebook:
            found.unmatched.append((str(relative), f"{name} is not this assignment's notebook: rename it to "
                                    f"{notebook} if it is the one to grade, and collect again"))
            continue
        mine = (number, path, late, timestamp)
        if (student, name) in version:
            older, mine = sorted([version[(student, name)], mine], key=lambda v: v[0])
            found.notes.append(f"{student}: kept {mine[1].name}, the newest of two copies of {name}")
        version[(student, name)] = mine
        found.files.setdefault(student, {})[name] = mine[1]
        if lms_id:
            found.lms_ids[student] = lms_id
    for student, files in list(found.files.items()):
        if notebook not in files:
            for name, path in files.items():
                found.unmatched.append((str(path.relative_to(root)), f"{student} sent no {notebook}"))
            del found.files[student]
    # The LMS's marks of the notebook that is kept; students with nothing kept are not students here.
    for (student, name), (_, _, late, timestamp) in version.items():
        if student in found.files and name == notebook:
            if late:
                found.late.add(student)
            if timestamp:
                found.timestamps[student] = timestamp
    found.lms_ids = {s: i for s, i in found.lms_ids.items() if s in found.files}
    return found


def collect(source, course_dir=course.COURSE_DIR, pattern=None):
    """Match the files of `source` and copy them to submitted/<student>/<assignment>/."""
    if pattern:
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise KitError(f"--pattern is not a valid regular expression: {error}") from None
        if not {"student_id", "file_id"} <= set(compiled.groupindex):
            raise KitError("--pattern needs the named groups (?P<student_id>...) and (?P<file_id>...).")
    # Named like the grader's scratch folders, so that batch.sweep_scratch removes it after a SIGKILL.
    with tempfile.TemporaryDirectory(prefix=f"rnn-grader-intake-{os.getpid()}-") as scratch:
        root = _unpack(source, scratch)
        if not any(p.is_file() for p in Path(root).rglob("*")):
            raise KitError(f"nothing to collect: {source} holds no files. Give the folder or zip the LMS gave you.")
        found = match_files(root, pattern)
        from nbgrader.utils import parse_utc
        for student, when in list(found.timestamps.items()):
            try:
                parse_utc(when)
            except Exception:
                found.notes.append(f"{student}: the time {when!r} in the file name cannot be read; no timestamp kept")
                del found.timestamps[student]
        for student, files in found.files.items():
            folder = Path(course_dir) / "submitted" / student / course.ASSIGNMENT
            if folder.exists():
                shutil.rmtree(folder)  # a new download replaces the old submission whole
            for name, path in files.items():
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                files[name] = target
            if student in found.late:
                (folder / LATE_FILE).write_text("marked late by the LMS\n")
            if student in found.timestamps:
                (folder / "timestamp.txt").write_text(found.timestamps[student])
    if found.lms_ids:
        api = course.nbgrader_api(course_dir)
        with gradebook.open_gradebook(api) as gb:
            for student, lms_id in found.lms_ids.items():
                gb.update_or_create_student(student, lms_user_id=lms_id)
    return found


def describe(found, course_dir):
    lines = [f"Collected {len(found.files)} submissions into {Path(course_dir) / 'submitted'}/"]
    lines += [f"  note: {n}" for n in found.notes]
    if found.late:
        lines.append(f"  marked late by the LMS: {', '.join(sorted(found.late))} (the grades CSV's `late` column; "
                     "nbgrader's late penalty needs a timestamp: see the README)")
    if found.unmatched:
        lines.append(f"NOT COLLECTED ({len(found.unmatched)} files): fix their names, or give --pattern, and run "
                     "collect again")
        lines += [f"  {path}: {why}" for path, why in found.unmatched]
    if found.files:
        lines.append(f"Next: {course.hint('grade')}")
    return "\n".join(lines)
