"""Stage 5, report: what people read, made from the gradebook: grades CSVs, the Canvas import file, the class
report and each student's feedback pages (publish, reports, pages, charts, templates/). Imports core, course,
judge and grade (the results it reads); never collect, run or similarity.
"""
__all__ = ["publish", "pages", "reports", "charts"]
