"""The copy report measured: the kit, copydetect and Dolos on the evaluation class (copy_class.py).

Every tool scores every pair of the class; the labelled copy pairs should rank above the
independent ones. Reported: ROC AUC, average precision, and precision in the top R (R = the number
of copy pairs), over all pairs and per level (each level's copy pairs against every independent pair).
"""
import contextlib
import sys
import tempfile

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
