"""The course directory as nbgrader lays it out, read from the instructor's own files: its nbgrader_config.py and
nbgrader's API for it (coursedir), where an assignment's files are (assignments), its release (release), the
master's answers (solutions) and the gradebook, which every read and write of grades goes through (gradebook).
Imports core only.
"""
__all__ = ["coursedir", "assignments", "release", "solutions", "gradebook"]
