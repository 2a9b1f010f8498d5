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

# >>> course kit: trusted grading for nbgrader's own commands and formgrader's buttons >>>
# Written by the kit's `nbgrader-config enable`; its `nbgrader-config disable` takes it out again.
try:
    from grader import nbgrader_engine as _kit
except ImportError:
    _kit = None
if _kit is not None:
    _kit.enable(c)  # noqa: F821
else:
    from nbconvert.exporters import NotebookExporter as _Stock
    from nbgrader.converters.base import NbGraderException as _Refused

    class _KitMissing(_Stock):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.log.error(
                "This course grades with the course kit's trusted grader (its lines at the end of "
                'nbgrader_config.py), and the kit is not installed in the Python that runs nbgrader. '
                "Install it there (pip install -e <the kit's folder>), or delete its lines from "
                "nbgrader_config.py (between the two 'course kit' comments) to grade with stock "
                'nbgrader.'
            )
            raise _Refused("the course kit is not installed")

    c.Autograde.exporter_class = c.GenerateFeedback.exporter_class = _KitMissing  # noqa: F821
# <<< course kit: trusted grading <<<
