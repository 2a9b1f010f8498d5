"""Hidden stays hidden and no score can be steered, on an assignment of other shapes than the RNN one.

The `shapes` assignment (small_assignments.py) has hidden tests of every shape a determined student attacks:
a hidden numpy check, an assert whose message spells the expected value, an indented hidden block, a marker
after code on its line, a test judged inside the student's process that holds hidden code, partial credits
that read the student's own number. Each family of attack is tried in several variants, graded by the real
kit; the honest students are graded by stock nbgrader too.
"""
import base64
import csv
import re
import shutil
import zlib
from pathlib import Path

import nbformat
import pytest

from conftest import ROOT, kit
from grader.core import hidden, wire
from grader.course import assignments, solutions
from grader.judge import verdict
from grader.run import calls
from grader_eval import stock
from small_assignments import add_shapes

# What the hidden blocks of `shapes` hold that no student may read: expected values, messages, the marker.
SECRETS = ["4.125", "8.25", "1.25", "3.75", "7.5", "0.375", "0.75", "9.875", "19.75", "6.0625", "12.125", "wanted",
           "SECRET", "DESIRED", "Not equal", "BEGIN HIDDEN", "assert_allclose", "hint for students"]

# The student's function reads the test cell that called it (hidden code included, in a test judged inside) and
# sends it home: `{send}` is the line that does.
READER = """    import sys, linecache, base64, zlib
    frame = sys._getframe(1)
    text = "".join(linecache.getlines(frame.f_code.co_filename))
    if "SECRET" in text:
        global STASH
        STASH = text
{send}
    return 2 * np.asarray(xs, dtype=float)
"""
SENDS = {
    "leak_base64": "        raise ValueError(base64.b64encode(text.encode()).decode())",
    "leak_zlib": "        raise ValueError(base64.b64encode(zlib.compress(text.encode())).decode())",
    "leak_reversed": "        raise AssertionError(text[::-1])",
    "leak_class_name": "        raise type('X' + base64.b32encode(text.encode()[:60]).decode().strip('='), "
                       "(Exception,), {})()",
    "leak_later": "        pass",  # the stash is sent by later cells, a piece each
}
LATER = ["raise RuntimeError(base64.b64encode(STASH.encode()).decode()[{}:{}])".format(k * 60, k * 60 + 60)
         for k in range(4)]
FORGER = ("    class Anything(float):\n        def __eq__(self, other):\n            return True\n"
          "        __hash__ = float.__hash__\n    return [Anything(0.0)] * len(xs)\n")
CREDITS = {"nan": "float('nan')", "negative": "-1", "inf": "float('inf')", "np_float": "np.float64(2.0)",
           "np_int": "np.int64(1)", "array": "np.array([0, 0])", "text": "'2'", "huge": "10 ** 400", "bool": "True",
           "over": "5.0"}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    course_dir = tmp_path_factory.mktemp("shapes") / "course"
    add_shapes(course_dir)
    assert kit(course_dir, "release", "shapes").returncode == 0
    layout = assignments.find(course_dir, "shapes")
    right = solutions.master_solutions(layout.master("shapes"))
    wrong = "    xs = np.asarray(xs, dtype=float)\n    return np.where(np.isin(xs % 1, [0, 0.5]), 2 * xs, xs)\n"
    made = {"correct": right, "blank": {}, "wrong_hidden": {**right, "double": wrong},
            "forger": {**right, "double": FORGER},
            "deep": {**right, "announce": "    x = " + "+".join(["1"] * 30000) + "\n    return 'done'\n"},
            "formula_error": {**right, "announce": "    raise type('=HYPERLINK(\"x\")', (Exception,), {})('@SUM(1)')\n"},
            # Other kinds of value than the master's: one that travels exactly, one whose order may differ, one
            # that cannot travel at all; a set hard-coded for the visible inputs; another route to the same root.
            "honest_range": {**right, "evens": "    return range(0, 2 * n, 2)\n"},
            "honest_set": {**right, "evens": "    return set(range(0, 2 * n, 2))\n"},
            "honest_generator": {**right, "evens": "    return (2 * i for i in range(n))\n"},
            "honest_bytearray": {**right, "shout": "    return bytearray(data.upper())\n"},
            "hardcoded_set": {**right, "evens": "    return {0, 2, 4}\n"},
            "honest_root": {**right, "root": "    if x < 0:\n        raise ValueError('negative input')\n"
                                             "    return np.sqrt(x)\n"}}
    made.update({name: {**right, "double": READER.format(send=send)} for name, send in SENDS.items()})
    made.update({f"credit_{name}": {**right, "share": f"    return {value}\n"} for name, value in CREDITS.items()})
    for student, answers in made.items():
        filled = solutions.fill(answers, layout.release("shapes"))
        if student == "leak_later":
            filled.cells += [nbformat.v4.new_code_cell(f"import base64\n{line}") for line in LATER]
        solutions.write(filled, course_dir, student, "shapes", "shapes")
    for name in ("=HYPERLINK(\"x\";\"y\")", "+cmd", "@SUM(1)"):  # folders made by hand or by the exchange
        folder = course_dir / "submitted" / name / "shapes"
        folder.mkdir(parents=True)
        shutil.copy(course_dir / "submitted" / "correct" / "shapes" / "shapes.ipynb", folder)
    honest = ["correct", "blank", "wrong_hidden", "honest_range", "honest_set", "honest_root"]
    stock_dir = course_dir.parent / "stock"
    shutil.copytree(course_dir, stock_dir)
    for folder in (stock_dir / "submitted").iterdir():
        if folder.name not in honest:
            shutil.rmtree(folder)
    graded = kit(course_dir, "grade", "shapes", "--cell-timeout", "10")
    done = stock.autograde(stock_dir, "shapes")
    assert done.returncode == 0, done.stderr[-3000:]
    return {"course_dir": course_dir, "graded": graded, "students": list(made), "honest": honest,
            "stock_dir": stock_dir}


