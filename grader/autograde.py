"""Grade submissions with nbgrader autograde and read the scores back from the gradebook."""
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from sqlalchemy.exc import SAWarning

from . import course


@dataclass
class Result:
    """One student's outcome: a status a person can read, and the score of each function."""
    student: str
    status: str  # "graded", "invalid notebook", "missing notebook" or "autograde failed"
    reason: str = ""
    scores: dict = field(default_factory=dict)  # function name -> points
    max_scores: dict = field(default_factory=dict)

    def part(self, functions):
        return sum(self.scores.get(f, 0.0) for f in functions)

    @property
    def graded(self):
        return self.part(course.GRADED_FUNCTIONS)

    @property
    def optional(self):
        return self.part(course.OPTIONAL_FUNCTIONS)


def submitted_students(course_dir):
    folder = Path(course_dir) / "submitted"
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if (p / course.ASSIGNMENT).is_dir())


def check_notebook(path):
    """None when `path` is a readable, schema-valid notebook, else the reason it is not."""
    if not path.exists():
        return f"no {path.name} in the submission"
    try:
        nb = nbformat.read(str(path), as_version=4)
    except nbformat.reader.NotJSONError:
        return (f"{path.name} is not valid JSON (cut short, or edited outside Jupyter); "
                "ask the student for a fresh copy")
    except Exception as error:  # nbformat raises several unrelated types for unreadable files
        return f"{path.name} cannot be read as a notebook ({type(error).__name__}: {str(error)[:120]})"
    try:
        nbformat.validate(nb)
    except nbformat.ValidationError as error:
        return f"{path.name} breaks the notebook format: {error.message[:120]}"
    return None


def read_scores(api, student):
    """function name -> (score, max score) for one student's autograded notebook."""
    from nbgrader.api import Gradebook

    with Gradebook(api.coursedir.db_url, api.coursedir.course_id) as gb:
        submitted = gb.find_submission_notebook(course.NOTEBOOK, course.ASSIGNMENT, student)
        return {g.name.removeprefix("test_"): (g.score, g.max_score) for g in submitted.grades}


def grade(course_dir=course.COURSE_DIR, students=None, progress=print):
    """Autograde each student's submission; return one Result per student.

    A submission that is not a valid notebook is reported and skipped: it never
    stops the others, and it is not passed to nbgrader.
    """
    # nbgrader's gradebook code triggers SQLAlchemy warnings that say nothing about the grades.
    warnings.filterwarnings("ignore", category=SAWarning)
    api = course.nbgrader_api(course_dir)
    students = submitted_students(course_dir) if students is None else students
    results = []
    for i, student in enumerate(students, 1):
        path = Path(course_dir) / "submitted" / student / course.ASSIGNMENT / f"{course.NOTEBOOK}.ipynb"
        problem = check_notebook(path)
        if problem:
            status = "missing notebook" if not path.exists() else "invalid notebook"
            results.append(Result(student, status, problem))
        else:
            outcome = api.autograde(course.ASSIGNMENT, student, force=True, create=True)
            if outcome["success"]:
                scores = read_scores(api, student)
                results.append(Result(student, "graded", "",
                                      {k: s for k, (s, _) in scores.items()},
                                      {k: m for k, (_, m) in scores.items()}))
            else:
                last = (outcome.get("error") or "").strip().splitlines()
                results.append(Result(student, "autograde failed", last[-1] if last else "no error text"))
        progress(f"[{i}/{len(students)}] {student}: {results[-1].status}")
    return results


SHORT_NAMES = {"rnn_cell_forward": "rnn_cell", "rnn_forward": "rnn", "lstm_cell_forward": "lstm_cell",
               "lstm_forward": "lstm", "rnn_cell_backward": "rnn_cell_bw", "rnn_backward": "rnn_bw",
               "lstm_cell_backward": "lstm_cell_bw", "lstm_backward": "lstm_bw"}


def score_table(results, max_scores):
    """A plain-text table: one row per student, the two parts, each function and the status."""
    functions = course.GRADED_FUNCTIONS + course.OPTIONAL_FUNCTIONS
    graded_max = sum(max_scores[f] for f in course.GRADED_FUNCTIONS)
    optional_max = sum(max_scores[f] for f in course.OPTIONAL_FUNCTIONS)
    header = (["student", f"graded/{graded_max:g}", f"optional/{optional_max:g}"]
              + [SHORT_NAMES[f] for f in functions] + ["status"])
    rows = []
    for r in results:
        if r.status == "graded":
            cells = [f"{r.graded:g}", f"{r.optional:g}"] + [f"{r.scores.get(f, 0):g}" for f in functions]
        else:
            cells = ["-", "-"] + ["-"] * len(functions)
        rows.append([r.student] + cells + [r.status + (f": {r.reason}" if r.reason else "")])
    widths = [max(len(str(row[i])) for row in [header] + rows) for i in range(len(header) - 1)]
    lines = []
    for row in [header] + rows:
        lines.append("  ".join(str(c).ljust(w) for c, w in zip(row, widths)) + "  " + row[-1])
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def max_scores_of(master=course.MASTER_NOTEBOOK):
    """function name -> points of its test cell, read from the master notebook."""
    from . import notebook

    return {notebook.nbgrader_meta(c)["grade_id"].removeprefix("test_"): notebook.nbgrader_meta(c)["points"]
            for c in notebook.read(master).cells if notebook.nbgrader_meta(c).get("grade")}
