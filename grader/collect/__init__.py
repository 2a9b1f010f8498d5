"""Stage 1, collect: what instructors bring in. An LMS download or a folder of notebooks laid out as
submitted/<student>/<assignment>/ (intake, archives: hostile names, links, archives and timestamps refused or made
plain), and grades given by hand in a CSV (manual, which also writes out the CSV to fill in). Imports core and
course.
"""
__all__ = ["intake", "archives", "manual"]
