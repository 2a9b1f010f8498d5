"""The copy report (issue: who copied): evidence of each kind, the evaluation class, the page.

The evaluation class is built from this kit's own code only (rnn_course/copy_class.py): independent
authors, copies at three levels of disguise, partial copies. Here with a lower bar than the
benchmark's (tests/../README: the measured figures).
"""
import json
import os
import random
from html.parser import HTMLParser

import numpy as np
import pytest

from conftest import rnn, write_samples
from grader.core import digest
from grader.run import calls
from grader.similarity import copies, fingerprints
from grader_eval import disguises
from rnn_course import copy_class, copy_eval, samples


@pytest.fixture(scope="module")
def setting(graded_course):
    return copy_eval.Setting(rnn(graded_course))


def test_the_evaluation_class_ranks_copies_above_independent_solutions(setting):
    students, levels = copy_class.evaluation_class(originals=20, per_level=6, partial=6, seed=7)
    scores = copy_eval.kit_scores(setting, students)
    measured = copy_eval.measure(scores, levels, sorted(s.name for s in students))
    auc, ap, _ = measured["all"]
    assert auc >= 0.9 and ap >= 0.6, measured
    assert all(measured[level][0] >= 0.85 for level in disguises.LEVELS + ("partial",)), measured
    assert measured["renamed"][0] >= 0.98, measured


def test_every_disguise_keeps_what_the_code_computes(setting):
    """The copies of the evaluation class are real copies: the same outputs as their source."""
    students, _ = copy_class.evaluation_class(originals=6, per_level=2, partial=2, seed=3)
    by_name = {s.name: s for s in students}
    for student in students:
        if student.source and student.level != "partial":
            assert setting.behaviour(student.functions) == setting.behaviour(by_name[student.source].functions), \
                student.name


# ---------------------------------------------------------------- structure

SOURCE = '''def rnn_cell_forward(xt, a_prev, parameters):
    Wax = parameters["Wax"]
    Waa = parameters["Waa"]
    z = np.dot(Waa, a_prev) + np.dot(Wax, xt) + parameters["ba"]
    a_next = np.tanh(z)
    yt_pred = softmax(np.dot(parameters["Wya"], a_next) + parameters["by"])
    cache = (a_next, a_prev, xt, parameters)
    return a_next, yt_pred, cache
'''


@pytest.mark.parametrize("level", disguises.LEVELS)
def test_structure_sees_through_each_level_of_disguise(level):
    """Names, layout, order, dot or @, temporaries, while loops, dead code: the pieces stay, mostly."""
    original = set(fingerprints.unit_print(SOURCE).pieces)
    for seed in range(5):
        copy = disguises.disguise(SOURCE, level, random.Random(seed))
        assert copy != SOURCE
        shared = original & set(fingerprints.unit_print(copy).pieces)
        assert len(shared) >= 0.75 * len(original), (level, seed, copy)


def test_structure_tells_different_code_apart():
    other = '''def rnn_cell_forward(xt, a_prev, parameters):
    stacked = np.vstack((a_prev, xt))
    W = np.hstack((parameters["Waa"], parameters["Wax"]))
    a_next = np.tanh(W @ stacked + parameters["ba"])
    return a_next, softmax(parameters["Wya"] @ a_next + parameters["by"]), (a_next, a_prev, xt, parameters)
'''
    original = set(fingerprints.unit_print(SOURCE).pieces)
    apart = len(original & set(fingerprints.unit_print(other).pieces))
    copied = min(len(original & set(fingerprints.unit_print(disguises.disguise(SOURCE, level, random.Random(s))).pieces))
                 for level in disguises.LEVELS for s in range(5))
    assert apart < copied  # the shared rest (softmax of the output, the cache, the return) is what all share


# ---------------------------------------------------------------- rarity, partial copies, behaviour

