"""Course kit for "Building your Recurrent Neural Network — Step by Step".

Build the release, draw the figures, make the self-check data, and grade
submissions with nbgrader. `python -m grader --help` lists the commands.
"""

import sys as _sys

# jsonschema (through nbformat) imports the optional `rfc3987_syntax` URI checker when it is installed,
# which builds 38 parsers at import: over a second on every command. The notebook schema has no URI
# fields to check, so the kit goes without it.
_sys.modules.setdefault("rfc3987_syntax", None)
