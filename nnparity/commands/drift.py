"""``nnparity drift``: how far each implementation's cost trajectory drifts, and its divergence horizon."""

from __future__ import annotations

import argparse
import os
import time

from nnparity.commands.args import positive_float, positive_int
from nnparity.errors import UsageError
from nnparity.impls import IMPLS
from nnparity.memory import check_memory


def add_parser(sub):
    """The `drift` sub-command's parser (its options beside the code that reads them)."""
    drift = sub.add_parser("drift", help="measure how far each implementation's cost trajectory drifts, "
                           "and its divergence horizon",
                           description="Train grid cases for many steps through the implementations and report, per "
                                       "case and implementation, the relative cost difference to the reference at "
                                       "steps 1, 10, 100, 1000, ... and the divergence horizon: the first step whose "
                                       "difference leaves its tolerance (float64 1e-10 relative, float32 the rounding "
                                       "bound of that step's forward pass).  A conv case (--cases 'conv*', the "
                                       "conv grid) is one pass, with no steps to drift over: for it drift reports "
                                       "the chain's bound ratio to the reference, and how far the chain moves run "
                                       "to run (--repeats reruns in this process) and at 1 and at 2 threads (a "
                                       "fresh process each): identical, or the largest ulp distance and its size "
                                       "relative to the reference's rounding bound.",
                           epilog="example:\n"
                                  "  nnparity drift --cases 'l4-relu-float32-fullbatch' --steps 3000 --impl torch\n"
                                  "  nnparity drift --cases 'l4-relu-*-fullbatch' --data train_catvnoncat.h5 "
                                  "--learning-rate 0.0075 --steps 2500\n"
                                  "  nnparity drift --cases 'conv*' --impl torch,jax-jit --repeats 3",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    drift.add_argument("--cases", default="l4-relu-float32-fullbatch",
                       help="glob patterns over the case ids report --cases reaches (every grid's; default "
                            "l4-relu-float32-fullbatch); conv* names the conv grid's cases")
    drift.add_argument("--steps", type=positive_int("--steps"), default=3000, help="gradient steps (default 3000)")
    drift.add_argument("--impl", default="torch", help="implementations, comma-separated, or all (default torch)")
    drift.add_argument("--data", help="train on this data instead (the first layer size follows its features)")
    drift.add_argument("--learning-rate", type=positive_float("--learning-rate"),
                       help="override the cases' learning rate")
    drift.add_argument("--repeats", type=positive_int("--repeats"), default=3,
                       help="conv cases: reruns of each chain in this process, compared with its first run "
                            "(default 3)")
    drift.add_argument("--threads", type=_thread_counts, default=None,
                       help="conv cases: the thread counts of the fresh processes the chains rerun in, "
                            "comma-separated (default 1,2)")
    drift.add_argument("--csv", help="also write the per-step relative differences to this CSV file (with conv "
                                     "cases only: the conv table; with both: the conv table to NAME-conv.csv)")
    return drift


def _thread_counts(text: str) -> tuple[int, ...]:
    words = [w.strip() for w in text.split(",") if w.strip()]
    if not words or not all(w.isdigit() and int(w) >= 1 for w in words):
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of thread counts; write e.g. 1,2")
    return tuple(dict.fromkeys(int(w) for w in words))


def run(args) -> int:
    from nnparity import data as data_mod
    from nnparity import grid, impls
    from nnparity.convspec import ConvCase, conv_grid

    names = [n for n in impls.parse_list(args.impl) if n != "numpy"]
    if not names:
        raise UsageError("--impl numpy measures no drift (numpy is the reference every implementation is compared "
                         f"with); name one or more of: {', '.join(n for n in IMPLS if n != 'numpy')}")
    if args.csv:
        _check_output_file(args.csv, "--csv")
    chosen = grid.select(grid.every_case() + conv_grid(), args.cases)  # the case ids report --cases reaches
    conv_cases = [case for case in chosen if isinstance(case, ConvCase)]
    dataset = data_mod.load_data(args.data) if args.data else None
    runs = []
    for case in (case for case in chosen if not isinstance(case, ConvCase)):
        ds = dataset or data_mod.load_data(case.data)
        changes = {"data": args.data or case.data, "layer_dims": (ds.n_x,) + case.layer_dims[1:]}
        if args.learning_rate:
            changes["learning_rate"] = args.learning_rate
        per_epoch = 1 if case.batch_size is None else -(-ds.m // case.batch_size)
        changes["epochs"] = -(-args.steps // per_epoch)
        case = case.replace(**changes).validate()
        data_mod.check_data(ds.X, ds.Y, case.layer_dims[0], case.loss, classes=case.classes)
        check_memory(case, ds.m)
        runs.append((case, ds))
    if runs:
        _dense(args, runs, names)
    if conv_cases:
        _conv(args, conv_cases, names, csv=_conv_csv(args.csv) if runs else args.csv)
    return 0


def _conv_csv(path):
    if not path:
        return None
    stem, ext = os.path.splitext(path)
    return f"{stem}-conv{ext or '.csv'}"


def _conv(args, cases, names, csv=None) -> None:
    from nnparity import drift
    from nnparity.progress import progress

    counts = args.threads or drift.CONV_THREADS
    with progress(len(cases) * len(names) + len(counts)) as bar:
        table = drift.conv_table(cases, names, repeats=args.repeats, threads=counts, bar=bar)
    if csv:
        table.to_csv(csv, index=False)
    shown = [c for c in ("case", "impl", "vs_reference", "repeats") if c in table]
    shown += [f"threads_{n}" for n in counts if f"threads_{n}" in table]
    print(f"conv chains: against the reference, run to run ({args.repeats} reruns in this process) and in a fresh "
          f"process at {' and '.join(map(str, counts))} threads, each against this process's first run "
          f"(threads reported: {_threads(table.attrs.get('threads', {}))})")
    print(table[shown].fillna("").rename(columns=lambda c: c.replace("_", " ")).to_string(index=False))


def _threads(reported: dict) -> str:
    """``this process: torch 1; 1 threads: torch 1; 2 threads: torch 2`` (``-``: no framework reported)."""
    return "; ".join(f"{where}: " + (", ".join(f"{k} {v}" for k, v in seen.items()) or "-")
                     for where, seen in reported.items())


def _dense(args, runs, names) -> None:
    import pandas as pd

    from nnparity import drift, harness
    from nnparity.progress import progress

    frames = []
    with progress(len(runs) * len(names)) as bar:
        for case, ds in runs:
            t = time.perf_counter()
            bar.working(f"{case.id}: numpy (reference), {args.steps} steps")
            ref = harness.run_reference(case, ds)
            for name in names:
                bar.working(f"{case.id}: {name}, {args.steps} steps")
                frame = harness.compare_impl(ref, name)
                frames.append(frame[frame["phase"].isin(["trajectory", "unavailable"])])
                status = "unavailable" if (frame["phase"] == "unavailable").any() else "done"
                bar.finished(f"{case.id} {name}", status, time.perf_counter() - t)
                t = time.perf_counter()
    details = pd.concat(frames, ignore_index=True)
    table = drift.horizon_table(details)
    if args.csv:
        drift.growth(details).to_csv(args.csv)
    shown = table.drop(columns=["horizon"]).rename(
        columns=lambda c: c.replace("rel_err_last_step", "last step").replace("rel_err_step_", "step "))
    print(shown.to_string(index=False, float_format=lambda x: f"{x:.2e}"))


def _check_output_file(path, flag) -> None:
    """UsageError, before any work, unless ``path`` can be written as a file."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a directory; give a file name, e.g. {os.path.join(path, 'drift.csv')}")
    if not os.path.isdir(folder):
        raise UsageError(f"{flag} {path}: folder {folder} does not exist; create it or choose another path")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag} {path} is not writable; choose another path")
