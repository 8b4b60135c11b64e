"""The runnable Keras systems of chapter 10 ("Keras in practice"): for each, one function prepares its data and one
builds its model. The chapter trains and evaluates them; tests/test_keras_systems.py checks that each beats its
trivial baseline. Everything is offline: the text is Python's own documentation (pydoc_data.topics), the time series
is matplotlib's sample file goog.npz.

    1. truecasing_data, build_tagger                    LSTM(return_sequences=True) + Dense softmax at every step
    2. load_docs, build_lstm_classifier                 LSTM(64, dropout, recurrent_dropout) + Dense(1, sigmoid)
    3. load_docs, build_stacked_gru                     GRU(return_sequences=True) + GRU + Dense(1, sigmoid)
    4. load_docs(task="page"), cooccurrence_embeddings,
       build_masked_stack                               Embedding(initial matrix, mask_zero) + LSTM + LSTM + softmax
    5. load_docs, keras.utils.pad_sequences, ...        the sentiment pipeline, on documentation instead of reviews
    6. title_content_lines, encode_lines, make_dataset,
       build_generator, make_train_step, make_sampler   a character generator: RNN of stacked SimpleRNNCells
    7. goog_prices, return_windows, build_forecaster    next-day return of a stock price, against persistence
    8. build_lstm_twins                                 keras.layers.LSTM and course_pkg's LSTMCell, same weights

This module imports Keras and TensorFlow (through keras_interop, which sets their logging first); `import course_pkg`
does not.
"""

import functools
import re

from .keras_interop import LSTMCell  # first: sets TF_CPP_MIN_LOG_LEVEL before TensorFlow is imported

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from .text import CharVocab, python_docs_text  # noqa: E402


# ----------------------------------------------------------------------------------------------------------------
# 1. Sequence labelling: truecasing


def truecasing_data(n_train, n_test, T=100, seed=0):
    """Restore capital letters: x is the documentation lowercased, y marks the characters that were capitals.

    The text is cut into non-overlapping windows of T characters; n_train and n_test of them, disjoint, are drawn
    at random. Returns (x_train, y_train), (x_test, y_test), vocab: x (n, T) character ids of a CharVocab over the
    lowercased text, y (n, T) with 1 where the original character is upper case and 0 elsewhere.
    """
    text = python_docs_text()
    lower = text.lower()
    if len(lower) != len(text):  # str.lower can lengthen a string (e.g. "İ"); then positions would shift
        raise ValueError("truecasing_data: lowercasing changed the length of the text")
    vocab = CharVocab(lower)
    ids = vocab.encode(lower)
    upper = np.fromiter((ch.isupper() for ch in text), dtype=np.int64, count=len(text))
    n = len(ids) // T
    if n_train + n_test > n:
        raise ValueError(f"truecasing_data: the text has only {n} windows of {T} characters")
    order = np.random.default_rng(seed).permutation(n)
    x, y = ids[: n * T].reshape(n, T), upper[: n * T].reshape(n, T)
    train, test = order[:n_train], order[n_train : n_train + n_test]
    return (x[train], y[train]), (x[test], y[test]), vocab


def one_hot(ids, n_symbols):
    """float32 one-hot vectors (..., n_symbols) of integer ids (...)."""
    return np.eye(n_symbols, dtype=np.float32)[ids]


