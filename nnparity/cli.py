"""The ``nnparity`` command line: the sub-commands (``nnparity.commands``, one module each, parser beside its
code) assembled, and ``main``, which turns every failure the user can act on into one line and an exit code.

Frameworks are imported only by the commands that run them, so ``nnparity --help``
and NumPy-only runs (``--impl numpy``) stay fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from nnparity import threads
from nnparity.commands import COMMANDS, EXAMPLES
from nnparity.errors import UsageError


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2, and no option is taken from a prefix of its name
    (``--case`` is an error naming ``--cases``, never a run of it)."""

    def __init__(self, *args, **kwargs):
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    words: list = []  # the command line being parsed (main sets it): its sub-command's options come first
    last_error = ""  # the message of the last usage error (``check --json`` puts it in its JSON answer)

    def error(self, message):
        if message.startswith("unrecognized arguments:"):
            message += _suggestion(self, message.split(":", 1)[1].split())
        _Parser.last_error = f"{message} (see {self.prog} --help)"
        self.exit(2, f"{self.prog}: error: {_Parser.last_error}\n")


def _options(parser) -> list[str]:
    """Every option string of ``parser`` and of the sub-command the command line names (or of all of them)."""
    found, named = [], _Parser.words[:1]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            chosen = [p for name, p in action.choices.items() if name in named] or list(action.choices.values())
            for sub in chosen:
                found += _options(sub)
        found += [o for o in action.option_strings if o.startswith("--")]
    return list(dict.fromkeys(found))


def _suggestion(parser, words) -> str:
    """``; did you mean --cases?`` for an unknown option that is a prefix of one (abbreviations are refused), close to
    one, or its initials (``--lr``: ``--learning-rate``); "" when nothing is close."""
    import difflib

    options = _options(parser)
    hints = []
    for word in (w.split("=", 1)[0] for w in words if w.startswith("--")):
        initials = [o for o in options if "-" in o[2:] and "".join(p[0] for p in o[2:].split("-")) == word[2:]]
        close = ([o for o in options if o.startswith(word)] or initials
                 or difflib.get_close_matches(word, options, n=1))
        if close:
            hints.append(f"{word}: did you mean {' or '.join(close[:3])}?")
    return ("; " + "; ".join(hints)) if hints else ""


def _command(name):
    return importlib.import_module(f"nnparity.commands.{name.replace('-', '_')}")  # upgrade-check: upgrade_check


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="nnparity",
        description="The networks of the notes in NumPy, PyTorch, TensorFlow and JAX, and proof that they agree.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMANDS:
        _command(name).add_parser(sub)
    return parser


def main(argv=None) -> int:
    """Run one command; every failure the user can act on is one line on stderr (exit codes: docs/commands.md)."""
    try:  # before anything loads NumPy (parsing the arguments can): a pool is sized when its library loads
        threads.apply()
    except UsageError as exc:
        print(f"nnparity: error: {exc}", file=sys.stderr)
        return 2
    parser = build_parser()
    words = _Parser.words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:
        if exc.code == 2 and words[:1] == ["check"] and "--json" in words:
            _json_error(_Parser.last_error, 2)
        raise
    command = _command(args.command).run
    try:
        with _quiet_numerics():
            code = command(args)
            sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except UsageError as exc:
        print(f"nnparity {args.command}: error: {exc}", file=sys.stderr)
        return _json_error(str(exc), 2, args)
    except MemoryError as exc:
        why = " ".join(str(exc).split()) or "an allocation failed"
        message = f"out of memory ({why}); use smaller --layer-dims or --batch-size, or fewer --epochs"
        print(f"nnparity {args.command}: error: {message}", file=sys.stderr)
        return _json_error(message, 2, args)
    except BrokenPipeError:  # the reader went away (| head): stop quietly, as a SIGPIPE'd Unix tool would
        _stdout_to_devnull()
        return 141
    except KeyboardInterrupt:
        print(f"nnparity {args.command}: interrupted; nothing was written", file=sys.stderr)
        return _json_error("interrupted", 130, args)


def _json_error(message, code, args=None) -> int:
    """``check --json`` answers every exit with one JSON document on stdout, an error too (stderr keeps its line)."""
    if args is None or (args.command == "check" and getattr(args, "json", False)):
        import json

        target = getattr(args, "target", None)
        try:
            json.dump({"verdict": "error", "target": target, "error": message, "exit_code": code}, sys.stdout)
            sys.stdout.write("\n")
            sys.stdout.flush()
        except (BrokenPipeError, ValueError):
            pass
    return code


def _quiet_numerics():
    """NumPy's floating-point warnings (overflow in exp, log(0), ...) never reach the user: a diverging or
    saturating run is reported in words by the command (train: the step and the fix)."""
    import contextlib
    import warnings

    import numpy as np

    stack = contextlib.ExitStack()
    stack.enter_context(np.errstate(all="ignore"))
    stack.enter_context(warnings.catch_warnings())
    warnings.simplefilter("ignore", RuntimeWarning)
    return stack


def _stdout_to_devnull():
    """Point stdout at /dev/null so that the interpreter's final flush of a closed pipe is silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # no real file descriptor (an in-process capture)
        pass


if __name__ == "__main__":
    sys.exit(main())
