"""The wire format between the trusted grader and a sandboxed worker: plain data only, never pickle.

A message is a JSON header (a dict) and a list of binary blobs, each the raw bytes of one array (C order), framed as

    [u32 header length][header][u32 blob count][u64 blob length]*[blob]*

so that a message is read in four reads, whatever its number of arrays.

Values inside a header are JSON, with these tagged forms:
    {"$a": k, "d": "<f8", "s": [2, 3]}
                          blob k, an array of that dtype and shape. Only the dtypes of DTYPES can be named (bool,
                          integers, floats, little-endian), so what is read back is always a plain, writable ndarray
                          that owns its memory: object arrays, structured dtypes and subclasses cannot cross, and
                          nothing is unpickled or evaluated (numpy's .npy header would be parsed with
                          ast.literal_eval; it is also some ten times slower for the small arrays of a check)
    {"$t": [...]}         a tuple
    {"$d": [[key, value], ...]}   a dict with str keys
    {"$h": id, "type": name}      an object that stays in the worker (a student's cache of a custom class):
                                  the trusted side can only hand it back
    {"$f": id}            a function of the trusted side the worker may call back during the current call
    {"$k": {...}}         a Keras layer to build in the worker (kind, units, input_dim, dtype, options, weights)
    {"$s": name}          a float that JSON cannot hold: "nan", "inf", "-inf"

This module runs on both sides and is the only grader code the sandbox sees besides the harness. The reader enforces
size limits and never executes anything it reads.
"""

from __future__ import annotations

import json
import math
import socket
import struct

import numpy as np

MAX_HEADER = 4 << 20  # bytes of JSON in one message
MAX_BLOB = 256 << 20  # bytes of one array
MAX_TOTAL = 512 << 20  # bytes of one message
MAX_BLOBS = 10_000
MAX_DEPTH = 64
ARRAY_KINDS = "biuf"  # bool, signed and unsigned integers, floats: what a graded function may return
DTYPES = {np.dtype(t).str: np.dtype(t) for t in
          ("bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
           "float16", "float32", "float64")}  # by their .str ("|b1", "<f8", ...): the only names a tag may use
MAX_DIMS = 32


class ProtocolError(Exception):
    """A message that breaks the format or a limit; the peer is not to be trusted further."""


class Handle:
    """An object left in the worker (trusted side): it can be passed back, never looked into."""

    def __init__(self, ident, type_name):
        self.ident, self.type_name = int(ident), str(type_name)[:100]

    def __repr__(self):
        return f"<{self.type_name} object in the student's code>"


class Callback:
    """A trusted function the worker may call back (worker side: a stub that sends the call)."""

    def __init__(self, ident):
        self.ident = int(ident)


# ---------------------------------------------------------------------------------------------------------------
# Encoding


def _array_tag(a, blobs):
    if a.dtype.str not in DTYPES:  # a big-endian array: sent in the machine's order
        a = a.astype(a.dtype.newbyteorder("="))
    blobs.append(a.tobytes())  # (C order, whatever the array's layout)
    return {"$a": len(blobs) - 1, "d": a.dtype.str, "s": list(a.shape)}


def encode(value, blobs, handle=None, callback=None, depth=0):
    """value -> JSON-able tree; arrays appended to blobs. handle(obj) -> id for objects that cannot cross (None:
    refuse them); callback(fn) -> id for trusted functions (None: refuse them)."""
    if depth > MAX_DEPTH:
        raise ProtocolError("value nested too deeply")
    if value is None or isinstance(value, (bool, str)) or type(value) is int:
        return value
    if type(value) is float:
        return value if math.isfinite(value) else {"$s": repr(value)}
    if type(value) is np.ndarray and value.dtype.kind in ARRAY_KINDS:
        return _array_tag(value, blobs)
    if (isinstance(value, np.generic) and type(value).__module__ == "numpy"
            and np.dtype(type(value)).kind in ARRAY_KINDS):
        return _array_tag(np.asarray(value), blobs)
    if type(value) is tuple:
        return {"$t": [encode(v, blobs, handle, callback, depth + 1) for v in value]}
    if type(value) is list:
        return [encode(v, blobs, handle, callback, depth + 1) for v in value]
    if type(value) is dict and all(type(k) is str for k in value):
        return {"$d": [[k, encode(v, blobs, handle, callback, depth + 1)] for k, v in value.items()]}
    if isinstance(value, Handle):
        return {"$h": value.ident, "type": value.type_name}
    if hasattr(value, "keras_description") and hasattr(value, "get_weights"):  # course_pkg.checks.cases
        return {"$k": {**value.keras_description(),
                       "weights": [encode(w, blobs, depth=depth + 1) for w in value.get_weights()]}}
    if callback is not None and callable(value) and not isinstance(value, type):
        return {"$f": callback(value)}
    if handle is not None:
        return {"$h": handle(value), "type": type(value).__name__}
    raise ProtocolError(f"cannot send a {type(value).__name__}")


