"""``python -m nnparity.bench --worker SPEC OUT``: the entry point of bench's worker processes."""

import sys

if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--worker":
        from nnparity.bench import _worker_main as worker  # the module itself, not this __main__ copy

        sys.exit(worker(sys.argv[2:]))
    print("usage: nnparity bench --help (this module's entry point is for worker processes)", file=sys.stderr)
    sys.exit(2)
