"""Option types shared by the sub-commands: a bad value is one line (argparse's error) naming the flag."""

from __future__ import annotations

import argparse
import math


def positive_int(flag):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a positive integer, got {text!r}") from None
        if value < 1:
            raise argparse.ArgumentTypeError(f"{flag} must be a positive integer, got {value}")
        return value
    return parse


def non_negative_int(flag):
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a non-negative integer, got {text!r}") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{flag} must be a non-negative integer, got {value}")
        return value
    return parse


def positive_float(flag):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, got {text!r}") from None
        if not (math.isfinite(value) and value > 0):
            raise argparse.ArgumentTypeError(f"{flag} must be a positive finite number, got {text}")
        return value
    return parse


def non_negative_float(flag):
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{flag} must be a number, got {text!r}") from None
        if not (math.isfinite(value) and value >= 0):
            raise argparse.ArgumentTypeError(f"{flag} must be a non-negative finite number, got {text}")
        return value
    return parse


def layer_dims(text):
    try:
        dims = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--layer-dims must be comma-separated integers like 2,4,1, "
                                         f"got {text!r}") from None
    return dims


def max_drift(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--max-drift must be a number, got {text!r}") from None
    if math.isnan(value) or value < 0:
        raise argparse.ArgumentTypeError(f"--max-drift must be >= 0, got {text}")
    return value