def page(shapes, student):
    text = (shapes["course_dir"] / "feedback" / student / "shapes" / "shapes.html").read_text()
    return re.sub(r"<style.*?</style>", "", text, flags=re.S)


def row(shapes, student):
    with open(shapes["course_dir"] / "autograded" / "shapes_grades.csv", newline="") as f:
        return next(r for r in csv.DictReader(f) if r["student"] == student)


def decodings(text):
    """`text` and what it could be carrying, encoded: reversed, base64 and base32 pieces, zlib inside them."""
    found = [text, text[::-1]]
    for token in re.findall(r"[A-Za-z0-9+/=]{16,}", text):
        for decode in (base64.b64decode, base64.b32decode):
            try:
                raw = decode(token + "=" * (-len(token) % 8))
            except Exception:  # noqa: BLE001 -- most tokens are no encoding at all
                continue
            found.append(raw.decode("latin-1"))
            try:
                found.append(zlib.decompress(raw).decode("latin-1"))
            except zlib.error:
                pass
    return "\n".join(found)


def test_the_grading_ran_and_honest_students_are_graded_as_stock_grades_them(shapes):
    assert shapes["graded"].returncode in (0, 1), shapes["graded"].stderr[-3000:]
    kit_scores = stock.scores(shapes["course_dir"], "shapes")
    stock_scores = stock.scores(shapes["stock_dir"], "shapes")
    assert {s: kit_scores[s] for s in shapes["honest"]} == stock_scores
    for student in shapes["honest"]:
        assert row(shapes, student)["status"] == "graded", student


def test_no_hidden_line_or_value_reaches_any_students_page_in_any_encoding(shapes):
    for student in shapes["students"]:
        shown = decodings(page(shapes, student))
        leaked = [secret for secret in SECRETS if secret in shown]
        assert not leaked, (student, leaked)


def test_a_hidden_check_that_fails_says_so_with_the_masters_hint_and_the_instructor_keeps_the_whole_message(shapes):
    text = page(shapes, "wrong_hidden")
    assert "a hidden check failed (three values with fractions)" in text
    assert text.count("a hidden check failed") >= 3  # the plain, indented and after-code markers alike
    graded = (shapes["course_dir"] / "autograded" / "wrong_hidden" / "shapes" / "shapes.ipynb").read_text()
    assert "Not equal to tolerance" in graded and "wanted" in graded, "formgrader shows the instructor all of it"
    assert "(a check on other inputs failed)" not in text


def test_a_judged_inside_test_sends_nothing_of_the_students_process_home(shapes):
    for student in set(SENDS) - {"leak_later"}:  # that one raises nothing in the test: its later cells do
        assert "its message is not shown" in page(shapes, student), student
    assert "it failed; its message is not shown" in page(shapes, "leak_class_name")
    assert "Some of your cells after a test with hidden checks stopped" in page(shapes, "leak_later")
    assert page(shapes, "leak_later").count("stopped with an error") == 1, "one note, not a bit a cell"
    assert "reads data from the notebook" in shapes["graded"].stdout, "the judged-inside test is named"