VARIANTS = [
    "def f(x):\n    y = np.tanh(x @ W + b)\n    return softmax(y @ V + c)\n",
    "def f(x):\n    h = np.maximum(x @ W, 0)\n    return np.exp(h) / np.exp(h).sum(axis=0)\n",
    "def f(x):\n    s = np.einsum('ij,jk->ik', x, W)\n    return s / np.linalg.norm(s, axis=1, keepdims=True)\n",
    "def f(x):\n    out = []\n    for row in x:\n        out.append(np.clip(row * 3 - 1, -2, 2))\n    return np.array(out)\n",
    "def f(x):\n    q = np.cumsum(x, axis=1)\n    q[q < 0] = 0\n    return np.sqrt(q + np.abs(x).max())\n",
    "def f(x):\n    z = np.sort(x, axis=0)[::-1]\n    return z[: len(z) // 2].mean(axis=0) - np.median(x)\n",
]


def _class(units_of, behaviour_of=None):
    """Documents from {student: {unit: code}}."""
    return [copies.document(name, units, behaviour=(behaviour_of or {}).get(name)) for name, units in units_of.items()]


def _score(found, a, b):
    i, j = found.students.index(a), found.students.index(b)
    return found.matrix[i, j]


def test_rarity_what_many_share_weighs_little_a_rare_match_a_lot():
    """Twelve students wrote the usual code for unit u; two share an unusual one. The unusual pair ranks
    first, though the usual pairs are as identical."""
    units_of = {f"s{i:02d}": {"u": VARIANTS[0], "v": VARIANTS[1 + i % 4]} for i in range(12)}
    units_of["odd_a"] = {"u": VARIANTS[5], "v": VARIANTS[1]}
    units_of["odd_b"] = {"u": VARIANTS[5], "v": VARIANTS[2]}
    found = copies.compare(_class(units_of))
    assert found.pairs[0].a == "odd_a" and found.pairs[0].b == "odd_b"
    assert _score(found, "odd_a", "odd_b") > 1.5 * _score(found, "s00", "s01")


def test_partial_copies_stand_out_unit_by_unit():
    """Two functions copied into an otherwise own notebook: those two units score high, the others low, and
    the pair is the partial copier's closest."""
    rng = random.Random(11)
    authors = [copy_class.author(f"s{i:02d}", rng, mistake_rate=0) for i in range(16)]
    own = copy_class.author("partial", rng, mistake_rate=0)
    taken = ("lstm_cell_forward", "rnn_backward")
    functions = {u: disguises.disguise(authors[0].functions[u], "restructured", rng) if u in taken
                 else own.functions[u] for u in copy_class.UNITS}
    found = copies.compare([copies.document(a.name, a.functions) for a in authors]
                           + [copies.document("partial", functions)])
    pair = next(p for p in found.pairs if {p.a, p.b} == {"partial", "s00"})
    assert all(pair.units[u] > 0.5 for u in taken), pair.units
    others = [pair.units.get(u, 0.0) for u in copy_class.UNITS if u not in taken]
    assert sum(score < 0.2 for score in others) >= 2, pair.units  # one may converge honestly
    i = found.students.index("partial")
    assert found.students[int(np.argmax(found.matrix[i]))] == "s00"


def test_behaviour_the_same_rare_wrong_output_is_evidence_the_same_right_one_is_not():
    code = {f"s{i}": {"u": VARIANTS[i % 6]} for i in range(10)}
    right = {f"t:{k}": 100 + k for k in range(4)}
    behaviour = {name: dict(right) for name in code}
    behaviour["s1"]["t:2"] = behaviour["s7"]["t:2"] = 999  # the same wrong output, nobody else's
    for name in ("s3", "s4", "s5", "s6"):  # a common mistake
        behaviour[name]["t:0"] = 555
    found = copies.compare(_class(code, behaviour), master_behaviour=right)
    assert _score(found, "s1", "s7") > _score(found, "s3", "s4") > 0
    assert _score(found, "s0", "s2") == 0 or _score(found, "s0", "s2") < _score(found, "s3", "s4")
    pair = next(p for p in found.pairs if {p.a, p.b} == {"s1", "s7"})
    assert pair.shared_wrong == ["t:2"] and pair.behaviour > 0
    # without the master, nothing is known to be wrong: right outputs shared by all count for nothing
    alone = copies.compare(_class(code, {n: dict(right) for n in code}))
    assert all(p.behaviour == 0 and not p.shared_wrong for p in alone.pairs)


