"""Small helpers the book's chapters share.

`glue` is myst-nb's glue when the book is being built (the prose then quotes the value computed in the cell); in a
plain Jupyter, Colab or Binder session without myst-nb it simply shows the value, so every chapter runs anywhere.
"""

import numpy as np

try:
    from myst_nb import glue as _myst_glue
except ImportError:  # Colab, Binder, a bare Jupyter
    _myst_glue = None


def glue(name, value, display=True):
    """Record `value` under `name` for the text ({glue:text}`name`), or show it where myst-nb is absent.

    numpy scalars become Python numbers first: {glue:text}`name:.3f` formats the value's text form, which for
    np.float64(0.5) would be "np.float64(0.5)".
    """
    if isinstance(value, np.generic):
        value = value.item()
    if _myst_glue is not None:
        return _myst_glue(name, value, display=display)
    if display:
        from IPython.display import display as show

        show(value)
    return None