def build_tagger(n_symbols, units=32, learning_rate=1e-2):
    """A single LSTM returning its state at every step, and a softmax over the two tags at every step."""
    model = keras.Sequential(
        [
            keras.Input((None, n_symbols)),
            keras.layers.LSTM(units, return_sequences=True),
            keras.layers.Dense(2, activation="softmax"),  # applied at each step: (B, T, H) -> (B, T, 2)
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


# ----------------------------------------------------------------------------------------------------------------
# 2-5. Text classification on Python's documentation, in the format of keras.datasets.imdb

#: pydoc topics whose text comes from the Library Reference (built-in types, string formatting, pdb); every other
#: topic comes from the Language Reference.
LIBRARY_TOPICS = frozenset(
    {
        "bltin-code-objects", "bltin-ellipsis-object", "bltin-null-object", "bltin-type-objects", "debugger",
        "formatstrings", "specialattrs", "string-methods", "truth", "typesfunctions", "typesmapping",
        "typesmethods", "typesmodules", "typesseq", "typesseq-mutable",
    }
)

#: The eight longest documentation pages (pydoc topics), the classes of load_docs(task="page").
PAGES = (
    "compound", "specialnames", "types", "string-methods", "debugger", "typesseq", "typesmapping", "formatstrings",
)


def docs_words(text):
    """The words of a text: runs of letters, lowercased."""
    return re.findall(r"[a-z]+", text.lower())


def docs_paragraphs(min_words=8):
    """(topic, paragraph) pairs of pydoc_data.topics, topics in sorted order, each distinct paragraph once.

    Paragraphs are separated by blank lines; those with fewer than min_words words are left out. Some topics quote
    others (the "compound" page contains the "if" page, for one): a paragraph met again is dropped.
    """
    from pydoc_data.topics import topics

    seen, pairs = set(), []
    for topic in sorted(topics):
        for paragraph in topics[topic].split("\n\n"):
            paragraph = paragraph.strip()
            if len(docs_words(paragraph)) >= min_words and paragraph not in seen:
                seen.add(paragraph)
                pairs.append((topic, paragraph))
    return pairs


@functools.lru_cache(maxsize=None)
def docs_sentences(min_words=5):
    """(topic, sentence) pairs: the paragraphs of docs_paragraphs(), line breaks joined, cut after a full stop that
    follows a lowercase letter, a bracket or a quote; sentences of fewer than min_words words are left out, and a
    sentence met again is dropped, so that no sentence can sit in both a training and a test set. Computed once
    (cached), hence a tuple."""
    seen, pairs = set(), []
    for topic, paragraph in docs_paragraphs():
        for sentence in re.split(r"(?<=[a-z)\"]\.) ", " ".join(paragraph.split())):
            if len(docs_words(sentence)) >= min_words and sentence not in seen:
                seen.add(sentence)
                pairs.append((topic, sentence))
    return tuple(pairs)


def docs_word_index():
    """{word: rank}, rank 1 for the most frequent word of all sentences (ties in alphabetical order).

    The counterpart of keras.datasets.imdb.get_word_index(): in the sequences of load_docs, a word of rank r is
    the id r + index_from.
    """
    counts = {}
    for _, sentence in docs_sentences():
        for word in docs_words(sentence):
            counts[word] = counts.get(word, 0) + 1
    ranked = sorted(counts, key=lambda w: (-counts[w], w))
    return {word: rank for rank, word in enumerate(ranked, start=1)}


def load_docs(num_words=None, task="library", test_fraction=0.5, seed=113, start_char=1, oov_char=2, index_from=3):
    """Documentation sentences as keras.datasets.imdb.load_data returns reviews: (x_train, y_train), (x_test, y_test).

    Each x is a list of word-id lists: start_char, then rank + index_from for each word, with oov_char for words
    whose rank is num_words - index_from or more (so every id is below num_words), as in imdb.load_data.
    task="library": y is 1 for a sentence of the Library Reference and 0 for one of the Language Reference.
    task="page": only the sentences of the pages in PAGES, and y is the index of the page in PAGES.
    The sentences (docs_sentences) are shuffled with `seed` and split, test_fraction of them for the test set.
    """
    if task not in ("library", "page"):
        raise ValueError(f"load_docs: task must be 'library' or 'page'; got {task!r}")
    index = docs_word_index()
    xs, ys = [], []
    for topic, sentence in docs_sentences():
        if task == "page" and topic not in PAGES:
            continue
        ids = [start_char]
        for word in docs_words(sentence):
            i = index[word] + index_from
            ids.append(oov_char if num_words is not None and i >= num_words else i)
        xs.append(ids)
        ys.append(int(topic in LIBRARY_TOPICS) if task == "library" else PAGES.index(topic))
    order = np.random.default_rng(seed).permutation(len(xs))
    n_test = int(round(test_fraction * len(xs)))
    train, test = order[n_test:], order[:n_test]
    y = np.array(ys, dtype=np.int64)
    return ([xs[i] for i in train], y[train]), ([xs[i] for i in test], y[test])


def decode_docs(ids, start_char=1, oov_char=2, index_from=3):
    """The words of one sequence of load_docs, padding dropped, "?" for an out-of-vocabulary word."""
    word = {rank + index_from: w for w, rank in docs_word_index().items()}
    return " ".join("?" if i == oov_char else word[i] for i in ids if i not in (0, start_char))


def build_lstm_classifier(num_words, embed_dim=32, units=64, dropout=0.2, recurrent_dropout=0.2, learning_rate=3e-3):
    """Embedding, LSTM(units, dropout, recurrent_dropout) and one sigmoid unit: a binary classifier of sequences."""
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(num_words, embed_dim),
            keras.layers.LSTM(units, dropout=dropout, recurrent_dropout=recurrent_dropout),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy", metrics=["accuracy"]
    )
    return model


def build_stacked_gru(num_words, embed_dim=32, units=32, learning_rate=3e-3):
    """Embedding, two stacked GRUs (the first passes on its whole sequence of states), one sigmoid unit."""
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(num_words, embed_dim),
            keras.layers.GRU(units, return_sequences=True),
            keras.layers.GRU(units),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate), loss="binary_crossentropy", metrics=["accuracy"]
    )
    return model


