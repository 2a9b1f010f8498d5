"""The measuring tools' commands, listed with the engine's own: `python -m grader` (grader/__main__.py) and a
course's command line add them."""


def cmd_benchmark(args, made=None, docs=None, make_class=None):
    from grader_eval import benchmark  # here: it loads the engine's every stage, which --help does not need
    if args.kit_only:
        return benchmark.kit_only(args.course_dir, args.assignment, args.n, args.jobs, make_class=make_class,
                                  docs=docs or args.docs, cell_timeout=args.cell_timeout)
    if args.idle:
        return benchmark.idle_only(args.course_dir, args.assignment, args.n, args.jobs, made=made, docs=docs)
    return benchmark.main(args.course_dir, args.assignment, args.n, args.workdir, args.cell_timeout, args.jobs,
                          made=made, docs=docs or args.docs, dask_workers=args.dask_workers)


def benchmark_arguments(p):
    p.add_argument("assignment", nargs="?", help="the assignment to grade (default: the course's only one)")
    p.add_argument("-n", type=int, default=200, help="submissions in the batch (default 200)")
    p.add_argument("--workdir", default=None, help="where to build the course copies (default: a temporary folder)")
    p.add_argument("--cell-timeout", type=float, default=10.0, help="per-cell timeout for both graders (default 10)")
    p.add_argument("--jobs", type=int, default=None, help="the kit's workers (default: one per core)")
    p.add_argument("--idle", action="store_true",
                   help="only time a `grade` with nothing to do, after grading the batch once")
    p.add_argument("--kit-only", action="store_true",
                   help="only the kit, on a class of 100 and then of N: how it scales, and the memory each "
                        "process held")
    p.add_argument("--dask-workers", type=int, default=0, metavar="N",
                   help="also grade a copy on a Dask cluster of N worker processes started here with `dask "
                        "scheduler` and `dask worker` (needs the cluster extra; default: not)")
    p.add_argument("--docs", default=None, metavar="FOLDER",
                   help="write benchmark_<assignment>.json and .png there (default: only print)")


COMMANDS = [
    ("benchmark", cmd_benchmark, "time stock nbgrader autograde against the kit's grader, side by side",
     "benchmark ps1 -n 50", benchmark_arguments),
]
