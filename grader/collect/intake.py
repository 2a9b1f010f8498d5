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
Zip and tar archives are unpacked as nbgrader's zip-collect does, nested ones
included, but under the caps of archives.py (size, members, depth), streamed, and
only their regular files: an archive a student uploaded holds that student's
files, never other students. The file-name pattern follows zip-collect's
convention (named groups student_id and file_id), so a pattern written for
`nbgrader zip_collect` works here too.
Whatever cannot be matched to a student, or to this assignment, or breaks a rule
(a link, a damaged archive, a file over a cap), is listed with the reason; nothing
is guessed, and everyone else is collected.
"""
from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from grader.collect import archives
from grader.core import scratch, student_files
from grader.core.errors import KitError
from grader.core.plain_text import counted, student_id_problem
from grader.course import coursedir, gradebook
from grader.course.assignments import LATE_FILE, Layout, RECORDS

CANVAS = (r"^(?P<student_id>[A-Za-z0-9.\-]+)_(?P<late>LATE_|late_)?(?P<lms_id>\d+)_(?P<submission_id>\d+)_"
          r"(?P<file_id>.+)$")
# Names the grader reads from a submission folder as facts about the submission: a student's file by one
# of these names could move its own deadline.
RESERVED = set(RECORDS)
_RESUBMISSION = re.compile(r"^(?P<stem>.+?)-(?P<n>\d+)(?P<ext>\.[A-Za-z0-9]+)$")
_SKIP = ("__MACOSX", ".DS_Store", ".ipynb_checkpoints", "Thumbs.db")


@dataclass
class Intake:
    files: dict[str, dict[str, Path]] = field(default_factory=dict)  # student -> {file name in the assignment: path}
    lms_ids: dict[str, str] = field(default_factory=dict)    # student -> LMS user id
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    notes: list[str] = field(default_factory=list)  # what was decided, e.g. the newest resubmission kept
    late: set[str] = field(default_factory=set)     # students whose kept notebook the LMS marked late
    timestamps: dict[str, str] = field(default_factory=dict)  # student -> submission time, where the file name has one
    labels: dict[Path, str] = field(default_factory=dict)  # path of a kept file -> where it was in the download


def _unpack(source, into, budget):
    """Copy a folder, or unpack an archive, into `into` under the caps of `budget`; return the folder to
    match files in. Archives inside it are left as they are: match_files opens them for their owner."""
    source = Path(source)
    if not source.exists():
        raise KitError(f"{source} does not exist: give a folder of notebooks or the zip downloaded from the LMS.")
    root = Path(into) / "download"
    if source.is_dir():
        _copy_folder(source, root, budget)
        return root
    if not archives.unpack(source, root, budget, source.name):
        raise KitError(f"{source.name} is not a zip or tar archive (nor a folder): give the folder of notebooks, or "
                       "the zip file the LMS downloads (its name ends in .zip), as it was downloaded.")
    damaged = [why for where, why in budget.notes if where == source.name]
    if damaged and not any(root.iterdir()):
        raise KitError(f"cannot unpack {source.name}: {damaged[0]}. Download it again from the LMS.")
    # An LMS download often wraps everything in one folder named after it: look inside that folder.
    return Path(archives.inner_root(root))


def _copy_folder(source, target, budget):
    """Copy the regular files under `source` (never following a link) into `target`, within the caps."""
    for relative, dir_fd, name, why in student_files.walk(source, max_entries=budget.caps.members):
        fd = None
        if why is None:
            fd, why = student_files.open_regular(name, dir_fd)
        if fd is None:
            budget.notes.append((relative, f"{why}: skipped"))
            continue
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with os.fdopen(fd, "rb") as source_file:
            archives.write_member(source_file, path, budget, relative)


def _resubmission(name, notebooks):
    """(name without the LMS's resubmission suffix, resubmission number)."""
    match = _RESUBMISSION.match(name)
    if match and match["stem"] + match["ext"] in notebooks:
        return match["stem"] + match["ext"], int(match["n"])
    return name, 0


def match_files(root: str | Path, layout: Layout, pattern: str | None = None, scratch: str | Path | None = None,
                budget: archives.Budget | None = None) -> Intake:
    """An Intake describing where each file under `root` belongs; nothing is copied to the course.

    An upload that is an archive (a student's zip) is unpacked into `scratch`, and its files are
    that student's: whatever folders it holds, it never makes students of its own.
    """
    lms_name = re.compile(pattern or CANVAS)
    budget = budget or archives.Budget()
    notebooks = [f"{name}.ipynb" for name in layout.notebooks]
    found = Intake()
    version: dict[tuple[str, str], tuple[int, Path, bool, str | None, str]] = {}  # (number, path, late, time, label)
    uploads = iter(range(1, 1 << 30))
    for path in sorted(p for p in Path(root).rglob("*") if p.is_file()):  # the kit's own copy: no links in it
        relative = path.relative_to(root)
        if any(part.startswith(_SKIP) for part in relative.parts):
            continue
        owner = _owner(relative, lms_name, layout)
        if isinstance(owner, str):
            found.unmatched.append((str(relative), owner))
            continue
        student, name, lms_id, late, timestamp = owner
        if archives.named_like_one(name):
            # An upload that is an archive needs `scratch` (collect always gives one): hence the ignore.
            files = _unpack_upload(path, Path(scratch) / f"upload-{next(uploads)}",  # type: ignore[arg-type]
                                   f"{relative}", budget, found, layout)
        else:
            files = [(name, path, str(relative))]
        for name, path, label in files:
            name, number = _resubmission(name, notebooks)
            if Path(name).name in RESERVED:
                found.unmatched.append((label, f"{Path(name).name} is the grader's own record of a submission "
                                        "(its time, its late mark): it is never taken from what a student hands in"))
                continue
            if name.endswith(".ipynb") and name not in notebooks:
                found.unmatched.append((label, f"{name} is not a notebook of {layout.name}: rename it to "
                                        f"{' or '.join(notebooks)} if it is one to grade, and collect again"))
                continue
            mine = (number, path, late, timestamp, label)
            if (student, name) in version:
                older, mine = sorted([version[(student, name)], mine], key=lambda v: v[0])
                found.notes.append(f"{student}: kept {Path(mine[4]).name}, the newest of two copies of {name}")
            version[(student, name)] = mine
            found.files.setdefault(student, {})[name] = mine[1]
            found.labels[mine[1]] = mine[4]
            if lms_id:
                found.lms_ids[student] = lms_id
    found.unmatched += [(where, why) for where, why in budget.notes]
    for student, files in list(found.files.items()):
        if not files.keys() & set(notebooks):
            for name, path in files.items():
                found.unmatched.append((found.labels[path], f"{student} sent no {' or '.join(notebooks)}"))
            del found.files[student]
    # The LMS's marks of the notebooks that are kept; students with nothing kept are not students here.
    for (student, name), (_, _, late, timestamp, _) in version.items():
        if student in found.files and name in notebooks:
            if late:
                found.late.add(student)
            if timestamp:
                found.timestamps[student] = timestamp
    found.lms_ids = {s: i for s, i in found.lms_ids.items() if s in found.files}
    return found


def _owner(relative, lms_name, layout):
    """(student, name in the assignment, LMS id, late, timestamp) of a file in the download, or why none."""
    groups = lms_name.match(relative.name) if len(relative.parts) == 1 else None
    lms_id, late, timestamp = None, False, None
    if groups:
        student, name = groups["student_id"], groups["file_id"]
        extra = groups.groupdict()
        lms_id, late, timestamp = extra.get("lms_id"), bool(extra.get("late")), extra.get("timestamp")
    elif len(relative.parts) > 1:
        student = relative.parts[0]
        name = str(_inside_assignment(Path(*relative.parts[1:]), layout))
    elif relative.suffix == ".ipynb" and relative.stem not in layout.notebooks and len(layout.notebooks) == 1:
        student, name = relative.stem, f"{layout.notebooks[0]}.ipynb"
    else:
        return ("the name does not say whose it is (expected an LMS file name, <student>.ipynb, or a <student>/ "
                "folder)")
    if student_id_problem(student):
        return student_id_problem(student)
    return student, name, lms_id, late, timestamp


def _inside_assignment(inner, layout):
    """An earlier submitted/ layout, <assignment>/<files>: the files' names without the assignment folder."""
    if inner.parts[0] == layout.name and len(inner.parts) > 1:
        return Path(*inner.parts[1:])
    return inner


def _unpack_upload(path, into, label, budget, found, layout, depth=2):
    """[(name in the assignment, path, label)] for the files of a student's archive; archives inside it are
    unpacked too, into a folder of their name, down to the depth cap."""
    if not archives.unpack(path, into, budget, label):
        found.unmatched.append((label, "named like an archive, but it is not one that can be read (zip or tar): "
                                "not collected. Ask the student to upload it again"))
        return []
    root = Path(archives.inner_root(into))
    files = []
    for inner in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = inner.relative_to(root)
        where = f"{label}/{relative}"
        if any(part.startswith(_SKIP) for part in relative.parts):
            continue
        if archives.named_like_one(inner.name):
            if depth + 1 > budget.caps.depth:
                found.unmatched.append((where, f"an archive inside archives {budget.caps.depth} deep: not opened, "
                                        "not collected"))
                continue
            nested = _unpack_upload(inner, inner.with_name(inner.name + ".unpacked"), where, budget, found, layout,
                                    depth + 1)
            folder = str(_inside_assignment(relative.parent / archives.strip_suffix(inner.name), layout))
            files += [(f"{folder}/{name}", p, w) for name, p, w in nested]
            continue
        files.append((str(_inside_assignment(relative, layout)), inner, where))
    return files


def collect(source: str | Path, layout: Layout, pattern: str | None = None, caps: archives.Caps = archives.Caps()
            ) -> Intake:
    """Match the files of `source` and copy them to submitted/<student>/<assignment>/, within `caps`."""
    if pattern:
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise KitError(f"--pattern is not a valid regular expression: {error}") from None
        if not {"student_id", "file_id"} <= set(compiled.groupindex):
            raise KitError("--pattern needs the named groups (?P<student_id>...) and (?P<file_id>...).")
    # A scratch folder of the kit's: removed by the next run after a SIGKILL (scratch.sweep_scratch).
    with tempfile.TemporaryDirectory(prefix=scratch.prefix("intake")) as unpacked:
        budget = archives.Budget(caps)
        root = _unpack(source, unpacked, budget)
        if not any(p.is_file() for p in Path(root).rglob("*")):
            raise KitError(f"nothing to collect: {source} holds no files that could be read. Give the folder or zip "
                           "the LMS gave you." + "".join(f"\n  {where}: {why}" for where, why in budget.notes[:20]))
        found = match_files(root, layout, pattern, unpacked, budget)
        if not found.files and found.unmatched and all(" is not a notebook of " in why or " sent no " in why
                                                        for _, why in found.unmatched):
            raise KitError(f"none of the files in {source} is a notebook of {layout.name} "
                           f"({', '.join(f'{n}.ipynb' for n in layout.notebooks)}): is it the download of another "
                           "assignment, or another course's? Give the right --assignment, or run collect in the "
                           "course it belongs to. Nothing was collected.")
        from nbgrader.utils import parse_utc
        for student, when in list(found.timestamps.items()):
            try:
                parse_utc(when)
            except Exception:
                found.notes.append(f"{student}: the time {when!r} in the file name cannot be read; no timestamp kept")
                del found.timestamps[student]
        aside = layout.course_dir / BACKUPS / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S")
        for student, files in found.files.items():
            folder = layout.submitted(student)
            kept_before = _files_in(folder)
            for name, path in list(files.items()):
                target = folder / name
                try:
                    if _through_link(folder, name):
                        raise OSError(0, "a link stands in its place in the submission folder")
                    if name in kept_before:  # the download is newer: its copy replaces this one, kept aside first
                        _put_aside(target, aside / student / layout.name / name)
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, target)
                except OSError as error:  # a file where the student's own folder of that name is, say
                    found.unmatched.append((found.labels[path], f"cannot be written as {name} ({error.strerror}): "
                                            "not collected"))
                    del files[name]
                    continue
                files[name] = target
            replaced = sorted(set(files) & kept_before)
            left = sorted(kept_before - set(files) - RESERVED)
            absent = [f"{n}.ipynb" for n in layout.notebooks if f"{n}.ipynb" not in set(files) | kept_before]
            if absent and len(layout.notebooks) > 1:
                found.notes.append(f"{student}: no {', '.join(absent)} (graded as released, as stock nbgrader "
                                   "does, unless a later download brings it)")
            if replaced or left:
                found.notes.append(f"{student}: " + "; ".join(
                    ([f"replaced {', '.join(replaced)} (the earlier copy kept in {aside / student / layout.name})"]
                     if replaced else []) + ([f"kept {', '.join(left)} from before"] if left else [])))
            # The marks of the newest download are the submission's.
            (folder / LATE_FILE).unlink(missing_ok=True)
            if student in found.late:
                (folder / LATE_FILE).write_text("marked late by the LMS\n")
            if student in found.timestamps:
                (folder / "timestamp.txt").write_text(found.timestamps[student])
    if found.lms_ids:
        gradebook.record_lms_ids(coursedir.course_directory(layout.course_dir), found.lms_ids)
    return found


