"""The course's grader: instructor software, which no student notebook imports.

It scores the assignments' test cells in its own process, never running a student's code there: the student's cells
run in a bubblewrap sandbox (sandbox.py, worker/), the test cells are scored by calling the student's functions in
it and comparing what comes back with course_pkg (engine.py, scoring.py), on hidden cases drawn from a per-course
secret (secret.py). nbgrader drives it through SandboxExecute (nbgrader_ext.py); `make autograde` grades a class
(classroom.py) and flags copied code for the instructor (similarity.py). What students import is course_pkg, with
the checks' self-checks in course_pkg.checks.
"""