def test_output_digests_read_a_list_as_a_tuple_and_round_the_last_bits():
    from grader.core import wire
    args = (np.arange(3.0),)
    one = wire.encode((np.array([0.1 + 0.2, 1.0]), [1, 2]), args)
    other = wire.encode([np.array([0.3, 1.0]), (1, 2)], args)
    assert digest.output_digest(one, wire.encode(args)) == digest.output_digest(other, wire.encode(args))
    assert digest.output_digest({"k": "raised", "ename": "NotImplementedError", "evalue": ""}) is None


def test_output_digests_of_dicts_do_not_depend_on_their_order_and_keep_their_arrays_apart():
    from grader.core import wire
    a, b = np.arange(4.0).reshape(2, 2), np.ones((3, 1))
    digest_of = lambda value: digest.output_digest(wire.encode(value, ()), wire.encode(()))
    assert digest_of({"dWx": a, "db": b}) == digest_of({"db": b, "dWx": a})
    assert digest_of({"dWx": a, "db": b}) != digest_of({"dWx": b, "db": a})


def test_a_student_who_returns_the_masters_output_gets_the_masters_digest():
    """The grader computes the digest of the master's own output once per process (grading._master_digest);
    the same output from a student must give what computing it afresh gives."""
    from grader.core import wire
    from grader.judge import grading
    inputs = wire.encode((np.arange(3.0),))
    output = wire.encode(({"a": np.linspace(0, 1, 5)}, [1.5, 2]), ())
    call = calls.Call("f", inputs, output)
    assert grading._master_digest(call) == digest.output_digest(output, inputs) is not None
    assert grading._master_digest(call) == grading._master_digest(call)



# ---------------------------------------------------------------- the report on a graded class

@pytest.fixture(scope="module")
def copied_course(tmp_path_factory):
    """A graded class: the demo's samples, a student copying sample_partial's two functions from a known
    solution file, a student whose notebook carries markup, and a known solution."""
    from conftest import DEMO_LIMITS, make_course_copy
    from grader import cli
    from grader.course import release
    import rnn_course
    course_dir = make_course_copy(tmp_path_factory.mktemp("copies"))
    release.generate(course_dir, rnn_course.ASSIGNMENT)
    write_samples(course_dir)
    rng = random.Random(4)
    authors = [copy_class.author(f"a{i}", rng, mistake_rate=0) for i in range(6)]
    for author in authors:
        samples.write(_notebook(author.functions), course_dir, author.name)
    # copies of a1, disguised; and a known solution file that "bob" copied two functions of
    samples.write(_notebook({u: disguises.disguise(c, "disguised", rng) for u, c in authors[1].functions.items()}),
                  course_dir, "copier")
    known = copy_class.author("internet", rng, mistake_rate=0)
    folder = course_dir / "known_solutions" / rnn_course.ASSIGNMENT
    folder.mkdir(parents=True)
    (folder / "github_solution.py").write_text("import numpy as np\n\n" + "\n\n".join(known.functions.values()))
    own = copy_class.author("bob", rng, mistake_rate=0)
    bob = dict(own.functions, rnn_forward=known.functions["rnn_forward"],
               lstm_cell_forward=disguises.disguise(known.functions["lstm_cell_forward"], "renamed", rng))
    samples.write(_notebook(bob), course_dir, "bob")
    hostile = {u: disguises.disguise(c, "renamed", rng) for u, c in authors[2].functions.items()}  # a copy of a2
    hostile["rnn_cell_forward"] += "\n# </pre></span><script>alert('x')</script><img src=x onerror=alert(1)>\n"
    samples.write(_notebook(hostile), course_dir, "markup")
    code = cli.grade_and_report(course_dir, limits=DEMO_LIMITS)
    assert code == cli.NEEDS_ATTENTION
    return course_dir


def _notebook(functions):
    nb = samples.fill({})
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id in functions:
            cell.source = functions[grade_id]
    return nb


def _report(course_dir):
    import csv
    with open(course_dir / "autograded" / "rnn_step_by_step_copies.csv", newline="") as f:
        return list(csv.DictReader(f))


