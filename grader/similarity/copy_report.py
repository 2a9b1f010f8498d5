"""The copy report of an assignment: its students' notebooks and known solutions compared (copies.py),
written as `autograded/<assignment>_copies.csv` and `autograded/<assignment>_copies.html`.

For the instructor only. It never changes a score, and no student's page mentions it.

Known solutions (earlier years' notebooks, solutions found online: `.ipynb` or `.py` files) go in
`known_solutions/<assignment>/` in the course folder, or any folder given to `copies --known`. Each is
read once: its fingerprints are kept in `autograded/.copies/`, under the SHA-256 of its bytes, and
reused while the file is unchanged.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from grader.core import digest, interrupts
from grader.core.files import part_of, write_atomically
from grader.core.plain_text import SpreadsheetWriter, valid_text
from grader.report import charts, pages
from grader.similarity import copies, fingerprints

if TYPE_CHECKING:
    from grader.core.model import AssignmentSpec
    from grader.course.assignments import Layout
    from grader.core.progress import Progress

KNOWN_DIR = "known_solutions"
CACHE_DIR = Path("autograded") / ".copies"
MAX_UNIT_CHARS = 50_000    # a unit longer than this is cut: no honest answer comes near
MAX_NOTEBOOK_CHARS = 200_000  # code read from one notebook, all cells together; the rest is not compared
MAX_KNOWN_BYTES = 4 << 20  # a known solution file larger than this is skipped
SIDE_BY_SIDE = 40          # pairs shown side by side in the page, most alike first


def copies_csv(name: str) -> str:
    return f"{name}_copies.csv"


def copies_html(name: str) -> str:
    return f"{name}_copies.html"


def students_cache(course_dir: Path | str, name: str) -> Path:
    """Where the students' fingerprints are kept between reports (see build)."""
    return Path(course_dir) / CACHE_DIR / f"{name}_students.json"


@dataclass
class Units:
    """What a comparison needs from the assignment: its units and how to find them."""
    ids: list[str]             # unit ids: "<notebook>/<solution grade_id>"
    functions: dict[str, str]  # function name -> unit id (for code without nbgrader's cell ids)
    release: dict[str, str]    # unit id -> the cell as handed out
    master: dict[str, str]     # unit id -> the master's cell
    several: bool = False      # several notebooks: unit names keep their notebook's

    def label(self, unit: str) -> str:
        return unit if self.several else unit.split("/", 1)[-1]


def assignment_units(spec: AssignmentSpec) -> Units:
    """The units of an assignment (model.AssignmentSpec): every code solution cell of its master."""
    ids, functions, release, master = [], {}, {}, {}
    for task in spec.notebooks:
        for cell in task.cells:
            if cell.solution and cell.cell_type == "code":
                unit = f"{task.notebook}/{cell.grade_id}"
                ids.append(unit)
                release[unit] = cell.release_source or ""
                master[unit] = cell.source
                for name, _ in copies._top_level_functions(cell.source):
                    if name:
                        functions[name] = unit
    return Units(ids, functions, release, master, spec.several)


def master_behaviour(spec: AssignmentSpec) -> dict[str, int | None]:
    """call key -> the master's digest, from the outside verdict's recording (an empty dict without one)."""
    found = {}
    for task in spec.notebooks:
        for grade_id, plan in (task.plans or {}).items():
            for k, call in enumerate(plan.calls):
                if not call.reads:
                    found[f"{task.notebook}/{grade_id}:{k}"] = digest.output_digest(call.master_output, call.inputs)
    return found


def _cells_of(text, notebook_name, units):
    """(grade_id-or-None, source) of a notebook's code cells, unit cells named "<notebook>/<grade_id>"."""
    nb = json.loads(text)  # plain JSON: what a cell holds is all that is read, no validation needed
    cells, budget = [], MAX_NOTEBOOK_CHARS
    for cell in (nb.get("cells") or [])[:2000] if isinstance(nb, dict) else []:
        if not isinstance(cell, dict):
            continue
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata")
        meta = meta.get("nbgrader") if isinstance(meta, dict) else None
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        unit = f"{notebook_name}/{grade_id}" if grade_id else None
        if grade_id and unit not in units.ids:
            continue  # a test or another graded cell: the assignment's code, not the author's
        source = cell.get("source", "")
        source = "".join(map(str, source)) if isinstance(source, list) else str(source)
        source = valid_text(source)[:min(MAX_UNIT_CHARS, budget)]
        budget -= len(source)
        cells.append((unit, source))
        if budget <= 0:
            break
    return cells


