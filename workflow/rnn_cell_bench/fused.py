"""The fused CPU engine: LSTM and GRU forward and backward over the full sequence in numba.

The model, its parameterization and the optimizer are those of the Keras reference
(:mod:`rnn_cell_bench.models`), only computed differently:

- Parameters are the Keras 3 tensors, in Keras order: ``kernel`` (1, G), ``recurrent_kernel``
  (H, G), ``bias`` (G,) for the LSTM or (2, G) for the GRU (``reset_after``: input and
  recurrent bias), then the read-out ``kernel`` (H, 1) and ``bias`` (1,). Gates in Keras order:
  LSTM i, f, c, o (G = 4H); GRU z, r, h (G = 3H).
- The initial weights are taken from the Keras model built with the same seed, so both engines
  start from identical values (``glorot_uniform``, ``orthogonal``, forget bias 1).
- Loss: mean squared error over all sequences and steps. Adam and both clipping modes follow
  Keras 3 step for step.

Sequences are independent, so each thread runs whole sequences forward and then backward,
keeping that sequence's activations only; the per-sequence gradients are summed in a fixed
order, so results do not depend on the thread count. Arithmetic is float32 as in Keras, with
per-sequence gradient sums in float64.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from rnn_cell_bench.models import CELLS, GATES

BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7  # Keras Adam defaults


# tanh as a clamped 13/6 rational function (the float32 approximation used by Eigen, within a few
# ulp of tanh): plain arithmetic, so LLVM vectorizes the gate loops, which calls to exp cannot.
_TANH_CLAMP = np.float32(7.90531110763549805)
_A1, _A3, _A5 = (
    np.float32(4.89352455891786e-03),
    np.float32(6.37261928875436e-04),
    np.float32(1.48572235717979e-05),
)
_A7, _A9 = np.float32(5.12229709037114e-08), np.float32(-8.60467152213735e-11)
_A11, _A13 = np.float32(2.00018790482477e-13), np.float32(-2.76076847742355e-16)
_B0, _B2 = np.float32(4.89352518554385e-03), np.float32(2.26843463243900e-03)
_B4, _B6 = np.float32(1.18534705686654e-04), np.float32(1.19825839466702e-06)
_HALF = np.float32(0.5)


@njit(inline="always", fastmath=True)
def _tanh(v):
    v = min(max(v, -_TANH_CLAMP), _TANH_CLAMP)
    v2 = v * v
    p = v2 * _A13 + _A11
    p = p * v2 + _A9
    p = p * v2 + _A7
    p = p * v2 + _A5
    p = p * v2 + _A3
    p = p * v2 + _A1
    q = v2 * _B6 + _B4
    q = q * v2 + _B2
    q = q * v2 + _B0
    return v * p / q


@njit(inline="always", fastmath=True)
def _sigmoid(v):
    return _HALF * _tanh(_HALF * v) + _HALF


@njit(parallel=True, fastmath=True, cache=True)
def lstm_loss_and_grads(x, y, kernel, recurrent, bias, dense_kernel, dense_bias):
    """MSE loss and the gradient of every parameter, for an LSTM with Keras' gate layout."""
    batch, steps = x.shape[0], x.shape[1]
    units = recurrent.shape[0]
    gates = 4 * units
    scale = np.float32(2.0 / (batch * steps))
    losses = np.zeros(batch)
    d_kernel = np.zeros((batch, gates))
    d_recurrent = np.zeros((batch, units, gates))
    d_bias = np.zeros((batch, gates))
    d_dense = np.zeros((batch, units))
    d_dense_bias = np.zeros(batch)
    for b in prange(batch):
        hs = np.zeros((steps + 1, units), dtype=np.float32)  # h_0 = 0
        cs = np.zeros((steps + 1, units), dtype=np.float32)  # c_0 = 0
        tanh_c = np.empty((steps, units), dtype=np.float32)
        acts = np.empty((steps, gates), dtype=np.float32)  # activated i, f, g, o
        errors = np.empty(steps, dtype=np.float32)
        z = np.empty(gates, dtype=np.float32)
        loss = 0.0
        for t in range(steps):
            xt = x[b, t, 0]
            for j in range(gates):
                z[j] = bias[j] + xt * kernel[0, j]
            for k in range(units):
                hk = hs[t, k]
                for j in range(gates):
                    z[j] += hk * recurrent[k, j]
            out = dense_bias[0]
            for j in range(units):
                gi = _sigmoid(z[j])
                gf = _sigmoid(z[units + j])
                gg = _tanh(z[2 * units + j])
                go = _sigmoid(z[3 * units + j])
                c = gf * cs[t, j] + gi * gg
                tc = _tanh(c)
                cs[t + 1, j] = c
                tanh_c[t, j] = tc
                hs[t + 1, j] = go * tc
                acts[t, j] = gi
                acts[t, units + j] = gf
                acts[t, 2 * units + j] = gg
                acts[t, 3 * units + j] = go
                out += hs[t + 1, j] * dense_kernel[j, 0]
            err = out - y[b, t, 0]
            errors[t] = err
            loss += err * err
        losses[b] = loss
        # Backward through time.
        dh_next = np.zeros(units, dtype=np.float32)
        dc_next = np.zeros(units, dtype=np.float32)
        dz = np.empty(gates, dtype=np.float32)
        acc_recurrent = np.zeros((units, gates))
        acc_kernel = np.zeros(gates)
        acc_bias = np.zeros(gates)
        acc_dense = np.zeros(units)
        acc_dense_bias = 0.0
        for t in range(steps - 1, -1, -1):
            dy = scale * errors[t]
            acc_dense_bias += dy
            for j in range(units):
                acc_dense[j] += hs[t + 1, j] * dy
                dh = dy * dense_kernel[j, 0] + dh_next[j]
                gi = acts[t, j]
                gf = acts[t, units + j]
                gg = acts[t, 2 * units + j]
                go = acts[t, 3 * units + j]
                tc = tanh_c[t, j]
                dc = dh * go * (np.float32(1.0) - tc * tc) + dc_next[j]
                dz[j] = dc * gg * gi * (np.float32(1.0) - gi)
                dz[units + j] = dc * cs[t, j] * gf * (np.float32(1.0) - gf)
                dz[2 * units + j] = dc * gi * (np.float32(1.0) - gg * gg)
                dz[3 * units + j] = dh * tc * go * (np.float32(1.0) - go)
                dc_next[j] = dc * gf
            xt = x[b, t, 0]
            for j in range(gates):
                acc_kernel[j] += xt * dz[j]
                acc_bias[j] += dz[j]
            for k in range(units):
                hk = hs[t, k]
                total = np.float32(0.0)
                for j in range(gates):
                    acc_recurrent[k, j] += hk * dz[j]
                    total += recurrent[k, j] * dz[j]
                dh_next[k] = total
        d_kernel[b] = acc_kernel
        d_recurrent[b] = acc_recurrent
        d_bias[b] = acc_bias
        d_dense[b] = acc_dense
        d_dense_bias[b] = acc_dense_bias
    return (
        _ordered_sum(losses) / (batch * steps),
        _ordered_sum_axis0(d_kernel).reshape(1, gates),
        _ordered_sum_axis0(d_recurrent.reshape(batch, units * gates)).reshape(units, gates),
        _ordered_sum_axis0(d_bias),
        _ordered_sum_axis0(d_dense).reshape(units, 1),
        np.array([_ordered_sum(d_dense_bias)]),
    )


