"""Data sets: the embedded ones, files on disk, and checks before training.

Examples are columns, as in the notes::

    X  (n_x, m)  float64      Y  (1, m)  float64

Embedded sets (no download), all named in ``EMBEDDED``: ``planar`` (the course
"flower" points), ``digits-3v8`` (scikit-learn's bundled 8x8 digits, 3 against 8),
``digits`` (all 10 classes), ``moons``, ``circles``, ``blobs`` and
``breast-cancer``.  Files:
``.npz`` (arrays ``X`` (m, ...) and ``y``), ``.csv`` (label in the last
column, optional header row) and the course ``.h5`` layout
(``train_set_x``/``train_set_y`` or ``test_set_x``/``test_set_y``).

Every problem with the user's data is a :class:`UsageError` whose message is
one line naming the problem and the fix.  Nothing here prints or writes.
h5py and scikit-learn are imported only by the functions that need them.
"""

from __future__ import annotations

import csv
import functools
import os
from dataclasses import dataclass

import numpy as np

from nnparity.errors import UsageError

EMBEDDED: dict[str, str] = {
    "planar": "course 'flower' points: 2 features, 400 examples, labels 0/1 (200 each); no test split",
    "digits-3v8": ("scikit-learn 8x8 digits, 3 (label 0) vs 8 (label 1): 64 pixels scaled to [0, 1]; "
                   "75/25 train/test split"),
    "digits": "scikit-learn 8x8 digits, 10 classes (labels 0..9): 64 pixels scaled to [0, 1]; 75/25 train/test split",
    "moons": "scikit-learn make_moons(400, noise=0.2, random_state=0): 2 features, labels 0/1; 75/25 split",
    "circles": "scikit-learn make_circles(400, noise=0.1, factor=0.5, random_state=0): 2 features, labels 0/1; "
               "75/25 split",
    "blobs": "scikit-learn make_blobs(400, centers=3, random_state=0): 2 features, 3 classes (labels 0..2); "
             "75/25 split",
    "breast-cancer": "scikit-learn's bundled Wisconsin breast cancer: 30 features standardised with the training "
                     "split's mean and std, labels 0/1 (1 = benign); 75/25 split",
}

FILE_TYPES = (".npz", ".csv", ".h5")
_H5_EXTENSIONS = (".h5", ".hdf5")
_WITH_TEST_SPLIT = ("digits-3v8", "digits", "moons", "circles", "blobs", "breast-cancer")
_HOW = "give a path to an existing .npz, .csv or .h5 file, or an embedded name: " + ", ".join(EMBEDDED)


@dataclass(frozen=True, eq=False)
class Dataset:
    """A data set, examples as columns.

    ``X`` (n_x, m) and ``Y`` (1, m) are float64; ``X_test`` (n_x, m_test) and
    ``Y_test`` (1, m_test) are the held-out split, or None when there is none.
    """

    name: str
    X: np.ndarray
    Y: np.ndarray
    X_test: np.ndarray | None
    Y_test: np.ndarray | None
    description: str

    @property
    def n_x(self) -> int:
        return self.X.shape[0]

    @property
    def m(self) -> int:
        return self.X.shape[1]


# --------------------------------------------------------------------------- embedded


def planar_dataset() -> tuple[np.ndarray, np.ndarray]:
    """The course ``load_planar_dataset``: X (2, 400), Y (1, 400) in {0, 1}, float64.

    Same random draws in the same order as the course notebook, so the points match.
    """
    rng = np.random.RandomState(1)
    m, N, D, a = 400, 200, 2, 4  # examples, points per class, dimensions, petal length
    X = np.zeros((m, D))
    Y = np.zeros((m, 1), dtype="uint8")
    for j in range(2):
        ix = range(N * j, N * (j + 1))
        t = np.linspace(j * 3.12, (j + 1) * 3.12, N) + rng.randn(N) * 0.2  # theta
        r = a * np.sin(4 * t) + rng.randn(N) * 0.2  # radius
        X[ix] = np.c_[r * np.sin(t), r * np.cos(t)]
        Y[ix] = j
    return np.ascontiguousarray(X.T), np.ascontiguousarray(Y.T, dtype=np.float64)


