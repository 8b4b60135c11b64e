"""Part 3's sweep: LSTM and GRU encoder-decoders, without and with attention, on numbers written in words.

Every model is course_pkg.seq2seq (numpy), trained on course_pkg.seq_tasks' task (English number words -> digits,
1 to 12 digits, drawn fresh for every batch) with Adam and gradient clipping by global norm, the same number of
updates and the same stream of batches for every model of a seed. Measured on a fixed test set of 100 numbers per
number of digits:

- exact-match accuracy of greedy decoding against the number of digits (the input length), during training and at
  the end: chapters 14 (without attention) and 16 (with and without);
- at the end: the accuracy per token with teacher forcing (each step given the true previous digit) and free
  running (each step given the model's own previous digit), chapter 14; accuracy, mean log-probability and output
  length by beam width, chapter 15;
- scheduled sampling (Bengio et al. 2015): the same models trained with the reference token replaced by the model's
  own sampled token with a probability that grows during training, chapter 14.

The learning rate of each (cell, attention) is chosen first, in a short study on a validation set drawn apart from
the test set (its exact-match accuracy after `study_updates` updates, seed `study_seed`), so the test numbers the
book reports played no part in choosing it. One BLAS thread and seeded data make a run deterministic: re-running the
first updates of a committed run reproduces its first training losses (tests/test_seq2seq_sweep.py checks that).

    python bench/seq2seq_sweep.py --full          # the committed data, book/data/seq2seq_sweep.json (~1-2 h)
    python bench/seq2seq_sweep.py                 # a quick reduced run, printed only

The JSON holds "config", "environment", "study" (the learning-rate study's runs) and "runs", one record per (cell,
attention, training, seed) with the curve (exact match every eval_every updates, update 0 included), the mean
training loss per window, the training loss of each of the first `head` updates, and the final measurements.
Partial results are written after every run, and --full resumes from them; it also reuses the runs of a file made
with another grid of rates or other seeds (REUSABLE_ACROSS) that are the same run: a study run at a rate still in the
grid, a main run at the rate its model still wins (runs at a rate their model no longer wins are kept apart, as
"superseded_runs", which the book does not report as its results). "provenance" lists the invocations that computed
the file's runs (start, end, seconds, what each computed) and "total_seconds" their sum.
"""

import os

os.environ["OPENBLAS_NUM_THREADS"] = "1"  # before numpy: small products, a shared 2-core machine, determinism

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

from course_pkg import decoding as dec
from course_pkg import seq2seq as s2s
from course_pkg import seq_tasks as st
from course_pkg.optim import Adam, clip_by_global_norm

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "book" / "data" / "seq2seq_sweep.json"

FULL = {
    "D": 32, "H": 64, "A": 64, "batch": 64, "digits": [1, 12], "clip": 5.0,
    "updates": 4000, "eval_every": 500, "head": 20,
    "test_per_digit": 100, "test_seed": 12345, "val_size": 600, "val_seed": 54321,
    "beam_widths": [1, 2, 3, 5, 10], "length_penalty": [0.0, 1.0],
    # The grid of rates was [0.001, 0.003, 0.01] in the first sweep, until the best rate of three of the four models
    # sat at its top; widened upwards for all, and further for a model whose best rate was still the largest
    # (study_lrs_extra), until every model's best rate has a larger one that scores lower on validation.
    "study_lrs": [0.001, 0.003, 0.01, 0.02, 0.03], "study_updates": 1000, "study_seed": 100,
    "study_lrs_extra": [["gru", None, [0.05]]],
    "models": [["lstm", None], ["gru", None], ["lstm", "additive"], ["gru", "additive"]],
    "seeds": [0, 1, 2],
    # scheduled sampling: the probability of feeding the reference token at update i is k / (k + exp(i / k))
    # (Bengio et al.'s inverse sigmoid decay); the model's own token is sampled from its distribution
    "scheduled": {"models": [["lstm", None]], "k": 500},
    # k chosen on the validation set (seed study_seed, the rate the model won, the full number of updates, since the
    # schedule spans the whole training): 500 (the first sweep's, ending at a teacher probability of 0.14) or 700
    # (ending at 0.70); the scheduled-sampling runs use the winner
    "scheduled_study": {"ks": [500, 700]},
}

