"""Real English text that every Python installation carries, for character-level models: nothing to download.

CPython ships the text of its reference documentation's topics (the module pydoc_data.topics, what `help()` shows);
it is about 460,000 characters of technical English prose and code.
"""

import numpy as np


def python_docs_text(max_chars=None):
    """The text of pydoc_data.topics, topics in sorted order, joined by blank lines (deterministic)."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics))
    return text if max_chars is None else text[:max_chars]


class CharVocab:
    """Characters <-> integer ids, with ids in sorted order of the characters (deterministic)."""

    def __init__(self, text):
        self.chars = sorted(set(text))
        self.index = {ch: i for i, ch in enumerate(self.chars)}

    def __len__(self):
        return len(self.chars)

    def encode(self, text):
        try:
            return np.array([self.index[ch] for ch in text], dtype=np.int64)
        except KeyError as e:
            raise ValueError(f"CharVocab.encode: character {e.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids):
        return "".join(self.chars[int(i)] for i in ids)
