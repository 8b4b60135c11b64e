"""A generated sequence-to-sequence task: numbers written in English words, to be rewritten in digits.

    "three hundred twelve thousand five hundred six"  ->  "312506"
    "forty million seven"                              ->  "40000007"

Nothing is downloaded; every example is drawn from a seeded generator. It is a small translation problem with the
features that make translation hard for an encoder-decoder: the output is a different "language" (digits) with a
different length from the input; one word can give two digits ("twelve" -> "12") and one digit can come from two
words ("sixty" ... "six"); zeros are written by no word at all ("forty million seven" has six of them) and follow
from the scale words; and the amount of information grows with the number of digits, so that a fixed-size summary
of the input must hold more and more as the input gets longer. The input length is a knob: the number of digits.

Tokens are words on the input side and digits on the output side. Ids 0, 1, 2 are PAD, BOS and EOS in both
vocabularies; a batch is right-padded with PAD, and every target ends with EOS.
"""

import numpy as np

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ["<pad>", "<bos>", "<eos>"]

_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven", "twelve",
          "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALES = ["", "thousand", "million", "billion", "trillion"]

#: The largest number of digits the task writes (up to the trillions).
MAX_DIGITS = 3 * len(_SCALES)


class Vocab:
    """Tokens <-> ids, with PAD, BOS, EOS first (ids 0, 1, 2)."""

    def __init__(self, tokens):
        self.tokens = SPECIALS + list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self):
        return len(self.tokens)

    def encode(self, tokens):
        try:
            return np.array([self.index[t] for t in tokens], dtype=np.int64)
        except KeyError as e:
            raise ValueError(f"Vocab.encode: token {e.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids, sep=""):
        """The tokens of `ids` up to the first EOS (excluded), PAD and BOS skipped, joined by `sep`."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.tokens[i])
        return sep.join(out)


#: The input vocabulary: 33 words.
SRC_VOCAB = Vocab(_UNITS + _TENS[2:] + ["hundred"] + _SCALES[1:])
#: The output vocabulary: the ten digits.
TGT_VOCAB = Vocab(list("0123456789"))


def _below_thousand(n):
    words = []
    if n >= 100:
        words += [_UNITS[n // 100], "hundred"]
        n %= 100
    if n >= 20:
        words.append(_TENS[n // 10])
        n %= 10
        if n:
            words.append(_UNITS[n])
    elif n:
        words.append(_UNITS[n])
    return words


def number_to_words(n):
    """The English words of a non-negative integer below 10**MAX_DIGITS, short scale, without "and" or hyphens.

    number_to_words(312506) == ["three", "hundred", "twelve", "thousand", "five", "hundred", "six"]
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0 or n >= 10**MAX_DIGITS:
        raise ValueError(f"number_to_words: expected an integer in [0, 10**{MAX_DIGITS}); got {n!r}")
    n = int(n)
    if n == 0:
        return ["zero"]
    words = []
    for k in reversed(range(len(_SCALES))):
        group = (n // 10 ** (3 * k)) % 1000
        if group:
            words += _below_thousand(group)
            if k:
                words.append(_SCALES[k])
    return words


def random_numbers(n, digits, seed=None):
    """n random integers, each with a number of digits drawn uniformly from `digits` (an int or a (low, high)
    inclusive range) and its digits uniform (the first one non-zero, except for the one-digit numbers, which include
    0), as Python ints."""
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    low, high = (digits, digits) if isinstance(digits, (int, np.integer)) else digits
    if not 1 <= low <= high <= MAX_DIGITS:
        raise ValueError(f"random_numbers: digits must lie in [1, {MAX_DIGITS}]; got {digits!r}")
    lengths = rng.integers(low, high + 1, size=n)
    out = []
    for d in lengths:
        first = rng.integers(0 if d == 1 else 1, 10)
        rest = rng.integers(0, 10, size=d - 1)
        out.append(int("".join(str(x) for x in [first, *rest])))
    return out


def numbers_pairs(n, digits, seed=None):
    """n (words, digits) pairs: ([word, ...], "312506")."""
    return [(number_to_words(x), str(x)) for x in random_numbers(n, digits, seed)]


def encode_pairs(pairs, src_vocab=SRC_VOCAB, tgt_vocab=TGT_VOCAB):
    """Right-padded id arrays for a list of (source tokens, target tokens) pairs.

    Returns src (B, S) with PAD beyond each source, src_len (B,), tgt (B, T) = the target ids followed by EOS, then
    PAD, and tgt_len (B,) counting the EOS. S and T are the longest source and target (+ EOS) in the batch.
    """
    B = len(pairs)
    src_ids = [src_vocab.encode(s) for s, _ in pairs]
    tgt_ids = [np.append(tgt_vocab.encode(list(t)), EOS) for _, t in pairs]
    src_len = np.array([len(s) for s in src_ids])
    tgt_len = np.array([len(t) for t in tgt_ids])
    src = np.full((B, src_len.max()), PAD, dtype=np.int64)
    tgt = np.full((B, tgt_len.max()), PAD, dtype=np.int64)
    for b in range(B):
        src[b, : src_len[b]] = src_ids[b]
        tgt[b, : tgt_len[b]] = tgt_ids[b]
    return src, src_len, tgt, tgt_len