def decode(tree, blobs, handle=None, callback=None, keras=None, depth=0):
    """The inverse of encode. handle(id) / callback(id) / keras(description) make the local objects for tagged
    forms; where one is None that form is refused."""
    if depth > MAX_DEPTH:
        raise ProtocolError("value nested too deeply")
    if tree is None or isinstance(tree, (bool, str, int)):
        return tree
    if isinstance(tree, float):
        return tree
    if isinstance(tree, list):
        return [decode(v, blobs, handle, callback, keras, depth + 1) for v in tree]
    if not isinstance(tree, dict) or len(tree) > 3:
        raise ProtocolError("malformed value")
    if "$a" in tree:
        return _load_array(blobs, tree)
    if "$t" in tree:
        return tuple(decode(v, blobs, handle, callback, keras, depth + 1) for v in _list(tree["$t"]))
    if "$d" in tree:
        out = {}
        for pair in _list(tree["$d"]):
            if not (isinstance(pair, list) and len(pair) == 2 and isinstance(pair[0], str)):
                raise ProtocolError("malformed dict")
            out[pair[0]] = decode(pair[1], blobs, handle, callback, keras, depth + 1)
        return out
    if "$s" in tree:
        if tree["$s"] not in ("nan", "inf", "-inf"):
            raise ProtocolError("malformed float")
        return float(tree["$s"])
    if "$h" in tree and handle is not None:
        return handle(int(tree["$h"]), str(tree.get("type", "object")))
    if "$f" in tree and callback is not None:
        return callback(int(tree["$f"]))
    if "$k" in tree and keras is not None:
        spec = tree["$k"]
        weights = [decode(w, blobs, depth=depth + 1) for w in _list(spec["weights"])]
        return keras(spec, weights)
    raise ProtocolError(f"unexpected value {sorted(tree)}")


def _list(value):
    if not isinstance(value, list):
        raise ProtocolError("malformed value")
    return value


def _load_array(blobs, tag):
    index, name, shape = tag.get("$a"), tag.get("d"), tag.get("s")
    if type(index) is not int or not 0 <= index < len(blobs):
        raise ProtocolError("array index out of range")
    dtype = DTYPES.get(name) if isinstance(name, str) else None
    if dtype is None:
        raise ProtocolError(f"array of dtype {str(name)[:20]!r} refused")
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS
            and all(type(n) is int and 0 <= n <= MAX_BLOB for n in shape)):
        raise ProtocolError("malformed array shape")
    if math.prod(shape) * dtype.itemsize != len(blobs[index]):
        raise ProtocolError("array shape and size disagree")
    return np.frombuffer(blobs[index], dtype=dtype).reshape(shape).copy()  # (a copy: writable, owns its memory)


# ---------------------------------------------------------------------------------------------------------------
# Framing


def frame(header, blobs=()):
    """The bytes of one message (raises, sending nothing, if json cannot write the header)."""
    data = json.dumps(header, allow_nan=False).encode()
    return b"".join([struct.pack("<I", len(data)), data, struct.pack("<I", len(blobs)),
                     struct.pack(f"<{len(blobs)}Q", *map(len, blobs)), *blobs])


def send(sock, header, blobs=()):
    sock.sendall(frame(header, blobs))


def _read_exact(sock, n, budget):
    if n > budget[0]:
        raise ProtocolError("message too large")
    budget[0] -= n
    data = bytearray(n)
    view, done = memoryview(data), 0
    while done < n:
        got = sock.recv_into(view[done:], min(n - done, 16 << 20))
        if not got:
            raise EOFError("the other side closed the connection")
        done += got
    return data


def receive(sock, max_total=MAX_TOTAL):
    """(header dict, blobs). Raises EOFError when the peer is gone, ProtocolError on a malformed message and
    socket.timeout when the socket's timeout passes."""
    budget = [max_total]
    (size,) = struct.unpack("<I", _read_exact(sock, 4, budget))
    if size > MAX_HEADER:
        raise ProtocolError("header too large")
    try:
        header = json.loads(_read_exact(sock, size, budget))
    except (ValueError, RecursionError):  # not JSON, not UTF-8, an int Python refuses to read, nested too deeply
        raise ProtocolError("header is not JSON that can be read") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not an object")
    (count,) = struct.unpack("<I", _read_exact(sock, 4, budget))
    if count > MAX_BLOBS:
        raise ProtocolError("too many arrays")
    lengths = struct.unpack(f"<{count}Q", _read_exact(sock, 8 * count, budget))
    if any(length > MAX_BLOB for length in lengths):
        raise ProtocolError("array too large")
    if sum(lengths) > budget[0]:
        raise ProtocolError("message too large")
    payload = memoryview(_read_exact(sock, sum(lengths), budget))
    blobs, start = [], 0
    for length in lengths:
        blobs.append(payload[start:start + length])
        start += length
    return header, blobs


def pair():
    """A connected pair of stream sockets (trusted end, worker end)."""
    return socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