def digits_3v8() -> Dataset:
    """Digits 3 (label 0) and 8 (label 1) from scikit-learn's bundled ``load_digits``.

    X (64, m_train), X_test (64, m_test), pixels scaled by 1/16 into [0, 1].  The split is
    ``RandomState(0).permutation(m)``: the first floor(0.75 m) indices train, the rest test.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UsageError("the digits-3v8 data set needs scikit-learn; pip install scikit-learn") from None
    digits = load_digits()
    keep = (digits.target == 3) | (digits.target == 8)
    X = digits.data[keep].astype(np.float64) / 16.0  # (m, 64)
    Y = (digits.target[keep] == 8).astype(np.float64)  # (m,)
    m = X.shape[0]
    order = np.random.RandomState(0).permutation(m)
    train, test = order[: (3 * m) // 4], order[(3 * m) // 4 :]

    def cols(idx):
        return np.ascontiguousarray(X[idx].T), Y[idx].reshape(1, -1)

    X_train, Y_train = cols(train)
    X_test, Y_test = cols(test)
    return Dataset("digits-3v8", X_train, Y_train, X_test, Y_test, EMBEDDED["digits-3v8"])


def digits_10() -> Dataset:
    """All of scikit-learn's bundled 8x8 digits, 10 classes: X (64, m), Y (1, m) integer labels 0..9.

    Pixels scaled by 1/16; split as digits-3v8 (``RandomState(0).permutation(m)``, first 75% train).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UsageError("the digits data set needs scikit-learn; pip install scikit-learn") from None
    digits = load_digits()
    X = digits.data.astype(np.float64) / 16.0
    Y = digits.target.astype(np.float64)
    m = X.shape[0]
    order = np.random.RandomState(0).permutation(m)
    train, test = order[: (3 * m) // 4], order[(3 * m) // 4 :]
    return Dataset("digits", np.ascontiguousarray(X[train].T), Y[train].reshape(1, -1),
                   np.ascontiguousarray(X[test].T), Y[test].reshape(1, -1), EMBEDDED["digits"])


def _split(name: str, X: np.ndarray, y: np.ndarray) -> Dataset:
    """Examples as rows in, a Dataset out: ``RandomState(0).permutation(m)``, first floor(0.75 m) train."""
    m = X.shape[0]
    order = np.random.RandomState(0).permutation(m)
    train, test = order[: (3 * m) // 4], order[(3 * m) // 4 :]
    return Dataset(name, np.ascontiguousarray(X[train].T, dtype=np.float64), y[train].reshape(1, -1).astype(np.float64),
                   np.ascontiguousarray(X[test].T, dtype=np.float64), y[test].reshape(1, -1).astype(np.float64),
                   EMBEDDED[name])


def sklearn_dataset(name: str) -> Dataset:
    """moons, circles, blobs (scikit-learn's generators, fixed seeds) and breast-cancer (bundled)."""
    try:
        from sklearn import datasets
    except ImportError:
        raise UsageError(f"the {name} data set needs scikit-learn; pip install scikit-learn") from None
    if name == "moons":
        return _split(name, *datasets.make_moons(n_samples=400, noise=0.2, random_state=0))
    if name == "circles":
        return _split(name, *datasets.make_circles(n_samples=400, noise=0.1, factor=0.5, random_state=0))
    if name == "blobs":
        return _split(name, *datasets.make_blobs(n_samples=400, centers=3, random_state=0))
    bunch = datasets.load_breast_cancer()
    ds = _split(name, bunch.data, bunch.target)
    mean, std = ds.X.mean(axis=1, keepdims=True), ds.X.std(axis=1, keepdims=True)
    return Dataset(name, (ds.X - mean) / std, ds.Y, (ds.X_test - mean) / std, ds.Y_test, ds.description)


def _embedded(name: str) -> Dataset:
    if name == "planar":
        X, Y = planar_dataset()
        return Dataset("planar", X, Y, None, None, EMBEDDED["planar"])
    if name == "digits":
        return digits_10()
    if name in ("moons", "circles", "blobs", "breast-cancer"):
        return sklearn_dataset(name)
    return digits_3v8()


# --------------------------------------------------------------------------- files


def _show(path) -> str:
    """The path as text safe for a one-line message."""
    s = os.fspath(path) if isinstance(path, os.PathLike) else str(path)
    return s if s.isprintable() else repr(s)


def _why(exc: BaseException) -> str:
    """``'TypeName: first line of message'`` for a caught exception, one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _features(x: np.ndarray, where: str) -> np.ndarray:
    """(m, ...) numeric array -> (n_x, m) float64; integer pixels scaled by 1/255."""
    if x.ndim < 2:
        raise UsageError(
            f"X in {where} has shape {x.shape}; store one example per row, shape (m, n_x) "
            "(reshape to (m, 1) for one feature)"
        )
    if x.dtype.kind not in "biuf":
        raise UsageError(f"X in {where} has non-numeric dtype {x.dtype}; store numbers (float or integer pixels)")
    flat = x.reshape(x.shape[0], -1)  # C order: each example's pixels in row-major order
    if x.dtype.kind in "iu":
        flat = flat.astype(np.float64) / 255.0
    return np.ascontiguousarray(flat.T, dtype=np.float64)


def _labels(y: np.ndarray, where: str) -> np.ndarray:
    """(m,), (m, 1) or (1, m) numeric labels -> (1, m) float64."""
    if y.dtype.kind not in "biuf":
        raise UsageError(f"y in {where} has non-numeric dtype {y.dtype}; store numeric labels, e.g. 0/1")
    if y.ndim == 1 or (y.ndim == 2 and 1 in y.shape):
        return y.reshape(1, -1).astype(np.float64)
    raise UsageError(f"y in {where} has shape {y.shape}; store labels with shape (m,), (m, 1) or (1, m)")


def _pair(X: np.ndarray, Y: np.ndarray, where: str) -> tuple[np.ndarray, np.ndarray]:
    if X.shape[1] != Y.shape[1]:
        raise UsageError(
            f"{where} has {X.shape[1]} examples in X but {Y.shape[1]} labels in y; give exactly one label per example"
        )
    if X.shape[1] == 0:
        raise UsageError(f"{where} has no examples; give a file with at least one example")
    return X, Y


def _read_npz(path: str) -> tuple[np.ndarray, np.ndarray]:
    where = f"data file {_show(path)}"
    try:
        with np.load(path, allow_pickle=False) as f:
            names = list(f.files)
            missing = [k for k in ("X", "y") if k not in names]
            if missing:
                found = ", ".join(names) or "none"
                raise UsageError(
                    f"{where} has no array {' or '.join(repr(k) for k in missing)} (found: {found}); "
                    "save it with np.savez(path, X=features, y=labels)"
                )
            x, y = f["X"], f["y"]
    except UsageError:
        raise
    except Exception as exc:  # corrupt zip, pickled object arrays, not an npz at all...
        raise UsageError(
            f"cannot read {where} as .npz ({_why(exc)}); give a file written by np.savez(path, X=..., y=...)"
        ) from None
    return _pair(_features(x, where), _labels(y, where), where)


def _read_h5(path: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    where = f"data file {_show(path)}"
    try:
        import h5py
    except ImportError:
        raise UsageError(f"reading {where} needs h5py; pip install h5py") from None
    order = ("train", "test") if split == "train" else ("test", "train")
    try:
        with h5py.File(path, "r") as f:
            names = sorted(f.keys())
            for s in order:
                kx, ky = f"{s}_set_x", f"{s}_set_y"
                if kx in f and ky in f:
                    x, y = np.asarray(f[kx][()]), np.asarray(f[ky][()])
                    where = f"{where} ({kx}/{ky})"
                    break
            else:
                raise UsageError(
                    f"{where} has keys {', '.join(names) or 'none'} but not train_set_x/train_set_y "
                    "or test_set_x/test_set_y; use the course layout or save as .npz with X and y"
                )
    except UsageError:
        raise
    except Exception as exc:  # not HDF5, truncated, unreadable dataset...
        raise UsageError(f"cannot read {where} as HDF5 ({_why(exc)}); "
                         "give a valid .h5 file in the course layout") from None
    return _pair(_features(x, where), _labels(y, where), where)


def _read_csv(path: str) -> tuple[np.ndarray, np.ndarray]:
    where = f"data file {_show(path)}"
    rows: list[list[float]] = []
    width = None
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            first = True
            for cells in reader:
                cells = [c.strip() for c in cells]
                if not any(cells):
                    continue  # blank line
                try:
                    values = [float(c) for c in cells]
                except ValueError:
                    if first:  # a first row that is not all numbers is a header
                        first = False
                        width = len(cells)
                        continue
                    bad = next(i for i, c in enumerate(cells) if not _is_number(c))
                    raise UsageError(
                        f"{where} row {reader.line_num} column {bad + 1} is not a number ({cells[bad]!r}); "
                        "make every cell after the optional header row numeric"
                    ) from None
                first = False
                if width is None:
                    width = len(values)
                if len(values) != width:
                    raise UsageError(
                        f"{where} row {reader.line_num} has {len(values)} columns but the first row has {width}; "
                        "give every row the same number of columns"
                    )
                rows.append(values)
    except UsageError:
        raise
    except Exception as exc:  # unreadable, not text, NUL bytes...
        raise UsageError(f"cannot read {where} as CSV ({_why(exc)}); "
                         "give a comma-separated text file of numbers") from None
    if width is not None and width < 2:
        raise UsageError(f"{where} has {width} column; put the features in the first columns and the label in the last")
    if not rows:
        raise UsageError(f"{where} has no data rows; "
                         "give at least one row of numbers with the label in the last column")
    table = np.asarray(rows, dtype=np.float64)  # (m, n_x + 1)
    return np.ascontiguousarray(table[:, :-1].T), np.ascontiguousarray(table[:, -1:].T)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_file(path, *, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Read a data file: returns X (n_x, m) and Y (1, m), both float64.

    ``.npz``: arrays ``X`` (m, n_x) or (m, d1, d2, ...) (flattened per example in C order)
    and ``y`` (m,), (m, 1) or (1, m).  ``.csv``: label in the last column, optional header.
    ``.h5``: course layout; ``split`` says which of train/test is read when the file has both.
    Integer X (npz, h5) is pixel data: scaled by 1/255.  Float X is kept as it is.
    """
    text = _show(path)
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if not os.path.exists(path):
        raise UsageError(f"data file not found: {text}; {_HOW}")
    if os.path.isdir(path):
        raise UsageError(f"data path {text} is a directory; give a .npz, .csv or .h5 file inside it")
    if ext == ".npz":
        return _read_npz(path)
    if ext == ".csv":
        return _read_csv(path)
    if ext in _H5_EXTENSIONS:
        return _read_h5(path, split)
    kind = f"type {ext}" if ext else "without an extension"
    raise UsageError(f"unsupported data file {kind}: {text}; use a .npz, .csv or .h5 file")


def _is_pathlike(spec: str) -> bool:
    return os.path.exists(spec) or os.sep in spec or "/" in spec or os.path.splitext(spec)[1] != ""


def _unknown(spec: str) -> UsageError:
    if not spec.strip():
        return UsageError(f"the data name is empty; use one of: {', '.join(EMBEDDED)}, or a path to a .npz, .csv "
                          "or .h5 file")
    if _is_pathlike(spec):
        return UsageError(f"data file not found: {_show(spec)}; {_HOW}")
    return UsageError(
        f"unknown data set {_show(spec)}: not an embedded name and no such file; "
        f"use one of: {', '.join(EMBEDDED)}, or a path to a .npz, .csv or .h5 file"
    )


def load_data(spec) -> Dataset:
    """An embedded set by name (``planar``, ``digits-3v8``) or a data file (then no test split).

    X (n_x, m), Y (1, m) float64.  Values are not checked here; see :func:`check_data`.
    """
    spec = os.fspath(spec)
    if spec in EMBEDDED:
        return _embedded(spec)
    if not os.path.exists(spec):
        raise _unknown(spec)
    X, Y = load_file(spec)
    desc = f"file {_show(spec)}: {X.shape[0]} features, {X.shape[1]} examples"
    return Dataset(os.path.basename(spec) or spec, X, Y, None, None, desc)


def load_test_data(spec) -> tuple[np.ndarray, np.ndarray]:
    """For ``--test-data``: X (n_x, m) and Y (1, m) from a file, or an embedded set's test split."""
    spec = os.fspath(spec)
    if spec in EMBEDDED:
        ds = _embedded(spec)
        if ds.X_test is None:
            others = [n for n in _WITH_TEST_SPLIT if n != spec]
            raise UsageError(
                f"embedded data set {spec} has no test split; give --test-data a file path"
                + (f" or one of: {', '.join(others)}" if others else "")
            )
        return ds.X_test, ds.Y_test
    if not os.path.exists(spec):
        raise _unknown(spec)
    return load_file(spec, split="test")


# --------------------------------------------------------------------------- checks


def check_data(X, Y, n_x_expected: int | None, loss: str, what: str = "training data", classes: int = 2) -> None:
    """Raise UsageError (one line: problem and fix) unless X (n_x, m), Y (1, m) are usable.

    Checks shapes, m > 0, no NaN/inf, n_x == ``n_x_expected`` (when given) and, for
    ``loss == "cross_entropy"``, labels in {0, 1}.  Example numbers are column indices (from 0).
    """
    X, Y = np.asarray(X), np.asarray(Y)
    for name, a in (("X", X), ("Y", Y)):
        if a.dtype.kind not in "biuf":
            raise UsageError(f"{what} {name} has non-numeric dtype {a.dtype}; give numbers")
    if X.ndim != 2:
        raise UsageError(f"{what} X must be 2-D (n_x, m) with examples as columns, got shape {X.shape}; reshape it")
    m = X.shape[1]
    if Y.shape != (1, m):
        raise UsageError(
            f"{what} Y must have shape (1, m) = (1, {m}) to match X {X.shape}, got {Y.shape}; "
            "give one label per example in one row"
        )
    if m == 0:
        raise UsageError(f"{what} has no examples (m = 0); give at least one example")
    for name, a in (("X", X), ("Y", Y)):
        bad = ~np.isfinite(a)
        count = int(bad.sum())
        if count:
            first = int(np.flatnonzero(bad.any(axis=0))[0])
            raise UsageError(
                f"{what} has {count} NaN/inf values in {name} (first at example {first}); clean or drop them"
            )
    if n_x_expected is not None and X.shape[0] != n_x_expected:
        n = X.shape[0]
        fix = f"make the first size {n}" if what == "training data" else f"give {what} with {n_x_expected} features"
        raise UsageError(f"{what} has {n} features but --layer-dims starts with {n_x_expected}; {fix}")
    if loss == "categorical_cross_entropy":
        off = np.flatnonzero((Y[0] != np.round(Y[0])) | (Y[0] < 0) | (Y[0] >= classes))
        if off.size:
            i = int(off[0])
            raise UsageError(
                f"{what} labels must be integers 0..{classes - 1} for a {classes}-class softmax, "
                f"found {float(Y[0, i])} "
                f"(example {i}); relabel, or end --layer-dims with the number of classes"
            )
    if loss == "cross_entropy":
        off = np.flatnonzero((Y[0] != 0) & (Y[0] != 1))
        if off.size:
            i = int(off[0])
            integers = bool(np.all(Y[0] == np.round(Y[0])) and Y[0].min() >= 0)
            fix = (f"for {int(Y[0].max()) + 1} classes use --output-activation softmax and end --layer-dims with "
                   f"{int(Y[0].max()) + 1}" if integers else "relabel to {0, 1} (or use --loss l2)")
            raise UsageError(
                f"{what} labels must be 0 or 1 for cross-entropy, found {float(Y[0, i])} (example {i}); {fix}"
            )


# --------------------------------------------------------------------------- pins

#: The grids' embedded data sets, pinned: X's and Y's shapes, the labels' SHA-256 (float64, C order) and X's sum,
#: sum of squares, minimum and maximum.  Parity cannot see a change every implementation shares (a loader that
#: scales the digits by 1/255 feeds them all alike); these pins can, and every report checks those of its data.
#: The digits are sixteenths (exact in float64) and the labels integers; planar's X comes through sin and cos,
#: whose last bits differ between maths libraries, hence its statistics, not a hash of X.
PINS = {
    "planar": ((2, 400), (1, 400), "5fff71b5d36219613147eade56075d145e196e79494fa5b7ad5318f4a2bd2cfc",
               (10.087983277441666, 3156.783789349409, -4.211898112302497, 4.078165875644617)),
    "digits-3v8": ((64, 267), (1, 267), "e9828a7e3e7a3494400aad33f7c18bd6c39d910a02ed840083a13848c8ace166",
                   (5292.4375, 4015.55078125, 0.0, 1.0)),
    "digits": ((64, 1347), (1, 1347), "d57f9dceaaaf3e6e350669be599bb7c91ed65261432db1693311d05f90269b57",
               (26321.5625, 20212.84765625, 0.0, 1.0)),
}
#: How far a pinned statistic may move: a few ulp of each of planar's 800 sin/cos values (maths libraries differ
#: by that much), summed, stay below 1e-13 of the sums; a loader or data change moves them by 1e-3 or more.
PIN_RTOL = 1e-10


def pin_problems(name: str, dataset=None) -> list[str]:
    """What differs between the embedded data set ``name`` (or ``dataset``, loaded from it) and its pin
    (``PINS``), one line each; empty where it matches or has no pin."""
    import hashlib

    if name not in PINS:
        return []
    ds = load_data(name) if dataset is None else dataset
    x_shape, y_shape, y_sha, stats = PINS[name]
    if ds.X.shape != x_shape or ds.Y.shape != y_shape:
        return [f"data set {name}: X {ds.X.shape}, Y {ds.Y.shape} where its pin says X {x_shape}, Y {y_shape}"]
    problems = []
    if hashlib.sha256(np.ascontiguousarray(ds.Y, dtype=np.float64).tobytes()).hexdigest() != y_sha:
        problems.append(f"data set {name}: its labels Y differ from their pin (SHA-256)")
    X = np.asarray(ds.X, dtype=np.float64)
    for what, got, want in zip(("sum", "sum of squares", "minimum", "maximum"),
                               (X.sum(), (X * X).sum(), X.min(), X.max()), stats):
        if not abs(got - want) <= PIN_RTOL * max(abs(want), 1.0):
            problems.append(f"data set {name}: X's {what} is {got!r}, its pin {want!r}")
    return problems


@functools.cache
def size(name: str) -> int:
    """Training examples of the data set ``name``: its pin's (``PINS``, which every report checks against the
    loaded data) without loading it, else loaded once per process."""
    return PINS[name][0][1] if name in PINS else load_data(name).m
