"""The checks of the course's nbgrader assignments: one module per assignment, each with its REGISTRY (the list of
assignments is assignments/manifest.toml, read by grader.manifest).

A notebook's test cell is `check("lstm_step_forward", globals())`: in the student's kernel it is a self-check on a
small fixed example, which compares the student's function with course_pkg's and names the common mistake whose
outputs the student's outputs match (see core.py). When the work is graded, the grader (the top-level package
`grader`, instructor software) scores the same cell itself, with the same checks on hidden cases, calling the
student's functions in a sandbox.
"""
