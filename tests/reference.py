"""A second, independent derivation of every function of the assignment.

Written differently from the master notebook on purpose: the LSTM uses one stacked
weight matrix and one matrix product per step, the sigmoid is written through tanh,
the softmax through log-sum-exp, and the backward passes work on the stacked
pre-activations. The test suite checks these backward passes against centred
differences, then uses this module to verify every value the notebook grades.
"""
import numpy as np

GATES = ("f", "i", "c", "o")


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _softmax(z):
    log_norm = np.log(np.sum(np.exp(z - z.max(axis=0)), axis=0)) + z.max(axis=0)
    return np.exp(z - log_norm)


def rnn_cell_forward(xt, a_prev, parameters):
    p = parameters
    stacked_w = np.hstack([p["Waa"], p["Wax"]])
    a_next = np.tanh(stacked_w @ np.vstack([a_prev, xt]) + p["ba"])
    return a_next, _softmax(p["Wya"] @ a_next + p["by"]), (a_next, a_prev, xt, parameters)


def rnn_forward(x, a0, parameters):
    steps, outputs, caches, a = [], [], [], a0
    for t in range(x.shape[2]):
        a, y, cache = rnn_cell_forward(x[..., t], a, parameters)
        steps.append(a)
        outputs.append(y)
        caches.append(cache)
    return np.stack(steps, axis=-1), np.stack(outputs, axis=-1), (caches, x)


def lstm_cell_forward(xt, a_prev, c_prev, parameters):
    p = parameters
    n_a = a_prev.shape[0]
    stacked_w = np.vstack([p["W" + g] for g in GATES])
    stacked_b = np.vstack([p["b" + g] for g in GATES])
    z = stacked_w @ np.vstack([a_prev, xt]) + stacked_b
    f, i, cc, o = (z[k * n_a:(k + 1) * n_a] for k in range(4))
    f, i, cc, o = _sigmoid(f), _sigmoid(i), np.tanh(cc), _sigmoid(o)
    c_next = f * c_prev + i * cc
    a_next = o * np.tanh(c_next)
    yt = _softmax(p["Wy"] @ a_next + p["by"])
    return a_next, c_next, yt, (a_next, c_next, a_prev, c_prev, f, i, cc, o, xt, parameters)


def lstm_forward(x, a0, parameters):
    a, c = a0, np.zeros_like(a0)
    hs, cs, ys, caches = [], [], [], []
    for t in range(x.shape[2]):
        a, c, y, cache = lstm_cell_forward(x[..., t], a, c, parameters)
        hs.append(a)
        cs.append(c)
        ys.append(y)
        caches.append(cache)
    return np.stack(hs, axis=-1), np.stack(ys, axis=-1), np.stack(cs, axis=-1), (caches, x)


def rnn_cell_backward(da_next, cache):
    a_next, a_prev, xt, p = cache
    dz = da_next * (1.0 - a_next * a_next)
    n_a = a_prev.shape[0]
    dstacked = np.hstack([p["Waa"], p["Wax"]]).T @ dz
    dw = dz @ np.vstack([a_prev, xt]).T
    return {"dxt": dstacked[n_a:], "da_prev": dstacked[:n_a], "dWax": dw[:, n_a:], "dWaa": dw[:, :n_a],
            "dba": dz.sum(axis=1)[:, None]}


def rnn_backward(da, caches):
    steps, x = caches
    grads = {"dx": np.zeros(x.shape[:2] + (da.shape[2],))}
    carried = np.zeros(da.shape[:2])
    for key in ("dWax", "dWaa", "dba"):
        grads[key] = 0.0
    for t in range(da.shape[2] - 1, -1, -1):
        g = rnn_cell_backward(da[..., t] + carried, steps[t])
        grads["dx"][..., t], carried = g["dxt"], g["da_prev"]
        for key in ("dWax", "dWaa", "dba"):
            grads[key] = grads[key] + g[key]
    grads["da0"] = carried
    return grads


def lstm_cell_backward(da_next, dc_next, cache):
    a_next, c_next, a_prev, c_prev, f, i, cc, o, xt, p = cache
    n_a = a_prev.shape[0]
    tanh_c = np.tanh(c_next)
    dc = dc_next + da_next * o * (1.0 - tanh_c ** 2)
    # Gradients of the stacked pre-activations, in GATES order (f, i, c, o).
    dz = np.vstack([dc * c_prev * f * (1 - f), dc * cc * i * (1 - i), dc * i * (1 - cc ** 2),
                    da_next * tanh_c * o * (1 - o)])
    stacked_w = np.vstack([p["W" + g] for g in GATES])
    dw = dz @ np.vstack([a_prev, xt]).T
    db = dz.sum(axis=1, keepdims=True)
    dstacked = stacked_w.T @ dz
    grads = {"dxt": dstacked[n_a:], "da_prev": dstacked[:n_a], "dc_prev": dc * f}
    for k, g in enumerate(GATES):
        grads["dW" + g] = dw[k * n_a:(k + 1) * n_a]
        grads["db" + g] = db[k * n_a:(k + 1) * n_a]
    return grads


def lstm_backward(da, caches):
    steps, x = caches
    n_a, m, T_x = da.shape
    grads = {"dx": np.zeros((x.shape[0], m, T_x))}
    keys = ["dW" + g for g in GATES] + ["db" + g for g in GATES]
    for key in keys:
        grads[key] = 0.0
    carried_a, carried_c = np.zeros((n_a, m)), np.zeros((n_a, m))
    for t in range(T_x - 1, -1, -1):
        g = lstm_cell_backward(da[..., t] + carried_a, carried_c, steps[t])
        grads["dx"][..., t], carried_a, carried_c = g["dxt"], g["da_prev"], g["dc_prev"]
        for key in keys:
            grads[key] = grads[key] + g[key]
    grads["da0"] = carried_a
    return grads


FUNCTIONS = {name: globals()[name] for name in [
    "rnn_cell_forward", "rnn_forward", "lstm_cell_forward", "lstm_forward",
    "rnn_cell_backward", "rnn_backward", "lstm_cell_backward", "lstm_backward"]}


def centred_difference(f, x, upstream, h=1e-6):
    """d sum(f() * upstream) / dx by centred differences; x is nudged in place and restored."""
    grad = np.zeros_like(x)
    flat, out = x.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        saved = flat[k]
        flat[k] = saved + h
        plus = np.sum(f() * upstream)
        flat[k] = saved - h
        minus = np.sum(f() * upstream)
        flat[k] = saved
        out[k] = (plus - minus) / (2 * h)
    return grad


def random_rnn(rng, n_x, n_a, n_y):
    return {"Waa": rng.randn(n_a, n_a) / np.sqrt(n_a), "Wax": rng.randn(n_a, n_x), "Wya": rng.randn(n_y, n_a),
            "ba": rng.randn(n_a, 1), "by": rng.randn(n_y, 1)}


def random_lstm(rng, n_x, n_a, n_y):
    p = {}
    for g in GATES:
        p["W" + g], p["b" + g] = rng.randn(n_a, n_a + n_x), rng.randn(n_a, 1)
    p["Wy"], p["by"] = rng.randn(n_y, n_a), rng.randn(n_y, 1)
    return p
