"""course_pkg and Keras side by side: weights in both directions, and Keras cells computing course_pkg's equations.

    W, U, b = get_params(keras_layer)            # run course_pkg's numpy code with Keras' weights
    set_params(keras_layer, W, U, b)             # or put course_pkg's weights into a Keras layer
    keras.layers.RNN(LSTMCell(8))                # the same model as keras.layers.LSTM(8), written like lstm.py

The layouts need no reshuffling: W, U, b are exactly Keras' kernel, recurrent_kernel and bias (gate order i, f, g, o
for the LSTM; z, r, h for the GRU; a GRU bias of shape (2, 3H) with reset_after=True and (3H,) with
reset_after=False). This module imports Keras; `import course_pkg` does not.
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow prints its oneDNN notice on stderr before it reads the log level; without oneDNN's reordered
# arithmetic, results are also reproducible bit for bit from run to run.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import ops  # noqa: E402

from . import _checks  # noqa: E402

__all__ = ["get_params", "set_params", "RNNCell", "LSTMCell", "GRUCell"]


# ----------------------------------------------------------------------------------------------------------------
# Keras cells


class _Cell(keras.layers.Layer):
    """What the three cells share: Keras' weight names, shapes and default initialisers."""

    gates = 1  # blocks side by side in W, U and b

    def __init__(self, units, **kwargs):
        super().__init__(**kwargs)
        if isinstance(units, bool) or not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"{type(self).__name__}: argument 'units' must be a positive integer; got {units!r}")
        self.units = int(units)
        self.state_size = self.units
        self.output_size = self.units
        # Created here, as in Keras' own cells: each draws its seed now, so keras.utils.set_random_seed(s) before
        # constructing the cell fixes its initial weights.
        self.kernel_initializer = keras.initializers.GlorotUniform()
        self.recurrent_initializer = keras.initializers.Orthogonal()

    def _bias_shape(self):
        return (self.gates * self.units,)

    def _bias_initializer(self, shape, dtype=None):
        return ops.zeros(shape, dtype=dtype)

    def build(self, input_shape):
        D, G = input_shape[-1], self.gates * self.units
        self.kernel = self.add_weight(shape=(D, G), initializer=self.kernel_initializer, name="kernel")
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, G), initializer=self.recurrent_initializer, name="recurrent_kernel"
        )
        self.bias = self.add_weight(shape=self._bias_shape(), initializer=self._bias_initializer, name="bias")

    def get_config(self):
        return {**super().get_config(), "units": self.units}


@keras.saving.register_keras_serializable(package="course_pkg")
class RNNCell(_Cell):
    """h_t = tanh(x_t W + h_{t-1} U + b), as course_pkg.rnn.rnn_step_forward; use inside keras.layers.RNN."""

    def call(self, inputs, states, training=False):
        x_t, h_prev = inputs, states[0]  # keras.layers.RNN always passes the states as a list
        W, U, b = self.kernel, self.recurrent_kernel, self.bias
        h_t = ops.tanh(ops.matmul(x_t, W) + ops.matmul(h_prev, U) + b)
        return h_t, [h_t]


@keras.saving.register_keras_serializable(package="course_pkg")
class LSTMCell(_Cell):
    """The LSTM step of course_pkg.lstm.lstm_step_forward; states [h, c], the order keras.layers.LSTM uses."""

    gates = 4

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = bool(unit_forget_bias)
        self.state_size = [self.units, self.units]

    def _bias_initializer(self, shape, dtype=None):
        H = self.units
        b_f = ops.ones((H,), dtype=dtype) if self.unit_forget_bias else ops.zeros((H,), dtype=dtype)
        return ops.concatenate([ops.zeros((H,), dtype=dtype), b_f, ops.zeros((2 * H,), dtype=dtype)])

    def call(self, inputs, states, training=False):
        x_t, (h_prev, c_prev) = inputs, states
        W, U, b = self.kernel, self.recurrent_kernel, self.bias
        a = ops.matmul(x_t, W) + ops.matmul(h_prev, U) + b
        a_i, a_f, a_g, a_o = ops.split(a, 4, axis=-1)
        i = ops.sigmoid(a_i)
        f = ops.sigmoid(a_f)
        g = ops.tanh(a_g)
        o = ops.sigmoid(a_o)
        c_t = f * c_prev + i * g
        h_t = o * ops.tanh(c_t)
        return h_t, [h_t, c_t]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}