def test_grade_writes_the_copy_report_with_the_copier_first_and_known_solutions_apart(copied_course):
    rows = _report(copied_course)
    students = [r for r in rows if r["kind"] == "students"]
    scores = [float(r["score"]) for r in rows]
    assert [float(r["score"]) for r in students] == sorted((float(r["score"]) for r in students), reverse=True)
    assert all(0 <= s <= 1 for s in scores)
    score = {frozenset((r["student_a"], r["student_b"])): float(r["score"]) for r in students}
    independent = [f"a{i}" for i in range(6)] + ["bob"]
    honest = max((score.get(frozenset((x, y)), 0.0) for x in independent for y in independent if x < y))
    for copy in ({"a1", "copier"}, {"a2", "markup"}):
        assert score[frozenset(copy)] > max(0.5, honest), (copy, score[frozenset(copy)], honest)
    copier = next(r for r in students if {r["student_a"], r["student_b"]} == {"a1", "copier"})
    assert "rnn_forward" in copier["units"]
    known = [r for r in rows if r["kind"] == "known solution"]
    assert known and {known[0]["student_a"], known[0]["student_b"]} == {"bob", "known:github_solution.py"}
    assert "rnn_forward" in known[0]["units"] and "lstm_cell_forward" in known[0]["units"]


def test_known_solutions_are_indexed_once_and_reused(copied_course, monkeypatch):
    from grader.similarity import copy_report
    import rnn_course
    units = copy_report.assignment_units(_assignment(copied_course))
    forced = copies.forced_pieces(units.release)
    cache = json.loads((copied_course / "autograded" / ".copies" / "known.json").read_text())
    assert cache["version"] == fingerprints.VERSION and len(cache["files"]) == 1
    calls = []
    real = copies.document
    monkeypatch.setattr(copies, "document", lambda *a, **k: calls.append(a) or real(*a, **k))
    found, notes = copy_report.known_documents(copied_course / "known_solutions" / rnn_course.ASSIGNMENT, units,
                                               forced, copied_course)
    assert len(found) == 1 and not calls and not notes  # read from the cache: nothing fingerprinted again


def test_a_second_report_reads_only_what_changed_and_stands_when_nothing_did(copied_course, tmp_path, monkeypatch):
    """Each student's fingerprints are kept under a digest of what made them: with nothing changed, the report
    written last stands (no notebook read, no master recorded, nothing compared); one student's notebook
    changed, that student alone is read again and the class compared again."""
    import shutil
    from grader import cli
    from grader.grade import batch
    from grader.similarity import copy_report
    course = tmp_path / "course"
    shutil.copytree(copied_course, course, symlinks=True)
    layout = rnn(course)
    before = _report(course)
    marks = tmp_path / "read"
    marks.mkdir()
    real = copy_report.student_document

    def counted(name, *args, **kwargs):  # in the forked workers: each call leaves a file
        (marks / name).touch()
        return real(name, *args, **kwargs)

    monkeypatch.setattr(copy_report, "student_document", counted)
    monkeypatch.setattr(copies, "compare", lambda *a, **k: pytest.fail("compared again with nothing changed"))
    monkeypatch.setattr(batch, "with_verdict", lambda *a, **k: pytest.fail("recorded the master for nothing"))
    done = cli.copy_report(layout)
    assert done.comparison is None and done.pairs > 0
    assert not list(marks.iterdir()) and _report(course) == before
    monkeypatch.undo()
    monkeypatch.setattr(copy_report, "student_document", counted)
    notebook = layout.submitted("copier") / f"{layout.name}.ipynb"
    nb = json.loads(notebook.read_text())
    nb["cells"].append({"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [],
                        "execution_count": None})
    notebook.write_text(json.dumps(nb))
    done = cli.copy_report(layout)
    assert done.comparison is not None and sorted(p.name for p in marks.iterdir()) == ["copier"]
    # A cache file damaged (by hand, by a full disk) is read as far as it is sound: the rest is read again.
    kept = copy_report.students_cache(course, layout.name)
    damaged = json.loads(kept.read_text())
    damaged["students"]["bob"] = {"key": damaged["students"]["bob"]["key"], "units": {"x": 3}}
    damaged["report"] = ["not", "a", "summary"]
    kept.write_text(json.dumps(damaged))
    for mark in marks.iterdir():
        mark.unlink()
    done = cli.copy_report(layout)
    assert done.comparison is not None and sorted(p.name for p in marks.iterdir()) == ["bob"]
    kept.write_text('{"students": [1, 2]')
    assert cli.copy_report(layout).comparison is not None


