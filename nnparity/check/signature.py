"""A known mistake of a learner's function, as data: the type both tables of known mistakes are made of
(``nnparity.check.diagnosis.SIGNATURES``, the dense networks'; ``nnparity.check.diagnosis_conv.CONV_SIGNATURES``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Signature:
    """A known mistake: which quantities it shows in, how to recognise it, and what to say.

    ``match(view)`` returns None or the fields that fill ``message`` and ``hint`` (besides ``q``, the
    quantity, ``m`` and ``equation``, the notes' equation of the quantity).  ``quantities`` are base
    names (``dW``, ``cost``, ``v``, ...; empty: any), ``functions`` the course functions (None: any whose
    context carries the inputs).
    """

    id: str
    quantities: frozenset[str]
    match: Callable[..., dict | None]  # (diagnosis._View of the divergence) -> the fields, or None
    message: str
    hint: str
    functions: frozenset[str] | None = None
