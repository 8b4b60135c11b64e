"""Reference implementations for the course on recurrent neural networks.

Modules: rnn, lstm, gru (numpy forward and backward passes, one function per step and per sequence), activations,
init (Keras' default initialisers), gradcheck (central differences), keras_interop (weights to and from Keras
layers, and Keras cells computing the same equations).
"""

__version__ = "0.1.0"
