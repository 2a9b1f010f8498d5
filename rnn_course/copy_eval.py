"""The copy report measured: the kit, copydetect and Dolos on the evaluation class (copy_class.py).

Every tool scores every pair of the class; the labelled copy pairs should rank above the
independent ones. Reported: ROC AUC, average precision, and precision in the top R (R = the number
of copy pairs), over all pairs and per level (each level's copy pairs against every independent pair).
"""
import contextlib
import shutil
import sys
import tempfile
import weakref
from pathlib import Path

import numpy as np

from grader.core import digest
from grader.core.notebook import cell_grade_id, is_solution_cell
from grader.judge import verdict
from grader.run import calls
from grader.similarity import copies

from . import copy_class


# ---------------------------------------------------------------- metrics

def roc_auc(scores, labels):
    """The chance that a random copy pair scores above a random independent pair (ties count half)."""
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    positive, negative = scores[labels], scores[~labels]
    if not len(positive) or not len(negative):
        return float("nan")
    order = np.argsort(np.concatenate([positive, negative]), kind="mergesort")
    ranks = np.empty(len(order))
    values = np.concatenate([positive, negative])[order]
    i = 0
    while i < len(values):  # average ranks over ties
        j = i
        while j + 1 < len(values) and values[j + 1] == values[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[:len(positive)].sum() - len(positive) * (len(positive) + 1) / 2)
                 / (len(positive) * len(negative)))


def average_precision(scores, labels):
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    order = np.argsort(-scores, kind="mergesort")
    hits = labels[order]
    if not hits.any():
        return float("nan")
    precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
    return float(precision[hits].sum() / hits.sum())


def precision_at_r(scores, labels):
    scores, labels = np.asarray(scores, float), np.asarray(labels, bool)
    r = int(labels.sum())
    order = np.argsort(-scores, kind="mergesort")
    return float(labels[order[:r]].mean()) if r else float("nan")


def measure(scores, copy_levels, names):
    """{"all": (auc, ap, p@R), level: (...)} for `scores` ({(a, b): score}, a < b) over every pair of `names`."""
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    pairs = [tuple(sorted(p)) for p in pairs]
    values = np.array([scores.get(p, 0.0) for p in pairs])
    level_of = np.array([copy_levels.get(p, "") for p in pairs])
    out = {}
    for level in ["all", *sorted(set(copy_levels.values()))]:
        chosen = (level_of == "") | ((level_of != "") if level == "all" else (level_of == level))
        labels = level_of[chosen] != ""
        out[level] = (roc_auc(values[chosen], labels), average_precision(values[chosen], labels),
                      precision_at_r(values[chosen], labels))
    independent_best = values[level_of == ""].max() if (level_of == "").any() else 0.0
    renamed = values[level_of == "renamed"]
    out["renamed_all_above_independent"] = bool(len(renamed) and renamed.min() > independent_best)
    return out


# ---------------------------------------------------------------- the kit

class Setting:
    """What the kit's comparison needs from the assignment: the release's cells, the master, the test plans."""

    def __init__(self, layout):
        from grader.core import notebook
        from grader.grade import batch
        self.layout = layout
        self.scratch = tempfile.mkdtemp(prefix="copy-eval-")
        weakref.finalize(self, shutil.rmtree, self.scratch, True)  # the master's helper files, gone with it
        assignment = batch.load_assignment(layout)
        assignment, _ = batch.with_verdict(layout, assignment, self.scratch)
        self.task = assignment.notebooks[0]
        release = notebook.read(layout.release(self.task.notebook))
        self.release_units = {c.metadata["nbgrader"]["grade_id"]: c.source for c in release.cells
                              if is_solution_cell(c)}
        self.forced = copies.forced_pieces({u: self.release_units[u] for u in copy_class.UNITS})
        master = notebook.read(layout.master(self.task.notebook))
        self.master_units = {c.metadata["nbgrader"]["grade_id"]: c.source for c in master.cells
                             if is_solution_cell(c)}
        self.plans = {f"test_{u}": self.task.plans[f"test_{u}"] for u in copy_class.UNITS}
        self.master_behaviour = {f"{g}:{k}": digest.output_digest(call.master_output, call.inputs)
                                 for g, plan in self.plans.items() for k, call in enumerate(plan.calls)
                                 if not call.reads}

    def behaviour(self, functions):
        """call key -> digest of what `functions` (unit -> code) return on the test cells' recorded calls."""
        namespace = {"__name__": "__main__"}
        digests = {}
        with verdict.trusted_files(self.task.files, self.scratch), _quiet():
            exec(next(iter(self.plans.values())).imports, namespace)
            for code in functions.values():
                try:
                    exec(code, namespace)
                except Exception:
                    pass  # a cell that does not run: its function raises NameError when called
            for grade_id, plan in self.plans.items():
                for k, (call, node) in enumerate(zip(plan.calls, calls.run_calls(namespace, plan.calls))):
                    if not call.reads:
                        digests[f"{grade_id}:{k}"] = digest.output_digest(node, call.inputs)
        return digests

    def document(self, name, functions, known=False, with_behaviour=True):
        return copies.document(name, functions, forced=self.forced, known=known,
                               behaviour=self.behaviour(functions) if with_behaviour else None)

    def master(self):
        return copies.document("master", {u: self.master_units[u] for u in copy_class.UNITS}, forced=self.forced)


