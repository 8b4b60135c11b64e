"""Autograding for the course's nbgrader assignments: one module per assignment (a1_rnn, a2_lstm, a3_gru).

A notebook's visible test cell:      check("lstm_step_forward", globals())
Its hidden test block (instructors): grade("lstm_step_forward", globals(), seed=..., points=...)

with check and grade imported from the assignment's module. Both compare the student's function with course_pkg's
on the same inputs (see core.py) and name the common mistake whose outputs the student's outputs match.
"""

import importlib

ASSIGNMENTS = ("a1_rnn", "a2_lstm", "a3_gru")


def registry(assignment):
    """The Registry (checks and mistake library) of one assignment."""
    return importlib.import_module(f"{__name__}.{assignment}").REGISTRY
