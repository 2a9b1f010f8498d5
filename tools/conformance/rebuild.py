"""Rebuild the conformance corpus: real nbgrader assignments from public courses, laid out as courses.

The notebooks belong to their authors, so they are not in this repository: manifest.json
names each one (repository, commit, folder, notebooks, the files beside them) and this
script copies them out of downloaded copies of those repositories into FOLDER, one course
per repository: FOLDER/<course>/source/<assignment>/..., with an nbgrader_config.py.

    python tools/conformance/rebuild.py FOLDER                    # downloads each commit from GitHub
    python tools/conformance/rebuild.py FOLDER --mirrors DIR      # or reads git mirrors (DIR/<owner>+<name>/repo)

Then: `python -m grader_eval.conformance FOLDER --nbgrader` (or `make conformance CORPUS=FOLDER`).
"""
import argparse
import io
import json
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path, PurePosixPath

MANIFEST = Path(__file__).with_name("manifest.json")


def read_from_mirror(mirror, commit, path):
    """The bytes of `path` at `commit` in the bare git repository `mirror`."""
    return subprocess.run(["git", f"--git-dir={mirror}", "show", f"{commit}:{path}"], capture_output=True,
                          check=True).stdout


def read_from_github(repo, commit):
    """A reader of files at `commit` of GitHub's `repo`, from one downloaded tarball."""
    url = f"https://codeload.github.com/{repo}/tar.gz/{commit}"
    with urllib.request.urlopen(url, timeout=120) as response:
        archive = tarfile.open(fileobj=io.BytesIO(response.read()), mode="r:gz")
    members = {PurePosixPath(*PurePosixPath(m.name).parts[1:]).as_posix(): m for m in archive.getmembers()
               if m.isfile()}
    return lambda path: archive.extractfile(members[path]).read()


def inside(base, relative):
    """`base`/`relative` resolved, refused when it leaves base (a manifest is data, never a way out)."""
    target = (base / relative).resolve()
    if not target.is_relative_to(base.resolve()):
        raise ValueError(f"{relative} leaves {base}")
    return target


def rebuild(folder, mirrors=None, entries=None):
    """Write every assignment of the manifest into `folder`; return the course folders written."""
    folder = Path(folder)
    entries = entries if entries is not None else json.loads(MANIFEST.read_text())
    readers, courses = {}, set()
    for entry in entries:
        repo, commit = entry["repo"], entry["commit"]
        if repo not in readers:
            if mirrors:
                mirror = Path(mirrors) / repo.replace("/", "+") / "repo"
                mirror = mirror / ".git" if (mirror / ".git").is_dir() else mirror  # a clone rather than a bare one
                readers[repo] = lambda path, mirror=mirror, commit=commit: read_from_mirror(mirror, commit, path)
            else:
                readers[repo] = read_from_github(repo, commit)
        course = folder / entry["course"]
        assignment = course / "source" / entry["assignment"]
        assignment.mkdir(parents=True, exist_ok=True)
        for name in entry["notebooks"] + entry["files"]:
            # Files above the assignment folder (../../data) land where the course's notebooks look for them.
            target = inside(course, PurePosixPath("source", entry["assignment"], name))
            target.parent.mkdir(parents=True, exist_ok=True)
            source = (PurePosixPath(entry["path"]) / name).as_posix()
            target.write_bytes(readers[repo](_normal(source)))
        if "autotest" in entry["features"] and not (course / "autotests.yml").exists():
            _default_autotests(course)
        config = course / "nbgrader_config.py"
        if not config.exists():
            config.write_text(f"c = get_config()\nc.CourseDirectory.course_id = {entry['course']!r}\n")
        courses.add(course)
        print(f"{entry['course']}/{entry['assignment']}: {len(entry['notebooks'])} notebook(s), "
              f"{len(entry['files'])} file(s) from {repo}@{commit[:10]}", file=sys.stderr)
    return sorted(courses)


def _normal(path):
    """`a/b/../../c` as git names it: `c`."""
    parts = []
    for part in PurePosixPath(path).parts:
        if part == "..":
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def _default_autotests(course):
    """The course's autotests.yml is not in its repository: nbgrader's user guide's stands in."""
    import nbgrader
    shipped = Path(nbgrader.__file__).parent / "docs" / "source" / "user_guide" / "autotests.yml"
    (course / "autotests.yml").write_bytes(shipped.read_bytes())


def build_parser():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="where to write the courses")
    parser.add_argument("--mirrors", help="a folder of git mirrors (<owner>+<name>/repo) instead of downloading")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    courses = rebuild(args.folder, args.mirrors)
    print(f"{len(courses)} courses written to {args.folder}")


if __name__ == "__main__":
    main()
