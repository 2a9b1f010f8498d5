"""This course's own material for "Building your Recurrent Neural Network — Step by Step".

The grading engine (`grader/`) knows no assignment; what belongs to this one lives
here: where its files are, the figures and the self-check data it is built with, the
demo's sample submissions and the benchmark's class, and the `rnn-grader` command that
adds them to the engine's commands.
"""
from pathlib import Path

HOME = Path(__file__).resolve().parent.parent  # the repository: a course directory with this assignment
ASSIGNMENT = "rnn_step_by_step"
NOTEBOOK = "rnn_step_by_step"  # notebook name without .ipynb

SOURCE_DIR = HOME / "source" / ASSIGNMENT
RELEASE_DIR = HOME / "release" / ASSIGNMENT
MASTER_NOTEBOOK = SOURCE_DIR / f"{NOTEBOOK}.ipynb"
RELEASE_NOTEBOOK = RELEASE_DIR / f"{NOTEBOOK}.ipynb"
CHECKS_DATA = SOURCE_DIR / "checks_data.json"
IMAGES_DIR = SOURCE_DIR / "images"

# What students write. The master tags the optional part's test cells `optional` (see grader/assignments.py).
GRADED_FUNCTIONS = ["rnn_cell_forward", "rnn_forward", "lstm_cell_forward", "lstm_forward"]
OPTIONAL_FUNCTIONS = ["rnn_cell_backward", "rnn_backward", "lstm_cell_backward", "lstm_backward"]
