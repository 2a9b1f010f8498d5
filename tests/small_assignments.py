"""Small assignments of our own, each built for a kind of nbgrader cell the engine must grade as stock does.

`warmup` (two notebooks, one named with a space and non-ASCII letters): a function with visible and hidden
tests, a function reading a data file the assignment ships, a test that reads a variable the student defines,
a test whose value is its partial credit, a manually graded answer in Markdown, and a read-only cell. Nothing
in it is about RNNs: the engine must grade it knowing nothing of it.
"""
import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

ROOT = Path(__file__).resolve().parent.parent


def _cell(kind, source, grade_id, *, grade=False, solution=False, locked=False, points=None, tags=()):
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution,
            "task": False}
    if points is not None:
        meta["points"] = points
    made = (new_code_cell if kind == "code" else new_markdown_cell)(source)
    made.metadata["nbgrader"] = meta
    if tags:
        made.metadata["tags"] = list(tags)
    return made


def warmup_notebook():
    return new_notebook(cells=[
        _cell("markdown", "# Warm-up\nRead-only instructions: write the three answers below.", "intro", locked=True),
        new_code_cell("import numpy as np"),
        _cell("code", "def square(x):\n    \"\"\"x times x.\"\"\"\n    ### BEGIN SOLUTION\n    return x * x\n"
                      "    ### END SOLUTION", "square", solution=True),
        _cell("code", "assert square(3) == 9\n### BEGIN HIDDEN TESTS\nassert square(-4) == 16\n"
                      "### END HIDDEN TESTS", "test_square", grade=True, locked=True, points=2),
        _cell("code", "def mean_of_data():\n    \"\"\"The mean of the numbers in data.txt.\"\"\"\n"
                      "    ### BEGIN SOLUTION\n    return float(np.loadtxt('data.txt').mean())\n"
                      "    ### END SOLUTION", "mean_of_data", solution=True),
        _cell("code", "assert np.isclose(mean_of_data(), 2.5)  # numpy from the notebook's own import",
              "test_mean_of_data", grade=True, locked=True, points=3),
        _cell("code", "### BEGIN SOLUTION\nanswer = 6 * 7\n### END SOLUTION", "answer", solution=True),
        _cell("code", "assert answer == 42", "test_answer", grade=True, locked=True, points=1),
        _cell("code", "earned = 0\nif square(2) == 4:\n    earned += 1\nif square(5) == 25:\n    earned += 1\n"
                      "earned", "test_square_partly", grade=True, locked=True, points=2),
        _cell("markdown", "Why does `square(-4)` give a positive number?", "why_question", locked=True),
        _cell("markdown", "A negative times a negative is positive.", "why", grade=True, solution=True, points=2),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


SECOND = "Teil zwei – Übung"  # the second notebook's name: a space, a dash and non-ASCII letters


def second_notebook():
    return new_notebook(cells=[
        _cell("code", "def cube(x):\n    ### BEGIN SOLUTION\n    return x ** 3\n    ### END SOLUTION", "cube",
              solution=True),
        _cell("code", "assert cube(2) == 8\nassert cube(-1) == -1", "test_cube", grade=True, locked=True, points=1),
        _cell("code", "### BEGIN SOLUTION\nfavourite = {'colour': 'green', 'numbers': [1, 2, 3]}\n### END SOLUTION",
              "favourite", solution=True),
        _cell("code", "assert favourite['numbers'] == [1, 2, 3] and favourite['colour'] == 'green'",
              "test_favourite", grade=True, locked=True, points=1),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def add_warmup(course_dir):
    """Put the `warmup` assignment into `course_dir`'s source/ (two notebooks and a data file)."""
    folder = Path(course_dir) / "source" / "warmup"
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(warmup_notebook(), str(folder / "warmup.ipynb"))
    nbformat.write(second_notebook(), str(folder / f"{SECOND}.ipynb"))
    (folder / "data.txt").write_text("1\n2\n3\n4\n")
    return folder


def two_assignment_course(target):
    """A course with this repository's RNN assignment and `warmup`, neither released yet."""
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "nbgrader_config.py", target / "nbgrader_config.py")
    shutil.copytree(ROOT / "source", target / "source", ignore=shutil.ignore_patterns("__pycache__"))
    add_warmup(target)
    return target


# ---------------------------------------------------------------- `shapes`: hidden tests of every shape

def shapes_notebook():
    """A notebook whose hidden tests come in the shapes a determined student attacks: a hidden numpy check with
    a hint for students, an assert whose message spells the expected value, an indented hidden block, a marker
    with text after it, a test judged inside the student's process (it reads a notebook variable) that holds
    hidden code, and partial credits that read the student's own number. Before that judged-inside test, tests
    that take and give values of other kinds (a list, bytes), one that expects a ValueError and reads its
    message, and one whose function draws from numpy's shared random numbers (judged inside: no replay can
    draw them again)."""
    return new_notebook(cells=[
        new_code_cell("import numpy as np"),
        _cell("code", "def double(xs):\n    ### BEGIN SOLUTION\n    return 2 * np.asarray(xs, dtype=float)\n"
                      "    ### END SOLUTION", "double", solution=True),
        _cell("code", "assert double([1.0])[0] == 2.0\n### BEGIN HIDDEN TESTS\n"
                      "# hint for students: three values with fractions\n"
                      "np.testing.assert_allclose(double([1.25, 2.5, 3.75]), [2.5, 5.0, 7.5])\n"
                      "expected = 2 * 4.125\nassert double([4.125])[0] == expected, f'wanted {expected}'\n"
                      "### END HIDDEN TESTS", "test_double", grade=True, locked=True, points=2),
        _cell("code", "for x in [1.0, 2.0]:\n    assert double([x])[0] == 2 * x\n"
                      "    ### BEGIN HIDDEN TESTS\n    assert double([x + 0.375])[0] == 2 * x + 0.75, "
                      "f'wanted {2 * x + 0.75}'\n    ### END HIDDEN TESTS", "test_double_loop", grade=True,
              locked=True, points=1),
        _cell("code", "assert double([3.0])[0] == 6.0\nassert double([-5.5])[0] == -11.0  "
                      "### BEGIN HIDDEN TESTS (the marker after code, as nbgrader allows)\n"
                      "assert double([9.875])[0] == 19.75, 'wanted 19.75'\n### END HIDDEN TESTS with a remark",
              "test_double_marker", grade=True, locked=True, points=1),
        _cell("code", "def evens(n):\n    ### BEGIN SOLUTION\n    return [2 * i for i in range(n)]\n"
                      "    ### END SOLUTION", "evens", solution=True),
        _cell("code", "assert list(evens(3)) == [0, 2, 4]\n### BEGIN HIDDEN TESTS\n"
                      "assert sorted(evens(4)) == [0, 2, 4, 6]\n### END HIDDEN TESTS", "test_evens", grade=True,
              locked=True, points=1),
        _cell("code", "def root(x):\n    ### BEGIN SOLUTION\n    if x < 0:\n"
                      "        raise ValueError('negative input')\n    return x ** 0.5\n    ### END SOLUTION", "root",
              solution=True),
        _cell("code", "assert root(4) == 2\ntry:\n    root(-1)\nexcept ValueError as error:\n"
                      "    assert str(error) == 'negative input'\nelse:\n"
                      "    raise AssertionError('root(-1) raised nothing')", "test_root", grade=True, locked=True,
              points=1),
        _cell("code", "def shout(data):\n    ### BEGIN SOLUTION\n    return data.upper()\n    ### END SOLUTION",
              "shout", solution=True),
        _cell("code", "assert shout(b'ab') == b'AB'", "test_shout", grade=True, locked=True, points=1),
        _cell("code", "def noisy(n):\n    ### BEGIN SOLUTION\n    return np.random.rand(n)\n    ### END SOLUTION",
              "noisy", solution=True),
        _cell("code", "np.random.seed(0)\nfirst = noisy(3)\nsecond = np.random.rand(3)\nassert first.shape == (3,)\n"
                      "assert not np.allclose(first, second)", "test_noisy", grade=True, locked=True, points=1),
        new_code_cell("data = [1.0, 2.0]  # a variable of the notebook, not an answer: its test is judged inside"),
        _cell("code", "assert double(data)[1] == 4.0\n### BEGIN HIDDEN TESTS\n"
                      "assert double([6.0625])[0] == 12.125, 'SECRET-EXPECTED 12.125'\n### END HIDDEN TESTS",
              "test_double_data", grade=True, locked=True, points=1),
        _cell("code", "def share(n):\n    \"\"\"Two thirds of n.\"\"\"\n    ### BEGIN SOLUTION\n"
                      "    return n * 2 / 3\n    ### END SOLUTION", "share", solution=True),
        _cell("code", "share(3)", "test_share", grade=True, locked=True, points=2),
        _cell("code", "earned = 0\nif double([1.0])[0] == 2.0:\n    earned += 0.5\nif double([2.0])[0] == 4.0:\n"
                      "    earned += 0.5\nearned", "test_double_partly", grade=True, locked=True, points=1),
        _cell("code", "np.allclose(double([1.0, 2.0]), [2.0, 4.0])  # a check's answer, not a score",
              "test_double_close", grade=True, locked=True, points=1),
        _cell("code", "def announce():\n    ### BEGIN SOLUTION\n    return 'done'\n    ### END SOLUTION",
              "announce", solution=True),
        _cell("code", "assert announce() == 'done'\nannounce()", "test_announce", grade=True, locked=True,
              points=1),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def add_shapes(course_dir):
    """Put the `shapes` assignment (one notebook) into `course_dir`'s source/, with the course's config."""
    return _add(course_dir, "shapes", {"shapes": shapes_notebook()})


def _add(course_dir, name, notebooks):
    """Write `notebooks` (name -> notebook) as assignment `name` of `course_dir`, with this repository's course
    config when the course has none yet; return the assignment's folder."""
    course_dir = Path(course_dir)
    folder = course_dir / "source" / name
    folder.mkdir(parents=True, exist_ok=True)
    for notebook_name, nb in notebooks.items():
        nbformat.write(nb, str(folder / f"{notebook_name}.ipynb"))
    if not (course_dir / "nbgrader_config.py").exists():
        shutil.copy(ROOT / "nbgrader_config.py", course_dir / "nbgrader_config.py")
    return folder


# ---------------------------------------------------------------- `habits`: what real courses' notebooks do

def _nbgraders_autotests():
    """The autotests.yml of nbgrader's user guide (how `### AUTOTEST <expression>` lines are expanded)."""
    import nbgrader
    return Path(nbgrader.__file__).parent / "docs" / "source" / "user_guide" / "autotests.yml"


def habits_notebook():
    """Each habit of real courses' notebooks that once broke the kit, in a notebook of our own: a magic beside the
    imports, a master cell that fails wherever it runs (a 3-D axis today's matplotlib refuses), a PIL image
    shown as a cell's value, a test that reads what an earlier test's hidden part defined, functions
    returning numpy scalars of several dtypes, a dict with integer keys, a set, a complex number, a big integer
    and NaN, displays of every kind (a widget, HTML, Markdown, LaTeX, JSON, an updated display, a cleared
    output), a partial credit of a third, thousands of empty cells, and a hand-graded answer. (The `### AUTOTEST`
    line is in a notebook of its own, `autotest_notebook`: nbgrader runs the master to expand it, and refuses a
    master with a failing cell.)"""
    cells = [
        new_code_cell("%matplotlib inline\nimport numpy as np\nfrom fractions import Fraction"),
        new_code_cell("import matplotlib.pyplot as plt\naxis = plt.gca(projection='3d')  # gone from matplotlib"),
        new_code_cell("from PIL import Image\nImage.new('RGB', (2, 2))  # shown as PNG bytes, as a kernel shows it"),
        _cell("code", "def stats(xs):\n    ### BEGIN SOLUTION\n    xs = np.asarray(xs)\n"
                      "    return np.mean(xs), np.int64(xs.size), np.float32(xs.max()), xs.sum() > 0, xs[0]\n"
                      "    ### END SOLUTION", "stats", solution=True),
        _cell("code", "mean, size, top, positive, first = stats([1, 2, 3])\nassert mean == 2.0 and size == 3\n"
                      "### BEGIN HIDDEN TESTS\nassert top == np.float32(3) and positive and first == 1\n"
                      "assert isinstance(mean, np.floating) and isinstance(size, np.integer)\n### END HIDDEN TESTS",
              "test_stats", grade=True, locked=True, points=2),
        _cell("code", "def lengths(words):\n    ### BEGIN SOLUTION\n    found = {}\n    for w in words:\n"
                      "        found.setdefault(len(w), set()).add(w)\n    return found\n    ### END SOLUTION",
              "lengths", solution=True),
        _cell("code", "assert lengths(['a', 'bb', 'cc']) == {1: {'a'}, 2: {'bb', 'cc'}}\n### BEGIN HIDDEN TESTS\n"
                      "found = lengths(['abc', 'de'])\nassert found[3] == {'abc'}\n### END HIDDEN TESTS",
              "test_lengths", grade=True, locked=True, points=1),
        _cell("code", "assert found[2] == {'de'}  # `found` comes from the hidden part above", "test_found",
              grade=True, locked=True, points=1),
        _cell("code", "def odd_values():\n    ### BEGIN SOLUTION\n    return 1 + 2j, 2 ** 100, float('nan'), "
                      "Fraction(1, 3), (1, [2, 3])\n    ### END SOLUTION", "odd_values", solution=True),
        _cell("code", "z, big, nan, third, nested = odd_values()\nassert z == 1 + 2j and big == 2 ** 100\n"
                      "assert np.isnan(nan) and third == Fraction(1, 3) and nested == (1, [2, 3])",
              "test_odd_values", grade=True, locked=True, points=1),
        _cell("code", "import ipywidgets as widgets\nfrom IPython.display import HTML, JSON, Latex, Markdown, "
                      "clear_output, display\n### BEGIN SOLUTION\n"
                      "print('gone')\nclear_output(wait=True)\nprint('kept')\n"
                      "slider = widgets.IntSlider(value=3)\n"
                      "display(slider, HTML('<b>bold</b>'), Markdown('*it*'), Latex('$x^2$'), JSON({'a': 1}))\n"
                      "shown = display('first', display_id=True)\nshown.update('second')\n### END SOLUTION", "widgets",
              solution=True),
        _cell("code", "assert slider.value == 3", "test_widgets", grade=True, locked=True, points=1),
        _cell("code", "assert axis is not None  # needs the cell that fails", "test_axis", grade=True, locked=True,
              points=1),
        _cell("code", "earned = 0\nif stats([3])[1] == 1:\n    earned += 1\nif stats([5])[0] == 4:\n"
                      "    earned += 1  # wrong on purpose: one of three\nearned", "test_third", grade=True,
              locked=True, points=3),
        _cell("markdown", "Why is the mean of `[1, 2, 3]` a numpy number?", "why_question", locked=True),
        _cell("markdown", "Because `np.mean` returns a numpy scalar.", "why", grade=True, solution=True, points=2),
    ]
    cells += [new_code_cell(["", "pass", "# nothing to run"][k % 3]) for k in range(2500)]  # an odd habit
    return new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def autotest_notebook():
    """The second notebook of `habits`: a test written as an `### AUTOTEST` line, expanded by nbgrader at release
    from the course's autotests.yml into checks of the value's type and (hashed) value."""
    return new_notebook(cells=[
        _cell("code", "def halve(x):\n    ### BEGIN SOLUTION\n    return x / 2\n    ### END SOLUTION", "halve",
              solution=True),
        _cell("code", "### AUTOTEST halve(5)\n### HASHED AUTOTEST halve(8)", "test_halve", grade=True, locked=True,
              points=1),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})


def add_habits(course_dir):
    """Put the `habits` assignment into `course_dir`'s source/, and the autotests.yml it expands with."""
    folder = _add(course_dir, "habits", {"habits": habits_notebook(), "autotested": autotest_notebook()})
    shutil.copy(_nbgraders_autotests(), Path(course_dir) / "autotests.yml")
    return folder