BACKUPS = "collect-backups"  # in the course folder: each file a later collect replaced, under the time it did


def _files_in(folder):
    """Names (relative paths) of the regular files already collected in `folder`; links are neither followed nor
    listed (a folder there may have come from elsewhere: nbgrader's exchange)."""
    if not folder.is_dir() or folder.is_symlink():
        return set()
    found = set()
    for top, _, names in os.walk(folder, followlinks=False):
        found |= {os.path.relpath(os.path.join(top, n), folder) for n in names
                  if os.path.isfile(os.path.join(top, n)) and not os.path.islink(os.path.join(top, n))}
    return found


def _through_link(folder, name):
    """True when `folder/name`, or a folder on the way to it, is a link: nothing is written through one."""
    path = folder
    for part in Path(name).parts:
        path = path / part
        if path.is_symlink():
            return True
    return folder.is_symlink()


def _put_aside(path, target):
    """Move `path` (a file of the submission folder, reached through no link) to `target`."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), str(target))


def describe(found: Intake, layout: Layout) -> str:
    lines = [f"Collected {counted(len(found.files), 'submission')} of {layout.name} into "
             f"{layout.course_dir / 'submitted'}/<student>/{layout.name}/"]
    lines += [f"  note: {n}" for n in found.notes]
    if found.late:
        lines.append(f"  marked late by the LMS: {', '.join(sorted(found.late))} (the grades CSV's `late` column; "
                     "nbgrader's late penalty needs a timestamp: see the README)")
    if found.unmatched:
        lines.append(f"NOT COLLECTED ({counted(len(found.unmatched), 'file')}): fix the names, or give --pattern, "
                     "and run collect again")
        lines += [f"  {path}: {why}" for path, why in found.unmatched]
    if found.files:
        lines.append(f"Next: {coursedir.hint('grade ' + layout.name)}")
    return "\n".join(lines)