@njit(parallel=True, fastmath=True, cache=True)
def gru_loss_and_grads(x, y, kernel, recurrent, bias, dense_kernel, dense_bias):
    """MSE loss and gradients for a GRU with ``reset_after=True`` (cuDNN semantics):
    ``h~ = tanh(x W_h + b_in_h + r * (h R_h + b_rec_h))``, ``h = z h_prev + (1 - z) h~``."""
    batch, steps = x.shape[0], x.shape[1]
    units = recurrent.shape[0]
    gates = 3 * units
    scale = np.float32(2.0 / (batch * steps))
    losses = np.zeros(batch)
    d_kernel = np.zeros((batch, gates))
    d_recurrent = np.zeros((batch, units, gates))
    d_bias = np.zeros((batch, 2, gates))
    d_dense = np.zeros((batch, units))
    d_dense_bias = np.zeros(batch)
    for b in prange(batch):
        hs = np.zeros((steps + 1, units), dtype=np.float32)
        acts = np.empty((steps, gates), dtype=np.float32)  # z, r, h~
        inner_h = np.empty((steps, units), dtype=np.float32)  # h_prev R_h + b_rec_h
        errors = np.empty(steps, dtype=np.float32)
        inner = np.empty(gates, dtype=np.float32)
        loss = 0.0
        for t in range(steps):
            xt = x[b, t, 0]
            for j in range(gates):
                inner[j] = bias[1, j]
            for k in range(units):
                hk = hs[t, k]
                for j in range(gates):
                    inner[j] += hk * recurrent[k, j]
            out = dense_bias[0]
            for j in range(units):
                gz = _sigmoid(xt * kernel[0, j] + bias[0, j] + inner[j])
                gr = _sigmoid(xt * kernel[0, units + j] + bias[0, units + j] + inner[units + j])
                ih = inner[2 * units + j]
                gh = _tanh(xt * kernel[0, 2 * units + j] + bias[0, 2 * units + j] + gr * ih)
                h = gz * hs[t, j] + (np.float32(1.0) - gz) * gh
                hs[t + 1, j] = h
                acts[t, j] = gz
                acts[t, units + j] = gr
                acts[t, 2 * units + j] = gh
                inner_h[t, j] = ih
                out += h * dense_kernel[j, 0]
            err = out - y[b, t, 0]
            errors[t] = err
            loss += err * err
        losses[b] = loss
        dh_next = np.zeros(units, dtype=np.float32)
        d_input = np.empty(gates, dtype=np.float32)  # w.r.t. x W + b_in
        d_inner = np.empty(gates, dtype=np.float32)  # w.r.t. h_prev R + b_rec
        acc_recurrent = np.zeros((units, gates))
        acc_kernel = np.zeros(gates)
        acc_bias_in = np.zeros(gates)
        acc_bias_rec = np.zeros(gates)
        acc_dense = np.zeros(units)
        acc_dense_bias = 0.0
        for t in range(steps - 1, -1, -1):
            dy = scale * errors[t]
            acc_dense_bias += dy
            for j in range(units):
                acc_dense[j] += hs[t + 1, j] * dy
                dh = dy * dense_kernel[j, 0] + dh_next[j]
                gz = acts[t, j]
                gr = acts[t, units + j]
                gh = acts[t, 2 * units + j]
                da_h = dh * (np.float32(1.0) - gz) * (np.float32(1.0) - gh * gh)
                da_z = dh * (hs[t, j] - gh) * gz * (np.float32(1.0) - gz)
                da_r = da_h * inner_h[t, j] * gr * (np.float32(1.0) - gr)
                d_input[j] = da_z
                d_input[units + j] = da_r
                d_input[2 * units + j] = da_h
                d_inner[j] = da_z
                d_inner[units + j] = da_r
                d_inner[2 * units + j] = da_h * gr
                dh_next[j] = dh * gz  # the direct path; the recurrent one is added below
            xt = x[b, t, 0]
            for j in range(gates):
                acc_kernel[j] += xt * d_input[j]
                acc_bias_in[j] += d_input[j]
                acc_bias_rec[j] += d_inner[j]
            for k in range(units):
                hk = hs[t, k]
                total = np.float32(0.0)
                for j in range(gates):
                    acc_recurrent[k, j] += hk * d_inner[j]
                    total += recurrent[k, j] * d_inner[j]
                dh_next[k] += total
        d_kernel[b] = acc_kernel
        d_recurrent[b] = acc_recurrent
        d_bias[b, 0] = acc_bias_in
        d_bias[b, 1] = acc_bias_rec
        d_dense[b] = acc_dense
        d_dense_bias[b] = acc_dense_bias
    return (
        _ordered_sum(losses) / (batch * steps),
        _ordered_sum_axis0(d_kernel).reshape(1, gates),
        _ordered_sum_axis0(d_recurrent.reshape(batch, units * gates)).reshape(units, gates),
        _ordered_sum_axis0(d_bias.reshape(batch, 2 * gates)).reshape(2, gates),
        _ordered_sum_axis0(d_dense).reshape(units, 1),
        np.array([_ordered_sum(d_dense_bias)]),
    )