@contextlib.contextmanager
def _quiet():
    import io
    saved = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = io.StringIO()
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def kit_scores(setting, students, behaviour=True):
    documents = [setting.document(s.name, s.functions, with_behaviour=behaviour) for s in students]
    found = copies.compare(documents, setting.master(), setting.master_behaviour)
    names = found.students
    return {(a, b): float(found.matrix[i, j]) for i, a in enumerate(names) for j, b in enumerate(names) if a < b}


def run(layout, students=None, behaviour=True):
    """The kit's measures on the evaluation class."""
    students, levels = students or copy_class.evaluation_class()
    setting = Setting(layout)
    scores = kit_scores(setting, students, behaviour)
    return measure(scores, levels, sorted(s.name for s in students))


# ---------------------------------------------------------------- the anchors: copydetect and Dolos

DOLOS = Path(__file__).resolve().parent.parent / "tools" / "dolos"


def write_files(folder, students, setting):
    """One .py file per student (their units, one after another), and the release's units as the template."""
    folder = Path(folder)
    (folder / "class").mkdir(parents=True, exist_ok=True)
    (folder / "template").mkdir(exist_ok=True)
    for student in students:
        (folder / "class" / f"{student.name}.py").write_text(
            "\n\n".join(student.functions[u] for u in copy_class.UNITS) + "\n")
    template = folder / "template" / "release.py"
    template.write_text("\n\n".join(setting.release_units[u] for u in copy_class.UNITS) + "\n")
    return folder / "class", template


def copydetect_scores(class_dir, template):
    """copydetect at its defaults, the release as boilerplate; a pair's score is the larger of its two shares."""
    import copydetect
    detector = copydetect.CopyDetector(test_dirs=[str(class_dir)], ref_dirs=[str(class_dir)],
                                       boilerplate_dirs=[str(template.parent)], extensions=["py"], display_t=0.0,
                                       autoopen=False, silent=True, out_file=str(class_dir.parent / "copydetect.html"))
    with _quiet():
        detector.run()
    names = [Path(f).stem for f in detector.test_files]
    refs = [Path(f).stem for f in detector.ref_files]
    scores = {}
    for i, a in enumerate(names):
        for j, b in enumerate(refs):
            if a < b:
                value = float(np.max(detector.similarity_matrix[i, j]))
                scores[(a, b)] = max(scores.get((a, b), 0.0), value)
            elif b < a:
                value = float(np.max(detector.similarity_matrix[i, j]))
                scores[(b, a)] = max(scores.get((b, a), 0.0), value)
    return scores


def install_dolos():
    """Dolos from tools/dolos/package-lock.json (npm ci), once."""
    import shutil
    import subprocess
    if (DOLOS / "node_modules" / "@dodona" / "dolos-lib").is_dir():
        return
    if not shutil.which("npm"):
        raise RuntimeError("npm is needed for Dolos: sudo apt install nodejs npm")
    print("Installing Dolos into tools/dolos/node_modules (npm ci; a few minutes the first time) ...", flush=True)
    subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--foreground-scripts"], cwd=DOLOS, check=True)


