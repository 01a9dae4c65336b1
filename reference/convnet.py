"""The course's convolutional networks, forward and hand-written backward, in NumPy: BatchNorm, TF's 'same'
padding made explicit, and the two Keras models of "Convolution model - Application" ("happy" and "signs").

The source of truth for ``torch_impl.convnet``, ``tf_impl.convnet`` and ``jax_impl.convnet``, which have the same
public functions (``batchnorm``, ``forward_backward``, ``train``) with the frameworks' own layers.

Layouts (``nnparity.convspec``): images NHWC ``(m, n_H, n_W, n_C)``; a conv kernel ``W (f, f, n_C_prev, n_C)``
(HWIO, Keras' own), its bias ``b (1, 1, 1, n_C)``; BatchNorm's ``gamma``, ``beta`` and running statistics
``(1, 1, 1, n_C)``; the Dense layer the notes' ``W (n_out, n_in)``, ``b (n_out, 1)``, applied to the flattened
images as rows: ``Z = F W^T + b^T``, ``(m, n_out)``.  ``Y`` is ``(m, 1)`` (happy) or one-hot ``(m, 6)`` (signs),
one example per row, as Keras takes it.  Flatten keeps NHWC order: feature ``(h, w, c)`` is column
``(h n_W + w) n_C + c``.

The cost is the mean over the m examples, and every gradient is the gradient of that mean (``dW`` of a conv is
``conv_backward``'s sum over the examples of ``dZ``, which already carries the ``1/m``).
"""

import numpy as np

# The conv and pool layers: the course's functions computed on whole arrays (reference.conv_vectorised, proven equal
# to the course's loops, reference.conv, to rounding in parity_tests/test_conv_reference.py).
from reference import conv_vectorised as conv_layers

MODELS = ("happy", "signs")

#: BatchNorm's running-average convention: ``running = momentum * running + (1 - momentum) * batch`` (momentum is
#: the weight of the OLD value, as Keras and flax write it; torch's ``momentum`` is ``1 -`` this), ``epsilon``
#: inside the square root, and the batch variance that enters the running average biased (divided by N, Keras and
#: flax) or unbiased (by N - 1, torch).  The batch itself is always normalised with the biased variance.
KERAS_BN = {"momentum": 0.99, "epsilon": 1e-3, "unbiased": False}


# ----------------------------------------------------------------------------------------------- BatchNorm

def batchnorm_forward(Z, gamma, beta, running, momentum=0.99, epsilon=1e-3, training=True, unbiased=False):
    """BatchNorm over the channels of Z (m, n_H, n_W, n_C): statistics over the N = m n_H n_W cells per channel.

    training: ``mean = 1/N sum Z``, ``var = 1/N sum (Z - mean)^2`` (biased), ``xhat = (Z - mean) / sqrt(var + eps)``,
    ``out = gamma xhat + beta``; the running statistics ``running = {"mean", "var"}`` become
    ``momentum running + (1 - momentum) batch`` (the batch variance times N / (N - 1) when ``unbiased``).
    inference: the same with the running statistics in place of the batch's, which stay as they are.

    Returns out, the cache for ``batchnorm_backward`` and the new running statistics (a new dict)."""
    if training:
        N = Z.shape[0] * Z.shape[1] * Z.shape[2]
        mean = np.mean(Z, axis=(0, 1, 2), keepdims=True)
        var = np.mean((Z - mean) ** 2, axis=(0, 1, 2), keepdims=True)
        var_running = var * (N / (N - 1)) if unbiased else var
        new_running = {"mean": running["mean"] * momentum + mean * (1 - momentum),
                       "var": running["var"] * momentum + var_running * (1 - momentum)}
    else:
        mean, var = running["mean"], running["var"]
        new_running = dict(running)
    invstd = 1 / np.sqrt(var + epsilon)
    xhat = (Z - mean) * invstd
    out = gamma * xhat + beta
    return out, (xhat, gamma, invstd, training), new_running


