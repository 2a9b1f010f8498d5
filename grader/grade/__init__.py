"""Stage 4, grade a class: read what changed, set up once (the master's recorded answers, the canaries), grade in
a local pool of workers or on a Dask cluster, and record each result once, in the gradebook and autograded/
(batch); an assignment's clean set-up kept between commands, keyed by everything it is made from
(setup_cache). Imports core, course, collect, run and judge.
"""
__all__ = ["batch", "setup_cache"]
