"""formgrader's own buttons, pressed in a real headless Chromium, with the kit's lines in nbgrader_config.py.

An instructor who never opens a terminal grades in formgrader: a Jupyter server (with nbgrader's server
extension, as this environment installs it) runs in the course folder, and they press *Autograde* beside each
submission and *Generate Feedback* for the assignment. Behind those buttons the kit must grade: an honest
submission gets full marks, a forged one (every check inside the notebook silenced) gets the zero it earned,
shows formgrader's flag in the Manual Grading list and the kit's banner at the top of its grading page, and the
feedback written is the kit's own page, with no line of the hidden tests in it.
"""
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import rnn_course
from conftest import SAMPLES, make_course_copy, rnn_scores
from grader.course import release
from grader_eval import stock
from rnn_course import samples
from test_browser import CHROMEDRIVER, CHROMIUM, FLAGS, hidden_text
from test_nbgrader_engine import forged_submission

pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="chromium and chromedriver are installed by `make test` (make browser)")

ASSIGNMENT = NOTEBOOK = rnn_course.ASSIGNMENT
TOKEN = "formgrader-test-token"
GRADED_TESTS = ("test_rnn_cell_forward", "test_rnn_forward", "test_lstm_cell_forward", "test_lstm_forward")
BANNER = "Autograder: tampering suspected"
STUDENTS = ("honest", "forger")  # autograded in this order
GRADING = 120  # seconds a button may take (the kit grades a submission in about 7 s)


@pytest.fixture(scope="module")
def course(tmp_path_factory):
    """A course copy with its release generated and two submissions: an honest one and a forger's."""
    course_dir = make_course_copy(tmp_path_factory.mktemp("formgrader") / "course")
    release.generate(course_dir, ASSIGNMENT)
    samples.write(SAMPLES["sample_correct"][1], course_dir, "honest")
    samples.write(forged_submission(), course_dir, "forger")
    return course_dir


