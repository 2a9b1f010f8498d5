"""Stage 3, judge: the pure grading unit, grade_submission(spec, submission) -> Result (grading), which
sanitises the notebook as nbgrader's autograde does, runs it (run) and judges every test cell again outside the
student's process on what the student's functions returned (verdict: record from the master, replay), with a
review of the code that names what cannot be trusted (review). Writes nothing but the trusted copies of the
assignment's helper files, in a scratch folder of its own. Imports core, course and run.
"""
__all__ = ["grading", "verdict", "review"]