def batchnorm_backward(dout, cache):
    """dZ, dgamma, dbeta of ``batchnorm_forward``.

    ``dgamma = sum dout xhat``, ``dbeta = sum dout`` (over the N cells of a channel); in training the batch
    statistics depend on Z, and the standard derivation gives
    ``dZ = gamma / sqrt(var + eps) (dout - mean(dout) - xhat mean(dout xhat))``; in inference they are constants:
    ``dZ = gamma / sqrt(var + eps) dout``."""
    xhat, gamma, invstd, training = cache
    axes = (0, 1, 2)
    dgamma = np.sum(dout * xhat, axis=axes, keepdims=True)
    dbeta = np.sum(dout, axis=axes, keepdims=True)
    if training:
        dZ = gamma * invstd * (dout - np.mean(dout, axis=axes, keepdims=True)
                               - xhat * np.mean(dout * xhat, axis=axes, keepdims=True))
    else:
        dZ = gamma * invstd * dout
    return dZ, dgamma, dbeta


def batchnorm(Z, gamma, beta, running, dout, training, dtype, bn=None):
    """The framework modules' BatchNorm check in the reference: forward, backward of ``sum(out * dout)``, the new
    running statistics.  ``bn`` is a convention like ``KERAS_BN`` (the default)."""
    bn = dict(KERAS_BN if bn is None else bn)
    Z, gamma, beta, dout = (np.asarray(a, dtype=dtype) for a in (Z, gamma, beta, dout))
    running = {k: np.asarray(v, dtype=dtype) for k, v in running.items()}
    out, cache, new_running = batchnorm_forward(Z, gamma, beta, running, bn["momentum"], bn["epsilon"], training,
                                                bn["unbiased"])
    dZ, dgamma, dbeta = batchnorm_backward(dout, cache)
    return {"out": out, "dZ": dZ, "dgamma": dgamma, "dbeta": dbeta, "running": new_running}


# ----------------------------------------------------------------------------------------------- the layers

def same_padding(n, f, stride):
    """TF's 'same' padding of one spatial dimension, made explicit: the output has ceil(n / stride) cells, and
    ``total = max((ceil(n / stride) - 1) stride + f - n, 0)`` cells are added, ``before = total // 2`` in front and
    ``after = total - before`` behind (the extra one, when total is odd, goes behind).  Returns (before, after)."""
    n_out = -(-n // stride)
    total = max((n_out - 1) * stride + f - n, 0)
    before = total // 2
    return before, total - before


def pad_same(X, f, stride, value=0.0):
    """X (m, n_H, n_W, n_C) padded as TF's 'same' pads it for an f x f window at ``stride``: ``value`` (0 for a
    conv; -inf for a max pool, which TF's padding never wins).  Returns the padded X and the padding
    ((top, bottom), (left, right))."""
    ph = same_padding(X.shape[1], f, stride)
    pw = same_padding(X.shape[2], f, stride)
    return np.pad(X, ((0, 0), ph, pw, (0, 0)), mode="constant", constant_values=value), (ph, pw)


def crop(dX, padding):
    """The backward of a padding: the gradient of the padded cells is dropped."""
    (top, bottom), (left, right) = padding
    return dX[:, top:dX.shape[1] - bottom, left:dX.shape[2] - right, :]


def zero_padding_forward(X, pad):
    """Keras' ZeroPadding2D(pad): ``pad`` zeros on every side of every image."""
    return conv_layers.zero_pad(X, pad), ((pad, pad), (pad, pad))


def conv2d_forward(A_prev, W, b, stride=1, padding="valid"):
    """Keras' Conv2D: 'valid' is the course's conv_forward with pad 0; 'same' pads as ``pad_same`` first."""
    f = W.shape[0]
    pads = ((0, 0), (0, 0))
    if padding == "same":
        A_prev, pads = pad_same(A_prev, f, stride)
    Z, cache = conv_layers.conv_forward(A_prev, W, b, {"stride": stride, "pad": 0})
    return Z, (cache, pads)


def conv2d_backward(dZ, cache):
    conv_cache, pads = cache
    dA_prev, dW, db = conv_layers.conv_backward(dZ, conv_cache)
    return crop(dA_prev, pads), dW, db


def maxpool_forward(A_prev, f, stride, padding="valid"):
    """Keras' MaxPool2D(pool_size=f, strides=stride, padding): the course's pool_forward; 'same' pads with -inf."""
    pads = ((0, 0), (0, 0))
    if padding == "same":
        A_prev, pads = pad_same(A_prev, f, stride, value=-np.inf)
    A, cache = conv_layers.pool_forward(A_prev, {"f": f, "stride": stride}, "max")
    return A, (cache, pads)


def maxpool_backward(dA, cache):
    pool_cache, pads = cache
    return crop(conv_layers.pool_backward(dA, pool_cache, "max"), pads)


def relu_forward(Z):
    return np.maximum(Z, 0), Z


def relu_backward(dA, Z):
    """relu'(0) = 0, as the frameworks."""
    return np.where(Z > 0, dA, 0).astype(dA.dtype, copy=False)


def flatten_forward(A):
    """Keras' Flatten on NHWC: (m, n_H, n_W, n_C) -> (m, n_H n_W n_C), channels fastest."""
    return A.reshape(A.shape[0], -1), A.shape


def flatten_backward(dF, shape):
    return dF.reshape(shape)


def dense_forward(F, W, b):
    """Z = F W^T + b^T: the notes' ``W A + b`` with the examples as rows."""
    return F @ W.T + b.T, F


def dense_backward(dZ, F, W):
    """dF = dZ W, dW = dZ^T F, db = sum of dZ over the examples (dZ already carries the cost's 1/m)."""
    return dZ @ W, dZ.T @ F, np.sum(dZ, axis=0, keepdims=True).T


def sigmoid(Z):
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1 / (1 + E), E / (1 + E))


