"""Reading the files a student hands in, as hostile input.

A submission folder may hold anything: links to the master or the gradebook, named
pipes that block a reader forever, sockets, device nodes, names that are not UTF-8,
files of gigabytes, folders nested a thousand deep, and a link swapped in while the
grader reads. The rules, for every file read from a submission:

- the folder is walked through open directory descriptors, each opened without
  following a link, so that no path is looked up twice;
- a file is opened without following a link and without blocking (`O_NOFOLLOW |
  O_NONBLOCK`), and what was opened is checked to be a regular file: a link swapped in
  after the folder was listed fails the open instead of being followed;
- sizes, counts and depth are capped, and reading stops at the cap;
- anything that breaks a rule is left out and named with the reason (`Folder.refused`),
  never raised: one student's folder cannot stop the grading of anyone else.
"""
from __future__ import annotations

import errno
import os
import stat
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

from grader.core.plain_text import for_terminal, has_control, unusable_name

MAX_FILE_BYTES = 32 * 1024 * 1024   # one file (the notebook included)
MAX_NOTEBOOK_STREAM_BYTES = 1024 ** 3  # a notebook read as a stream, its saved outputs left out (read_notebook_file)
MAX_NOTEBOOK_DEPTH = 100            # how deep its JSON may nest outside the outputs (a notebook needs under 10)
_SKIPPED = {("cells", "item", "outputs"), ("cells", "item", "attachments")}
MAX_TOTAL_BYTES = 64 * 1024 * 1024  # all files of one submission
MAX_ENTRIES = 2000                  # files and folders in one submission
MAX_DEPTH = 16                      # folders inside folders
MAX_RECORD_BYTES = 4096             # timestamp.txt, submission_secret.txt

_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_OPEN_FOLDER = os.O_RDONLY | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC


@dataclass
class Folder:
    """What could be read of a folder: its files, and what was left out and why."""
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (relative path, bytes), sorted by path
    refused: list[tuple[str, str]] = field(default_factory=list)  # (relative path, shown safely; why left out)


