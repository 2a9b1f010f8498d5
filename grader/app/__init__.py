"""Use cases that span the stages and answer the command line: taking students out of a course (removal).
Imports every stage; only the command line and nbgrader's hook import it.
"""
__all__ = ["removal"]