@pytest.fixture(scope="module")
def server(course, tmp_path_factory):
    """`jupyter server` from this environment, in the course folder, on a free local port: its URL and log.

    Its own Jupyter config, data and runtime folders (the user's ~/.jupyter stays untouched); nbgrader's server
    extension still loads, from this environment's etc/jupyter."""
    home = tmp_path_factory.mktemp("jupyter")
    env = dict(stock.environment(), JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "runtime"))
    # nbgrader's exchange where this machine's user may write it (the default, /usr/local/share/nbgrader/exchange,
    # is often missing: formgrader then logs a CRITICAL line on every page); the course's own config is untouched
    (home / "config").mkdir()
    (home / "exchange").mkdir()
    (home / "config" / "nbgrader_config.py").write_text(f"c.Exchange.root = {str(home / 'exchange')!r}\n")
    log = home / "server.log"
    with open(log, "wb") as out:  # port 0: the system picks a free one, the server writes it to its runtime file
        process = subprocess.Popen(
            [str(Path(sys.executable).parent / "jupyter"), "server", "--no-browser", "--allow-root",
             "--ServerApp.ip=127.0.0.1", "--ServerApp.port=0", f"--ServerApp.root_dir={course}",
             f"--IdentityProvider.token={TOKEN}"],
            cwd=course, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = _answering(process, home / "runtime", log)
        yield {"url": base, "log": log}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _answering(process, runtime, log, timeout=60):
    """The base URL of the server `process` once formgrader's API answers there."""
    deadline, base = time.monotonic() + timeout, None
    while True:
        assert process.poll() is None, f"jupyter server stopped:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"jupyter server did not answer:\n{log.read_text()[-3000:]}"
        if base is None:
            info = list(runtime.glob(f"jpserver-{process.pid}.json"))
            if info:
                try:
                    base = f"http://127.0.0.1:{json.loads(info[0].read_text())['port']}"
                except (ValueError, KeyError):
                    pass  # still being written
        if base is not None:
            request = urllib.request.Request(f"{base}/formgrader/api/status",
                                             headers={"Authorization": f"token {TOKEN}"})
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    if answer.status == 200:
                        return base
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
        time.sleep(0.2)


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    """One headless Chromium, logged in to the server with its token."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get(f"{server['url']}/formgrader?token={TOKEN}")
        yield driver
    finally:
        driver.quit()


def wait(driver, condition, timeout=30, message=""):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition, message)


def script(js, *args):
    """A wait condition: `js` (a function body) run in the page returns something truthy."""
    return lambda driver: driver.execute_script(js, *args)


# The Manage Submissions row of the student arguments[0] (a function body's first lines).
_ROW = """
const row = Array.from(document.querySelectorAll('#main-table tr')).find(r =>
  r.querySelector('.student-id') && r.querySelector('.student-id').textContent.trim() === arguments[0]);
"""


def submission_row(driver, student, ready=lambda row: True):
    """`student`'s row in Manage Submissions once it is drawn with its buttons and `ready`: column -> text."""
    def drawn(driver):
        row = driver.execute_script(_ROW + """
            if (!row || !row.querySelector('.autograde a')) return null;
            return Object.fromEntries(['student-name', 'status', 'score']
              .map(name => [name, row.querySelector('.' + name).textContent.trim()]));""", student)
        return row if row and ready(row) else None
    return wait(driver, drawn, message=f"{student}'s row in Manage Submissions")


def press(driver, button, timeout=GRADING):
    """Click formgrader's `button` (an element) as a user does, wait for the dialog that says how it went (formgrader
    answers when the work is done), close it with its OK button; the dialog's (id, text)."""
    from selenium.common.exceptions import TimeoutException, WebDriverException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready

    button.click()
    wait(driver, ready.visibility_of_element_located((By.CSS_SELECTOR, ".modal.in")), timeout,
         "formgrader's dialog after the button")
    # Its words as the page holds them (a dialog still fading in shows Selenium only part of its text).
    said = tuple(wait(driver, script("""
        const dialog = document.querySelector('.modal.in');
        const title = dialog && dialog.querySelector('.modal-title');
        const body = dialog && dialog.querySelector('.modal-body');
        return title && body && title.textContent.trim() && body.textContent.trim()
          && [dialog.id, title.textContent.trim() + '\\n' + body.textContent];"""), message="the dialog's words"))
    wait(driver, ready.element_to_be_clickable((By.CSS_SELECTOR, ".modal.in .modal-footer button"))).click()
    closed = script("return !document.querySelector('.modal, .modal-backdrop');")
    deadline = time.monotonic() + 30
    while True:
        try:
            wait(driver, closed, timeout=5, message="the dialog to close")
            return said
        except TimeoutException:
            if time.monotonic() > deadline:
                raise
        # A click that lands while the dialog still fades in can go unheeded: click OK again, as people do.
        for button in driver.find_elements(By.CSS_SELECTOR, ".modal.in .modal-footer button"):
            try:
                button.click()
            except WebDriverException:
                pass


@pytest.fixture(scope="module")
def pressed(server, browser, tmp_path_factory):
    """The instructor's clicks: Manage Assignments -> the assignment's submissions -> Autograde for honest, then
    for the forger -> back to Manage Assignments -> Generate Feedback. What the rows and the dialogs said."""
    shots = tmp_path_factory.mktemp("formgrader-shots")
    driver = browser
    driver.get(f"{server['url']}/formgrader/manage_assignments")
    link = wait(driver, script("""
        return Array.from(document.querySelectorAll('#main-table .num-submissions a'))
          .find(a => a.getAttribute('href').endsWith('/manage_submissions/' + arguments[0]));""", ASSIGNMENT),
                message="the link to the assignment's submissions in Manage Assignments")
    driver.save_screenshot(str(shots / "manage_assignments.png"))
    link.click()
    wait(driver, lambda d: d.current_url.rstrip("/").endswith(f"/formgrader/manage_submissions/{ASSIGNMENT}"))
    before = {student: submission_row(driver, student) for student in STUDENTS}
    driver.save_screenshot(str(shots / "manage_submissions_before.png"))
    dialogs, after = {}, {}
    for student in STUDENTS:
        submission_row(driver, student)
        dialogs[student] = press(driver, driver.execute_script(_ROW + "return row.querySelector('.autograde a');",
                                                               student))
    for student in STUDENTS:  # each row redraws itself once formgrader has fetched the new state
        after[student] = submission_row(driver, student, lambda row: row["status"] != "needs autograding"
                                        and "Please wait" not in row["student-name"])
    driver.save_screenshot(str(shots / "manage_submissions_after.png"))
    driver.find_element("link text", "Manage Assignments").click()
    button = wait(driver, script("""
        const row = Array.from(document.querySelectorAll('#main-table tr')).find(r =>
          r.querySelector('.name') && r.querySelector('.name').textContent.trim() === arguments[0]);
        return row && row.querySelector('.generate-feedback a');""", ASSIGNMENT),
                  message="the assignment's Generate Feedback button")
    dialogs["feedback"] = press(driver, button)
    driver.save_screenshot(str(shots / "manage_assignments_after_feedback.png"))
    (shots / "dialogs.json").write_text(json.dumps(dialogs, indent=1))
    return {"before": before, "after": after, "dialogs": dialogs}


def test_formgrader_lists_both_submissions_as_waiting_for_autograding(pressed):
    assert {student: row["status"] for student, row in pressed["before"].items()} == dict.fromkeys(
        STUDENTS, "needs autograding")


def test_the_autograde_button_grades_each_submission_with_the_kit(pressed, server):
    for student in STUDENTS:
        dialog, text = pressed["dialogs"][student]
        assert dialog == "success-modal", f"{text}\n--- server log ---\n{server['log'].read_text()[-4000:]}"
        assert f"Successfully autograded '{ASSIGNMENT}' for student '{student}'" in text
        assert "Graded by the course kit" in text, text
    assert "needs a look" not in pressed["dialogs"]["honest"][1]
    assert "forger needs a look: tampering suspected" in pressed["dialogs"]["forger"][1]


def test_the_honest_submission_gets_full_marks_and_the_forged_test_none(pressed, course):
    found = rnn_scores(course)
    assert set(found) == set(STUDENTS)
    honest = found["honest"]
    assert {test: honest[test] for test in GRADED_TESTS} == dict.fromkeys(GRADED_TESTS, 25)
    optional = {test: score for test, score in honest.items() if test not in GRADED_TESTS}
    assert len(optional) == 4 and set(optional.values()) == {5}, honest
    assert found["forger"]["test_rnn_cell_forward"] == 0
    # what the rows say once graded: the gradebook's totals, out of 4 x 25 + 4 x 5
    for student in STUDENTS:
        row = pressed["after"][student]
        assert row["status"] == "graded"
        assert row["score"] == f"{sum(found[student].values()):g} / 120"
    assert pressed["after"]["honest"]["score"] == "120 / 120"


# A function body's first line: nothing until formgrader's table at the path arguments[0] has loaded its rows.
_LOADED = """if (!(location.pathname.replace(/\\/$/, '').endsWith(arguments[0]) && window.models && models.loaded)) {
  return null;
}
"""


def _table_link(browser, page, target, what):
    """Once formgrader's table at `page` (a path) is loaded: its link to `target` (the end of a path)."""
    return wait(browser, script(_LOADED + """
        return Array.from(document.querySelectorAll('#main-table a'))
          .find(a => (a.getAttribute('href') || '').endsWith(arguments[1]));""", page, target), message=what)


def _manual_grading_list(browser, server):
    """Manual Grading -> the assignment -> its notebook, where formgrader lists the submissions: student -> row."""
    browser.get(f"{server['url']}/formgrader/gradebook")
    _table_link(browser, "/formgrader/gradebook", f"/gradebook/{ASSIGNMENT}", "Manual Grading's assignment").click()
    _table_link(browser, f"/gradebook/{ASSIGNMENT}", f"/gradebook/{ASSIGNMENT}/{NOTEBOOK}",
                "the assignment's notebook in Manual Grading").click()
    return wait(browser, script(_LOADED + """
        return Object.fromEntries(Array.from(document.querySelectorAll('#main-table tr')).map(r => [
          r.querySelector('.name .name-shown').textContent.trim(),
          {flagged: !!r.querySelector('.flagged .glyphicon-flag'), link: r.querySelector('.name a.name-hidden')}]));
        """, f"/gradebook/{ASSIGNMENT}/{NOTEBOOK}"), message="the notebook's submissions in Manual Grading")


def test_the_forger_wears_formgraders_flag_in_the_manual_grading_list(pressed, server, browser, tmp_path):
    rows = _manual_grading_list(browser, server)
    browser.save_screenshot(str(tmp_path / "manual_grading.png"))
    assert {student: row["flagged"] for student, row in rows.items()} == {"honest": False, "forger": True}


def _grading_page(browser, server, student):
    """`student`'s notebook opened from the Manual Grading list (formgrader's grading view): its first cell's text
    and the whole page's."""
    _manual_grading_list(browser, server)[student]["link"].click()
    return wait(browser, script("""
        const first = document.querySelector('#notebook-container .cell');
        return document.readyState === 'complete' && first && [first.innerText, document.body.innerText];"""),
                message=f"{student}'s grading page")


def test_the_forgers_grading_page_opens_with_the_kits_banner(pressed, server, browser, tmp_path):
    first, page = _grading_page(browser, server, "forger")
    browser.save_screenshot(str(tmp_path / "forger_grading_page.png"))
    assert first.startswith(BANNER), first
    assert "test_rnn_cell_forward" in first
    first, page = _grading_page(browser, server, "honest")
    browser.save_screenshot(str(tmp_path / "honest_grading_page.png"))
    assert "Autograder:" not in page


def test_generate_feedback_writes_the_kits_pages_with_nothing_hidden(pressed, course, server):
    dialog, text = pressed["dialogs"]["feedback"]
    assert dialog == "success-modal", f"{text}\n--- server log ---\n{server['log'].read_text()[-4000:]}"
    lines, numbers = hidden_text(course)
    for student in STUDENTS:
        page = (course / "feedback" / student / ASSIGNMENT / f"{NOTEBOOK}.html").read_text()
        assert page.startswith("<!DOCTYPE html>") and f"Feedback: {ASSIGNMENT}" in page
        assert not [line for line in lines if line.strip() and line.strip() in page], f"hidden test code for {student}"
        assert not [n for n in numbers if n in page], f"a hidden expected value for {student}"