def test_a_partial_credit_counts_only_a_finite_real_number_capped_to_the_points(shapes):
    expected = {"nan": 0, "negative": 0, "inf": 0, "np_float": 2, "np_int": 1, "array": 0, "text": 0, "huge": 2,
                "bool": 1, "over": 2}
    scores = {name: float(row(shapes, f"credit_{name}")["share"]) for name in CREDITS}
    assert scores == expected
    assert all(row(shapes, f"credit_{name}")["status"] == "graded" for name in CREDITS), "never evidence"
    assert "partial credit: 0 of 2 (the test&#39;s value is NaN, not a number)" in page(shapes, "credit_nan")
    assert "a ndarray, not a number" in page(shapes, "credit_array") or "an ndarray" in page(shapes, "credit_array")
    # A value that is not a number where the master's is not one either: the test scores by its errors, as stock.
    assert float(row(shapes, "correct")["announce"]) == 1
    assert float(row(shapes, "correct")["double_close"]) == 1, "True is a check's answer, not 1 point of a score"


def test_a_judged_inside_pass_with_a_forging_sign_is_marked_for_the_instructor(shapes):
    forger = row(shapes, "forger")
    assert forger["double_data"] == "1", "no evidence: the score stands"
    assert re.search(r"check by hand: [\w, ]*test_double_data[\w, ]* passed judged inside", forger["reason"])
    assert "objects that redefine comparison" in forger["reason"]
    report = (shapes["course_dir"] / "autograded" / "shapes_report.html").read_text()
    attention = report.split("Needs your attention")[1].split("</table>")[0]
    assert "forger" in attention and "check by hand" in attention
    assert "check by hand" not in row(shapes, "correct")["reason"]


def test_no_csv_cell_is_a_formula_and_a_folder_that_is_no_student_id_is_named_not_graded(shapes):
    out = shapes["graded"].stdout + shapes["graded"].stderr
    for name in ("=HYPERLINK", "+cmd", "@SUM"):
        assert re.search(re.escape(name) + r".*cannot be a student id", out), name
    for path in (shapes["course_dir"] / "autograded").glob("*.csv"):
        with open(path, newline="") as f:
            for cells in csv.reader(f):
                bad = [c for c in cells if c and c[0] in "=+-@\t\r" and not re.fullmatch(r"-[0-9.eE+-]+", c)]
                bad += [c for c in cells if re.search(r"[;,\t]\s*[=+\-@]", c)]  # a spreadsheet splitting on ;
                assert not bad, (path.name, bad)


def test_code_the_scan_cannot_parse_is_a_review_flag_never_a_grader_error(shapes):
    deep = row(shapes, "deep")
    assert deep["status"] == "graded" and "code the scan could not read" in deep["review_flags"]
    assert deep["announce"] == "0" and deep["double"] == "2"


@pytest.mark.parametrize("source", [
    "x = " + "+".join(["1"] * 30000),
    "if False:\n    z = " + "+".join(["1"] * 30000),
    "x = " + "-" * 100000 + "1",
    "x = " + "not " * 50000 + "True",
])
def test_the_scan_names_code_it_cannot_parse_and_never_raises(source):
    from grader.judge import review
    assert review.scan([source, "np.allclose = lambda *a: True"], ["helpers"]) == [
        f"{review.UNREADABLE}: " + review.scan([source])[0].split(": ", 1)[1], "patching np: np.allclose = ..."]


# ---------------------------------------------------------------- one definition of a hidden block

SOURCES = [
    "a = 1\n### BEGIN HIDDEN TESTS\nb = 2\n### END HIDDEN TESTS\nc = 3",
    "for x in y:\n    a(x)\n    ### BEGIN HIDDEN TESTS\n    b(x)\n    ### END HIDDEN TESTS\nc()",
    "a()  ### BEGIN HIDDEN TESTS (text after)\nb()\n### END HIDDEN TESTS and a remark\nc()",
    "a()\n# BEGIN HIDDEN TESTS without hashes\nb()\n  END HIDDEN TESTS\nc()",
    "### END HIDDEN TESTS alone\na()\n\t### BEGIN HIDDEN TESTS\nb()\n\t### END HIDDEN TESTS",
]