def student_document(name: str, files: Iterable[tuple[str, bytes]], units: Units, forced: Mapping[str, set[int]],
                     behaviour: Mapping[str, int | None]) -> copies.Document | None:
    """A student's Document from their submission's files ((path, bytes)); None if no notebook reads."""
    cells = []
    for path, data in files:
        stem = path[:-len(".ipynb")] if path.endswith(".ipynb") and "/" not in path else None
        if stem is None or not any(u.startswith(f"{stem}/") for u in units.ids):
            continue
        try:
            cells += _cells_of(data.decode("utf-8"), stem, units)
        except Exception:  # noqa: BLE001 -- an unreadable notebook is compared by nothing
            continue
    if not cells:
        return None
    found, helpers = copies.split_units(cells, set(units.ids), units.functions)
    return copies.document(name, found, helpers, forced, behaviour=behaviour)


def known_documents(folder: Path | str, units: Units, forced: Mapping[str, set[int]], course_dir: Path | str
                    ) -> tuple[list[copies.Document], list[str]]:
    """Documents of the known solutions in `folder` (.ipynb and .py, at any depth), from the cache when
    a file is unchanged. Returns (documents, notes)."""
    folder = Path(folder)
    cache_file = Path(course_dir) / CACHE_DIR / "known.json"
    try:
        cache = json.loads(cache_file.read_text())
        if cache.get("version") != fingerprints.VERSION:
            cache = {}
    except (OSError, ValueError):
        cache = {}
    entries = cache.get("files", {})
    documents, notes, used = [], [], {}
    for path in sorted(folder.rglob("*")):
        if path.suffix not in (".ipynb", ".py"):
            continue
        relative = path.relative_to(folder).as_posix()
        if path.is_symlink() or not path.is_file():
            notes.append(f"{relative}: a link or not a regular file, skipped (copy the file itself there)")
            continue
        if path.stat().st_size > MAX_KNOWN_BYTES:
            notes.append(f"{relative}: over {MAX_KNOWN_BYTES >> 20} MB, skipped")
            continue
        data = path.read_bytes()
        key = hashlib.sha256(data).hexdigest()
        if key in entries:
            units_found = {u: fingerprints.UnitPrint.from_dict(p) for u, p in entries[key].items()}
        else:
            try:
                text = data.decode("utf-8")
                if path.suffix == ".ipynb":
                    cells = _cells_of(text, notebook_name_for(units), units)
                else:
                    cells = [(None, text)]
            except Exception as error:  # noqa: BLE001
                notes.append(f"{relative}: cannot be read ({type(error).__name__}), skipped")
                continue
            found, helpers = copies.split_units(cells, set(units.ids), units.functions)
            units_found = copies.document(relative, found, helpers).units
        used[key] = {u: p.to_dict() for u, p in units_found.items()}
        if not units_found:
            notes.append(f"{relative}: holds none of the assignment's functions, skipped")
            continue
        prints = {u: fingerprints.UnitPrint({h: lines for h, lines in p.pieces.items() if h not in forced.get(u, ())},
                                            p.code, p.calls, p.defines) for u, p in units_found.items()}
        documents.append(copies.Document(f"known:{relative}", True, prints))
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(cache_file, json.dumps({"version": fingerprints.VERSION, "files": used}))
    return documents, notes


def notebook_name_for(units: Units) -> str:
    return units.ids[0].split("/", 1)[0] if units.ids else ""


@dataclass
class CopyReport:
    comparison: copies.Comparison | None  # None when nothing changed since the last report, which stands
    csv: Path
    page: Path
    notes: list[str] = field(default_factory=list)
    pairs: int = 0                 # pairs reported
    groups: int = 0                # groups of three or more