def softmax(Z):
    """Row-wise softmax (one example per row)."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def compute_cost(AL, Y, model_name):
    """Binary cross-entropy (happy) or categorical cross-entropy (signs), the mean over the m examples."""
    m = Y.shape[0]
    if model_name == "happy":
        return -np.sum(Y * np.log(AL) + (1 - Y) * np.log(1 - AL)) / m
    return -np.sum(Y * np.log(AL)) / m


def output_backward(AL, Y):
    """dZ of the last Dense: sigmoid with binary cross-entropy and softmax with categorical cross-entropy both
    give ``(AL - Y) / m`` for the mean cost."""
    return (AL - Y) / Y.shape[0]


# ----------------------------------------------------------------------------------------------- the models

def happy_forward(X, parameters, running, bn=None, training=True):
    """ZeroPadding2D(3), Conv2D(32, 7), BatchNormalization(axis=3), ReLU, MaxPool2D(2, 2), Flatten,
    Dense(1, sigmoid).  Returns AL, the caches and the new running statistics."""
    bn = KERAS_BN if bn is None else bn
    P = parameters
    A0, pad0 = zero_padding_forward(X, 3)
    Z1, conv1 = conv2d_forward(A0, P["W1"], P["b1"])
    B1, bn1, run1 = batchnorm_forward(Z1, P["gamma1"], P["beta1"],
                                      {"mean": running["running_mean1"], "var": running["running_var1"]},
                                      bn["momentum"], bn["epsilon"], training, bn["unbiased"])
    A1, relu1 = relu_forward(B1)
    P1, pool1 = maxpool_forward(A1, 2, 2)
    F, shape = flatten_forward(P1)
    Z2, dense2 = dense_forward(F, P["W2"], P["b2"])
    AL = sigmoid(Z2)
    new_running = {"running_mean1": run1["mean"], "running_var1": run1["var"]}
    return AL, (pad0, conv1, bn1, relu1, pool1, shape, dense2), new_running


def happy_backward(AL, Y, parameters, caches, keep=None):
    """The gradients of every parameter; ``keep``, a dict, receives dZ1 (BatchNorm's input gradient, whose sum over
    the cells, db1, is zero but for rounding: BatchNorm removes any per-channel shift of Z1)."""
    pad0, conv1, bn1, relu1, pool1, shape, dense2 = caches
    dZ2 = output_backward(AL, Y)
    dF, dW2, db2 = dense_backward(dZ2, dense2, parameters["W2"])
    dA1 = maxpool_backward(flatten_backward(dF, shape), pool1)
    dB1 = relu_backward(dA1, relu1)
    dZ1, dgamma1, dbeta1 = batchnorm_backward(dB1, bn1)
    if keep is not None:
        keep["dZ1"] = dZ1
    _, dW1, db1 = conv2d_backward(dZ1, conv1)  # dA0 (the padded images' gradient) is not needed
    return {"dW1": dW1, "db1": db1, "dgamma1": dgamma1, "dbeta1": dbeta1, "dW2": dW2, "db2": db2}


def signs_forward(X, parameters, running=None, bn=None, training=True):
    """Conv2D(8, 4, 'same'), ReLU, MaxPool2D(8, 8, 'same'), Conv2D(16, 2, 'same'), ReLU, MaxPool2D(4, 4, 'same'),
    Flatten, Dense(6, softmax).  No BatchNorm: the running statistics are an empty dict."""
    P = parameters
    Z1, conv1 = conv2d_forward(X, P["W1"], P["b1"], padding="same")
    A1, relu1 = relu_forward(Z1)
    P1, pool1 = maxpool_forward(A1, 8, 8, padding="same")
    Z2, conv2 = conv2d_forward(P1, P["W2"], P["b2"], padding="same")
    A2, relu2 = relu_forward(Z2)
    P2, pool2 = maxpool_forward(A2, 4, 4, padding="same")
    F, shape = flatten_forward(P2)
    Z3, dense3 = dense_forward(F, P["W3"], P["b3"])
    AL = softmax(Z3)
    return AL, (conv1, relu1, pool1, conv2, relu2, pool2, shape, dense3), {}


def signs_backward(AL, Y, parameters, caches, keep=None):
    conv1, relu1, pool1, conv2, relu2, pool2, shape, dense3 = caches
    dZ3 = output_backward(AL, Y)
    dF, dW3, db3 = dense_backward(dZ3, dense3, parameters["W3"])
    dZ2 = relu_backward(maxpool_backward(flatten_backward(dF, shape), pool2), relu2)
    dP1, dW2, db2 = conv2d_backward(dZ2, conv2)
    dZ1 = relu_backward(maxpool_backward(dP1, pool1), relu1)
    _, dW1, db1 = conv2d_backward(dZ1, conv1)
    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2, "dW3": dW3, "db3": db3}


FORWARD = {"happy": happy_forward, "signs": signs_forward}
BACKWARD = {"happy": happy_backward, "signs": signs_backward}


def _check_model(model_name):
    if model_name not in MODELS:
        raise ValueError(f"unknown model {model_name!r}; use one of: {', '.join(MODELS)}")


def model_forward(X, parameters, running, model_name, bn=None, training=True):
    _check_model(model_name)
    return FORWARD[model_name](X, parameters, running, bn, training)


# ----------------------------------------------------------------------------------------------- parameters, data

def output_shape(model_name, shape):
    """The shape (n_H, n_W, n_C) that reaches Flatten, for an input image shape (n_H, n_W, n_C)."""
    n_H, n_W, _ = shape
    if model_name == "happy":  # pad 3, conv 7 valid: n stays; max pool 2 stride 2
        return (n_H - 2) // 2 + 1, (n_W - 2) // 2 + 1, 32
    ceil = lambda n, s: -(-n // s)  # noqa: E731
    return ceil(ceil(n_H, 8), 4), ceil(ceil(n_W, 8), 4), 16


def init_parameters(model_name, shape, seed=1):
    """The model's parameters and initial running statistics for images of ``shape`` (n_H, n_W, n_C), from
    ``RandomState(seed)``: kernels ~ N(0, 1 / fan_in), biases ~ N(0, 0.1^2) (non-zero, so that their gradients are
    exercised), gamma ~ 1 + N(0, 0.1^2), beta ~ N(0, 0.1^2); running mean 0 and variance 1, Keras' start.
    Returns (parameters, running)."""
    _check_model(model_name)
    rng = np.random.RandomState(seed)
    n_C0 = shape[2]
    n_flat = int(np.prod(output_shape(model_name, shape)))

    def kernel(f, n_prev, n):
        return rng.randn(f, f, n_prev, n) / np.sqrt(f * f * n_prev), 0.1 * rng.randn(1, 1, 1, n)

    def dense(n_in, n_out):
        return rng.randn(n_out, n_in) / np.sqrt(n_in), 0.1 * rng.randn(n_out, 1)

    if model_name == "happy":
        W1, b1 = kernel(7, n_C0, 32)
        gamma1, beta1 = 1 + 0.1 * rng.randn(1, 1, 1, 32), 0.1 * rng.randn(1, 1, 1, 32)
        W2, b2 = dense(n_flat, 1)
        parameters = {"W1": W1, "b1": b1, "gamma1": gamma1, "beta1": beta1, "W2": W2, "b2": b2}
        running = {"running_mean1": np.zeros((1, 1, 1, 32)), "running_var1": np.ones((1, 1, 1, 32))}
    else:
        W1, b1 = kernel(4, n_C0, 8)
        W2, b2 = kernel(2, 8, 16)
        W3, b3 = dense(n_flat, 6)
        parameters = {"W1": W1, "b1": b1, "W2": W2, "b2": b2, "W3": W3, "b3": b3}
        running = {}
    return parameters, running


def make_data(model_name, shape=(16, 16, 3), m=8, seed=2):
    """Generated images: per image and channel a sum of two smooth Gaussian blobs (random centres, widths and
    heights from ``RandomState(seed)``), values in about [0, 1]; labels from the same generator: happy (m, 1) in
    {0, 1} (both present), signs one-hot (m, 6).  Returns X (m, n_H, n_W, n_C), Y."""
    _check_model(model_name)
    rng = np.random.RandomState(seed)
    n_H, n_W, n_C = shape
    h = np.arange(n_H)[:, None] / n_H
    w = np.arange(n_W)[None, :] / n_W
    X = np.zeros((m, n_H, n_W, n_C))
    for i in range(m):
        for c in range(n_C):
            for _ in range(2):
                ch, cw = rng.uniform(0.1, 0.9, size=2)
                width = rng.uniform(0.1, 0.3)
                X[i, :, :, c] += rng.uniform(0.3, 0.6) * np.exp(-((h - ch) ** 2 + (w - cw) ** 2) / (2 * width ** 2))
    if model_name == "happy":
        Y = (np.arange(m) % 2).reshape(m, 1).astype(float)
        Y = Y[rng.permutation(m)]
    else:
        Y = np.eye(6)[rng.randint(0, 6, size=m)]
    return X, Y


def cast(tree, dtype):
    return {k: np.asarray(v, dtype=dtype) for k, v in tree.items()}


# ----------------------------------------------------------------------------------------------- the contract

def forward_backward(parameters, X, Y, model_name, dtype="float64", running=None, bn=None, keep=None):
    """One forward (BatchNorm in training mode) and the hand-written backward, in ``dtype``.

    Returns {"cost", "AL", "grads" ({"dW1", ...} in the parameters' layouts), "running" (after the step)};
    ``keep``, a dict, receives intermediate gradients (``happy_backward``)."""
    _check_model(model_name)
    parameters, X, Y = cast(parameters, dtype), np.asarray(X, dtype=dtype), np.asarray(Y, dtype=dtype)
    running = cast(running or {}, dtype)
    AL, caches, new_running = model_forward(X, parameters, running, model_name, bn, training=True)
    cost = compute_cost(AL, Y, model_name)
    grads = BACKWARD[model_name](AL, Y, parameters, caches, keep)
    return {"cost": float(cost), "AL": AL, "grads": grads, "running": new_running}


def train(parameters, X, Y, model_name, dtype="float64", steps=5, learning_rate=0.01, running=None, bn=None):
    """Plain full-batch gradient descent: ``p = p - learning_rate dp`` for ``steps`` steps, BatchNorm in training
    mode with its running statistics carried from step to step.

    Returns {"costs" (the cost before each step), "parameters", "running"} after the last step."""
    parameters, running = cast(parameters, dtype), cast(running or {}, dtype)
    costs = []
    for _ in range(steps):
        result = forward_backward(parameters, X, Y, model_name, dtype, running, bn)
        costs.append(result["cost"])
        parameters = {k: v - learning_rate * result["grads"]["d" + k] for k, v in parameters.items()}
        running = result["running"]
    return {"costs": costs, "parameters": parameters, "running": running}
