"""Benchmark: stock `nbgrader autograde` against the kit's grader, side by side, in one run.

`python -m grader benchmark <assignment> -n 200` builds a class of N submissions (the
master's solution, the release, half the answers, files cut short; a course can bring
its own class), copies it into three identical course directories,
grades one with stock nbgrader's command and the others with the kit, all with the
same per-cell timeout: once as it grades by default (each submission sandboxed, every
test re-judged outside it) and once with --unconfined, to measure what confinement
costs per submission. It prints the times, the ratio, and whether every per-test
score in the gradebooks is the same; with --docs, it writes
benchmark_<assignment>.json and .png there.
"""
import contextlib
import json
import multiprocessing
import shutil
import tempfile
import time
from pathlib import Path

from grader import cli
from grader.core import scratch
from grader.core.limits import Limits
from grader.core.model import INVALID
from grader.course import assignments, release, solutions
from grader.grade import batch, setup_cache
from grader.judge.grading import STAGES
from grader.run import memory
from grader_eval import stock


def build_batch(layout, n):
    """student id -> (kind, {notebook name: notebook or text}) for any assignment: the master's solutions, the
    release as handed out, half the answers, and a few notebooks cut short (which stock cannot grade)."""
    correct = {name: solutions.master_solutions(layout.master(name)) for name in layout.notebooks}
    half = {name: dict(list(answers.items())[: len(answers) // 2]) for name, answers in correct.items()}
    blank = {name: {} for name in layout.notebooks}
    broken = max(1, n // 50)
    cycle = ["correct", "blank", "correct", "half"]
    plan = ["broken"] * broken + [cycle[i % len(cycle)] for i in range(n - broken)]
    made = {}
    for i, kind in enumerate(plan):
        answers = {"correct": correct, "half": half, "blank": blank, "broken": blank}[kind]
        notebooks = {name: solutions.fill(answers[name], layout.release(name)) for name in layout.notebooks}
        if kind == "broken":  # the first notebook cut short, as by a failed upload
            first = layout.notebooks[0]
            notebooks[first] = json.dumps(notebooks[first].dict())[:5000]
        made[f"s{i:04d}_{kind}"] = (kind, notebooks)
    return made


def prepare(workdir, layout, made=None, n=200, dask=False):
    """(stock, kit, unconfined, dask, class): identical course directories, released, holding the same class of
    `layout`'s assignment (`made`, or build_batch's from the fresh release); the fourth only with `dask`."""
    stock_dir, kit_dir, loose_dir = Path(workdir) / "stock", Path(workdir) / "kit", Path(workdir) / "unconfined"
    dask_dir = Path(workdir) / "dask" if dask else None
    made = _class_course(stock_dir, layout, made, n)
    for copy in (kit_dir, loose_dir, dask_dir):
        if copy:
            shutil.copytree(stock_dir, copy)
    return stock_dir, kit_dir, loose_dir, dask_dir, made


def compare(stock_scores, kit_scores, kinds):
    """(identical, differences): per-test scores of every submission stock nbgrader could grade."""
    differences = []
    identical = 0
    for student, kind in sorted(kinds.items()):
        a, b = stock_scores.get(student), kit_scores.get(student)
        if kind == "broken":
            continue  # stock nbgrader cannot grade these; the kit reports them (see the summary)
        if a != b:
            differences.append((student, a, b))
        else:
            identical += 1
    return identical, differences


@contextlib.contextmanager
def dask_cluster(workers, folder):
    """A Dask cluster started as an instructor starts one, with Dask's own commands: `dask scheduler` and
    `workers` x `dask worker` (one process, one thread each), each in a session of its own (so that it can be
    killed alone), all stopped on leaving. Yields (the scheduler's address, [the workers' processes])."""
    import json
    import os
    import signal
    import subprocess
    import sys

    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    root = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=root)  # the workers import the kit, as `pip install -e .` gives them
    address_file = Path(folder) / "scheduler.json"
    started = [subprocess.Popen([dask, "scheduler", "--port", "0", "--no-dashboard", "--scheduler-file",
                                 str(address_file)], cwd=root, env=env, start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not address_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        address = json.loads(address_file.read_text())["address"]
        for _ in range(workers):
            started.append(subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                                             "--no-dashboard"], cwd=root, env=env, start_new_session=True,
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(workers, timeout=120)
        yield address, started[1:]
    finally:
        for process in started:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()


def who_ran():
    """Who ran the benchmark: root, or an ordinary user (whose sandboxes get no memory cgroup unless one is
    delegated to them), as the figures depend on it."""
    import os
    uid = os.geteuid()
    return "root" if uid == 0 else f"an ordinary user (uid {uid})"


def breakdown(timings):
    """Where the sandboxed run's time went: {"per submission, in a worker (ms)": {stage: ms}, "per submission,
    in the collecting process (ms)": {...}, "once per run (s)": {...}}, from grade_and_report's timings."""
    n = max(1, timings.get("submissions", 0))
    once = (batch.BATCH_STAGES[0], "pages", "copy report")
    return {"per submission, in a worker (ms)": {s: round(1000 * timings.get(s, 0.0) / n, 1) for s in STAGES},
            "per submission, in the collecting process (ms)": {s: round(1000 * timings.get(s, 0.0) / n, 1)
                                                               for s in batch.BATCH_STAGES if s not in once},
            "once per run (s)": {s: round(timings.get(s, 0.0), 2) for s in once}}


def breakdown_lines(stages):
    lines = ["Where the kit's time went (sandboxed run; the workers' stages run side by side):"]
    for heading, values in stages.items():
        lines.append(f"  {heading}, {sum(values.values()):.1f} in all:")
        lines += [f"    {stage:<42} {value:8.1f}" for stage, value in values.items()]
    return lines


def plot(measured, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.5, 3))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    labels = ["stock nbgrader autograde", f"kit, unconfined ({measured['jobs']} workers)",
              f"kit, sandboxed ({measured['jobs']} workers)"]
    values = [measured["stock_seconds"], measured["unconfined_seconds"], measured["kit_seconds"]]
    colors = ["#9aa5b1", "#9fb8d6", "#3b6ea5"]
    if "dask_seconds" in measured:
        labels.append(f"kit, sandboxed, Dask ({measured['dask_workers']} workers)")
        values.append(measured["dask_seconds"])
        colors.append("#5b8c5a")
    bars = ax.barh(labels, values, color=colors)
    ax.bar_label(bars, [f"{v:.1f} s" for v in values], padding=4)
    ax.set_xlim(0, max(values) * 1.2)
    ax.set_xlabel("seconds to grade the batch (lower is better)")
    run_by = "" if "run_by" not in measured else ", as root" if measured["run_by"] == "root" else ", as an ordinary user"
    ax.set_title(f"{measured['assignment']}: {measured['n']} mixed submissions, {measured['cores']} cores{run_by}\n"
                 f"sandboxed kit {measured['ratio']:.1f}x faster than stock; per-test scores "
                 + ("identical" if not measured["differences"] else "DIFFERENT"), fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})


@contextlib.contextmanager
def cold_setup(workdir):
    """A new, empty place for the set-ups that `grade` keeps between commands (grader.grade.setup_cache), for
    the time of the block: each run the benchmark times sets up as a first run does, whatever ran before it."""
    import os

    before = os.environ.get(setup_cache.ENVIRONMENT)
    os.environ[setup_cache.ENVIRONMENT] = tempfile.mkdtemp(prefix="setups-", dir=workdir)
    try:
        yield
    finally:
        if before is None:
            del os.environ[setup_cache.ENVIRONMENT]
        else:
            os.environ[setup_cache.ENVIRONMENT] = before


def idle_seconds(course_dir, repeats=5):
    """How long `grade` takes when there is nothing to grade, as an instructor runs it (a new process each
    time, imports included): the median of `repeats` runs."""
    import statistics
    import subprocess
    import sys

    times = []
    for _ in range(repeats):
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "grader", "--course-dir", str(course_dir), "grade"],
                       capture_output=True, check=False)
        times.append(time.monotonic() - started)
    return round(statistics.median(times), 2)


def idle_only(course_dir, assignment=None, n=200, jobs=None, made=None, docs=None):
    """`benchmark --idle`: grade n submissions once, then time a `grade` with nothing to do."""
    layout = assignments.find(course_dir, assignment)
    workdir = Path(tempfile.mkdtemp(prefix=scratch.prefix("benchmark")))
    try:
        _, kit_dir, _, made = prepare(workdir, layout, made, n)
        print(f"Grading {len(made)} submissions once ...", flush=True)
        cli.grade_and_report(kit_dir, layout.name, jobs=jobs)
        seconds = idle_seconds(kit_dir)
        print(f"\n`grade` with nothing to do, {len(made)} students graded: {seconds:.2f} s (median of 5 runs)")
        if docs:
            docs = Path(docs)
            docs.mkdir(exist_ok=True)
            path = docs / f"benchmark_{layout.name}_idle.json"
            path.write_text(json.dumps({"n": len(made), "idle_seconds": seconds}, indent=1) + "\n")
            print(f"wrote {path}")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def kit_only(course_dir, assignment=None, n=1000, jobs=None, make_class=None, docs=None, base=100,
             cell_timeout=10.0):
    """`benchmark --kit-only`: the kit alone (sandboxed) on a class of `base` and then of `n` submissions, for
    how it scales: seconds per submission, where the time went, the most memory each process held, and a
    second copy report on the large class with nothing changed. `make_class(n)` builds a class (build_batch's
    by default)."""
    import os

    layout = assignments.find(course_dir, assignment)
    workdir = Path(tempfile.mkdtemp(prefix=scratch.prefix("benchmark")))
    measured = {"assignment": layout.name, "cores": os.cpu_count(), "cell_timeout": cell_timeout,
                "run_by": who_ran(), "runs": []}
    try:
        for size in sorted({base, n}):
            folder = workdir / f"class{size}"
            print(f"Building {size} submissions of {layout.name} in {folder} ...", flush=True)
            # Built in a process of its own: the class's notebooks are not the grader's memory.
            builder = multiprocessing.get_context("fork").Process(target=_one_copy,
                                                                   args=(folder, layout, make_class, size))
            builder.start()
            builder.join()
            if builder.exitcode != 0:
                raise RuntimeError(f"building the class of {size} failed (exit code {builder.exitcode})")
            course = folder
            timings = {}
            memory.reset_peaks()  # this run's peaks, not the larger class's before it (nor a test runner's)
            started = time.monotonic()
            with cold_setup(workdir):
                cli.grade_and_report(course, layout.name, jobs=jobs, limits=Limits(cell_timeout=cell_timeout),
                                     timings=timings)
            seconds = time.monotonic() - started
            started = time.monotonic()
            cli.copy_report(assignments.Layout(course, layout.name))
            again = time.monotonic() - started
            peaks = timings["peaks"]
            run = {"n": timings["submissions"], "seconds": round(seconds, 1),
                   "seconds_per_submission": round(seconds / max(1, timings["submissions"]), 3),
                   "copy_report_again_seconds": round(again, 2), "workers": timings["workers"], "peaks_mb": peaks,
                   "largest_process_mb": max((v for k, v in peaks.items() if not k.startswith("sandbox")),
                                             default=0.0),
                   "stages": breakdown(timings)}
            measured["runs"].append(run)
            shutil.rmtree(folder, ignore_errors=True)
        print(f"\nrun by {measured['run_by']}; sandboxes: {measured['runs'][-1]['workers']}")
        for run in measured["runs"]:
            print(f"{run['n']:6d} submissions: {run['seconds']:7.1f} s, {run['seconds_per_submission']:.3f} s each; "
                  f"the largest process held {run['largest_process_mb']:.0f} MB; a second copy report with "
                  f"nothing changed: {run['copy_report_again_seconds']:.1f} s")
            for role, mb in sorted(run["peaks_mb"].items()):
                print(f"    {role:<50} {mb:8.1f} MB")
        if len(measured["runs"]) > 1:
            small, large = measured["runs"][0], measured["runs"][-1]
            measured["per_submission_ratio"] = round(large["seconds_per_submission"]
                                                     / small["seconds_per_submission"], 2)
            print(f"seconds per submission, {large['n']} against {small['n']}: "
                  f"{measured['per_submission_ratio']:.2f} times")
        print()
        for line in breakdown_lines(measured["runs"][-1]["stages"]):
            print(line)
        if docs:
            docs = Path(docs)
            docs.mkdir(exist_ok=True)
            path = docs / f"benchmark_{layout.name}_kit_only.json"
            path.write_text(json.dumps(measured, indent=1) + "\n")
            print(f"wrote {path}")
        return 0
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _one_copy(folder, layout, make_class, n):
    """One course directory holding a class of n submissions (`make_class(n)`, or build_batch's)."""
    _class_course(folder, layout, make_class(n) if make_class else None, n)


def _class_course(folder, layout, made, n):
    """A released course directory at `folder` holding a class of `layout`'s assignment (`made`, or build_batch's
    of n from the fresh release); returns the class."""
    folder.mkdir(parents=True)
    shutil.copy(layout.course_dir / "nbgrader_config.py", folder)
    # All of source/: the config may name files there (nbgrader quickstart's header notebook).
    shutil.copytree(layout.course_dir / "source", folder / "source", ignore=shutil.ignore_patterns("__pycache__"))
    release.generate(folder, layout.name)
    made = made or build_batch(assignments.Layout(folder, layout.name), n)
    for student, (_, notebooks) in made.items():
        for name, nb in notebooks.items():
            solutions.write(nb, folder, student, layout.name, name)
    return made


def main(course_dir, assignment=None, n=200, workdir=None, cell_timeout=10.0, jobs=None, made=None, docs=None,
         dask_workers=0, idle_repeats=5):
    """Grade one class with stock and with the kit, side by side; print the times and the ratio.

    `made` is the class (see build_batch); `docs`, a folder for benchmark.json and benchmark.png (the
    files are named after the assignment); `dask_workers`, also grade a copy on a Dask cluster of that many
    worker processes, started with Dask's own commands; `idle_repeats`, the `grade` runs with nothing to do
    whose median is reported."""
    import os

    layout = assignments.find(course_dir, assignment)
    owned = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix=scratch.prefix("benchmark")))
    try:
        print(f"Building {len(made) if made else n} submissions of {layout.name} in {workdir} ...", flush=True)
        stock_dir, kit_dir, loose_dir, dask_dir, made = prepare(workdir, layout, made, n, dask=dask_workers > 0)
        n = len(made)
        kinds = {s: k for s, (k, _) in made.items()}
        print(f"Stock: nbgrader autograde, per-cell timeout {cell_timeout:g} s ...", flush=True)
        started = time.monotonic()
        stock.autograde(stock_dir, layout.name, timeout=int(cell_timeout))
        stock_seconds = time.monotonic() - started
        print(f"  {stock_seconds:.1f} s", flush=True)

        print(f"Kit: python -m grader grade (sandboxed), per-cell timeout {cell_timeout:g} s ...", flush=True)
        started = time.monotonic()
        timings = {}
        with cold_setup(workdir):
            cli.grade_and_report(kit_dir, layout.name, jobs=jobs, limits=Limits(cell_timeout=cell_timeout),
                                 timings=timings)
        kit_seconds = time.monotonic() - started
        print(f"  {kit_seconds:.1f} s", flush=True)

        idle = idle_seconds(kit_dir, idle_repeats)
        print(f"  nothing left to grade: `grade` answers in {idle:.2f} s", flush=True)

        print(f"Kit: python -m grader grade --unconfined, per-cell timeout {cell_timeout:g} s ...", flush=True)
        started = time.monotonic()
        with cold_setup(workdir):
            cli.grade_and_report(loose_dir, layout.name, jobs=jobs, limits=Limits(cell_timeout=cell_timeout),
                                 confine=False)
        loose_seconds = time.monotonic() - started
        print(f"  {loose_seconds:.1f} s", flush=True)

        dask_seconds = None
        if dask_workers:
            print(f"Kit: python -m grader grade --scheduler (sandboxed, a Dask cluster of {dask_workers} worker "
                  "processes on this machine) ...", flush=True)
            with dask_cluster(dask_workers, workdir) as (address, _):
                started = time.monotonic()
                with cold_setup(workdir):
                    cli.grade_and_report(dask_dir, layout.name, limits=Limits(cell_timeout=cell_timeout),
                                         scheduler=address)
                dask_seconds = time.monotonic() - started
            print(f"  {dask_seconds:.1f} s", flush=True)

        stock_scores = stock.scores(stock_dir, layout.name)
        identical, differences = compare(stock_scores, stock.scores(kit_dir, layout.name), kinds)
        for copy in (loose_dir, dask_dir):
            differences += compare(stock_scores, stock.scores(copy, layout.name), kinds)[1] if copy else []
        results = batch.all_results(assignments.Layout(kit_dir, layout.name))
        invalid = sum(1 for s, k in kinds.items() if k == "broken" and results[s].status == INVALID)
        measured = {"assignment": layout.name, "n": n, "cores": os.cpu_count(), "jobs": jobs or os.cpu_count(),
                    "cell_timeout": cell_timeout, "run_by": who_ran(), "workers": timings.get("workers", ""),
                    "stock_seconds": round(stock_seconds, 1), "kit_seconds": round(kit_seconds, 1),
                    "unconfined_seconds": round(loose_seconds, 1), "idle_seconds": idle,
                    "confinement_ms_per_submission": round(1000 * (kit_seconds - loose_seconds) / n, 1),
                    "ratio": round(stock_seconds / kit_seconds, 1), "identical": identical,
                    "compared": identical + len(differences), "differences": len(differences),
                    "broken_reported_invalid": invalid, "broken": sum(k == "broken" for k in kinds.values()),
                    "endless": sum(k == "endless" for k in kinds.values()),
                    "stages": breakdown(timings)}
        if dask_seconds is not None:
            measured.update(dask_workers=dask_workers, dask_seconds=round(dask_seconds, 1),
                            dask_ratio=round(stock_seconds / dask_seconds, 1))
        print()
        print(f"stock nbgrader autograde: {stock_seconds:8.1f} s  ({stock_seconds / n:.3f} s per submission)")
        print(f"kit grader, sandboxed:    {kit_seconds:8.1f} s  ({kit_seconds / n:.3f} s per submission)")
        print(f"kit grader, unconfined:   {loose_seconds:8.1f} s  ({loose_seconds / n:.3f} s per submission)")
        if dask_seconds is not None:
            print(f"kit grader, Dask cluster: {dask_seconds:8.1f} s  ({dask_seconds / n:.3f} s per submission, "
                  f"{dask_workers} worker processes; {n / dask_seconds:.1f} submissions a second)")
        print(f"ratio (stock / sandboxed): {measured['ratio']:7.1f}x")
        print(f"run by {measured['run_by']}; sandboxes: {measured['workers']}")
        print(f"a `grade` with nothing to do: {idle:.2f} s")
        print(f"confinement costs {measured['confinement_ms_per_submission']:.1f} ms per "
              f"submission (wall clock, {measured['jobs']} workers asked)")
        print(f"per-test scores identical on {identical} of {measured['compared']} submissions stock could grade"
              + ("" if not differences else "; DIFFERENT:"))
        for student, a, b in differences[:20]:
            print(f"  {student}: stock {a} kit {b}")
        print(f"broken notebooks reported as invalid by the kit: {invalid} of {measured['broken']}")
        print()
        for line in breakdown_lines(measured["stages"]):
            print(line)
        if docs:
            docs = Path(docs)
            docs.mkdir(exist_ok=True)
            stem = docs / f"benchmark_{layout.name}"
            stem.with_suffix(".json").write_text(json.dumps(measured, indent=1) + "\n")
            plot(measured, stem.with_suffix(".png"))
            print(f"wrote {stem}.json and {stem}.png")
        return 0 if not differences else 1
    finally:
        if owned:
            shutil.rmtree(workdir, ignore_errors=True)
