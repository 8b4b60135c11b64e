"""The Keras systems of chapter 10 (course_pkg.keras_systems): each one, trained as the chapter trains it (seeded,
scaled down for a CPU), beats its trivial baseline; and the data preparation does what the chapter says.

The baselines: never capitalising / the constant rate of capitals (tagger), the majority class (classifiers), the
unigram model (generator), predicting 1 (adding problem). The stock forecaster is held to the honest claim of the
chapter: no better than persistence, to within a few per cent, and far better than the training period's mean price.
"""

import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from course_pkg import keras_systems as ks  # noqa: E402
from course_pkg.tasks import ADDING_BASELINE_MSE, adding_problem  # noqa: E402

NUM_WORDS, MAXLEN = 2000, 40


@pytest.fixture(scope="module")
def docs():
    """The chapter's binary task, padded: (x_train, y_train), (x_test, y_test)."""
    (x_train, y_train), (x_test, y_test) = ks.load_docs(num_words=NUM_WORDS)
    pad = keras.utils.pad_sequences
    return (pad(x_train, maxlen=MAXLEN), y_train), (pad(x_test, maxlen=MAXLEN), y_test)


def majority(y):
    return np.bincount(y).max() / len(y)


# ----------------------------------------------------------------------------------------------------------------
# Data preparation


def test_truecasing_data_marks_the_capitals_of_the_lowercased_text():
    (x, y), (x_test, y_test), vocab = ks.truecasing_data(20, 5, T=30, seed=1)
    assert x.shape == y.shape == (20, 30) and x_test.shape == (5, 30)
    for ids, tags in zip(x, y):
        text = vocab.decode(ids)
        assert text == text.lower()
        assert all(not t or ch.isalpha() for ch, t in zip(text, tags))  # only letters are ever capitals
    assert 0 < y.mean() < 0.1


def test_load_docs_has_the_format_of_imdb_load_data():
    (x_train, y_train), (x_test, y_test) = ks.load_docs(num_words=NUM_WORDS)
    assert len(x_train) == len(y_train) and len(x_test) == len(y_test)
    assert abs(len(x_train) - len(x_test)) <= 1  # a 50/50 split, as IMDB's 25,000 / 25,000
    assert set(np.unique(y_train)) == {0, 1}
    ids = np.concatenate([np.array(s) for s in x_train + x_test])
    assert all(s[0] == 1 for s in x_train + x_test)  # start_char
    assert ids.min() >= 1 and ids.max() < NUM_WORDS
    assert np.any(ids == 2)  # oov_char for words beyond the vocabulary limit
    # decoding gives back the words, and re-encoding them the ids
    (x_all, _), _ = ks.load_docs()  # no vocabulary limit: no out-of-vocabulary id
    index = ks.docs_word_index()
    assert [index[w] + 3 for w in ks.decode_docs(x_all[0]).split()] == x_all[0][1:]


def test_docs_sentences_are_distinct():
    """So that no sentence can sit in both the training and the test set."""
    sentences = [s for _, s in ks.docs_sentences()]
    assert len(set(sentences)) == len(sentences) > 2000


def test_load_docs_pages_task_labels_the_eight_pages():
    (_, y_train), (_, y_test) = ks.load_docs(task="page")
    assert set(np.unique(np.concatenate([y_train, y_test]))) == set(range(len(ks.PAGES)))
    with pytest.raises(ValueError, match="task"):
        ks.load_docs(task="sentiment")


def test_cooccurrence_embeddings_put_related_words_together():
    (x_train, _), _ = ks.load_docs(num_words=1000, task="page")
    E = ks.cooccurrence_embeddings(x_train, 1000, dim=16)
    assert E.shape == (1000, 16) and E.dtype == np.float32
    assert np.all(E[0] == 0)  # the padding id
    index = ks.docs_word_index()
    unit = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
    sims = unit @ unit[index["raise"] + 3]
    neighbours = {j - 3 for j in np.argsort(-sims)[1:11]}
    assert {index["typeerror"], index["valueerror"]} & neighbours