@keras.saving.register_keras_serializable(package="course_pkg")
class GRUCell(_Cell):
    """The GRU step of course_pkg.gru.gru_step_forward, in either convention (see gru.py's docstring)."""

    gates = 3

    def __init__(self, units, reset_after=True, **kwargs):
        super().__init__(units, **kwargs)
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def call(self, inputs, states, training=False):
        x_t, h_prev = inputs, states[0]
        W, U, b = self.kernel, self.recurrent_kernel, self.bias
        H = self.units
        if self.reset_after:
            xw = ops.matmul(x_t, W) + b[0]
            hu = ops.matmul(h_prev, U) + b[1]
            xw_z, xw_r, xw_h = ops.split(xw, 3, axis=-1)
            hu_z, hu_r, hu_h = ops.split(hu, 3, axis=-1)
            z = ops.sigmoid(xw_z + hu_z)
            r = ops.sigmoid(xw_r + hu_r)
            h_tilde = ops.tanh(xw_h + r * hu_h)
        else:
            xw = ops.matmul(x_t, W) + b
            xw_z, xw_r, xw_h = ops.split(xw, 3, axis=-1)
            hu_z, hu_r = ops.split(ops.matmul(h_prev, U[:, : 2 * H]), 2, axis=-1)
            z = ops.sigmoid(xw_z + hu_z)
            r = ops.sigmoid(xw_r + hu_r)
            h_tilde = ops.tanh(xw_h + ops.matmul(r * h_prev, U[:, 2 * H :]))
        h_t = z * h_prev + (1 - z) * h_tilde
        return h_t, [h_t]

    def get_config(self):
        return {**super().get_config(), "reset_after": self.reset_after}


# ----------------------------------------------------------------------------------------------------------------
# Weights to and from Keras layers

_KINDS = (
    ("rnn", (keras.layers.SimpleRNNCell, RNNCell), 1),
    ("lstm", (keras.layers.LSTMCell, LSTMCell), 4),
    ("gru", (keras.layers.GRUCell, GRUCell), 3),
)

# course_pkg implements only these squashing functions; Keras' string names and keras.ops' functions are both fine.
_ALLOWED_ACTIVATIONS = {
    "activation": (keras.activations.tanh, ops.tanh),
    "recurrent_activation": (keras.activations.sigmoid, ops.sigmoid),
}

_SUPPORTED = (
    "keras.layers.SimpleRNN, LSTM or GRU, keras.layers.RNN around a SimpleRNNCell, LSTMCell or GRUCell, "
    "one of those cells, or a course_pkg.keras_interop cell"
)


def _cell(fn, layer):
    """The cell holding the weights, its kind ('rnn', 'lstm', 'gru') and its number of gates; checks all we need."""
    if isinstance(layer, keras.layers.Bidirectional):
        raise TypeError(
            f"{fn}: a Bidirectional layer holds two sets of weights; pass layer.forward_layer or "
            "layer.backward_layer"
        )
    cell = layer.cell if isinstance(layer, keras.layers.RNN) else layer
    for kind, classes, gates in _KINDS:
        if isinstance(cell, classes):
            break
    else:
        got = type(layer).__name__ + (f" around a {type(cell).__name__}" if cell is not layer else "")
        raise TypeError(f"{fn}: expected {_SUPPORTED}; got {got}")
    if not layer.built or not cell.built:
        raise ValueError(
            f"{fn}: the {type(layer).__name__} layer has no weights yet; call the layer on an input or build it "
            "first, e.g. layer.build((None, None, D)) for a layer, cell.build((None, D)) for a cell"
        )
    for attr, allowed in _ALLOWED_ACTIVATIONS.items():
        act = getattr(cell, attr, None)
        if act is not None and not any(act is a for a in allowed):
            raise ValueError(
                f"{fn}: this {type(layer).__name__} uses {attr}={getattr(act, '__name__', act)!r}; course_pkg "
                "implements only the defaults activation='tanh', recurrent_activation='sigmoid', so its "
                "equations would describe a different model"
            )
    return cell, kind, gates