def dolos_scores(class_dir, template, share=None):
    """Dolos (its defaults, or ignoring fingerprints found in more than `share` of the files), the release as
    the template to ignore."""
    import json
    import subprocess
    files = sorted(str(p) for p in Path(class_dir).glob("*.py"))
    out = subprocess.run(["node", str(DOLOS / "compare.mjs"), "none" if share is None else str(share), str(template),
                          *files], capture_output=True, text=True, check=True, cwd=DOLOS, timeout=1800)
    scores = {}
    for line in out.stdout.splitlines():
        left, right, similarity = json.loads(line)
        a, b = sorted((Path(left).stem, Path(right).stem))
        scores[(a, b)] = float(similarity)
    return scores


def compare_tools(layout, seeds=(2026, 7, 11), progress=print):
    """The kit, copydetect and Dolos (twice) on evaluation classes from `seeds`, each tool timed; a dict."""
    import time
    install_dolos()
    setting = Setting(layout)
    tools = {"kit": lambda d, t, s: kit_scores(setting, s),
             "copydetect 0.5": lambda d, t, s: copydetect_scores(d, t),
             "Dolos 3.5": lambda d, t, s: dolos_scores(d, t),
             "Dolos 3.5, fingerprints in <= 10% of files": lambda d, t, s: dolos_scores(d, t, 0.1)}
    runs = []
    for seed in seeds:
        students, levels = copy_class.evaluation_class(seed=seed)
        names = sorted(s.name for s in students)
        with tempfile.TemporaryDirectory(prefix="copy-eval-") as folder:
            class_dir, template = write_files(folder, students, setting)
            for tool, score in tools.items():
                progress(f"seed {seed}: {tool} ...")
                started = time.perf_counter()
                scores = score(class_dir, template, students)
                seconds = time.perf_counter() - started
                runs.append({"seed": seed, "tool": tool, "seconds": round(seconds, 2),
                             "students": len(students), "copy_pairs": len(levels),
                             "measures": measure(scores, levels, names)})
    return runs


# ---------------------------------------------------------------- scale

SCALE_RUN = """
import json, resource, sys, time
from pathlib import Path
from grader.course import assignments
from grader.grade import batch
from grader.similarity import copy_report
layout = assignments.Layout(Path(sys.argv[1]), sys.argv[2])
started = time.perf_counter()
assignment, _ = batch.with_verdict(layout, batch.load_assignment(layout), sys.argv[3])
ready = time.perf_counter()
done = copy_report.build(layout, assignment)
finished = time.perf_counter()
peak = max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
print(json.dumps({"set_up_seconds": round(ready - started, 2), "compare_seconds": round(finished - ready, 2),
                  "peak_mb": round(peak / 1024), "pairs_reported": done.pairs}))
"""