def test_encode_lines_adds_begin_and_end_tokens_and_pads():
    ids, lengths, word2id, id2word = ks.encode_lines(["ab:c", "abcdefgh:ij"], max_len=8)
    assert id2word[:3] == [ks.PAD, ks.BOS, ks.EOS] and word2id[ks.PAD] == 0
    assert list(lengths) == [6, 8]
    assert [id2word[i] for i in ids[0]] == [ks.BOS, "a", "b", ":", "c", ks.EOS, ks.PAD, ks.PAD]
    assert ids[1, 0] == word2id[ks.BOS] and ks.EOS not in [id2word[i] for i in ids[1]]  # cut: no end token


# ----------------------------------------------------------------------------------------------------------------
# Each system beats its baseline


def test_tagger_beats_the_constant_rate_of_capitals():
    (x, y), (x_test, y_test), chars = ks.truecasing_data(n_train=1600, n_test=200, T=50, seed=0)
    keras.utils.set_random_seed(0)
    tagger = ks.build_tagger(len(chars), units=64)
    tagger.fit(ks.one_hot(x, len(chars)), y, epochs=4, batch_size=32, verbose=0)
    p = tagger.predict(ks.one_hot(x_test, len(chars)), verbose=0)
    assert p.shape == (200, 50, 2)
    rate = y.mean()
    ce = -np.mean(np.log(np.take_along_axis(p, y_test[..., None], axis=-1)))
    ce_constant = -np.mean(np.where(y_test == 1, np.log(rate), np.log(1 - rate)))
    assert ce < 0.8 * ce_constant
    assert np.mean(p.argmax(-1) == y_test) > np.mean(y_test == 0)


def test_lstm_classifier_pipeline_beats_the_majority_class(docs):
    (x_train, y_train), (x_test, y_test) = docs
    keras.utils.set_random_seed(0)
    model = ks.build_lstm_classifier(NUM_WORDS)
    assert [type(layer).__name__ for layer in model.layers] == ["Embedding", "LSTM", "Dense"]
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    history = model.fit(x_train, y_train, validation_split=0.2, epochs=10, batch_size=64, callbacks=[stop],
                        verbose=0)
    assert "val_accuracy" in history.history  # the name Keras 3 logs; not 'val_acc'
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    y_hat = np.round(model.predict(x_test, verbose=0)[:, 0])
    assert np.mean(y_hat == y_test) == pytest.approx(accuracy, abs=1e-6)
    assert accuracy > majority(y_test) + 0.04


def test_stacked_gru_beats_the_majority_class(docs):
    (x_train, y_train), (x_test, y_test) = docs
    keras.utils.set_random_seed(0)
    model = ks.build_stacked_gru(NUM_WORDS)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    model.fit(x_train, y_train, validation_split=0.2, epochs=10, batch_size=64, callbacks=[stop], verbose=0)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    assert accuracy > majority(y_test) + 0.04


def test_masked_stack_beats_the_majority_page_and_ignores_padding():
    (x_train, y_train), (x_test, y_test) = ks.load_docs(num_words=1000, task="page")
    E = ks.cooccurrence_embeddings(x_train, 1000, dim=32)
    keras.utils.set_random_seed(0)
    model = ks.build_masked_stack(E, n_classes=len(ks.PAGES))
    np.testing.assert_allclose(model.layers[0].embeddings.numpy(), E, atol=1e-30)
    pad = keras.utils.pad_sequences
    model.fit(pad(x_train, maxlen=MAXLEN), y_train, epochs=3, batch_size=32, verbose=0)
    _, accuracy = model.evaluate(pad(x_test, maxlen=MAXLEN), y_test, verbose=0)
    assert accuracy > majority(y_test) + 0.15

    sentence = np.array(x_test[0], dtype=np.int32)
    alone = model(sentence[None]).numpy()
    for padding in ("pre", "post"):
        padded = pad([sentence], maxlen=len(sentence) + 15, padding=padding)
        np.testing.assert_allclose(model(padded).numpy(), alone, atol=1e-6)
    unmasked = ks.build_masked_stack(E, n_classes=len(ks.PAGES), mask_zero=False)
    unmasked.set_weights(model.get_weights())
    padded = pad([sentence], maxlen=len(sentence) + 15)
    assert np.max(np.abs(unmasked(padded).numpy() - alone)) > 1e-3