def build(layout: Layout, spec: AssignmentSpec, known: Path | str | None = None,
          progress: Progress | None = None,
          recorded: Callable[[], AssignmentSpec] | None = None,
          meanwhile: Callable[[], object] | None = None) -> CopyReport:
    """Compare every student of the assignment (and the known solutions); write the CSV and the page.

    Each student's fingerprints are kept (autograded/.copies/<assignment>_students.json) under a digest of
    what they were made from: the files handed in, the outputs the grader recorded for them, the assignment
    and the kit's way of fingerprinting. An unchanged student is not read again, and when nothing at all has
    changed the report written last stands. `recorded()`: `spec` with its outside verdict recorded, asked for
    only when the comparison runs and `spec` has none (the master's outputs). `meanwhile`: work of the caller's,
    called once, here, while the students are fingerprinted in other processes (grade publishes its pages)."""
    from grader.grade import batch

    units = assignment_units(spec)
    forced = copies.forced_pieces(units.release)
    students = batch.submitted_students(layout)
    cache_file = students_cache(layout.course_dir, layout.name)
    basis = _digest(fingerprints.VERSION, spec.fingerprint)
    cache = _load(cache_file)
    if cache.get("basis") != basis:
        cache = {}
    kept = cache.get("students") if isinstance(cache.get("students"), dict) else {}
    kept = {s: e for s, e in kept.items() if _well_formed(e)}
    last = cache.get("report") if isinstance(cache.get("report"), dict) else {}
    documents, keys = [], {}  # keys: student -> the digest their fingerprints are kept under
    # Each notebook read and fingerprinted in a process of its own, one per core: the slow part of a big class.
    work = [(layout, s, units, forced, basis, kept.get(s, {}).get("key")) for s in students]
    pool = ProcessPoolExecutor(max_workers=min(os.cpu_count() or 1, max(1, len(students) // 20)),
                               mp_context=multiprocessing.get_context("fork"), initializer=_leave_ctrl_c_to_the_grader)
    try:
        with interrupts.held():  # the workers are forked here, with Ctrl-C blocked until they ignore it
            read = pool.map(_read_student, work, chunksize=16)  # under way from here on
        if meanwhile is not None:
            meanwhile()  # what it does says so first: this report's own progress follows
        if progress:
            progress.phase(f"{layout.name}: comparing every pair of students for the copy report")
        bar = progress(len(students), "fingerprinting", "read") if progress and students else None
        for student, (key, document) in zip(students, read):
            if key is not None and document is None and kept.get(student, {}).get("key") == key:
                document = _from_entry(student, kept.pop(student))  # unchanged: as fingerprinted before
            if key is not None:
                keys[student] = key  # a notebook with nothing to compare is kept too
            if document is not None:
                documents.append(document)
            if bar:
                bar.update(student, "read" if document is not None else "no notebook to compare")
    except BaseException:
        interrupts.end_pool(pool)  # on Ctrl-C, at once: what is left of the class is not read
        raise
    pool.shutdown()
    if bar:
        bar.close()
    folder = Path(known) if known else layout.course_dir / KNOWN_DIR / layout.name
    notes: list[str] = []
    if folder.is_dir():
        found, notes = known_documents(folder, units, forced, layout.course_dir)
        documents += found
    elif known:
        notes.append(f"no folder {folder}: compared without known solutions")
    kept = cache = None  # what was kept is in `documents` now: a class of 1,000 need not hold it twice
    key = _digest(basis, sorted(keys.items()),
                  [(d.name, _entry("", d)) for d in documents if d.known], notes)
    out = layout.course_dir / "autograded"
    csv_path, page_path = out / copies_csv(layout.name), out / copies_html(layout.name)
    if last.get("key") == key and csv_path.is_file() and page_path.is_file():
        _save(cache_file, basis, keys, documents, last)
        return CopyReport(None, csv_path, page_path, notes, last.get("pairs", 0), last.get("groups", 0))
    if recorded is not None and not any(task.plans for task in spec.notebooks):
        spec = recorded()
    master = copies.document("master", units.master, forced=forced)
    comparison = copies.compare(documents, master, master_behaviour(spec))
    out.mkdir(exist_ok=True)
    csv_path = write_csv(csv_path, comparison, units)
    page = write_copy_report(page_path, comparison, units, layout.name, notes)
    summary = {"key": key, "pairs": len(comparison.pairs), "groups": len(comparison.groups)}
    _save(cache_file, basis, keys, documents, summary)
    return CopyReport(comparison, csv_path, page, notes, summary["pairs"], summary["groups"])


def _leave_ctrl_c_to_the_grader():
    """A worker of the copy report ignores Ctrl-C, which the grader handles by stopping the pool: a worker forked
    from the grader would otherwise run its handler, and one interrupted while it sends a result leaves half a
    message in the pipe, for which the pool then waits for ever."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _read_student(work):
    """(layout, student, units, forced, basis, the key kept for the student) -> (key, the student's Document):
    the Document None when the student's fingerprints are kept under that same key, or when nothing can be read
    (then the key is None too). In a worker process."""
    from grader.grade import batch
    layout, student, units, forced, basis, kept_key = work
    try:
        result = batch.stored_result(layout, student)
        submission = batch.read_submission(layout, student)
        behaviour = result.behaviour if result is not None else {}
        key = _digest(basis, submission.fingerprint, sorted(behaviour.items()))
        if key == kept_key:
            return key, None
        return key, student_document(student, submission.files, units, forced, behaviour)
    except Exception:  # noqa: BLE001 -- one unreadable submission is left out of the comparison, not the class
        return None, None


def _digest(*parts):
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _entry(key, document):
    if document is None:
        return {"key": key, "units": None}
    return {"key": key, "units": {u: p.to_dict() for u, p in document.units.items()},
            "behaviour": document.behaviour}


def _well_formed(entry):
    """An entry the cache can be trusted to rebuild a Document from (anything else is fingerprinted again)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
        return False
    units = entry.get("units")
    return units is None or (isinstance(units, dict) and isinstance(entry.get("behaviour"), dict) and all(
        isinstance(p, dict) and {"pieces", "code", "calls", "defines"} <= p.keys() for p in units.values()))


def _from_entry(name, entry):
    if entry.get("units") is None:
        return None
    return copies.Document(name, False, {u: fingerprints.UnitPrint.from_dict(p) for u, p in entry["units"].items()},
                           dict(entry["behaviour"]))


def _load(path):
    try:
        data = json.loads(Path(path).read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _save(path, basis, keys, documents, report):
    """The cache, written whole or not at all (a cache cut short would only be read as empty), one student at a
    time: a class's fingerprints are never all in memory twice, as documents and as their JSON."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = part_of(path)
    by_name = {d.name: d for d in documents if not d.known}
    with open(partial, "w") as f:
        f.write(f'{{"basis": {json.dumps(basis)}, "report": {json.dumps(report)}, "students": {{')
        for i, (student, key) in enumerate(sorted(keys.items())):
            f.write(f'{", " if i else ""}{json.dumps(student)}: {json.dumps(_entry(key, by_name.get(student)))}')
        f.write("}}")
    os.replace(partial, path)


def write_csv(path: Path, comparison: copies.Comparison, units: Units) -> Path:
    """A row per pair reported, as the page orders them (most alike first; known solutions after the students):
    the two, the score (0 to 1), the evidence, and the share of code in common (absolute)."""
    with open(path, "w", newline="", encoding="utf-8", errors="backslashreplace") as f:
        out = SpreadsheetWriter(f)
        out.writerow(["student_a", "student_b", "score", "code", "behaviour", "units", "shared_wrong_outputs",
                      "kind", "shared_code"])
        for pair in comparison.pairs + comparison.known_pairs:  # in the page's order
            out.writerow([pair.a, pair.b, f"{pair.score:.3f}", f"{pair.code:.3f}",
                          f"{pair.behaviour:.3f}",
                          "; ".join(f"{units.label(u)}={s:.2f}" for u, s in pair.ranked_units()),
                          "; ".join(sorted({key.split(":")[0].split("/", 1)[-1] for key in pair.shared_wrong})),
                          "known solution" if pair.known else "students", f"{pair.shared:.3f}"])
    return path


# ---------------------------------------------------------------- the page

def _side_by_side(comparison, pair, units, at_least=copies.REPORTED):
    """For each unit the pair shares enough of: both codes, line by line, the shared lines marked."""
    views = []
    one, other = comparison.documents[pair.a], comparison.documents[pair.b]
    for unit, score in pair.ranked_units():
        if score < at_least or unit not in one.units or unit not in other.units:
            continue
        left, right = copies.shared_lines(one.units[unit], other.units[unit])
        lines = fingerprints.source_lines
        views.append({"unit": units.label(unit), "score": f"{score:.2f}",
                      "left": [(line, i in left) for i, line in enumerate(lines(one.units[unit].code), 1)],
                      "right": [(line, i in right) for i, line in enumerate(lines(other.units[unit].code), 1)]})
    return views


def write_copy_report(page: Path | str, comparison: copies.Comparison, units: Units, name: str,
                      notes: Iterable[str] = ()) -> Path:
    """The copy report's page: who is most alike, on what evidence, side by side."""
    page = Path(page)

    def row(pair, number):
        return {"number": number, "a": pair.a, "b": pair.b.removeprefix("known:"), "score": f"{pair.score:.2f}",
                "code": f"{pair.code:.2f}", "behaviour": f"{pair.behaviour:.2f}", "shared": f"{pair.shared:.2f}",
                "units": [(units.label(u), f"{s:.2f}") for u, s in pair.ranked_units()
                          if s >= copies.REPORTED],
                "wrong": sorted({key.split(":")[0].split("/", 1)[-1] for key in pair.shared_wrong})}
    pairs = [row(p, i) for i, p in enumerate(comparison.pairs, 1)]
    views = [{"pair": pairs[i], "units": _side_by_side(comparison, p, units)}
             for i, p in enumerate(comparison.pairs[:SIDE_BY_SIDE])]
    known = [row(p, i) for i, p in enumerate(comparison.known_pairs, 1) if p.score >= copies.REPORTED]
    figure = pages.chart_markup(charts.highest_similarity(comparison.best.values())) if comparison.best else None
    page.write_text(pages.render("copies.html.j2", title=f"Who copied? {name}", assignment=name,
                           students=len(comparison.students), compared=len(comparison.students) * (
                               len(comparison.students) - 1) // 2, pairs=pairs, views=views, known=known,
                           groups=comparison.groups, figure=figure, notes=list(notes), shown=SIDE_BY_SIDE,
                           small=comparison.small),
                    encoding="utf-8", errors="backslashreplace")
    return page
