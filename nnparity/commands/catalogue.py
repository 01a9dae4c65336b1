"""``nnparity catalogue``: run the catalogue of where the frameworks differ from the math."""

from __future__ import annotations

import json


def add_parser(sub):
    """The `catalogue` sub-command's parser (its options beside the code that reads them)."""
    catalogue = sub.add_parser("catalogue", help="run the catalogue of where the frameworks differ from the math",
                               description="Run each catalogue entry (a small case with the framework's default "
                                           "behaviour and with this project's aligned behaviour) and print what "
                                           "differs, the measured effect and how it is aligned, with the installed "
                                           "versions. Exit code 0, or 1 when an entry raised an error.")
    catalogue.add_argument("--json", action="store_true",
                           help="print the records as one JSON list (id, title, framework, framework_version, "
                                "what_differs, case, default_result, aligned_result, effect, how_aligned, "
                                "verified_in, status, seconds, import_seconds, measured)")
    return catalogue


def run(args) -> int:
    import textwrap

    from nnparity.catalogue import records, run_catalogue

    rows = records(run_catalogue())
    if args.json:
        print(json.dumps(rows, indent=2, allow_nan=False))
    else:
        fields = [("what differs", "what_differs"), ("case", "case"), ("default", "default_result"),
                  ("aligned", "aligned_result"), ("effect", "effect"), ("how aligned", "how_aligned"),
                  ("verified in", "verified_in")]
        for i, row in enumerate(rows, start=1):
            version = f" ({row['framework_version']})" if row["framework_version"] else ""
            print(f"[{i}] {row['id']}: {row['title']}{version}")
            if row["status"] != "ok":
                print(f"    {row['status']}\n")
                continue
            for label, key in fields:
                print(textwrap.fill(row[key], width=110, initial_indent=f"    {label + ':':<14}",
                                    subsequent_indent=" " * 18))
            print()
    return 1 if any(row["status"].startswith("error") for row in rows) else 0