def test_generator_beats_the_unigram_model():
    lines = ks.title_content_lines(max_content=64)
    ids, lengths, word2id, id2word = ks.encode_lines(lines, max_len=96)
    order = np.random.default_rng(0).permutation(len(lines))
    test, train = order[: len(lines) // 5], order[len(lines) // 5:]
    keras.utils.set_random_seed(0)
    model = ks.build_generator(len(id2word), embed_dim=32, units=(64, 64))
    step = ks.make_train_step(model, keras.optimizers.Adam(1e-2))
    for _ in range(2):
        for batch_ids, batch_lengths in ks.make_dataset(ids[train], lengths[train], batch_size=64, seed=0):
            step(batch_ids, batch_lengths)
    loss = float(ks.sequence_loss(model, tf.constant(ids[test]), tf.constant(lengths[test])))
    assert loss < ks.unigram_cross_entropy(ids[train], lengths[train], ids[test], lengths[test]) - 0.3

    # padding beyond the lines changes neither the predictions nor the loss
    longer = np.concatenate([ids[test], np.zeros((len(test), 20), np.int32)], axis=1)
    assert float(ks.sequence_loss(model, tf.constant(longer), tf.constant(lengths[test]))) == pytest.approx(
        loss, rel=1e-5
    )
    sample = ks.make_sampler(model, word2id, id2word)
    text = sample('The "for" statement:', max_len=40, temperature=0.7, seed=0)
    assert text.startswith('The "for" statement:') and len(text) <= 40
    assert sample(max_len=40, seed=3) == sample(max_len=40, seed=3)  # seeded


def test_forecaster_ties_with_persistence_and_beats_the_mean_price():
    dates, prices = ks.goog_prices()
    assert len(prices) == len(dates) == 1047 and np.all(prices > 0)
    lag = 20
    x, y, last = ks.return_windows(prices, lag)
    np.testing.assert_allclose(np.log(prices[last + 1] / prices[last]), y)  # y is the return after the window
    np.testing.assert_allclose(x[:, -1, 0], np.log(prices[last] / prices[last - 1]))
    n_fit = int(0.7 * len(y))
    scale = y[:n_fit].std()
    keras.utils.set_random_seed(0)
    model = ks.build_forecaster(lag, units=16)
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=3, restore_best_weights=True)
    model.fit(x[:n_fit] / scale, y[:n_fit] / scale, validation_split=0.2, epochs=30, batch_size=32,
              callbacks=[stop], verbose=0)
    r_hat = model.predict(x[n_fit:] / scale, verbose=0)[:, 0] * scale
    today, tomorrow = prices[last[n_fit:]], prices[last[n_fit:] + 1]
    mse_model = np.mean((today * np.exp(r_hat) - tomorrow) ** 2)
    mse_persistence = np.mean((today - tomorrow) ** 2)
    mse_mean_price = np.mean((prices[: last[n_fit] + 1].mean() - tomorrow) ** 2)
    assert 0.9 < mse_model / mse_persistence < 1.1
    assert mse_model < 0.05 * mse_mean_price


def test_course_pkg_lstm_cell_trains_exactly_like_keras_lstm():
    x, y = adding_problem(2048, T=10, seed=0)
    x_test, y_test = adding_problem(500, T=10, seed=1)
    reference, ours = ks.build_lstm_twins(input_dim=2, units=16)
    runs = []
    for model in (reference, ours):
        keras.utils.set_random_seed(1)
        losses = model.fit(x, y, epochs=6, batch_size=64, verbose=0).history["loss"]
        runs.append((np.array(losses), model.evaluate(x_test, y_test, verbose=0)))
    np.testing.assert_allclose(runs[0][0], runs[1][0], atol=1e-5)
    assert runs[1][1] == pytest.approx(runs[0][1], abs=1e-5)
    assert runs[1][1] < 0.5 * ADDING_BASELINE_MSE