@njit(cache=True)
def _ordered_sum(values):
    total = 0.0
    for value in values:
        total += value
    return total


@njit(cache=True)
def _ordered_sum_axis0(values):
    total = np.zeros(values.shape[1:])
    for row in range(values.shape[0]):
        total += values[row]
    return total


KERNELS = {"lstm": lstm_loss_and_grads, "gru": gru_loss_and_grads}


def loss_and_gradients(
    cell: str, inputs: np.ndarray, targets: np.ndarray, weights: list[np.ndarray]
) -> tuple[float, list[np.ndarray]]:
    """Loss and float32 gradients for ``weights`` in Keras order (see the module docstring)."""
    if cell not in CELLS:
        raise ValueError(f"unknown cell {cell!r}; known cells: {', '.join(CELLS)}")
    kernel, recurrent, bias, dense_kernel, dense_bias = (
        np.ascontiguousarray(w, dtype=np.float32) for w in weights
    )
    if recurrent.shape[1] != GATES[cell] * recurrent.shape[0]:
        raise ValueError(f"weights do not have the {cell} layout")
    loss, *grads = KERNELS[cell](
        np.ascontiguousarray(inputs, dtype=np.float32),
        np.ascontiguousarray(targets, dtype=np.float32),
        kernel,
        recurrent,
        bias,
        dense_kernel,
        dense_bias,
    )
    return float(loss), [g.astype(np.float32) for g in grads]