QUICK = {**FULL, "updates": 60, "eval_every": 30, "head": 5, "test_per_digit": 5, "val_size": 30,
         "beam_widths": [1, 2], "study_lrs": [0.003], "study_updates": 20, "seeds": [0],
         "models": [["lstm", None], ["gru", "additive"]], "scheduled": {"models": [["lstm", None]], "k": 10},
         "scheduled_study": {"ks": [10, 20]}}


def sig(v, digits=8):
    return float(f"{float(v):.{digits}g}")


def test_set(cfg):
    """100 numbers (test_per_digit) of each number of digits, fixed by test_seed."""
    rng = np.random.default_rng(cfg["test_seed"])
    low, high = cfg["digits"]
    return [pair for d in range(low, high + 1) for pair in st.numbers_pairs(cfg["test_per_digit"], d, rng)]


def val_set(cfg):
    return st.numbers_pairs(cfg["val_size"], tuple(cfg["digits"]), seed=cfg["val_seed"])


def exact_match(params, pairs, cfg, chunk=600):
    """Greedy decoding of every pair: (B,) bool, the output equals the digits exactly."""
    ok = []
    for i in range(0, len(pairs), chunk):
        part = pairs[i : i + chunk]
        src, src_len, _, _ = st.encode_pairs(part)
        g = dec.greedy_decode(s2s.decoding_step(params), s2s.decoding_start(params, src, src_len), st.BOS, st.EOS,
                              cfg["digits"][1] + 2)
        ok += [f and st.TGT_VOCAB.decode(s) == t for s, f, (_, t) in zip(g.tokens, g.finished, part)]
    return np.array(ok)


def by_digits(values, pairs, cfg):
    nd = np.array([len(t) for _, t in pairs])
    low, high = cfg["digits"]
    return [sig(np.mean(values[nd == d])) for d in range(low, high + 1)]


def teacher_probability(i, k):
    return k / (k + np.exp(min(i / k, 700.0)))


def train_run(cell, attention, seed, lr, cfg, training="teacher", updates=None, evaluate=True, log=print, k=None):
    """Train one model; return its record (and the parameters). k: the schedule's (default cfg["scheduled"]["k"])."""
    updates = cfg["updates"] if updates is None else updates
    k = cfg["scheduled"]["k"] if k is None else k
    params = s2s.init_seq2seq(len(st.SRC_VOCAB), len(st.TGT_VOCAB), cfg["D"], cfg["H"], cell, attention,
                              A=cfg["A"], seed=seed)
    opt = Adam(params, lr)
    data_rng = np.random.default_rng([seed, 1])  # the batches: the same for every model of this seed
    feed_rng = np.random.default_rng([seed, 2])
    tests = test_set(cfg) if evaluate else None
    curve, window, losses, head = [], [], [], []
    t0 = time.perf_counter()
    if evaluate:
        curve.append({"update": 0, "exact": sig(exact_match(params, tests, cfg).mean())})
    for i in range(updates):
        src, src_len, tgt, tgt_len = st.encode_pairs(st.numbers_pairs(cfg["batch"], tuple(cfg["digits"]), data_rng))
        feed = None
        if training == "scheduled":
            feed = feed_rng.random(tgt.shape) >= teacher_probability(i, k)
        loss, cache = s2s.seq2seq_forward(params, src, src_len, tgt, tgt_len, feed=feed, sample=True, seed=feed_rng)
        grads, _ = clip_by_global_norm(s2s.seq2seq_backward(cache), cfg["clip"])
        opt.step(grads)
        window.append(loss)
        if len(head) < cfg["head"]:
            head.append(sig(loss))
        if evaluate and (i + 1) % cfg["eval_every"] == 0:
            acc = exact_match(params, tests, cfg).mean()
            curve.append({"update": i + 1, "exact": sig(acc)})
            losses.append(sig(np.mean(window)))
            window = []
            log(f"  {cell} {attention} {training} seed {seed} lr {lr}: update {i + 1}, loss {losses[-1]:.4f}, "
                f"exact {acc:.3f} ({time.perf_counter() - t0:.0f} s)")
    record = {"cell": cell, "attention": attention, "training": training, "seed": seed, "lr": lr,
              "updates": updates, "head": head, "curve": curve, "train_loss": losses,
              "seconds": round(time.perf_counter() - t0, 1)}
    if training == "scheduled":
        record["k"] = k
    return record, params


