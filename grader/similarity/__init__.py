"""Beside the stages, for the instructor alone: the copy report. Fingerprints of each student's code
(fingerprints), every pair compared by code and by what their functions return (copies), and the report's
page and CSV (copy_report). Changes no score. Imports core, course, judge, grade (the results it reads) and
report (its page's template); never collect or run.
"""
__all__ = ["copies", "fingerprints", "copy_report"]
