"""Intake takes what it can: hostile uploads in an LMS download, on real archives and files.

Each download mixes honest students with uploads that are not archives, archive bombs, archives
nested too deep or holding other students' folders, links, names that escape, and special files.
Everyone honest is collected; each bad upload is skipped with a note naming the student and the
file; memory stays flat while unpacking.
"""
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile

import pytest

from conftest import ROOT, make_course_copy, rnn
from grader.collect import archives, intake
import rnn_course
from rnn_course import samples

NOTEBOOK = f"{rnn_course.NOTEBOOK}.ipynb"


@pytest.fixture(scope="module")
def notebook():
    return json.dumps(samples.fill({}).dict())


@pytest.fixture()
def course_dir(tmp_path):
    return make_course_copy(tmp_path / "course")  # collect needs no release


def _zip(entries):
    """A zip's bytes from {name: bytes}."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buffer.getvalue()


def _nested(depth, inner):
    data = inner
    for level in range(depth):
        data = _zip({f"level{level}.zip" if level else NOTEBOOK: data})
    return data


def _unmatched_for(found, start):
    return [why for where, why in found.unmatched if where.startswith(start)]


def test_bad_uploads_are_skipped_with_a_note_and_everyone_else_is_collected(course_dir, tmp_path, notebook):
    download = tmp_path / "download.zip"
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w:gz") as t:
        for name, kind in [("ok/" + NOTEBOOK, tarfile.REGTYPE), ("escape", tarfile.SYMTYPE),
                           ("../../../outside.py", tarfile.REGTYPE), ("fifo", tarfile.FIFOTYPE),
                           (b"bad-\xff.txt".decode("utf-8", "surrogateescape"), tarfile.REGTYPE)]:
            info = tarfile.TarInfo(name)
            info.type = kind
            data = notebook.encode() if kind == tarfile.REGTYPE else b""
            info.size = len(data)
            if kind == tarfile.SYMTYPE:
                info.linkname = "/etc/passwd"
            t.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(download, "w") as z:
        z.writestr(f"alice_1001_5001_{NOTEBOOK}", notebook)
        z.writestr(f"bob_1002_5002_{NOTEBOOK}", notebook)
        z.writestr("carol_1003_5003_homework.zip", b"this is not a zip at all")
        z.writestr("dave_1004_5004_homework.tar.gz", b"\x1f\x8b\x08 neither is this")
        z.writestr("erin_1005_5005_bomb.zip", _zip({NOTEBOOK: notebook, "zeros.bin": bytes(80 * 1024 * 1024)}))
        z.writestr("frank_1006_5006_classmates.zip",
                   _zip({f"alice/{NOTEBOOK}": "{}", f"mallory/{NOTEBOOK}": notebook}))
        z.writestr("grace_1007_5007_deep.zip", _nested(5, notebook.encode()))
        z.writestr("heidi_1008_5008_folder.zip", _zip({f"heidi-hw/{NOTEBOOK}": notebook, "heidi-hw/data.csv": "1,2"}))
        z.writestr("ivan_1009_5009_tricks.tar.gz", tar.getvalue())
    found = intake.collect(download, rnn(course_dir))

    assert sorted(found.files) == ["alice", "bob", "erin", "heidi", "ivan"]
    submitted = course_dir / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["alice", "bob", "erin", "heidi", "ivan"]
    assert (submitted / "alice" / rnn_course.ASSIGNMENT / NOTEBOOK).read_text() == notebook, "a classmate's zip wrote it"
    assert "not one that can be read" in _unmatched_for(found, "carol_1003_5003_homework.zip")[0]
    assert "not one that can be read" in _unmatched_for(found, "dave_1004_5004_homework.tar.gz")[0]
    assert any("over 64 MB once unpacked" in why for why in _unmatched_for(found, "erin_1005_5005_bomb.zip"))
    assert not (submitted / "erin" / rnn_course.ASSIGNMENT / "zeros.bin").exists()
    assert (submitted / "erin" / rnn_course.ASSIGNMENT / NOTEBOOK).exists(), "the rest of erin's upload is kept"
    frank = _unmatched_for(found, "frank_1006_5006_classmates.zip/")
    assert len(frank) == 2 and all("is not a notebook of rnn_step_by_step" in why for why in frank), frank
    assert any("3 deep: not opened" in why for why in _unmatched_for(found, "grace_1007_5007_deep.zip"))
    assert (submitted / "heidi" / rnn_course.ASSIGNMENT / "data.csv").read_text() == "1,2", "a zipped folder is opened"
    tricks = dict((where.rsplit("/", 1)[-1], why) for where, why in found.unmatched if where.startswith("ivan"))
    assert "link or special file" in tricks["escape"] and "link or special file" in tricks["fifo"]
    assert "outside the archive" in tricks["outside.py"]
    assert "not valid UTF-8" in tricks["bad-\\xff.txt"]
    ivan = submitted / "ivan" / rnn_course.ASSIGNMENT
    assert sorted(p.name for p in ivan.rglob("*")) == [NOTEBOOK]
    assert not (tmp_path / "outside.py").exists() and not list(course_dir.rglob("outside.py"))
    text = intake.describe(found, rnn(course_dir))
    assert "carol_1003_5003_homework.zip" in text and "NOT COLLECTED" in text


def test_member_count_and_total_size_caps_skip_the_rest_with_a_note(course_dir, tmp_path, notebook):
    download = tmp_path / "download.zip"
    with zipfile.ZipFile(download, "w") as z:
        z.writestr(f"alice_1001_5001_{NOTEBOOK}", notebook)
        z.writestr("bob_1002_5002_many.zip", _zip({f"f{i}.txt": "x" for i in range(200)}))
    found = intake.collect(download, rnn(course_dir), caps=archives.Caps(members=50))
    assert sorted(found.files) == ["alice"]
    assert any("over what is left of the cap of 50" in why for why in _unmatched_for(found, "bob_1002_5002_many.zip"))

    folder = tmp_path / "folder"
    (folder / "carol").mkdir(parents=True)
    (folder / "carol" / NOTEBOOK).write_text(notebook)
    (folder / "carol" / "big.bin").write_bytes(bytes(3 * len(notebook)))
    found = intake.collect(folder, rnn(course_dir), caps=archives.Caps(total_bytes=2 * len(notebook)))
    assert any("reached its cap" in why for where, why in found.unmatched if where == "carol/big.bin")
    assert sorted(found.files) == ["carol"]


def test_a_folder_download_skips_links_and_special_files(course_dir, tmp_path, notebook):
    folder = tmp_path / "folder"
    (folder / "alice").mkdir(parents=True)
    (folder / "alice" / NOTEBOOK).write_text(notebook)
    (folder / "alice" / "master.py").symlink_to(ROOT / "source" / rnn_course.ASSIGNMENT / "rnn_checks.py")
    os.mkfifo(folder / "alice" / "pipe")
    (folder / "bob").symlink_to(folder / "alice")
    found = intake.collect(folder, rnn(course_dir))
    assert sorted(found.files) == ["alice"]
    assert sorted(p.name for p in (course_dir / "submitted" / "alice" / rnn_course.ASSIGNMENT).iterdir()) == [NOTEBOOK]
    notes = dict(found.unmatched)
    assert "link" in notes["alice/master.py"] and "named pipe" in notes["alice/pipe"] and "link" in notes["bob"]


def test_an_archive_bomb_is_unpacked_in_flat_memory(course_dir, tmp_path, notebook):
    """Under 2 MB that would expand to 1.2 GB: collected in a separate process whose peak memory the kernel
    measures, against the same collect of a download without the bombs. Members stream to disk in
    chunks, and stop at the cap."""
    plain, bombs = tmp_path / "plain.zip", tmp_path / "bomb.zip"
    zeros = _zip({"zeros.bin": bytes(300 * 1024 * 1024)})
    for download, bombed in ((plain, False), (bombs, True)):
        with zipfile.ZipFile(download, "w") as z:
            z.writestr(f"alice_1001_5001_{NOTEBOOK}", notebook)
            for i in range(4 if bombed else 0):
                z.writestr(f"mallory_1002_500{i}_bomb{i}.zip", zeros)
    assert bombs.stat().st_size < 2 * 1024 * 1024
    script = ("import resource, sys; from grader.collect import intake; from grader.course import assignments; "
              "found = intake.collect(sys.argv[1], assignments.find(sys.argv[2])); "
              "print(sorted(found.files)); print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    peaks = {}
    for download in (plain, bombs):
        done = subprocess.run([sys.executable, "-c", script, str(download), str(course_dir)], cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        collected, peak_kb = done.stdout.split("\n")[:2]
        assert collected == "['alice']"
        peaks[download.name] = int(peak_kb) // 1024
    assert peaks["bomb.zip"] < peaks["plain.zip"] + 64, peaks
    assert not list((course_dir / "submitted").rglob("zeros.bin"))