def _numpy(variable):
    return np.array(variable.numpy())  # a copy; np.array(variable) itself warns under numpy 2 (Keras 3.15)


def _bias_layout(cell, kind, gates):
    """The bias shape course_pkg uses for this cell, and the same shape spelled in symbols."""
    H = cell.units
    g = "" if gates == 1 else str(gates)
    if kind == "gru" and cell.reset_after:
        return (2, 3 * H), f"(2, 3H) with H={H} (reset_after=True: row 0 input side, row 1 recurrent side)"
    if kind == "gru":
        return (3 * H,), f"(3H,) with H={H} (reset_after=False)"
    return (gates * H,), f"({g}H,) with H={H}"


def get_params(layer):
    """(W, U, b) as numpy arrays (copies) from a built Keras recurrent layer or cell.

    W is the kernel (D, gH), U the recurrent kernel (H, gH), b the bias, with g = 1, 4, 3 for the simple RNN, LSTM
    and GRU. A layer built with use_bias=False gets a b of zeros of the usual shape, which is the same model, so that
    course_pkg's functions (which always take a b) can run it.

    Raises TypeError for a layer that is not one of these, ValueError for one that is not built yet or that uses an
    activation other than tanh / a recurrent activation other than sigmoid. Dropout settings are not checked:
    they act only in training, and course_pkg's forward functions describe inference.
    """
    cell, kind, gates = _cell("get_params", layer)
    W, U = _numpy(cell.kernel), _numpy(cell.recurrent_kernel)
    if cell.bias is None:
        return W, U, np.zeros(_bias_layout(cell, kind, gates)[0], dtype=W.dtype)
    return W, U, _numpy(cell.bias)


def set_params(layer, W, U, b):
    """Write course_pkg parameters into a built Keras recurrent layer or cell, and return the layer.

    The shapes must be the layer's own: W (D, gH), U (H, gH), and b as get_params returns it (for a GRU, (2, 3H)
    if the layer has reset_after=True and (3H,) if not: the two are different models, so one cannot stand in for
    the other). A layer with use_bias=False accepts only a b of zeros. Raises as get_params does, and ValueError
    (naming the argument, the expected and the received shape) for a wrong shape.
    """
    fn = "set_params"
    cell, kind, gates = _cell(fn, layer)
    D, H = cell.kernel.shape[0], cell.units
    g = "" if gates == 1 else str(gates)
    W = _checks.as_float_array(fn, "W", W)
    U = _checks.as_float_array(fn, "U", U)
    b = _checks.as_float_array(fn, "b", b)
    _checks.check_shape(fn, "W", W, (D, gates * H), f"(D, {g}H) with D={D}, H={H}")
    _checks.check_shape(fn, "U", U, (H, gates * H), f"(H, {g}H) with H={H}")
    b_shape, b_meaning = _bias_layout(cell, kind, gates)
    if kind == "gru" and b.shape != b_shape and b.shape in ((2, 3 * H), (3 * H,)):
        theirs = len(b.shape) == 2
        raise ValueError(
            f"{fn}: reset_after mismatch: this GRU has reset_after={cell.reset_after}, so argument 'b' must have "
            f"shape {b_meaning} = {b_shape}; got {b.shape}, the layout of reset_after={theirs}. The two "
            f"conventions are different models: build the layer with reset_after={theirs} to use these parameters"
        )
    _checks.check_shape(fn, "b", b, b_shape, b_meaning)
    if cell.bias is None:
        if np.any(b != 0):
            raise ValueError(
                f"{fn}: this {type(layer).__name__} was built with use_bias=False and cannot hold a non-zero 'b'; "
                "build it with use_bias=True"
            )
    else:
        cell.bias.assign(b.astype(cell.bias.dtype))
    cell.kernel.assign(W.astype(cell.kernel.dtype))
    cell.recurrent_kernel.assign(U.astype(cell.recurrent_kernel.dtype))
    return layer
