"""nbgrader configuration for the course's assignments (run nbgrader from this folder).

Besides the course, it sets how autograding and feedback behave (see grader/nbgrader_ext.py for what
stock nbgrader does in each case): the students' code runs in a sandbox and every test cell is scored by the grader
outside it (SandboxExecute), deleted test cells are put back and graded, duplicated cells do not stop the class,
crashing or endless code costs only its cell, and outputs are bounded.
"""

import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, GetGrades, IgnorePattern,
                                    OverwriteKernelspec, SaveAutoGrades)

from grader.nbgrader_ext import (HideHiddenTests, KeepLastDuplicate, LimitOutputSize, RestoreMissingCells,
                                 SandboxExecute)

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "rnn-course"

# Autograding: nbgrader's lists, with four of its preprocessors replaced by the course's versions.
c.Autograde.sanitize_preprocessors = [ClearOutput, KeepLastDuplicate, OverwriteKernelspec, RestoreMissingCells,
                                      CheckCellMetadata]
# (nbgrader checks the cells' metadata again after execution, in case the kernel changed it; the student's code runs
# in the sandbox and cannot reach the notebook, and that second check took a third of nbgrader's time per notebook)
c.Autograde.autograde_preprocessors = [SandboxExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutputSize,
                                       SaveAutoGrades, AssignLatePenalties]
c.OverwriteCells.add_missing_cells = True  # a deleted test cell is put back from the source and graded
c.SandboxExecute.cell_timeout = 10  # seconds per ordinary cell: a stuck cell scores 0 and holds a slot this long
# (nbgrader's own default is 30 s; the slowest cell of any solution notebook, a Keras comparison, takes 0.3 s here,
# TensorFlow being imported already: raise it for assignments whose cells train a model)
c.SandboxExecute.call_timeout = 10  # seconds per call of a student's function by a check
c.SandboxExecute.notebook_timeout = 300  # seconds per notebook; cells after that are not run (score 0)
c.SandboxExecute.max_restarts = 2  # new workers after a crash, per notebook
c.SandboxExecute.workers = 2  # sandbox slots when `nbgrader autograde` runs alone (make autograde brings its own)
# c.SandboxExecute.unsafe_no_sandbox = True  # NEVER for real submissions: students' code could read this folder
c.LimitOutput.max_lines = 1000  # per cell, beginning and end kept (the hidden report is at the end)
c.LimitOutputSize.max_chars = 20_000  # per cell, beginning and end kept

# `nbgrader validate` prints a failing check's report cut at this width; the mistake's hint is on one long line.
c.Validator.width = 160

# Feedback: the hidden test source is removed; the hidden checks' printed report and the score stay.
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
