"""The sub-commands of ``nnparity``, one module each: ``add_parser(sub)`` (its options) beside ``run(args)``
(the code that reads them).  ``nnparity.cli`` assembles them; a command module imports the tools it runs
(harness, bench, self-test, catalogue, reports) only inside ``run``, so ``nnparity --help`` stays fast."""

#: In the order ``nnparity --help`` lists them.
COMMANDS = ("report", "compare", "upgrade-check", "drift", "train", "check", "catalogue", "selftest", "bench",
            "explain")

#: The examples of ``nnparity --help`` and ``nnparity train --help``.
EXAMPLES = """\
examples:
  nnparity report                                   # default grid -> reports/latest/
  nnparity report --out /tmp/r --impl torch --force
  nnparity compare reports/old reports/new        # what an upgrade changed -> reports/new/compare-vs-old/
  nnparity upgrade-check tensorflow-cpu==2.20.0 --impl tf,tf-function --cases 'l2-tanh-*'   # can I upgrade?
  nnparity check examples/course_mistake.py       # your own course functions: what is wrong, and why
  nnparity train --impl torch --data planar --layer-dims 2,4,1 --hidden-activation tanh \\
                 --learning-rate 1.2 --epochs 1000 --json
  nnparity train --impl tf-function --data digits-3v8 --test-data digits-3v8 \\
                 --layer-dims 64,20,7,5,1 --batch-size 64 --epochs 20
  nnparity train --data train_catvnoncat.h5 --test-data test_catvnoncat.h5 \\
                 --layer-dims 12288,20,7,5,1 --epochs 100
"""