def kind_of(mode: int) -> str:
    """A file type in words, for the reason a file is refused."""
    for test, name in ((stat.S_ISLNK, "a link"), (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a device"), (stat.S_ISBLK, "a device"), (stat.S_ISDIR, "a folder")):
        if test(mode):
            return name
    return "not a regular file"


def shown(path: object) -> str:
    """A path that may hold anything, as text that prints safely."""
    return for_terminal(path, one_line=True)


def open_folder(path: str | Path) -> int:
    """A descriptor for the folder `path`, itself not a link; raises OSError."""
    return os.open(path, _OPEN_FOLDER)


def open_regular(name: str, dir_fd: int) -> tuple[int | None, str | None]:
    """(descriptor, None) for the regular file `name` in the folder `dir_fd`, or (None, why not).

    Never follows a link and never blocks on a pipe or a device: what was opened is checked.
    """
    try:
        fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
    except OSError as error:
        if error.errno == errno.ELOOP:  # O_NOFOLLOW met a link
            return None, "it is a link (links are never followed)"
        if error.errno == errno.ENXIO:  # a socket cannot be opened
            return None, "it is a socket, not a regular file"
        return None, f"it cannot be opened ({error.strerror})"
    try:
        mode = os.fstat(fd).st_mode
    except OSError as error:
        os.close(fd)
        return None, f"it cannot be read ({error.strerror})"
    if not stat.S_ISREG(mode):
        os.close(fd)
        return None, f"it is {kind_of(mode)}, not a regular file"
    return fd, None


def read_file(name: str, dir_fd: int, limit: int) -> tuple[bytes | None, str | None]:
    """(bytes, None) for the regular file `name` in the folder `dir_fd`, or (None, why not); never reads
    past `limit`."""
    fd, why = open_regular(name, dir_fd)
    if fd is None:
        return None, why
    try:
        chunks, size = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                return None, f"it is over {size_in_words(limit)}"
        return b"".join(chunks), None
    except OSError as error:
        return None, f"it cannot be read ({error.strerror})"
    finally:
        os.close(fd)


def read_notebook_file(name: str, dir_fd: int,
                       limit: int = MAX_NOTEBOOK_STREAM_BYTES) -> tuple[bytes | None, str | None]:
    """(bytes, None) for a notebook over MAX_FILE_BYTES, read as a stream with its saved outputs and attachments
    left out (the grader clears them before it runs anything), or (None, why not). What is left must fit in
    MAX_FILE_BYTES: only the code and text a notebook would make the grader hold count against it."""
    import json

    import ijson
    fd, why = open_regular(name, dir_fd)
    if fd is None:
        return None, why
    with os.fdopen(fd, "rb") as raw:
        size = os.fstat(raw.fileno()).st_size
        if size > limit:
            return None, f"it is over {size_in_words(limit)}"
        # basic_parse, not parse: parse builds each event's whole path as text, which nesting makes quadratic.
        stack: list[list[Any]]  # [event, key or "item"] of each open map and array
        builder, stack, kept = ijson.ObjectBuilder(), [], 0
        try:
            # Large reads: a saved output is often one string of many MB, which small reads would copy over and over.
            events = ijson.basic_parse(_Capped(raw, limit), use_float=True, buf_size=1 << 24)
            for event, value in events:
                if event == "map_key":
                    stack[-1][1] = value
                elif event not in ("end_map", "end_array") and tuple(k for _, k in stack) in _SKIPPED:
                    empty = ("start_map", "end_map") if stack[-1][1] == "attachments" else ("start_array", "end_array")
                    builder.event(empty[0], None)  # an empty list (outputs) or map (attachments) stands in
                    builder.event(empty[1], None)
                    if event in ("start_map", "start_array"):
                        _skip_rest_of(events)
                    continue
                if event in ("start_map", "start_array"):
                    if len(stack) >= MAX_NOTEBOOK_DEPTH:
                        return None, f"it is nested over {MAX_NOTEBOOK_DEPTH} deep"
                    stack.append([event, "item" if event == "start_array" else None])
                elif event in ("end_map", "end_array"):
                    stack.pop()
                kept += len(value) if isinstance(value, str) else 8
                if kept > MAX_FILE_BYTES:
                    return None, f"its code and text, outputs left out, are over {size_in_words(MAX_FILE_BYTES)}"
                builder.event(event, value)
            text = json.dumps(builder.value, ensure_ascii=False)
        except (ijson.JSONError, ijson.IncompleteJSONError, UnicodeDecodeError, OSError, ValueError,
                RecursionError) as error:  # RecursionError: nested past what Python's json writes
            return None, f"it cannot be read as a notebook ({type(error).__name__}: {str(error)[:120]})"
        data = text.encode("utf-8", "surrogatepass")
        if len(data) > MAX_FILE_BYTES:  # counted in characters above: written back, one may take up to 6 bytes
            return None, f"its code and text, outputs left out, are over {size_in_words(MAX_FILE_BYTES)}"
        return data, None


def _skip_rest_of(events):
    """Read `events` past the end of the map or array whose start was the last one read (saved outputs, often
    millions of lines: the loop does no more than follow the depth)."""
    depth = 1
    for event, _ in events:
        if event == "start_map" or event == "start_array":
            depth += 1
        elif event == "end_map" or event == "end_array":
            depth -= 1
            if not depth:
                return


class _Capped:
    """A binary file read no further than `limit` bytes (the file may grow while it is read)."""

    def __init__(self, raw, limit):
        self.raw, self.left = raw, limit + 1

    def read(self, n=-1):
        chunk = self.raw.read(min(n if n >= 0 else self.left, self.left))
        self.left -= len(chunk)
        if self.left <= 0:
            raise OSError("the file grew past the cap while it was read")
        return chunk


def read_record(folder: str | Path, name: str,
                limit: int = MAX_RECORD_BYTES) -> tuple[str | None, str | None]:
    """(text, None) for a small UTF-8 text file the grader keeps beside a submission, (None, None) when
    there is none, or (None, why not) when what is there breaks a rule."""
    try:
        dir_fd = open_folder(folder)
    except OSError:
        return None, None
    try:
        try:
            mode = os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode
        except FileNotFoundError:
            return None, None
        if not stat.S_ISREG(mode):
            return None, f"{name} is {kind_of(mode)}, not a regular file"
        data, why = read_file(name, dir_fd, limit)
        if data is None:
            return None, f"{name}: {why}"
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            return None, f"{name} is not UTF-8 text"
        if has_control(text.strip()):
            return None, f"{name} holds control characters"
        return text, None
    finally:
        os.close(dir_fd)


def is_regular_file(folder: str | Path, name: str) -> bool:
    """True when `folder/name` is a regular file (not a link to one)."""
    try:
        return stat.S_ISREG(os.stat(os.path.join(folder, name), follow_symlinks=False).st_mode)
    except OSError:
        return False


def read_folder(path: str | Path, skip: Collection[str] = (), first: Collection[str] = ()) -> Folder:
    """A Folder with every regular file under `path` that keeps to the rules, and the rest refused.

    `skip` holds glob patterns of names that are passed over silently (caches, checkpoints);
    `first`, names read before anything else in the top folder (the notebook: the caps never
    leave it out to make room for something else).
    """
    found = Folder()
    room = MAX_TOTAL_BYTES
    # A value and the reason it is missing come in pairs (walk's folder and name, or why; read_file's data, or
    # why), which mypy cannot follow: these are not checked here.
    dir_fd: Any
    name: Any
    data: Any
    why: Any
    for relative, dir_fd, name, why in walk(path, skip, first):
        if why is None:
            data, why = read_file(name, dir_fd, min(MAX_FILE_BYTES, room))
            if data is None and name.endswith(".ipynb") and "over" in why and room >= MAX_FILE_BYTES:
                data, why = read_notebook_file(name, dir_fd)  # saved outputs are not graded: left out (fits room)
            if data is None and "over" in why and room < MAX_FILE_BYTES:
                why = f"the submission's files are over {size_in_words(MAX_TOTAL_BYTES)} in all"
        if why:
            found.refused.append((relative, why))
            continue
        room -= len(data)
        found.files.append((relative, data))
    found.files.sort()
    return found


def walk(path: str | Path, skip: Collection[str] = (), first: Collection[str] = (), max_entries: int = MAX_ENTRIES,
         max_depth: int = MAX_DEPTH) -> Iterator[tuple[str, int | None, str | None, str | None]]:
    """Walk the folder `path` without following links. Yields, in name order:
    (relative path, folder descriptor, name, None) for each regular file, to be opened with
    `open_regular` before the next step, and (relative path shown safely, None, None, why) for what
    is left out. Skipped names (glob patterns) are passed over silently; `first` names come first.
    """
    try:
        top = open_folder(path)
    except OSError as error:
        yield ".", None, None, f"the folder cannot be opened ({error.strerror})"
        return
    try:
        yield from _walk(top, "", 0, skip, first, [max_entries, max_entries], max_depth)
    finally:
        os.close(top)


def _walk(dir_fd, prefix, depth, skip, first, entries_left, max_depth):
    try:
        with os.scandir(dir_fd) as listing:
            entries = sorted(listing, key=lambda e: (e.name not in first, e.name))
    except OSError as error:
        yield shown(prefix or "."), None, None, f"the folder cannot be listed ({error.strerror})"
        return
    for entry in entries:
        name = entry.name
        relative = prefix + name
        if any(fnmatch(name, pattern) for pattern in skip):
            continue
        why = unusable_name(name)
        if why:
            yield shown(relative), None, None, why
            continue
        if entries_left[0] <= 0:
            yield shown(relative), None, None, (f"the folder holds over {entries_left[1]} files and folders; "
                                               "the rest were not read")
            return
        entries_left[0] -= 1
        try:
            mode = entry.stat(follow_symlinks=False).st_mode
        except OSError as error:
            yield relative, None, None, f"it cannot be read ({error.strerror})"
            continue
        if stat.S_ISDIR(mode):
            if depth == 0 and name in first:
                yield relative, None, None, "it is a folder, not a regular file"
                continue
            if depth + 1 > max_depth:
                yield relative, None, None, f"folders nested over {max_depth} deep"
                continue
            try:
                inner = os.open(name, _OPEN_FOLDER, dir_fd=dir_fd)
            except OSError as error:
                yield relative, None, None, ("it is a link (links are never followed)"
                                             if error.errno in (errno.ENOTDIR, errno.ELOOP)
                                             else f"it cannot be opened ({error.strerror})")
                continue
            try:
                yield from _walk(inner, relative + "/", depth + 1, skip, (), entries_left, max_depth)
            finally:
                os.close(inner)
        elif stat.S_ISREG(mode):
            yield relative, dir_fd, name, None
        else:
            yield relative, None, None, (f"it is {kind_of(mode)}, not a regular file"
                                         + (" (links are never followed)" if stat.S_ISLNK(mode) else ""))


def size_in_words(n: int) -> str:
    return f"{n // (1024 * 1024)} MB" if n >= 1024 * 1024 else f"{n} bytes"