def cooccurrence_embeddings(sequences, num_words, dim, window=4):
    """An initial embedding matrix (num_words, dim) computed from the sequences themselves, nothing downloaded.

    Counts how often two ids occur within `window` positions of each other, turns the counts into positive
    pointwise mutual information, PPMI(a, b) = max(0, log p(a, b) / (p(a) p(b))), and keeps the top `dim`
    eigenvectors of that symmetric matrix scaled by the square roots of their eigenvalues (a truncated
    factorisation, as in latent semantic analysis). Row 0, the padding id, is zero. The rows are rescaled to a mean
    norm of 1.
    """
    counts = np.zeros((num_words, num_words))
    for seq in sequences:
        seq = np.asarray(seq)
        for d in range(1, window + 1):
            np.add.at(counts, (seq[:-d], seq[d:]), 1.0)
    counts += counts.T
    counts[0, :] = counts[:, 0] = 0
    total = counts.sum()
    marginal = counts.sum(axis=1) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        pmi = np.log(counts / total / np.outer(marginal, marginal))
    ppmi = np.where(np.isfinite(pmi) & (pmi > 0), pmi, 0.0)
    values, vectors = np.linalg.eigh(ppmi)
    top = np.argsort(values)[::-1][:dim]
    E = vectors[:, top] * np.sqrt(np.maximum(values[top], 0))
    E[0] = 0
    norms = np.linalg.norm(E, axis=1)
    return (E / norms[norms > 0].mean()).astype(np.float32)


