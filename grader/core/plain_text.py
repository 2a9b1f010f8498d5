"""Student-influenced text, shown literally wherever it goes.

A student decides much of the text the kit shows: error messages their code raises,
file and folder names, what their notebook prints. On a terminal, a control sequence
in that text could rewrite the screen; in a chart, `$...$` is read as math (and a
malformed formula stops the report); in a spreadsheet, a cell that starts with `=`
is a formula; in a Markdown cell that formgrader renders, HTML is live. Each function
here makes such text inert for one destination. The kit's own HTML pages are Jinja2
templates with autoescaping (pages.py): every value is escaped there.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from typing import TextIO

# C0 and C1 control characters (but newline and tab), and the bidirectional overrides that make
# text read in another order than it is stored.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape(match):
    return f"\\x{ord(match.group()):02x}" if ord(match.group()) < 0x100 else f"\\u{ord(match.group()):04x}"


def valid_text(text: str) -> str:
    """`text` as valid Unicode: JSON can carry lone surrogates (half of a character), which no file, page
    or database takes; each becomes U+FFFD. For every string that arrives from a student's process."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")


def for_terminal(text: object, one_line: bool = False) -> str:
    """`text` with control characters shown as escapes (\\x1b), so that printing it does nothing but print.
    `one_line`: newlines and tabs too (a table cell, a progress line)."""
    text = str(text)
    try:  # a name that was not UTF-8 holds its bytes as lone surrogates: show them as \xff
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return (_CONTROL_LINE if one_line else _CONTROL).sub(_escape, text)


def for_chart(text: object) -> str:
    """`text` for a matplotlib label: one line. Charts are also built with math parsing off
    (charts.CHART_STYLE), so a `$` is a dollar sign."""
    return for_terminal(text, one_line=True)


# A spreadsheet reads a cell starting with one of these as a formula (the full-width forms too, in some).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?")


_FORMULA_AFTER_SEPARATOR = re.compile("([;,\t][ ]*)([=+\\-@\uff1d\uff0b\uff0d\uff20])")


def for_spreadsheet(text: object) -> str:
    """`text` for a CSV cell that a spreadsheet opens: never read as a formula, nor where a spreadsheet that
    splits cells at `;` (as many set to a European locale do) would start a cell."""
    text = _FORMULA_AFTER_SEPARATOR.sub(r"\1'\2", for_terminal(text))
    return "'" + text if text.startswith(_FORMULA_START) else text


def spreadsheet_row(values: Iterable[object]) -> list[str]:
    """A CSV row of which no cell is read as a formula: plain numbers (a negative one too) stay numbers, any other
    cell goes through `for_spreadsheet`. Every CSV the kit writes is written through it."""
    return [text if _PLAIN_NUMBER.fullmatch(text := str(value)) else for_spreadsheet(text)
            for value in ("" if v is None else v for v in values)]


class SpreadsheetWriter:
    """csv.writer for a file people open in a spreadsheet: each row through `spreadsheet_row`."""

    def __init__(self, stream: TextIO) -> None:
        self._out = csv.writer(stream)

    def writerow(self, values: Iterable[object]) -> None:
        self._out.writerow(spreadsheet_row(values))


def for_markdown(text: object) -> str:
    """A student's Markdown that renders as Markdown but never as live HTML or a link: raw HTML and
    entities show as text, and square brackets are written as character references, so no link or image
    (whose address could run a script, however it is spelt) can form. Formgrader renders Markdown cells without cleaning them."""
    text = _CONTROL.sub("", valid_text(str(text)))
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("[", "&#91;").replace("]", "&#93;")


def has_control(text: str) -> bool:
    """True when `text` holds a control character other than newline and tab."""
    return bool(_CONTROL.search(text))


def unusable_name(name: str) -> str | None:
    """Why a file or folder name from a student cannot be used, or None when it can.

    Names arrive from file systems and archives as Python strings; bytes that are not
    UTF-8 come as lone surrogates. Such names, and names with control characters, cannot
    be shown, typed or stored in the gradebook as they are: they are left out, and named.
    """
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not valid UTF-8"
    if _CONTROL_LINE.search(name):
        return "its name holds control characters"
    if not name.strip():
        return "its name is blank"
    if len(name.encode("utf-8")) > 255:
        return "its name is over 255 bytes long"
    return None


_STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-@]{0,99}")


def student_id_problem(name: str | None) -> str | None:
    """Why `name` cannot be a student id, or None. One rule wherever an id enters the kit (a download that
    `collect` reads, a submitted/ folder made by hand or by nbgrader's exchange): letters, digits and `. _ - @`,
    starting with a letter or digit, so that an id is never a path, markup or a spreadsheet formula."""
    if _STUDENT_ID.fullmatch(name or ""):
        return None
    return f"{for_terminal(repr(name), one_line=True)[:80]} cannot be a student id (letters, digits, . _ - @)"


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """'1 submission', '2 submissions'."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def verb(n: int, one: str, many: str) -> str:
    return one if n == 1 else many
