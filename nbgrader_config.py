# nbgrader settings for this course kit. Everything not set here keeps nbgrader's default.
import os

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

# The folder of this file is the course directory: source/, release/, submitted/ and
# autograded/ sit beside it, and so does the SQLite gradebook (nbgrader's default,
# gradebook.db in the course directory), whatever folder a command is run from.
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "rnn_step_by_step"

# Generated and grading files that must never be copied into the release.
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]

# A cell that runs longer than this (seconds) fails instead of hanging the run; stock autograde and the
# kit's grader both read it (every cell of this assignment takes well under a second).
c.ExecutePreprocessor.timeout = 30

# Pages made from notebooks (formgrader's view of a submission, nbgrader's generate_feedback) keep a
# student's HTML and JavaScript inert: they would otherwise run in the instructor's browser session.
c.HTMLExporter.sanitize_html = True
