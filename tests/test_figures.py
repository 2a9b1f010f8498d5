"""Do the committed figures come from the figure script?"""
import rnn_course
from rnn_course import figures


def test_figures_regenerate_identically(tmp_path):
    """Does `python -m grader figures` draw exactly the committed PNGs?"""
    for path in figures.draw_all(tmp_path):
        committed = rnn_course.IMAGES_DIR / path.name
        assert committed.exists(), f"{path.name} is not committed"
        assert path.read_bytes() == committed.read_bytes(), f"{path.name} is out of date: run `make figures`"


def test_notebook_shows_every_figure():
    """Does the notebook reference each figure, and only figures that exist?"""
    text = rnn_course.MASTER_NOTEBOOK.read_text()
    for name in figures.FIGURES:
        assert f"images/{name}" in text, name