@pytest.mark.parametrize("source", SOURCES)
def test_hidden_blocks_are_nbgraders_own_wherever_the_marker_stands(source):
    """The kit's copy of a test cell keeps exactly the lines nbgrader's release keeps."""
    from nbformat.v4 import new_code_cell
    from nbgrader.preprocessors import ClearHiddenTests

    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "t", "points": 1, "locked": True}
    ClearHiddenTests().preprocess_cell(cell, {}, 0)
    kept = [line for line in hidden.strip(source).split("\n") if line]
    assert kept == [line for line in cell.source.split("\n") if line] or "END HIDDEN TESTS alone" in source
    assert not any("b(" in line or "b = 2" in line for line in kept)


def _replay(source, output):
    record_calls = (calls.Call("f", wire.encode((1,)), wire.encode(99)),)  # never the output: no shortcut
    plan = verdict.TestPlan("t", source, record_calls)
    return verdict.replay(plan, [wire.encode(output)], [], "/tmp")


@pytest.mark.parametrize("source, hidden_part", [
    ("v = f(1)\nassert v == 2\n### BEGIN HIDDEN TESTS\nassert v > 5, f'wanted {v + 9}'\n### END HIDDEN TESTS", True),
    ("v = f(1)\nfor k in [1]:\n    assert v == 3\n    ### BEGIN HIDDEN TESTS\n    assert v < 0\n"
     "    ### END HIDDEN TESTS", True),
    ("v = f(1)\nassert v == 3  ### BEGIN HIDDEN TESTS\nassert v < 0\n### END HIDDEN TESTS", True),
    ("v = f(1)\n### BEGIN HIDDEN TESTS\nexpected = 7\n### END HIDDEN TESTS\nassert v == expected, f'{expected}'",
     True),
    ("v = f(1)\nassert v == 7, 'visible'\n### BEGIN HIDDEN TESTS\nassert v < 0\n### END HIDDEN TESTS", False),
])
def test_a_failure_is_placed_in_the_cell_by_where_it_happened(source, hidden_part):
    """Hidden, inside a hidden block, after hidden code ran, on a marker line: the message may not show, and it
    is no evidence of tampering. A visible check before any hidden code: both."""
    judged = _replay(source, 2 if hidden_part else 3)
    assert not judged.passed
    assert judged.message_may_show is not hidden_part
    assert judged.contradicts_the_notebook is not hidden_part


def test_values_of_other_kinds_travel_or_say_why_and_never_make_an_honest_student_a_suspect(shapes):
    for student in ("honest_range", "honest_set", "honest_root", "honest_generator", "hardcoded_set"):
        assert row(shapes, student)["status"] == "graded", student
    assert row(shapes, "honest_range")["evens"] == "1" and row(shapes, "honest_set")["evens"] == "1"
    assert row(shapes, "honest_root")["root"] == "1", "a stand-in ValueError has the student's message as its str()"
    assert row(shapes, "hardcoded_set")["evens"] == "0", "a set is compared, not passed unchecked"
    assert "a hidden check failed" in page(shapes, "hardcoded_set")
    generator = page(shapes, "honest_generator")
    assert row(shapes, "honest_generator")["evens"] == "0"
    assert "your function returned a generator, which the grader cannot check outside your notebook" in generator
    assert row(shapes, "correct")["shout"] == "1", "bytes travel"
    # Even where the test has no hidden code: what says a value cannot travel is the student's process, which a
    # forger controls (an object equal to anything, sent as "cannot travel"), so the test fails, saying why.
    assert row(shapes, "honest_bytearray")["shout"] == "0" and row(shapes, "honest_bytearray")["status"] == "graded"
    assert "your function returned a bytearray" in page(shapes, "honest_bytearray")


def test_a_test_whose_function_draws_shared_random_numbers_is_judged_inside_and_named(shapes):
    assert "test_noisy: its calls cannot be made again outside the notebook: noisy() draws from the random " \
           "numbers the test shares" in shapes["graded"].stdout
    assert row(shapes, "correct")["noisy"] == "1"


@pytest.mark.parametrize("value", [
    {1: "a", (2, 3): [4.5], None: {"x": 1}}, {1, 2, 3}, frozenset({"a"}), 1 + 2j, b"\x00xy", range(0, 6, 2),
    (1, [2, (3,)]), {"nested": {2: range(3)}},
], ids=["dict keys", "set", "frozenset", "complex", "bytes", "range", "tuple", "nested"])
def test_plain_values_of_every_kind_arrive_as_they_were_sent(value):
    node = wire.encode(value)
    assert wire.decode(wire.loads(wire.dumps(node), 10 ** 7)) == value
    assert wire.exact(node) is not isinstance(value, (set, frozenset))


