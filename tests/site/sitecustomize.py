"""Loaded by every Python process the tests start (conftest.py puts this folder on PYTHONPATH).

jsonschema imports the optional `rfc3987_syntax` URI checker when it is installed, which builds its parsers at
import: a second of CPU in every process that imports nbformat, stock nbgrader's included (`nbgrader quickstart`
alone starts six). The kit's own processes go without it (grader/__init__.py); here stock's do too. Nothing the
tests compare depends on it: nbformat validates notebooks without format checks, and the URI formats it checks
only appear in Jupyter's server events.
"""
import sys

sys.modules.setdefault("rfc3987_syntax", None)
