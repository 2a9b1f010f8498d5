"""The copy report measured: the kit, copydetect and Dolos on the evaluation class (copy_class.py).

Every tool scores every pair of the class; the labelled copy pairs should rank above the
independent ones. Reported: ROC AUC, average precision, and precision in the top R (R = the number
of copy pairs), over all pairs and per level (each level's copy pairs against every independent pair).
"""
import contextlib
import sys
import tempfile
from pathlib import Path

import numpy as np

from grader import copies, verdict

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
        from grader import batch, notebook
        self.layout = layout
        self.scratch = tempfile.mkdtemp(prefix="copy-eval-")
        assignment = batch.load_assignment(layout)
        assignment = batch.with_verdict(layout, assignment, self.scratch)
        self.task = assignment.notebooks[0]
        release = notebook.read(layout.release(self.task.notebook))
        self.release_units = {c.metadata["nbgrader"]["grade_id"]: c.source for c in release.cells
                              if c.metadata.get("nbgrader", {}).get("solution")}
        self.forced = copies.forced_pieces({u: self.release_units[u] for u in copy_class.UNITS})
        master = notebook.read(layout.master(self.task.notebook))
        self.master_units = {c.metadata["nbgrader"]["grade_id"]: c.source for c in master.cells
                             if c.metadata.get("nbgrader", {}).get("solution")}
        self.plans = {f"test_{u}": self.task.plans[f"test_{u}"] for u in copy_class.UNITS}
        self.master_behaviour = {f"{g}:{k}": copies.output_digest(call.master_output, call.inputs)
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
                for k, (call, node) in enumerate(zip(plan.calls, verdict.run_calls(namespace, plan.calls))):
                    if not call.reads:
                        digests[f"{grade_id}:{k}"] = copies.output_digest(node, call.inputs)
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