def test_ctrl_c_that_reaches_the_copy_reports_workers_is_left_to_the_grader(copied_course, tmp_path):
    """A terminal's Ctrl-C reaches every process of the command. The copy report's workers, forked from the
    grader, leave it to the grader (which stops them): one interrupted while it sent a result left half a message
    that the grader then waited for, for ever. Interrupted again and again while they read the class, the workers
    still deliver the report the grader would write without it."""
    import multiprocessing
    import shutil
    import signal
    import time
    from grader.similarity import copy_report
    course = tmp_path / "course"
    shutil.copytree(copied_course, course, symlinks=True)
    copy_report.students_cache(course, rnn(course).name).unlink()  # every student read again
    before = _report(course)
    interrupted = []

    def meanwhile():
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline:
            for worker in multiprocessing.active_children():
                os.kill(worker.pid, signal.SIGINT)
                interrupted.append(worker.pid)
            time.sleep(0.005)

    done = copy_report.build(rnn(course), _assignment(course), meanwhile=meanwhile)
    assert interrupted and done.comparison is not None and _report(course) == before


def _assignment(course_dir):
    from grader.grade import batch
    return batch.load_assignment(rnn(course_dir))


def test_no_student_page_mentions_the_copy_report(copied_course):
    for page in (copied_course / "feedback").rglob("*.html"):
        text = page.read_text().lower()
        for mention in ("who copied", "copy report", "_copies", "alike", "similar", "known solution"):
            assert mention not in text, (page, mention)


def test_a_notebook_cannot_put_markup_into_the_copy_report(copied_course):
    page = (copied_course / "autograded" / "rnn_step_by_step_copies.html").read_text()

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__()
            self.tags, self.attributes = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append(tag)
            self.attributes += [name for name, _ in attrs]
    found = Tags()
    found.feed(page)
    assert "script" not in found.tags and "img" not in found.tags and "onerror" not in found.attributes
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page  # shown as the text it is, side by side


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-dev-shm-usage"]