def final_measurements(params, cfg):
    """Exact match by digits (greedy), token accuracy teacher-forced and free-running, beam widths."""
    tests = test_set(cfg)
    ok = exact_match(params, tests, cfg)
    src, src_len, tgt, tgt_len = st.encode_pairs(tests)
    tmask = np.arange(tgt.shape[1])[None, :] < tgt_len[:, None]
    out = {"exact_by_digits": by_digits(ok, tests, cfg), "exact": sig(ok.mean())}
    for name, feed in (("teacher", None), ("free", "free")):
        loss, cache = s2s.seq2seq_forward(params, src, src_len, tgt, tgt_len, feed=feed)
        right = (np.argmax(cache["logits"], axis=-1) == tgt) & tmask
        out[f"token_acc_{name}"] = sig(right.sum() / tmask.sum())
        out[f"loss_{name}"] = sig(loss)
        out[f"token_acc_{name}_by_digits"] = by_digits(right.sum(1) / tmask.sum(1), tests, cfg)
    state = s2s.decoding_start(params, src, src_len)
    beams = []
    for alpha in cfg["length_penalty"]:
        for K in cfg["beam_widths"]:
            res = dec.beam_search(s2s.decoding_step(params), state, st.BOS, st.EOS, cfg["digits"][1] + 2, K,
                                  length_penalty=alpha)
            right = np.array([f and st.TGT_VOCAB.decode(s) == t for s, f, (_, t) in zip(res.tokens, res.finished,
                                                                                       tests)])
            beams.append({"width": K, "length_penalty": alpha, "exact": sig(right.mean()),
                          "mean_logp": sig(res.logp.mean()),
                          "mean_length": sig(np.mean([len(s) for s in res.tokens])),
                          "exact_by_digits": by_digits(right, tests, cfg)})
    ref = dec.sequence_logp(s2s.decoding_step(params), state, st.BOS, st.EOS,
                            [st.TGT_VOCAB.encode(list(t)) for _, t in tests])
    out["reference_mean_logp"] = sig(ref.mean())
    out["beams"] = beams
    return out


def study_grid(cfg, cell, attention):
    """The rates tried for one model: study_lrs, and that model's study_lrs_extra."""
    extra = [lrs for c, a, lrs in cfg.get("study_lrs_extra", []) if (c, a) == (cell, attention)]
    return sorted(set(cfg["study_lrs"]).union(*extra))


def study(cfg, log, done):
    """The learning-rate study: exact match on the validation set after study_updates updates."""
    records = []
    val = val_set(cfg)
    for cell, attention in cfg["models"]:
        for lr in study_grid(cfg, cell, attention):
            key = (cell, attention, lr)
            if key in done:
                records.append(done[key])
                continue
            rec, params = train_run(cell, attention, cfg["study_seed"], lr, cfg, updates=cfg["study_updates"],
                                    evaluate=False, log=log)
            rec["val_exact"] = sig(exact_match(params, val, cfg).mean())
            log(f"study {cell} {attention} lr {lr}: validation exact match {rec['val_exact']:.3f}")
            records.append(rec)
            yield records
    yield records


def chosen_lr(study_records, cell, attention):
    """The rate with the best validation score (of equal scores, the smallest rate)."""
    mine = sorted((r for r in study_records if r["cell"] == cell and r["attention"] == attention),
                  key=lambda r: r["lr"])
    return max(mine, key=lambda r: r["val_exact"])["lr"]