class FusedAdam:
    """Keras 3 Adam (``epsilon`` 1e-7) with ``global_clipnorm`` or per-variable ``clipnorm``,
    in float32 like the Keras variables."""

    def __init__(self, shapes, learning_rate: float, clipnorm: float, clip: str):
        self.learning_rate = np.float32(learning_rate)
        self.clipnorm = np.float32(clipnorm)
        self.clip = clip
        self.iterations = 0
        self.momentums = [np.zeros(shape, dtype=np.float32) for shape in shapes]
        self.velocities = [np.zeros(shape, dtype=np.float32) for shape in shapes]

    def clip_gradients(self, grads: list[np.ndarray]) -> list[np.ndarray]:
        if self.clip == "global":
            norm = np.float32(math.sqrt(sum(float(np.sum(np.square(g))) for g in grads)))
            scale = self.clipnorm * min(np.float32(1.0) / norm, np.float32(1.0) / self.clipnorm)
            return [g * np.float32(scale) for g in grads]
        clipped = []
        for g in grads:
            norm = np.float32(math.sqrt(float(np.sum(np.square(g)))))
            clipped.append(g * self.clipnorm / max(norm, self.clipnorm))
        return clipped

    def apply(self, grads: list[np.ndarray], weights: list[np.ndarray]) -> None:
        """One Adam step on ``weights`` in place."""
        grads = self.clip_gradients(grads)
        step = np.float32(self.iterations + 1)
        alpha = (
            self.learning_rate
            * np.sqrt(np.float32(1.0) - np.float32(BETA_2) ** step)
            / (np.float32(1.0) - np.float32(BETA_1) ** step)
        )
        for g, w, m, v in zip(grads, weights, self.momentums, self.velocities, strict=True):
            m += (g - m) * np.float32(1.0 - BETA_1)
            v += (np.square(g) - v) * np.float32(1.0 - BETA_2)
            w -= (m * alpha) / (np.sqrt(v) + np.float32(EPSILON))
        self.iterations += 1

    def state(self) -> list[np.ndarray]:
        """The optimizer's variables, in the order Keras lists them (iterations first)."""
        return [np.array(self.iterations, dtype=np.int64), *self.momentums, *self.velocities]

    def load_state(self, arrays: list[np.ndarray]) -> None:
        count = len(self.momentums)
        self.iterations = int(arrays[0])
        self.momentums = [np.array(a, dtype=np.float32) for a in arrays[1 : 1 + count]]
        self.velocities = [np.array(a, dtype=np.float32) for a in arrays[1 + count :]]
