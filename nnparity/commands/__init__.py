"""The sub-commands of ``nnparity``, one module each: ``add_parser(sub)`` (its options) beside ``run(args)``
(the code that reads them).  ``nnparity.cli`` assembles them; a command module imports the tools it runs
(harness, bench, self-test, catalogue, reports) only inside ``run``, so ``nnparity --help`` stays fast."""

#: In the order ``nnparity --help`` lists them.
COMMANDS = ("report", "compare", "drift", "train", "catalogue", "selftest", "bench")