# What a run depends on besides its key: the config without these entries. A study run is the same run whatever the
# grid and the seeds (its rate is in its key); a main run too, as long as its model's chosen rate is its own.
REUSABLE_ACROSS = ("study_lrs", "study_lrs_extra", "seeds", "scheduled_study")


def reusable(previous_cfg, cfg):
    """Runs of a sweep made with previous_cfg can be reused for cfg: the configs differ at most in REUSABLE_ACROSS."""
    strip = lambda c: {k: v for k, v in json.loads(json.dumps(c)).items() if k not in REUSABLE_ACROSS}  # noqa: E731
    return strip(previous_cfg) == strip(cfg)


def run_key(r, cfg):
    """What makes a main run the same run (a scheduled run of the first sweep has no "k": it had the config's)."""
    k = r.get("k", cfg["scheduled"]["k"]) if r["training"] == "scheduled" else None
    return r["cell"], r["attention"], r["training"], r["seed"], r["lr"], k


def chosen_k(k_records, cfg):
    """The schedule's k with the best validation score (of equal scores, the smallest); the config's without a study."""
    if not k_records:
        return cfg["scheduled"]["k"]
    return max(sorted(k_records, key=lambda r: r["k"]), key=lambda r: r["val_exact"])["k"]


def plan_runs(cfg):
    """The main runs, seed by seed (every model's first seeds before any model's later ones)."""
    models = [(c, a, "teacher") for c, a in cfg["models"]]
    models += [(c, a, "scheduled") for c, a in cfg["scheduled"]["models"]]
    return [(c, a, t, s) for s in cfg["seeds"] for c, a, t in models]


