"""Use cases that span the stages and answer the command line: grading an assignment, then publishing it and
writing its copy report (workflows), and taking students out of a course (removal). They return what happened and
print nothing; the command line says it. Imports every stage; only the command line imports it (cli.py, and
terminal.py for its types).
"""
__all__ = ["workflows", "removal"]