def build_masked_stack(embedding_matrix, n_classes, units=(32, 16), learning_rate=3e-3, mask_zero=True):
    """Embedding initialised with a given matrix, masking id 0, two stacked LSTMs and a softmax over n_classes.

    (mask_zero=False builds the same model without the mask, to show what the mask does.)
    """
    num_words, embed_dim = embedding_matrix.shape
    model = keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(
                num_words,
                embed_dim,
                embeddings_initializer=keras.initializers.Constant(embedding_matrix),
                mask_zero=mask_zero,
            ),
            keras.layers.LSTM(units[0], return_sequences=True),
            keras.layers.LSTM(units[1]),
            keras.layers.Dense(n_classes, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


# ----------------------------------------------------------------------------------------------------------------
# 6. A text generator: "title:content" lines, an RNN of stacked SimpleRNNCells, a custom training loop

PAD, BOS, EOS = "<pad>", "<bos>", "<eos>"


def title_content_lines(max_content=160):
    """"title:content" lines: for each prose sentence of the documentation (docs_sentences: one that starts with a
    capital letter and ends with a full stop), the title of its page, a colon, and the sentence (at most max_content
    characters)."""
    from pydoc_data.topics import topics

    return [
        f"{topics[topic].strip().splitlines()[0].strip()}:{sentence[:max_content]}"
        for topic, sentence in docs_sentences()
        if sentence[0].isupper() and sentence.endswith(".")
    ]


def encode_lines(lines, max_len):
    """Characters to ids, with a begin and an end token, cut or padded to max_len ids.

    Returns ids (n, max_len) int32, lengths (n,) (the number of ids before padding), word2id and id2word. Ids 0, 1,
    2 are PAD, BOS, EOS; the characters follow in sorted order. A line longer than max_len - 2 characters loses its
    tail and its end token.
    """
    id2word = [PAD, BOS, EOS] + sorted(set("".join(lines)))
    word2id = {w: i for i, w in enumerate(id2word)}
    ids = np.zeros((len(lines), max_len), dtype=np.int32)
    lengths = np.zeros(len(lines), dtype=np.int32)
    for row, line in enumerate(lines):
        tokens = ([BOS] + list(line) + [EOS])[:max_len]
        ids[row, : len(tokens)] = [word2id[t] for t in tokens]
        lengths[row] = len(tokens)
    return ids, lengths, word2id, id2word


def make_dataset(ids, lengths, batch_size, seed=0):
    """A tf.data pipeline: (ids, lengths) pairs, shuffled anew every epoch (seeded), in batches."""
    return (
        tf.data.Dataset.from_tensor_slices((ids, lengths))
        .shuffle(len(ids), seed=seed, reshuffle_each_iteration=True)
        .batch(batch_size)
    )


def build_generator(vocab_size, embed_dim=32, units=(128, 128)):
    """Embedding -> keras.layers.RNN over stacked SimpleRNNCells -> Dense logits over the vocabulary, every step."""
    cells = [keras.layers.SimpleRNNCell(u) for u in units]  # a list of cells: RNN stacks them (StackedRNNCells)
    return keras.Sequential(
        [
            keras.Input((None,), dtype="int32"),
            keras.layers.Embedding(vocab_size, embed_dim),
            keras.layers.RNN(cells, return_sequences=True),
            keras.layers.Dense(vocab_size),  # logits; the softmax is inside the loss and the sampler
        ]
    )


def sequence_loss(model, ids, lengths, training=False):
    """Mean cross-entropy (nats per predicted token) of the next token, counting only the real tokens of each line.

    Inputs ids[:, :-1], targets ids[:, 1:]; target position t counts if t < length - 1, so padding neither adds to
    the loss nor to the count it is averaged over.
    """
    inputs, targets = ids[:, :-1], ids[:, 1:]
    logits = model(inputs, training=training)
    weights = tf.sequence_mask(lengths - 1, maxlen=tf.shape(targets)[1], dtype=logits.dtype)
    ce = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
    return tf.reduce_sum(ce * weights) / tf.reduce_sum(weights)


def make_train_step(model, optimizer):
    """train_one_step(ids, lengths) -> loss: one Adam update by tf.GradientTape, compiled by tf.function."""

    @tf.function
    def train_one_step(ids, lengths):
        with tf.GradientTape() as tape:
            loss = sequence_loss(model, ids, lengths, training=True)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return train_one_step


def unigram_cross_entropy(train_ids, train_lengths, test_ids, test_lengths):
    """Cross-entropy (nats per token) on the test targets of the best model that ignores context: the training
    targets' token frequencies (add-one smoothed)."""

    def targets(ids, lengths):
        return np.concatenate([row[1:n] for row, n in zip(ids, lengths)])

    V = int(max(train_ids.max(), test_ids.max())) + 1
    p = np.bincount(targets(train_ids, train_lengths), minlength=V) + 1.0
    p /= p.sum()
    return float(-np.mean(np.log(p[targets(test_ids, test_lengths)])))


def make_sampler(model, word2id, id2word):
    """sample(prefix="", max_len=100, temperature=1.0, seed=0) -> a generated line.

    The sampler feeds BOS and the prefix, then draws each next token from softmax(logits / temperature) until EOS or
    max_len tokens. It runs the model's layers one step at a time and carries the cells' states, so that each new
    token costs one step (one call of a tf.function), not a pass over the whole line.
    """
    embedding, rnn, dense = model.layers

    @tf.function
    def step(token, states):
        h, states = rnn.cell(embedding(token), states)
        return dense(h)[0], states

    def sample(prefix="", max_len=100, temperature=1.0, seed=0):
        rng = np.random.default_rng(seed)
        states = rnn.cell.get_initial_state(batch_size=1)
        tokens, out = [BOS] + list(prefix), []
        for t in range(max_len):
            token = tokens[t] if t < len(tokens) else out[-1]
            logits, states = step(tf.constant([word2id[token]], dtype=tf.int32), states)
            if t + 1 < len(tokens):  # still reading the prefix
                continue
            z = logits.numpy().astype(np.float64) / temperature
            p = np.exp(z - z.max())
            nxt = id2word[rng.choice(len(p), p=p / p.sum())]
            if nxt in (EOS, PAD):
                break
            out.append(nxt)
        return prefix + "".join(out)

    return sample


# ----------------------------------------------------------------------------------------------------------------
# 7. A forecaster on a real time series


def goog_prices():
    """Daily dates and adjusted closing prices of Google's stock, 2004-08-19 to 2008-10-14 (matplotlib sample data)."""
    from matplotlib.cbook import get_sample_data

    data = get_sample_data("goog.npz")["price_data"]
    return data["date"], data["adj_close"].astype(np.float64)


def return_windows(prices, lag):
    """Log returns r_t = log p_t - log p_{t-1}; x[i] holds `lag` consecutive returns, y[i] the next one.

    Also returns the index in `prices` of the last price each window has seen, so that a predicted return can be
    turned back into a price: p_hat = prices[last] * exp(y_hat).
    """
    r = np.diff(np.log(prices))
    n = len(r) - lag
    x = np.stack([r[i : i + lag] for i in range(n)])[..., None]
    y = r[lag:]
    last = np.arange(n) + lag  # r[i + lag - 1] = log p[i + lag] - log p[i + lag - 1]: the window ends at p[i + lag]
    return x, y, last


def build_forecaster(lag, units=16, learning_rate=1e-3):
    """LSTM over a window of (scaled) returns and one linear unit: the next (scaled) return, trained on MSE."""
    model = keras.Sequential([keras.Input((lag, 1)), keras.layers.LSTM(units), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    return model


# ----------------------------------------------------------------------------------------------------------------
# 8. Keras' LSTM and course_pkg's LSTMCell from the same initial weights


def build_lstm_twins(input_dim, units=16, learning_rate=1e-2, seed=0):
    """Two regressors, LSTM(units) + Dense(1): one with keras.layers.LSTM, one with keras.layers.RNN around
    course_pkg.keras_interop.LSTMCell, the second given a copy of the first's initial weights. Both compiled with
    Adam and MSE."""
    keras.utils.set_random_seed(seed)
    models = []
    for layer in (keras.layers.LSTM(units), keras.layers.RNN(LSTMCell(units))):
        model = keras.Sequential([keras.Input((None, input_dim)), layer, keras.layers.Dense(1)])
        model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
        models.append(model)
    reference, ours = models
    ours.set_weights(reference.get_weights())
    return reference, ours