def run_sweep(cfg, log=print, previous=None, checkpoint=None):
    """Every planned run, reusing those of `previous` (a sweep's JSON with a reusable config) that are the same run.

    The result's "provenance" lists the invocations that computed its runs (the earlier ones copied from `previous`,
    this one appended) and "total_seconds" their sum; each run computed here carries "computed_at" (UTC)."""
    t0 = time.perf_counter()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    previous = previous or {}
    done_study = {(r["cell"], r["attention"], r["lr"]): r for r in previous.get("study", [])}
    runs_on_file = [r for k in ("runs", "previous_runs_not_yet_reused", "superseded_runs") for r in previous.get(k, [])]
    done_runs = {run_key(r, previous.get("config", cfg)): r for r in runs_on_file}
    done_k = {(r["cell"], r["attention"], r["lr"], r["k"]): r for r in previous.get("scheduled_study", [])}
    earlier = previous.get("provenance", [])
    mine = {"started": started, "computed_study": [], "computed_runs": [], "reused_study": 0, "reused_runs": 0,
            "computed_scheduled_study": []}
    result = {"config": cfg, "study": [], "scheduled_study": [], "runs": []}

    def save(final=False):
        seconds = time.perf_counter() - t0
        result["environment"] = environment()  # the seconds: per invocation, in "provenance"
        mine["seconds"] = round(seconds, 1)
        mine["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) if final else None
        computed = mine["computed_study"] or mine["computed_runs"] or mine["computed_scheduled_study"]
        result["provenance"] = earlier + ([mine] if computed else [])  # an invocation that only reused: not listed
        result["total_seconds"] = round(sum(p["seconds"] for p in result["provenance"]), 1)
        # until the end, a checkpoint keeps the earlier runs not yet reused, so that a killed run can resume them; at
        # the end, those left are runs at a rate their model no longer wins: kept apart, as "superseded_runs"
        used = {id(r) for r in result["runs"]}
        unused = [r for r in done_runs.values() if id(r) not in used]
        result.pop("previous_runs_not_yet_reused", None)
        result.pop("superseded_runs", None)
        if unused:
            result["superseded_runs" if final else "previous_runs_not_yet_reused"] = unused
        if checkpoint is not None:
            checkpoint(result)

    def stamp(rec):
        rec["computed_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        return rec

    for records in study(cfg, log, done_study):
        for r in records:
            if "computed_at" not in r and (r["cell"], r["attention"], r["lr"]) not in done_study:
                stamp(r)
                mine["computed_study"].append([r["cell"], r["attention"], r["lr"]])
        result["study"] = list(records)
        save()
    mine["reused_study"] = len(result["study"]) - len(mine["computed_study"])
    lrs = {(c, a): chosen_lr(result["study"], c, a) for c, a in cfg["models"]}
    for (c, a), lr in lrs.items():
        grid = sorted(r["lr"] for r in result["study"] if (r["cell"], r["attention"]) == (c, a))
        if lr == grid[-1]:
            log(f"WARNING: {c} {a}: the best rate, {lr}, is the largest of the grid: widen the grid upwards")
    # the schedule's k, chosen on validation data (for each scheduled model, at the rate that model won)
    ks = {}
    for cell, attention in cfg["scheduled"]["models"]:
        lr, records = lrs[(cell, attention)], []
        for k in cfg.get("scheduled_study", {}).get("ks", []):
            if (cell, attention, lr, k) in done_k:
                records.append(done_k[(cell, attention, lr, k)])
                result["scheduled_study"].append(records[-1])
                continue
            rec, params = train_run(cell, attention, cfg["study_seed"], lr, cfg, training="scheduled", evaluate=False,
                                    log=log, k=k)
            rec["val_exact"] = sig(exact_match(params, val_set(cfg), cfg).mean())
            log(f"scheduled-sampling study {cell} {attention} lr {lr} k {k}: validation exact match "
                f"{rec['val_exact']:.3f}")
            records.append(stamp(rec))
            mine["computed_scheduled_study"].append([cell, attention, lr, k])
            result["scheduled_study"].append(rec)
            save()
        ks[(cell, attention)] = chosen_k(records, cfg)
    save()
    for cell, attention, training, seed in plan_runs(cfg):
        lr = lrs[(cell, attention)]
        k = ks[(cell, attention)] if training == "scheduled" else None
        key = (cell, attention, training, seed, lr, k)
        if key in done_runs:
            result["runs"].append(done_runs[key])
            mine["reused_runs"] += 1
            continue
        rec, params = train_run(cell, attention, seed, lr, cfg, training=training, log=log, k=k)
        rec["final"] = final_measurements(params, cfg)
        log(f"{cell} {attention} {training} seed {seed} lr {lr}: exact {rec['final']['exact']:.3f} "
            f"by digits {rec['final']['exact_by_digits']}")
        result["runs"].append(stamp(rec))
        mine["computed_runs"].append([cell, attention, training, seed, lr] + ([k] if k is not None else []))
        save()
    save(final=True)
    return result


def environment():
    return {"python": platform.python_version(), "numpy": np.__version__, "machine": platform.machine(),
            "processor": platform.processor()}


def write(result, out):
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1) + "\n")
    tmp.replace(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--full", action="store_true", help="the committed configuration (writes the book's data)")
    parser.add_argument("--out", type=Path, help=f"JSON to write (default with --full: {DEFAULT_OUT})")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    cfg = FULL if args.full else QUICK
    out = args.out or (DEFAULT_OUT if args.full else None)
    previous = None
    if out is not None and out.is_file():
        earlier = json.loads(out.read_text())
        if reusable(earlier.get("config", {}), cfg):
            previous = earlier
            print(f"reusing from {out} what is the same run: {len(earlier['study'])} study runs, "
                  f"{len(earlier['runs'])} runs on file")
    t0 = time.perf_counter()
    result = run_sweep(cfg, previous=previous, checkpoint=None if out is None else lambda r: write(r, out))
    print(f"done in {time.perf_counter() - t0:.0f} s (all invocations: {result['total_seconds']:.0f} s)")
    if out is not None:
        write(result, out)
        print(f"wrote {out}")


if __name__ == "__main__":
    main()