def scale(course_dir, n=1000, seed=5):
    """`copies` on a class of `n` notebooks (nine in ten independent, one in ten a copy), in a fresh process:
    the time to read, fingerprint and compare them all, and the largest process's peak memory."""
    import json
    import random
    import shutil
    import subprocess

    from grader.course import release
    from rnn_course import ASSIGNMENT, NOTEBOOK
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory(prefix="copy-scale-") as folder:
        course = Path(folder) / "course"
        course.mkdir()
        shutil.copy(Path(course_dir) / "nbgrader_config.py", course)
        for part in ("source", "release"):
            shutil.copytree(Path(course_dir) / part, course / part, ignore=shutil.ignore_patterns("__pycache__"))
        release.generate(course, ASSIGNMENT)
        handed_out = json.loads((course / "release" / ASSIGNMENT / f"{NOTEBOOK}.ipynb").read_text())
        students = [copy_class.author(f"s{i:04d}", rng) for i in range(n - n // 10)]
        for i in range(n // 10):
            source = rng.choice(students)
            students.append(copy_class.Student(f"c{i:04d}", {u: disguises_of(code, rng) for u, code in
                                                              source.functions.items()}, source.name))
        for student in students:
            nb = json.loads(json.dumps(handed_out))
            for cell in nb["cells"]:
                unit = cell_grade_id(cell)
                if unit in student.functions:
                    cell["source"] = student.functions[unit]
            target = course / "submitted" / student.name / ASSIGNMENT
            target.mkdir(parents=True)
            (target / f"{NOTEBOOK}.ipynb").write_text(json.dumps(nb))
        helpers = Path(folder) / "helpers"
        helpers.mkdir()
        out = subprocess.run([sys.executable, "-c", SCALE_RUN, str(course), ASSIGNMENT, str(helpers)],
                             capture_output=True, text=True, check=True, timeout=3600)
        return {"students": n, **json.loads(out.stdout.strip().splitlines()[-1])}


def disguises_of(code, rng):
    from grader_eval import disguises
    return disguises.disguise(code, rng.choice(disguises.LEVELS), rng)


# ---------------------------------------------------------------- the benchmark's record

def summary(runs):
    """tool -> {measure: mean over the seeds}: "auc", "ap", "p_at_r" overall, "auc_<level>" per level, seconds."""
    out = {}
    for tool in dict.fromkeys(r["tool"] for r in runs):
        mine = [r for r in runs if r["tool"] == tool]
        row = {"auc": np.mean([r["measures"]["all"][0] for r in mine]),
               "ap": np.mean([r["measures"]["all"][1] for r in mine]),
               "p_at_r": np.mean([r["measures"]["all"][2] for r in mine]),
               "renamed_all_above_independent": all(r["measures"]["renamed_all_above_independent"] for r in mine),
               "seconds": np.mean([r["seconds"] for r in mine])}
        for level in ("renamed", "restructured", "disguised", "partial"):
            row[f"auc_{level}"] = np.mean([r["measures"][level][0] for r in mine])
            row[f"ap_{level}"] = np.mean([r["measures"][level][1] for r in mine])
        out[tool] = {k: (round(float(v), 3) if not isinstance(v, bool) else v) for k, v in row.items()}
    return out


def plot(table, path):
    """Two panels: AUC, AP and precision in the top R overall; AUC per level. One bar per tool."""
    from matplotlib.figure import Figure
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    tools = list(table)
    colours = ["#1e7b34", "#3b6ea5", "#8a63b3", "#b3261e"]
    fig = Figure(figsize=(12, 4.6))
    FigureCanvasAgg(fig)
    fig.set_layout_engine("constrained")
    left, right = fig.subplots(1, 2)
    for ax, keys, names, title in (
            (left, ["auc", "ap", "p_at_r"], ["ROC AUC", "average precision", "precision in top R"], "All pairs"),
            (right, ["auc_renamed", "auc_restructured", "auc_disguised", "auc_partial"],
             ["renamed", "restructured", "disguised", "partial"], "ROC AUC per level of disguise")):
        width = 0.8 / len(tools)
        for k, tool in enumerate(tools):
            values = [table[tool][key] for key in keys]
            bars = ax.bar([i + k * width for i in range(len(keys))], values, width, label=tool, color=colours[k % 4])
            ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.set_xticks([i + width * (len(tools) - 1) / 2 for i in range(len(keys))], names)
        ax.set_ylim(0, 1.1)
        ax.set_title(title)
    left.axhline(0.8, color="#888", linestyle=":", linewidth=1)
    right.axhline(0.9, color="#888", linestyle=":", linewidth=1)
    fig.legend(*left.get_legend_handles_labels(), loc="outside lower center", ncol=len(tools), fontsize=9,
               frameon=False)
    fig.suptitle("Copy pairs against independent pairs, the same evaluation class for every tool (mean of 3 classes)")
    fig.savefig(path, dpi=110)
    return path


def benchmark(layout, docs=None, n=1000, seeds=(2026, 7, 11), progress=print):
    """The side-by-side comparison and the scale run; written to `docs` as copies_benchmark.json and .png."""
    import json
    runs = compare_tools(layout, seeds, progress)
    table = summary(runs)
    progress(f"scale: {n} students through `copies` ...")
    measured = {"tools": table, "runs": runs, "scale": scale(layout.course_dir, n)}
    if docs:
        docs = Path(docs)
        docs.mkdir(exist_ok=True)
        (docs / "copies_benchmark.json").write_text(json.dumps(measured, indent=1) + "\n")
        plot(table, docs / "copies_benchmark.png")
    return measured
