"""How the engine is measured, outside it: stock nbgrader run as an instructor runs it (stock), the benchmark of
the kit against it (benchmark), the kit against stock cell by cell on courses others wrote (conformance), the
disguises that make copies for judging the copy report (disguises), and the command line's entries for them
(commands). Imports the engine; the engine never imports it.
"""
__all__ = ["stock", "benchmark", "conformance", "disguises", "commands"]
