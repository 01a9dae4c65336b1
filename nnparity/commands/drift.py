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
                                       "bound of that step's forward pass).",
                           epilog="example:\n"
                                  "  nnparity drift --cases 'l4-relu-float32-fullbatch' --steps 3000 --impl torch\n"
                                  "  nnparity drift --cases 'l4-relu-*-fullbatch' --data train_catvnoncat.h5 "
                                  "--learning-rate 0.0075 --steps 2500",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    drift.add_argument("--cases", default="l4-relu-float32-fullbatch",
                       help="glob patterns over the case ids report --cases reaches (every grid's; default "
                            "l4-relu-float32-fullbatch)")
    drift.add_argument("--steps", type=positive_int("--steps"), default=3000, help="gradient steps (default 3000)")
    drift.add_argument("--impl", default="torch", help="implementations, comma-separated, or all (default torch)")
    drift.add_argument("--data", help="train on this data instead (the first layer size follows its features)")
    drift.add_argument("--learning-rate", type=positive_float("--learning-rate"),
                       help="override the cases' learning rate")
    drift.add_argument("--csv", help="also write the per-step relative differences to this CSV file")
    return drift


def run(args) -> int:
    import pandas as pd

    from nnparity import data as data_mod
    from nnparity import drift, grid, harness, impls
    from nnparity.progress import progress

    names = [n for n in impls.parse_list(args.impl) if n != "numpy"]
    if not names:
        raise UsageError("--impl numpy measures no drift (numpy is the reference every implementation is compared "
                         f"with); name one or more of: {', '.join(n for n in IMPLS if n != 'numpy')}")
    if args.csv:
        _check_output_file(args.csv, "--csv")
    dataset = data_mod.load_data(args.data) if args.data else None
    runs = []
    for case in grid.select(grid.every_case(), args.cases):  # the case ids report --cases reaches
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
    return 0


def _check_output_file(path, flag) -> None:
    """UsageError, before any work, unless ``path`` can be written as a file."""
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise UsageError(f"{flag} {path} is a directory; give a file name, e.g. {os.path.join(path, 'drift.csv')}")
    if not os.path.isdir(folder):
        raise UsageError(f"{flag} {path}: folder {folder} does not exist; create it or choose another path")
    if not os.access(folder, os.W_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise UsageError(f"{flag} {path} is not writable; choose another path")
