"""Random inputs for the checks: shapes small enough to run in milliseconds, values away from saturation so that a
wrong activation or a missing term changes the outputs visibly."""

import dataclasses

import numpy as np

from .core import Case


def dims(rng, square=False):
    """B, T, D, H: B from 1 (a batch of one hides broadcasting bugs), T from 2 (one step hides bugs of the recurrence), D == H when square (x and h swapped is then
    not a shape error but a wrong value, which the checker can name)."""
    B = int(rng.integers(1, 5))
    T = int(rng.integers(2, 7))
    H = int(rng.integers(2, 6))
    D = H if square else int(rng.choice([d for d in range(1, 7) if d != H]))
    return B, T, D, H


def normal(rng, shape, dtype, scale=1.0):
    return (scale * rng.standard_normal(shape)).astype(dtype)


def params(rng, D, H, gates, dtype, bias_shape=None):
    """W (D, gH), U (H, gH), b: scaled so that pre-activations have unit-order spread, and a bias that is not zero."""
    W = normal(rng, (D, gates * H), dtype, 1.0 / np.sqrt(D))
    U = normal(rng, (H, gates * H), dtype, 1.0 / np.sqrt(H))
    b = normal(rng, bias_shape or (gates * H,), dtype, 0.5)
    return W, U, b


def label(dtype, **sizes):
    return f"{np.dtype(dtype).name}, " + " ".join(f"{k}={v}" for k, v in sizes.items())


def case(inputs, dtype, **sizes):
    return Case(inputs, label(dtype, **sizes), np.dtype(dtype))


@dataclasses.dataclass(eq=False)
class KerasLayerSpec:
    """A built Keras recurrent layer, described by plain data: its kind ('LSTM', 'GRU'), units H, input size D,
    dtype, weights in Keras' order (kernel, recurrent kernel, bias) and constructor options.

    get_weights() reads like a Keras layer's, so the reference and the mistakes run on the description itself, with
    no TensorFlow; build() makes the real layer a student's function receives (in the notebook's kernel, and in the
    grader's worker, which gets keras_description() and builds it there)."""

    kind: str
    units: int
    input_dim: int
    dtype: str
    weights: list
    options: dict = dataclasses.field(default_factory=dict)

    def get_weights(self):
        return [w.copy() for w in self.weights]

    def keras_description(self):
        return {"kind": self.kind, "units": self.units, "input_dim": self.input_dim, "dtype": self.dtype,
                "options": dict(self.options)}

    def build(self):
        """The keras layer (made once). course_pkg.keras_interop first: it sets TensorFlow's log level."""
        if getattr(self, "_layer", None) is None:
            from .. import keras_interop  # noqa: F401

            import keras

            layer = getattr(keras.layers, self.kind)(self.units, dtype=self.dtype, **self.options)
            layer.build((None, None, self.input_dim))
            layer.set_weights(self.get_weights())
            self._layer = layer
        return self._layer


def keras_layer_case(rng, kind, D, H, gates, dtype, bias_shape=None, **options):
    """A KerasLayerSpec with random weights (a bias that is not zero), as cases.params draws them."""
    weights = list(params(rng, D, H, gates, dtype, bias_shape))
    return KerasLayerSpec(kind, H, D, np.dtype(dtype).name, weights, options)


def real_layers(args):
    """args with every KerasLayerSpec replaced by its built Keras layer (for a student's function in-process)."""
    return [a.build() if isinstance(a, KerasLayerSpec) else a for a in args]
