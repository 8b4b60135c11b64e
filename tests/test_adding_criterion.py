"""The adding problem's one success criterion (course_pkg.tasks.ADDING_TOLERANCE): Hochreiter & Schmidhuber's
|error| < 0.04 on their target, carried over to the course's scaling of the task."""

import numpy as np

from course_pkg.tasks import ADDING_TOLERANCE, adding_solved


def test_tolerance_is_the_papers_carried_over_to_our_scaling():
    """Their target 0.5 + (X1 + X2) / 4 (X ~ U[-1, 1]) is ours, u1 + u2 with u = (X + 1) / 2, halved: an error e on
    theirs is 2e on ours, so a prediction within 0.04 on their scale is within ADDING_TOLERANCE on ours."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, size=(1000, 2))
    theirs = 0.5 + X.sum(axis=1) / 4
    ours = ((X + 1) / 2).sum(axis=1)
    np.testing.assert_allclose(ours, 2 * theirs, rtol=1e-12)
    error_theirs = rng.uniform(-0.1, 0.1, size=1000)
    np.testing.assert_array_equal(np.abs(error_theirs) < 0.04, adding_solved(ours + 2 * error_theirs, ours))
    assert ADDING_TOLERANCE == 2 * 0.04


def test_adding_solved_is_strict_and_elementwise():
    target = np.zeros(4)
    pred = np.array([0.0, 0.079, -0.079, 0.08])
    assert adding_solved(pred, target).tolist() == [True, True, True, False]