def test_the_copy_report_in_chromium_marks_the_shared_lines_side_by_side(copied_course, tmp_path):
    """The page renders; the first pair's side-by-side view marks shared lines in both columns with a visible
    background, legible at 1280 px; the histogram is there."""
    import shutil
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("chromium and chromedriver are installed by `make test` (make browser)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1280,900"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        driver.get((copied_course / "autograded" / "rnn_step_by_step_copies.html").as_uri())
        assert driver.title == "Who copied? rnn_step_by_step"
        marked = driver.execute_script("""
            const pair = document.querySelector('section.pair');
            const side = cls => Array.from(pair.querySelectorAll('pre.' + cls + ' span'));
            const look = s => [s.classList.contains('shared'), getComputedStyle(s).backgroundColor,
                               parseFloat(getComputedStyle(s).fontSize), s.textContent];
            return [side('left').map(look), side('right').map(look)];""")
        driver.save_screenshot(str(tmp_path / "copies.png"))
        for column in marked:
            shared = [row for row in column if row[0]]
            plain = [row for row in column if not row[0]]
            assert shared, "no shared line marked"
            assert all(row[1] != "rgba(0, 0, 0, 0)" for row in shared) and all(row[1] == "rgba(0, 0, 0, 0)"
                                                                                for row in plain)
            assert min(row[2] for row in column) >= 12
        assert driver.execute_script("return document.querySelectorAll('figure svg').length;") == 1
        assert driver.execute_script("return document.documentElement.scrollWidth;") <= 1280
    finally:
        driver.quit()


# ---------------------------------------------------------------- what a red-team pass found

def test_a_stub_left_in_place_and_the_answer_pasted_below_is_compared_as_the_answer():
    """As when the notebook runs, the last definition counts: the stub in the graded cell hides nothing."""
    rng = random.Random(8)
    authors = [copy_class.author(f"s{i:02d}", rng, mistake_rate=0) for i in range(10)]
    stubs = [(unit, f"def {unit}({copy_class.SIGNATURES[unit]}):\n    raise NotImplementedError()\n")
             for unit in copy_class.UNITS]
    pasted = [(None, code) for code in authors[0].functions.values()]
    units, helpers = copies.split_units(stubs + pasted, set(copy_class.UNITS),
                                        {u: u for u in copy_class.UNITS})
    assert {u: c.strip() for u, c in units.items()} == {u: c.strip() for u, c in authors[0].functions.items()}
    assert len(helpers) == len(stubs)  # the stubs, replaced
    found = copies.compare([copies.document(a.name, a.functions) for a in authors]
                           + [copies.document("hider", units, helpers)])
    i = found.students.index("hider")
    assert found.students[int(np.argmax(found.matrix[i]))] == "s00" and found.matrix[i].max() > 0.5


def test_a_known_solution_match_is_absolute_and_changes_no_score_between_students():
    rng = random.Random(9)
    authors = [copy_class.author(f"s{i:02d}", rng, mistake_rate=0) for i in range(20)]
    internet = copy_class.author("internet", rng, mistake_rate=0)
    known = copies.document("known:solution.py", internet.functions, known=True)
    for pasters in (1, 8):
        students = [copies.document(a.name, a.functions) for a in authors]
        students += [copies.document(f"paste{k}", internet.functions) for k in range(pasters)]
        without = copies.compare(students)
        found = copies.compare(students + [known])
        assert np.array_equal(found.matrix, without.matrix)  # known files are not students
        matches = {p.a: p.score for p in found.known_pairs}
        assert all(matches[f"paste{k}"] > 0.9 for k in range(pasters)), matches


def test_no_unit_or_notebook_is_too_big_to_fingerprint_in_bounded_work():
    """A chain of thousands of temporaries (each folded into the next) is compared line by line, and only the
    first MAX_NOTEBOOK_CHARS of a notebook's code are read."""
    from grader.similarity import copy_report
    lines = ["def bomb(x):", "    v0 = x"] + [f"    v{i} = v{i - 1} + 1" for i in range(1, 4000)] + ["    return v3999"]
    printed = fingerprints.unit_print("\n".join(lines))
    assert len(printed.pieces) >= 3900 and all(len(where) == 1 for where in printed.pieces.values())
    cell = {"cell_type": "code", "metadata": {}, "source": "x = 1\n" * 20000}
    nb = json.dumps({"cells": [cell] * 50, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    units = copy_report.Units(["nb/u"], {}, {}, {})
    read = copy_report._cells_of(nb, "nb", units)
    assert sum(len(source) for _, source in read) <= copy_report.MAX_NOTEBOOK_CHARS


def test_lines_are_counted_as_python_counts_them():
    """A form feed or U+2028 in a comment neither hides a function nor shifts the marked lines."""
    code = "# a comment\u2028with\u2028separators\x0c\ndef rnn_forward(x, a0, parameters):\n    return helper(x) + 1\n"
    [(name, function)] = copies._top_level_functions(code)
    assert name == "rnn_forward" and function.startswith("def rnn_forward")
    printed = fingerprints.unit_print(code)
    lines = fingerprints.source_lines(code)
    marked = set().union(*printed.pieces.values())
    assert all("return" in lines[i - 1] or "def" in lines[i - 1] for i in marked)


def test_in_a_class_of_five_identical_notebooks_rank_first_by_what_they_share():
    """Rarity cannot be judged among five: an identical pair scores low relative to the class, so the page
    says so and ranks pairs by the code they share, an absolute measure (1 for identical code)."""
    units_of = {f"s{i}": {"u": VARIANTS[i], "v": VARIANTS[(i + 2) % 6]} for i in range(3)}
    units_of["twin_a"] = units_of["twin_b"] = {"u": VARIANTS[4], "v": VARIANTS[5]}
    found = copies.compare(_class(units_of))
    assert found.small
    first = found.pairs[0]
    assert {first.a, first.b} == {"twin_a", "twin_b"} and first.shared > 0.95
    assert all(p.shared < first.shared for p in found.pairs[1:])
