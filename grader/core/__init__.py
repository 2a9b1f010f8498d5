"""The engine's shared ground, imported by every stage and importing nothing else of the engine: its errors, the
limits of one notebook, the data a grade is made of (model: tasks, submissions, results, statuses), reading a
notebook and nbgrader's cell metadata, hidden-test blocks, text made safe for each place it is shown, the wire
format of the sandbox's messages, rules for files a student hands in, scratch folders, stable digests, files
written in one step, Ctrl-C held back while processes start or stop, and the protocol through which long work
tells its progress.
"""
__all__ = ["errors", "interrupts", "limits", "model", "notebook", "hidden", "plain_text", "wire", "student_files",
           "scratch", "digest", "files", "progress"]
