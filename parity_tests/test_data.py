"""nnparity.data: embedded sets, file round trips, and one-line UsageErrors."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from nnparity import data
from nnparity.data import (
    EMBEDDED,
    Dataset,
    check_data,
    digits_3v8,
    load_data,
    load_file,
    load_test_data,
    planar_dataset,
)
from nnparity.errors import UsageError


def raises_one_line(fn, *args, must_mention=(), **kwargs) -> str:
    """Call fn, expect a UsageError with a one-line message mentioning every item."""
    with pytest.raises(UsageError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and "\r" not in msg, msg
    assert "Traceback" not in msg
    assert ";" in msg, f"message should name the problem and the fix: {msg}"
    for item in must_mention:
        assert str(item) in msg, f"{item!r} not in {msg!r}"
    return msg


# --------------------------------------------------------------------------- embedded


def test_embedded_names():
    assert set(EMBEDDED) == {"planar", "digits-3v8", "digits", "moons", "circles", "blobs", "breast-cancer"}
    for desc in EMBEDDED.values():
        assert desc and "\n" not in desc


def test_digits_10_classes_split_and_one_hot():
    from sklearn.datasets import load_digits

    from reference.utils import one_hot

    ds = load_data("digits")
    digits = load_digits()
    m = digits.target.size
    order = np.random.RandomState(0).permutation(m)
    assert ds.X.shape == (64, (3 * m) // 4) and ds.X_test.shape == (64, m - (3 * m) // 4)
    np.testing.assert_array_equal(ds.Y[0], digits.target[order[: (3 * m) // 4]])
    np.testing.assert_array_equal(ds.X[:, 0], digits.data[order[0]] / 16)
    Y = one_hot(ds.Y, 10)
    assert Y.shape == (10, ds.m) and np.all(Y.sum(axis=0) == 1)
    assert np.all(Y[ds.Y[0].astype(int), np.arange(ds.m)] == 1)


def test_planar_shapes_and_labels():
    X, Y = planar_dataset()
    assert X.shape == (2, 400) and Y.shape == (1, 400)
    assert X.dtype == np.float64 and Y.dtype == np.float64
    assert set(np.unique(Y)) == {0.0, 1.0}
    assert (Y == 0).sum() == 200 and (Y == 1).sum() == 200
    # first 200 examples are class 0, the rest class 1
    assert np.all(Y[0, :200] == 0) and np.all(Y[0, 200:] == 1)


def test_planar_first_point_matches_independent_arithmetic():
    rng = np.random.RandomState(1)
    noise_t = rng.randn(200)[0] * 0.2  # t's draw comes first in iteration j = 0
    t0 = 0.0 + noise_t  # linspace(0, 3.12, 200)[0] == 0
    noise_r = rng.randn(200)[0] * 0.2
    r0 = 4 * math.sin(4 * t0) + noise_r
    X, _ = planar_dataset()
    assert X[0, 0] == pytest.approx(r0 * math.sin(t0), rel=1e-12)
    assert X[1, 0] == pytest.approx(r0 * math.cos(t0), rel=1e-12)


def test_planar_first_point_of_class_1():
    rng = np.random.RandomState(1)
    rng.randn(200), rng.randn(200)  # class 0 draws
    t = 3.12 + rng.randn(200)[0] * 0.2
    r = 4 * math.sin(4 * t) + rng.randn(200)[0] * 0.2
    X, _ = planar_dataset()
    assert X[:, 200] == pytest.approx([r * math.sin(t), r * math.cos(t)], rel=1e-12)


def test_planar_via_load_data_has_no_test_split():
    ds = load_data("planar")
    assert isinstance(ds, Dataset) and ds.name == "planar"
    assert ds.X.shape == (2, 400) and ds.X_test is None and ds.Y_test is None
    X, Y = planar_dataset()
    np.testing.assert_array_equal(ds.X, X)
    np.testing.assert_array_equal(ds.Y, Y)


def test_digits_3v8():
    from sklearn.datasets import load_digits

    digits = load_digits()
    n3, n8 = int((digits.target == 3).sum()), int((digits.target == 8).sum())
    m = n3 + n8
    ds = digits_3v8()
    m_train = (3 * m) // 4
    assert ds.X.shape == (64, m_train) and ds.Y.shape == (1, m_train)
    assert ds.X_test.shape == (64, m - m_train) and ds.Y_test.shape == (1, m - m_train)
    for X, Y in ((ds.X, ds.Y), (ds.X_test, ds.Y_test)):
        assert X.dtype == np.float64 and Y.dtype == np.float64
        assert X.min() >= 0.0 and X.max() <= 1.0
        assert set(np.unique(Y)) <= {0.0, 1.0}
    assert (ds.Y == 1).sum() + (ds.Y_test == 1).sum() == n8
    assert (ds.Y == 0).sum() + (ds.Y_test == 0).sum() == n3


def test_digits_split_follows_permutation():
    from sklearn.datasets import load_digits

    digits = load_digits()
    keep = np.flatnonzero((digits.target == 3) | (digits.target == 8))
    order = np.random.RandomState(0).permutation(keep.size)
    first = keep[order[0]]
    ds = digits_3v8()
    np.testing.assert_allclose(ds.X[:, 0], digits.data[first] / 16.0)
    assert ds.Y[0, 0] == (1.0 if digits.target[first] == 8 else 0.0)
    last = keep[order[-1]]
    np.testing.assert_allclose(ds.X_test[:, -1], digits.data[last] / 16.0)


def test_load_test_data_embedded():
    X, Y = load_test_data("digits-3v8")
    ds = load_data("digits-3v8")
    np.testing.assert_array_equal(X, ds.X_test)
    np.testing.assert_array_equal(Y, ds.Y_test)


def test_load_test_data_embedded_without_split():
    raises_one_line(load_test_data, "planar", must_mention=("planar", "test"))


# --------------------------------------------------------------------------- round trips


def test_npz_float_round_trip(tmp_path):
    X_rows = np.arange(15, dtype=np.float64).reshape(5, 3) * 0.5  # 5 examples, 3 features
    y = np.array([0, 1, 1, 0, 1])
    path = tmp_path / "d.npz"
    np.savez(path, X=X_rows, y=y)
    X, Y = load_file(path)
    assert X.shape == (3, 5) and Y.shape == (1, 5)
    assert X.dtype == np.float64 and Y.dtype == np.float64
    np.testing.assert_array_equal(X, X_rows.T)  # not scaled: float data left as is
    np.testing.assert_array_equal(Y[0], y)


@pytest.mark.parametrize("y_shape", [(4,), (4, 1), (1, 4)])
def test_npz_label_shapes(tmp_path, y_shape):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((4, 2)), y=np.array([1.0, 0.0, 1.0, 1.0]).reshape(y_shape))
    _, Y = load_file(path)
    np.testing.assert_array_equal(Y, [[1.0, 0.0, 1.0, 1.0]])


def test_npz_integer_images_flattened_c_order_and_scaled(tmp_path):
    rng = np.random.RandomState(3)
    imgs = rng.randint(0, 256, size=(6, 4, 4, 3)).astype(np.uint8)
    path = tmp_path / "img.npz"
    np.savez(path, X=imgs, y=np.arange(6) % 2)
    X, Y = load_file(path)
    assert X.shape == (48, 6)
    for i in range(6):
        np.testing.assert_allclose(X[:, i], imgs[i].reshape(-1) / 255.0)
    # C order: feature 1 is channel 1 of pixel (0, 0)
    assert X[1, 2] == pytest.approx(imgs[2, 0, 0, 1] / 255.0)
    assert X.max() <= 1.0 and X.min() >= 0.0


def test_npz_other_integer_dtype_scaled(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.array([[255, 0], [51, 102]], dtype=np.int64), y=[0, 1])
    X, _ = load_file(path)
    np.testing.assert_allclose(X, [[1.0, 0.2], [0.0, 0.4]])


def test_csv_without_header(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("1.5,2,0\n3,4.25,1\n-5,6,1\n")
    X, Y = load_file(path)
    np.testing.assert_array_equal(X, [[1.5, 3, -5], [2, 4.25, 6]])
    np.testing.assert_array_equal(Y, [[0, 1, 1]])


def test_csv_with_header(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x1,x2,label\n1,2,0\n3,4,1\n")
    X, Y = load_file(path)
    assert X.shape == (2, 2) and Y.shape == (1, 2)
    np.testing.assert_array_equal(X, [[1, 3], [2, 4]])
    np.testing.assert_array_equal(Y, [[0, 1]])


def test_csv_integers_not_scaled(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("200,0\n255,1\n")
    X, _ = load_file(path)
    np.testing.assert_array_equal(X, [[200, 255]])


def _write_course_h5(path, prefix, imgs, labels, extra=True):
    with h5py.File(path, "w") as f:
        f[f"{prefix}_set_x"] = imgs
        f[f"{prefix}_set_y"] = labels
        if extra:
            f["list_classes"] = np.array([b"non-cat", b"cat"])


@pytest.mark.parametrize("prefix", ["train", "test"])
def test_h5_course_layout(tmp_path, prefix):
    rng = np.random.RandomState(7)
    imgs = rng.randint(0, 256, size=(5, 4, 4, 3)).astype(np.uint8)
    labels = np.array([1, 0, 0, 1, 1], dtype=np.int64)
    path = tmp_path / f"{prefix}.h5"
    _write_course_h5(path, prefix, imgs, labels)
    X, Y = load_file(path)
    assert X.shape == (48, 5) and Y.shape == (1, 5)
    assert X.dtype == np.float64 and Y.dtype == np.float64
    np.testing.assert_allclose(X, imgs.reshape(5, -1).T / 255.0)
    np.testing.assert_array_equal(Y[0], labels)
    ds = load_data(str(path))
    assert ds.X_test is None and ds.X.shape == (48, 5)
    X2, _ = load_test_data(str(path))
    np.testing.assert_array_equal(X2, X)


def test_h5_with_both_splits_picks_by_use(tmp_path):
    path = tmp_path / "both.h5"
    with h5py.File(path, "w") as f:
        f["train_set_x"] = np.zeros((3, 2, 2, 3), np.uint8)
        f["train_set_y"] = np.zeros(3)
        f["test_set_x"] = np.full((2, 2, 2, 3), 255, np.uint8)
        f["test_set_y"] = np.ones(2)
    X = load_data(str(path)).X
    assert X.shape == (12, 3) and X.max() == 0.0
    Xt, Yt = load_test_data(str(path))
    assert Xt.shape == (12, 2) and Xt.min() == 1.0 and np.all(Yt == 1)


def test_load_data_from_file_gives_dataset(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("1,2,1\n")
    ds = load_data(str(path))
    assert isinstance(ds, Dataset)
    assert ds.X.shape == (2, 1) and ds.Y.shape == (1, 1) and ds.X_test is None and ds.Y_test is None


def test_loading_writes_nothing(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((2, 2)), y=[0, 1])
    before = sorted(p.name for p in tmp_path.iterdir())
    load_data(str(path))
    load_test_data(str(path))
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# --------------------------------------------------------------------------- file errors


def test_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    raises_one_line(load_data, str(path), must_mention=(str(path), "not found", "planar", "digits-3v8"))
    raises_one_line(load_file, path, must_mention=(str(path),))
    raises_one_line(load_test_data, str(path), must_mention=(str(path),))


def test_unknown_name_lists_embedded():
    raises_one_line(load_data, "flowerz", must_mention=("flowerz", "planar", "digits-3v8"))
    raises_one_line(load_test_data, "flowerz", must_mention=("flowerz", "planar", "digits-3v8"))


def test_unknown_extension(tmp_path):
    path = tmp_path / "d.txt"
    path.write_text("1,2,3\n")
    raises_one_line(load_data, str(path), must_mention=(str(path), ".txt", ".npz", ".csv", ".h5"))


def test_directory_is_an_error(tmp_path):
    raises_one_line(load_data, str(tmp_path), must_mention=(str(tmp_path),))


@pytest.mark.parametrize("ext", [".npz", ".h5", ".csv"])
def test_corrupt_files(tmp_path, ext):
    path = tmp_path / f"bad{ext}"
    path.write_bytes(b"\x00\x01garbage\xff\xfe" * 10)
    msg = raises_one_line(load_data, str(path), must_mention=(str(path),))
    assert "cannot read" in msg


def test_corrupt_error_has_no_chained_cause(tmp_path):
    path = tmp_path / "bad.npz"
    path.write_bytes(b"PK not really a zip")
    with pytest.raises(UsageError) as info:
        load_file(path)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_npz_missing_arrays(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, features=np.ones((2, 2)), y=[0, 1])
    raises_one_line(load_file, path, must_mention=(str(path), "'X'", "features"))
    np.savez(path, X=np.ones((2, 2)), labels=[0, 1])
    raises_one_line(load_file, path, must_mention=(str(path), "'y'", "labels"))


def test_npz_object_array_rejected(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.array([[1, "a"]], dtype=object), y=[0])
    raises_one_line(load_file, path, must_mention=(str(path),))


def test_npz_length_mismatch(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((5, 2)), y=np.zeros(4))
    raises_one_line(load_file, path, must_mention=(str(path), "5", "4"))


def test_npz_bad_label_shape(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones((4, 2)), y=np.zeros((2, 2)))
    raises_one_line(load_file, path, must_mention=(str(path), "(2, 2)"))


def test_npz_one_dimensional_X(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, X=np.ones(4), y=np.zeros(4))
    raises_one_line(load_file, path, must_mention=(str(path), "(4,)"))


def test_h5_wrong_keys(tmp_path):
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 4, 4, 3), np.uint8)
        f["train_set_x"] = np.zeros((2, 4, 4, 3), np.uint8)  # no train_set_y
    raises_one_line(load_file, path, must_mention=(str(path), "images", "train_set_x", "train_set_y"))


def test_h5_length_mismatch(tmp_path):
    path = tmp_path / "d.h5"
    _write_course_h5(path, "train", np.zeros((3, 4, 4, 3), np.uint8), np.zeros(2))
    raises_one_line(load_file, path, must_mention=(str(path), "3", "2"))


def test_csv_one_column(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("1\n0\n1\n")
    raises_one_line(load_file, path, must_mention=(str(path), "1 column"))


def test_csv_non_numeric_cell_names_row(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,0\n3,oops,1\n")
    raises_one_line(load_file, path, must_mention=(str(path), "row 3", "oops"))


def test_csv_ragged_rows(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("1,2,0\n3,4,5,1\n")
    raises_one_line(load_file, path, must_mention=(str(path), "row 2"))


def test_csv_header_only(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("x1,x2,label\n")
    raises_one_line(load_file, path, must_mention=(str(path),))


def test_path_with_newline_stays_one_line(tmp_path):
    raises_one_line(load_data, str(tmp_path / "a\nb.npz"))


# --------------------------------------------------------------------------- check_data


def _good(m=10, n_x=3):
    rng = np.random.RandomState(0)
    return rng.randn(n_x, m), (rng.rand(1, m) > 0.5).astype(np.float64)


def test_check_data_accepts_good_data():
    X, Y = _good()
    check_data(X, Y, 3, "cross_entropy")
    check_data(X, Y, None, "l2", what="test data")


def test_check_data_shapes():
    X, Y = _good()
    raises_one_line(check_data, X[0], Y, None, "l2", must_mention=("X", "2-D"))
    raises_one_line(check_data, X, Y[0], None, "l2", must_mention=("Y", "(10,)"))
    raises_one_line(check_data, X, Y[:, :9], None, "l2", must_mention=("Y", "(1, 9)"))
    raises_one_line(check_data, X, np.vstack([Y, Y]), None, "l2", must_mention=("Y",))


def test_check_data_empty():
    raises_one_line(check_data, np.zeros((3, 0)), np.zeros((1, 0)), None, "l2", must_mention=("m = 0",))


def test_check_data_nan_inf_counts_and_position():
    X, Y = _good()
    X[1, 5] = np.nan
    X[0, 7] = np.inf
    X[2, 9] = -np.inf
    msg = raises_one_line(
        check_data, X, Y, 3, "cross_entropy", must_mention=("training data", "3 NaN/inf", "in X", "example 5")
    )
    assert "clean or drop" in msg
    X, Y = _good()
    Y[0, 4] = np.nan
    raises_one_line(check_data, X, Y, 3, "l2", what="test data",
                    must_mention=("test data", "1 NaN/inf", "in Y", "example 4"))


def test_check_data_feature_count():
    X, Y = _good(n_x=2)
    msg = raises_one_line(check_data, X, Y, 12288, "cross_entropy")
    assert msg == "training data has 2 features but --layer-dims starts with 12288; make the first size 2"
    raises_one_line(check_data, X, Y, 12288, "l2", what="test data", must_mention=("test data", "2", "12288"))


def test_check_data_cross_entropy_labels():
    X, Y = _good()
    Y[0, 7] = 2.0
    Y[0, 8] = 3.0
    raises_one_line(  # integer labels: several classes, so the fix is a softmax output
        check_data, X, Y, 3, "cross_entropy",
        must_mention=("labels must be 0 or 1 for cross-entropy, found 2.0 (example 7); for 4 classes use "
                      "--output-activation softmax and end --layer-dims with 4",),
    )
    Y[0, 7], Y[0, 8] = 0.5, 1.0
    raises_one_line(
        check_data, X, Y, 3, "cross_entropy",
        must_mention=("labels must be 0 or 1 for cross-entropy, found 0.5 (example 7); relabel to {0, 1} "
                      "(or use --loss l2)",),
    )


@pytest.mark.parametrize("loss", ["l1", "l2"])
def test_check_data_regression_losses_accept_any_finite_label(loss):
    X, Y = _good()
    Y = Y * 3.7 - 12.0
    check_data(X, Y, 3, loss)


def test_module_imports_lazily():
    code = "import sys, nnparity.data; print(any(m in sys.modules for m in ('h5py', 'sklearn', 'torch', 'tensorflow')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(data.__file__).parents[1])
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name,n_x,m,classes", [("moons", 2, 400, 2), ("circles", 2, 400, 2), ("blobs", 2, 400, 3),
                                                ("breast-cancer", 30, 569, 2)])
def test_sklearn_datasets_split_and_labels(name, n_x, m, classes):
    ds = load_data(name)
    assert ds.X.shape == (n_x, (3 * m) // 4) and ds.X_test.shape == (n_x, m - (3 * m) // 4)
    assert set(np.unique(np.r_[ds.Y[0], ds.Y_test[0]])) == set(range(classes))
    X_test, Y_test = load_test_data(name)
    np.testing.assert_array_equal(X_test, ds.X_test)
    assert load_data(name).X.tobytes() == ds.X.tobytes()  # fixed seeds: the same data every time


def test_breast_cancer_is_standardised_with_training_statistics():
    ds = load_data("breast-cancer")
    np.testing.assert_allclose(ds.X.mean(axis=1), 0, atol=1e-12)
    np.testing.assert_allclose(ds.X.std(axis=1), 1, rtol=1e-12)
    assert np.abs(ds.X_test.mean(axis=1)).max() > 1e-6  # the test split is scaled by the training statistics


# --------------------------------------------------------------------------- embedded sets pinned to independent facts
# Every literal below comes from a source other than nnparity's loader: the UCI optdigits test set, which is
# scikit-learn's bundled digits (1797 images of 8x8 integer pixels 0..16; class counts as UCI publishes them),
# UCI's WDBC (212 malignant, 357 benign), the generators' documented parameters, the course's flower generator
# (400 points, 200 per class, petals of length a = 4, noise 0.2) and the documented split (docs/commands.md,
# "Data"): RandomState(0).permutation(m), the first floor(0.75 m) train.  The rest is recomputed here from
# scikit-learn's own arrays.

UCI_DIGIT_COUNTS = (178, 182, 177, 183, 181, 182, 181, 179, 174, 180)  # digits 0..9
#: sha256 of scikit-learn's bundled digits pixels (``load_digits().data`` as uint8, row-major): the data source itself.
SKLEARN_DIGITS_SHA256 = "8f26b2bd9d135c256808f68f14fdabddde6d9c7f869ae419704b051f0f14b3b3"


def _sha256(a) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _split(m):
    order = np.random.RandomState(0).permutation(m)
    return order[: (3 * m) // 4], order[(3 * m) // 4 :]


def _unsplit(ds) -> np.ndarray:
    """The loader's train and test columns put back in the source's row order, examples as rows."""
    train, test = _split(ds.m + ds.X_test.shape[1])
    rows = np.empty((train.size + test.size, ds.n_x))
    rows[train], rows[test] = ds.X.T, ds.X_test.T
    return rows


def test_sklearn_digits_are_the_uci_test_set():
    from sklearn.datasets import load_digits

    raw = load_digits()
    assert raw.data.shape == (1797, 64) and tuple(np.bincount(raw.target)) == UCI_DIGIT_COUNTS
    assert np.array_equal(raw.data, np.round(raw.data)) and raw.data.min() == 0 and raw.data.max() == 16
    assert _sha256(raw.data.astype(np.uint8)) == SKLEARN_DIGITS_SHA256


def _assert_digits_facts(ds, raw, classes):
    """Pixels /16, every kept image exactly once, labels and class counts as in scikit-learn's own arrays."""
    X = np.hstack([ds.X, ds.X_test])
    assert X.max() == 1.0, "digits pixels must be scaled by 1/16: the largest, 16, must be exactly 1.0"
    assert np.array_equal(X * 16, np.round(X * 16)) and X.min() == 0.0, "X * 16 must be the integer pixels 0..16"
    keep = np.isin(raw.target, classes)
    assert _sha256((_unsplit(ds) * 16).astype(np.uint8)) == _sha256(raw.data[keep].astype(np.uint8))
    m = int(keep.sum())
    assert ds.X.shape == (64, (3 * m) // 4) and ds.X_test.shape == (64, m - (3 * m) // 4)
    labels = raw.target[keep] if len(classes) > 2 else (raw.target[keep] == classes[1]).astype(int)
    train, test = _split(m)
    np.testing.assert_array_equal(ds.Y[0], labels[train])
    np.testing.assert_array_equal(ds.Y_test[0], labels[test])
    return labels[train], labels[test]


def test_digits_3v8_pinned_to_sklearn():
    from sklearn.datasets import load_digits

    raw = load_digits()
    y_train, y_test = _assert_digits_facts(digits_3v8(), raw, (3, 8))
    n3, n8 = UCI_DIGIT_COUNTS[3], UCI_DIGIT_COUNTS[8]
    assert (y_train == 0).sum() + (y_test == 0).sum() == n3 == 183  # label 0 is the 3s
    assert (y_train == 1).sum() + (y_test == 1).sum() == n8 == 174
    assert y_train.size == 267 and y_test.size == 90 and set(np.unique(y_train)) == {0, 1}
    # the split of 3s and 8s, counted from scikit-learn's targets with the documented permutation
    keep = np.flatnonzero((raw.target == 3) | (raw.target == 8))
    train, test = _split(keep.size)
    for idx, y, threes_eights in ((train, y_train, (138, 129)), (test, y_test, (45, 45))):
        counts = np.bincount(raw.target[keep[idx]], minlength=9)
        assert (counts[3], counts[8]) == ((y == 0).sum(), (y == 1).sum()) == threes_eights


def test_digits_10_pinned_to_sklearn():
    from sklearn.datasets import load_digits

    ds = load_data("digits")
    y_train, y_test = _assert_digits_facts(ds, load_digits(), tuple(range(10)))
    assert tuple(np.bincount(np.r_[y_train, y_test])) == UCI_DIGIT_COUNTS
    assert ds.X.shape == (64, 1347) and ds.X_test.shape == (64, 450)


def test_the_digits_facts_catch_pixels_scaled_by_255(monkeypatch):
    """The bug every implementation would share: pixels /255 instead of /16.  Injected under the real loader."""
    import sklearn.datasets

    raw = sklearn.datasets.load_digits()
    real = sklearn.datasets.load_digits

    def pixels_times_16_over_255():
        bunch = real()
        bunch.data = bunch.data * 16 / 255  # the loader's /16 then gives pixels /255
        return bunch

    monkeypatch.setattr(sklearn.datasets, "load_digits", pixels_times_16_over_255)
    for ds, classes in ((digits_3v8(), (3, 8)), (load_data("digits"), tuple(range(10)))):
        assert ds.X.max() == pytest.approx(16 / 255)  # the bug is in
        with pytest.raises(AssertionError, match="scaled by 1/16"):
            _assert_digits_facts(ds, raw, classes)


@pytest.mark.parametrize("name,generate,counts", [
    ("moons", lambda d: d.make_moons(n_samples=400, noise=0.2, random_state=0), (200, 200)),
    ("circles", lambda d: d.make_circles(n_samples=400, noise=0.1, factor=0.5, random_state=0), (200, 200)),
    ("blobs", lambda d: d.make_blobs(n_samples=400, centers=3, random_state=0), (134, 133, 133)),
])
def test_generated_sets_are_the_generators_points(name, generate, counts):
    from sklearn import datasets

    X_raw, y_raw = generate(datasets)
    ds = load_data(name)
    assert ds.X.shape == (2, 300) and ds.X_test.shape == (2, 100)
    train, test = _split(400)
    assert _sha256(_unsplit(ds)) == _sha256(X_raw.astype(np.float64))  # every point, unscaled, exactly once
    np.testing.assert_array_equal(np.r_[ds.Y[0], ds.Y_test[0]], np.r_[y_raw[train], y_raw[test]])
    assert tuple(np.bincount(np.r_[ds.Y[0], ds.Y_test[0]].astype(int))) == counts  # n_samples split over the classes


def test_generated_sets_have_their_generators_geometry():
    """Facts of the generators' parameters, which a rescaled or relabelled set would break."""
    def points(name):
        ds = load_data(name)
        X, y = np.hstack([ds.X, ds.X_test]), np.r_[ds.Y[0], ds.Y_test[0]]
        return [X[:, y == k] for k in np.unique(y)]

    outer, inner = points("circles")  # label 0 the circle of radius 1, label 1 of radius factor = 0.5; noise 0.1
    assert np.linalg.norm(outer, axis=0).mean() == pytest.approx(1.0, abs=0.05)
    assert np.linalg.norm(inner, axis=0).mean() == pytest.approx(0.5, abs=0.05)
    upper, lower = points("moons")  # (cos t, sin t) and (1 - cos t, 0.5 - sin t), t in [0, pi]; noise 0.2
    assert upper.mean(axis=1) == pytest.approx([0.0, 2 / np.pi], abs=0.05)
    assert lower.mean(axis=1) == pytest.approx([1.0, 0.5 - 2 / np.pi], abs=0.05)
    for blob in points("blobs"):  # cluster_std = 1.0
        assert blob.std(axis=1) == pytest.approx([1.0, 1.0], abs=0.15)


def test_breast_cancer_pinned_to_sklearn():
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer()
    assert raw.data.shape == (569, 30) and tuple(np.bincount(raw.target)) == (212, 357)  # WDBC: malignant, benign
    ds = load_data("breast-cancer")
    assert ds.X.shape == (30, 426) and ds.X_test.shape == (30, 143)
    train, test = _split(569)
    mean, std = raw.data[train].mean(axis=0), raw.data[train].std(axis=0)
    np.testing.assert_allclose(ds.X, ((raw.data[train] - mean) / std).T, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ds.X_test, ((raw.data[test] - mean) / std).T, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.r_[ds.Y[0], ds.Y_test[0]], np.r_[raw.target[train], raw.target[test]])
    assert set(np.unique(ds.Y)) == {0.0, 1.0}


def test_planar_has_the_course_flowers_geometry():
    """The course's generator: r = a sin(4t) + 0.2 noise with a = 4, point (r sin t, r cos t)."""
    X, Y = planar_dataset()
    r = np.linalg.norm(X, axis=0)  # = |r|
    assert r.max() < 4 + 0.2 * 4 and r.max() > 4 - 0.2  # petals reach a = 4; noise beyond 4 sigma never drawn
    for k in (0, 1):
        # E[r^2] = a^2 E[sin^2] + 0.2^2 = 8.04; the mean of 200 draws has a standard deviation of about 0.4
        assert 8.04 - 1.5 < (r[Y[0] == k] ** 2).mean() < 8.04 + 1.5
    assert tuple(np.bincount(Y[0].astype(int))) == (200, 200)
