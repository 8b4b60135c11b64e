"""nbgrader configuration for the course's assignments (run nbgrader from this folder).

Besides the course, it sets how autograding and feedback behave (see grader/nbgrader_ext.py for what
stock nbgrader does in each case): feedback without hidden test source, deleted test cells put back and graded,
duplicated cells that do not stop the class, kernels that crash or hang, and bounded outputs.
"""

import os

from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import (AssignLatePenalties, CheckCellMetadata, ClearOutput, GetGrades, IgnorePattern,
                                    OverwriteKernelspec, SaveAutoGrades)

from grader.nbgrader_ext import (GuardedExecute, HideHiddenTests, KeepLastDuplicate, LimitOutputSize,
                                             RestoreMissingCells)

c = get_config()  # noqa: F821 (provided by nbgrader when it loads this file)

c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
c.CourseDirectory.course_id = "rnn-course"

# Autograding: nbgrader's lists, with four of its preprocessors replaced by the course's versions.
c.Autograde.sanitize_preprocessors = [ClearOutput, KeepLastDuplicate, OverwriteKernelspec, RestoreMissingCells,
                                      CheckCellMetadata]
c.Autograde.autograde_preprocessors = [GuardedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutputSize,
                                       SaveAutoGrades, AssignLatePenalties, CheckCellMetadata]
c.OverwriteCells.add_missing_cells = True  # a deleted test cell is put back from the source and graded
c.Execute.timeout = 30  # seconds per cell (a stuck cell scores 0; the Keras cells import TensorFlow in ~5 s)
c.GuardedExecute.notebook_timeout = 300  # seconds per notebook; cells after that are not run (score 0)
c.GuardedExecute.max_restarts = 2  # new kernels after a crash, per notebook
c.LimitOutput.max_lines = 1000  # per cell, beginning and end kept (the hidden report is at the end)
c.LimitOutputSize.max_chars = 20_000  # per cell, beginning and end kept

# `nbgrader validate` prints a failing check's report cut at this width; the mistake's hint is on one long line.
c.Validator.width = 160

# Feedback: the hidden test source is removed; the hidden checks' printed report and the score stay.
c.GenerateFeedback.preprocessors = [GetGrades, HideHiddenTests, CSSHTMLHeaderPreprocessor]
