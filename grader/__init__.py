"""Course kit for "Building your Recurrent Neural Network — Step by Step".

Build the release, draw the figures, make the self-check data, and grade
submissions with nbgrader. `python -m grader --help` lists the commands.
"""
