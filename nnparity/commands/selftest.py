"""``nnparity selftest``: inject realistic bugs into the torch implementation and check the suite finds them."""

from __future__ import annotations

import json

from nnparity.commands.args import positive_int


def add_parser(sub):
    """The `selftest` sub-command's parser (its options beside the code that reads them)."""
    selftest = sub.add_parser("selftest", help="inject realistic bugs into the torch implementation and check "
                              "that the suite detects and localises them",
                              description="Run each fault of the self-test catalogue (nnparity/selftest.py) on a "
                                          "small case, clean and faulty, and print whether the suite detected it "
                                          "(a failing row, or a row classified worse than in the clean run) and "
                                          "localised it (the first such row in the order of computation is the "
                                          "expected one); then rerun the unaltered cases --repeats times. Exit "
                                          "code 0 when every fault is detected, >= 90% are localised and no "
                                          "unaltered run fails or changes; 1 otherwise.")
    selftest.add_argument("--repeats", type=positive_int("--repeats"), default=20,
                          help="reruns of the unaltered cases after the faults (default 20)")
    selftest.add_argument("--json", action="store_true",
                          help='print one JSON object: {"faults": [...], "clean": [...], "summary": {...}}')
    return selftest


def run(args) -> int:
    from nnparity import selftest

    faults, clean = selftest.run_selftest(repeats=args.repeats)
    result = selftest.summary(faults, clean)
    if args.json:
        print(json.dumps(selftest.to_json(faults, clean), indent=2, allow_nan=False))
    else:
        print(selftest.format_table(faults, clean))
    return 0 if result["ok"] else 1
