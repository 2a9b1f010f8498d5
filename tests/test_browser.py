"""The feedback and class-report pages in a real headless Chromium (Debian's chromium + chromedriver).

`make test` installs both (see the Makefile). Each page must render, every image on
it must load, and no hidden-test code or hidden expected value may appear in it.
"""
import re
import shutil

import pytest

from conftest import ROOT, SAMPLES, rnn
from grader.core import notebook
from grader.grade import batch

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="chromium and chromedriver are installed by `make test` (make browser)")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1200,1600"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def hidden_text(course_dir):
    """Hidden test lines, and the numbers they assert that students are never shown."""
    assignment = batch.load_assignment(rnn(course_dir))
    lines = assignment.hidden_lines()
    release = (ROOT / "release" / "rnn_step_by_step" / "rnn_step_by_step.ipynb").read_text()
    numbers = {n for line in lines for n in re.findall(r"-?\d+\.\d{5,}", line) if n not in release}
    return lines, numbers


def open_page(driver, path, shots, name):
    driver.get(path.as_uri())
    images = driver.execute_script(
        "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth]);")
    text = driver.execute_script("return document.body.innerText;")
    driver.save_screenshot(str(shots / f"{name}.png"))
    return images, text


def test_class_report_renders_with_its_charts(browser, samples_course, tmp_path):
    images, text = open_page(browser, samples_course / "autograded" / "rnn_step_by_step_report.html", tmp_path, "report")
    assert browser.title == "Class report: rnn_step_by_step"
    charts = browser.execute_script("return document.querySelectorAll('figure svg').length;")
    assert charts == 3 and images == []
    assert "Pass rate per test" in text and "Needs your attention" in text
    lines, numbers = hidden_text(samples_course)
    assert not [line for line in lines if line in text]
    assert not [n for n in numbers if n in text]


# Every piece of chart text as the browser lays it out: (chart, text, height in px, inside the chart's box).
_CHART_TEXT = """
return Array.from(document.querySelectorAll('figure svg')).map((svg, chart) => {
  const box = svg.getBoundingClientRect();
  return Array.from(svg.querySelectorAll('text')).map(t => {
    const r = t.getBoundingClientRect();
    return [chart, t.textContent, r.height,
            r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1];
  });
}).flat();
"""


def test_class_report_chart_labels_are_legible_whole_and_count_in_whole_students(browser, samples_course, tmp_path):
    """In Chromium at a laptop's width: every label of every chart is at least 12 px high (about a
    body text's size) and lies wholly inside its chart; the axes that count students show integers."""
    browser.set_window_size(1280, 900)
    browser.get((samples_course / "autograded" / "rnn_step_by_step_report.html").as_uri())
    texts = browser.execute_script(_CHART_TEXT)
    browser.save_screenshot(str(tmp_path / "report_charts.png"))
    assert len(texts) > 30
    small = [(c, t, round(h, 1)) for c, t, h, _ in texts if h < 12]
    assert small == [], f"chart text too small to read: {small[:8]}"
    cut = [(c, t) for c, t, _, inside in texts if not inside]
    assert cut == [], f"chart text cut off at the chart's edge: {cut[:8]}"
    counts = [t for c, t, _, _ in texts if c in (0, 2) and re.fullmatch(r"[\d.\u2212-]+", t)]
    assert counts and all(re.fullmatch(r"\d+", t) for t in counts), f"fractions of students: {counts}"


@pytest.mark.parametrize("student", sorted(SAMPLES))
def test_feedback_page_renders_and_hides_the_hidden_tests(browser, samples_course, tmp_path, student):
    page = samples_course / "feedback" / student / "rnn_step_by_step" / "rnn_step_by_step.html"
    images, text = open_page(browser, page, tmp_path, student)
    assert browser.title == "Feedback: rnn_step_by_step"
    assert all(complete and width > 0 for _, complete, width in images)
    assert student in text and "Graded part" in text
    for internal in ("TimedOutBefore", "master", "NotRun", "ask the student", "grader error"):
        assert internal not in text, f"{internal!r} is not for students"
    for function in ("rnn_cell_forward", "lstm_backward"):
        assert function in text
    lines, numbers = hidden_text(samples_course)
    assert not [line for line in lines if line in text], "hidden test code on the page"
    assert not [n for n in numbers if n in text], "a hidden expected value on the page"
    assert "Traceback" not in text and "BEGIN HIDDEN" not in text
    for cell in notebook.read(ROOT / "source" / "rnn_step_by_step" / "rnn_step_by_step.ipynb").cells:
        if "_hidden_reference" in cell.source:
            assert "_hidden_reference" not in text


_STUDENT_TABLE = """
const table = document.getElementById('student-table');
return Array.from(table.tBodies[0].rows).map(row => Array.from(row.cells).map(cell => cell.textContent.trim()));
"""


def test_class_report_student_table_sorts_and_is_legible(browser, samples_course, tmp_path):
    """The table of every student sorts by a clicked heading (numbers as numbers, a blank below them all;
    again for the other order), and at 1280 px its text is legible and the page needs no sideways scroll."""
    from selenium.webdriver.common.by import By

    browser.set_window_size(1280, 900)
    browser.get((samples_course / "autograded" / "rnn_step_by_step_report.html").as_uri())
    headings = [h.text.rstrip(" \u2195") for h in browser.find_elements(By.CSS_SELECTOR, "#student-table th")]
    score = headings.index("Score")
    rows = browser.execute_script(_STUDENT_TABLE)
    assert sorted(r[0] for r in rows) == sorted(SAMPLES) and [r[0] for r in rows] == sorted(SAMPLES)

    button = browser.find_elements(By.CSS_SELECTOR, "#student-table th button")[score]
    button.click()
    ascending = [r[score] for r in browser.execute_script(_STUDENT_TABLE)]
    numbers = [float(v) for v in ascending if v]
    assert ascending[0] == "" and numbers == sorted(numbers) and len(numbers) == len(SAMPLES) - 1
    button.click()
    descending = [r[score] for r in browser.execute_script(_STUDENT_TABLE)]
    assert descending == ascending[::-1] or [float(v) for v in descending if v] == sorted(numbers, reverse=True)
    assert descending[-1] == ""
    browser.find_elements(By.CSS_SELECTOR, "#student-table th button")[0].click()  # by name, as text
    assert [r[0] for r in browser.execute_script(_STUDENT_TABLE)] == sorted(SAMPLES)
    browser.save_screenshot(str(tmp_path / "report_students.png"))

    sizes = browser.execute_script("""
        return Array.from(document.querySelectorAll('#student-table th, #student-table td, #help td'))
          .map(c => parseFloat(getComputedStyle(c).fontSize));""")
    assert sizes and min(sizes) >= 12
    assert browser.execute_script("return document.documentElement.scrollWidth;") <= 1280
    text = browser.execute_script("return document.body.innerText;")
    assert "Lowest scores" in text and "Slowest submissions" in text