@pytest.mark.parametrize("value, kind", [
    ((i for i in range(3)), "generator"), ("x" * 20_000, "str of over 10000 characters"),
    (10 ** 5000, "int of over 4000 digits"), (range(10 ** 5000), "range of over 4000 digits"), (object(), "object"),
], ids=["generator", "long str", "huge int", "huge range", "object"])
def test_a_value_that_cannot_travel_is_named_never_cut_short(value, kind):
    node = wire.encode([1, value])
    assert wire.unsupported(node) == kind and not wire.exact(node)


def test_a_courses_own_hidden_test_delimiters_are_nbgraders_rule_too(tmp_path):
    """A course that sets other delimiters (c.ClearHiddenTests.*_test_delimeter): nbgrader's release strips those
    blocks, and so does the kit's copy in the student's process; their failures read as hidden ones."""
    from nbformat.v4 import new_code_cell, new_notebook
    from small_assignments import _cell

    course_dir = tmp_path / "course"
    folder = course_dir / "source" / "marks"
    folder.mkdir(parents=True)
    config = (ROOT / "nbgrader_config.py").read_text()
    (course_dir / "nbgrader_config.py").write_text(
        config + '\nc.ClearHiddenTests.begin_test_delimeter = "PRIVATE START"\n'
                 'c.ClearHiddenTests.end_test_delimeter = "PRIVATE STOP"\n')
    nbformat.write(new_notebook(cells=[
        _cell("code", "def triple(x):\n    ### BEGIN SOLUTION\n    return 3 * x\n    ### END SOLUTION", "triple",
              solution=True),
        _cell("code", "assert triple(1) == 3\n# PRIVATE START\nassert triple(77) == 231, 'SECRET 231'\n"
                      "# PRIVATE STOP", "test_triple", grade=True, locked=True, points=1),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}}),
        str(folder / "marks.ipynb"))
    assert kit(course_dir, "release", "marks").returncode == 0
    layout = assignments.find(course_dir, "marks")
    assert "SECRET" not in layout.release("marks").read_text(), "nbgrader's release strips the course's blocks"
    spy = ("    import sys, linecache, builtins\n    frame = sys._getframe(1)\n"
           "    builtins.SEEN = getattr(builtins, 'SEEN', '') + ''.join(linecache.getlines(frame.f_code.co_filename))\n"
           "    return 3 * x if x < 50 else 0\n")
    filled = solutions.fill({"triple": spy}, layout.release("marks"))
    filled.cells.append(nbformat.v4.new_code_cell("import builtins\nraise ValueError(builtins.SEEN)"))
    solutions.write(filled, course_dir, "spy", "marks", "marks")
    graded = kit(course_dir, "grade", "marks")
    assert graded.returncode in (0, 1), graded.stderr[-3000:]
    text = (course_dir / "feedback" / "spy" / "marks" / "marks.html").read_text()
    assert "a hidden check failed" in text and "assert triple(1) == 3" in text, "the visible code, read and shown"
    assert "SECRET" not in text and "231" not in text and "PRIVATE" not in text


def test_the_kits_hidden_test_markers_are_nbgraders_defaults_and_running_a_notebook_needs_no_nbgrader():
    """The delimiters the kit writes out are nbgrader's own defaults; the modules that the fork servers and the
    master's recording import leave nbgrader (over a second to import) out: the package is registered (see
    grader/__init__.py), none of its modules but its version is loaded."""
    import subprocess
    import sys
    from nbgrader.preprocessors import ClearHiddenTests
    from traitlets.config import Config
    assert hidden.DEFAULT == (ClearHiddenTests.begin_test_delimeter.default_value,
                              ClearHiddenTests.end_test_delimeter.default_value)
    for config in (Config(), Config({"ClearHiddenTests": {"begin_test_delimeter": "VERBORGEN"}}),
                   Config({"ClearHiddenTests": {"begin_test_delimeter": "B", "end_test_delimeter": "E"}})):
        clear = ClearHiddenTests(config=config)
        assert hidden.markers_of(config) == (clear.begin_test_delimeter, clear.end_test_delimeter)
    loaded = subprocess.run([sys.executable, "-c", "import sys, grader.run.execute, grader.judge.verdict; "
                             "print(sorted(m for m in sys.modules if m.startswith('nbgrader')))"],
                            capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parent.parent)
    assert loaded.stdout.strip() == "['nbgrader', 'nbgrader._version']"
