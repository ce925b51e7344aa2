"""Evaluation studies (issue #5): `python -m inference eval style-match | models | dreambooth`.

Each study writes REPORT_DIR/<study>/{report.md, results.json, *.png}; results.json holds every number,
unit by unit, so an interrupted run resumes and the report is always rebuilt from the JSON alone.
"""
