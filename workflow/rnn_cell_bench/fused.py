"""The fused CPU engine: LSTM, GRU and plain RNN forward and backward over the full sequence
in numba.

The model, its parameterization and the optimizer are those of the Keras reference
(:mod:`rnn_cell_bench.models`), only computed differently:

- Inputs are ``(batch, steps, input_dim)``, targets ``(batch, steps, 1)``.
- Parameters are the Keras 3 tensors, in Keras order: ``kernel`` (input_dim, G),
  ``recurrent_kernel`` (H, G), ``bias`` (G,) for the LSTM and the RNN or (2, G) for the GRU
  (``reset_after``: input and recurrent bias), then the read-out ``kernel`` (H, 1) and ``bias``
  (1,). Gates in Keras order: LSTM i, f, c, o (G = 4H); GRU z, r, h (G = 3H); the RNN
  (Keras ``SimpleRNN``, ``h_t = tanh(x_t W + b + h_{t-1} R)``) has none (G = H). Inside, the
  gate columns are unit-major (column ``u * G / H + g``); the gradients come back in Keras
  order.
- The initial weights are taken from the Keras model built with the same seed, so both engines
  start from identical values (``glorot_uniform``, ``orthogonal``, the LSTM's forget bias 1).
- Loss: mean squared error over all sequences and steps (:func:`loss_and_gradients`). Adam and
  both clipping modes follow Keras 3 step for step (:class:`FusedAdam`).
- The held-out loss (:func:`heldout_loss`): the forward pass alone on another set of
  sequences, maybe of another length, its mean squared error over the steps from ``start``.

Layout: sequences across SIMD lanes. The batch is cut into blocks of ``LANES`` sequences (the
last one padded with zero sequences, whose results are dropped) and transposed so that a block
is a ``(steps, input_dim, LANES)`` array of inputs and a ``(steps, LANES)`` array of targets,
with its sequences contiguous. A block runs forward over all steps and then backward, keeping
its activations as ``(steps, units or gates, LANES)`` arrays (the RNN only its hidden states,
``(steps + 1, units, LANES)``: its ``tanh``'s derivative is ``1 - h^2``). Every loop nest ends
in a loop over the lanes: each gate, each product of the recurrent matrix and each gradient
update is done for the block's sequences side by side, which the compiler turns into full-width
vector instructions (8 float32 lanes with AVX2, 4 with SSE2) without reordering any sum: a lane
only ever combines values of its own sequence, and in the same order as a plain scalar loop over
one sequence would.

Where the time goes, and how the loops are arranged for it (each arrangement changes only the
order in which independent sums advance, never the order of the terms within a sum):

- Recurrent products (``h R`` forward, ``R dz`` backward) run over tiles of ``TILE`` output
  rows held in vector registers (:func:`_registers`, a stack array that LLVM promotes once the
  loops over it are unrolled): ``TILE`` independent additions per input keep the adders busy,
  where one output at a time would wait out each addition's latency.
- The weight gradients are sums over steps. Adding each step's terms to the ``(units, gates)``
  sums directly would read and write 32 kB per step and thrash the L1 cache; instead the last
  ``WINDOW`` steps' factors are kept and added in one pass per window, tile by tile, with the
  sums in registers over the window's steps (:func:`_add_steps`).
- The input features enter a gate's sum before the recurrent product, one feature after
  another: the LSTM's and the RNN's ``z = b + x_0 w_0 (+ x_1 w_1 ...) + h R``, the GRU's
  ``x W = x_0 w_0 (+ x_1 w_1 ...)`` and then ``(x W + b_in) + (h R + b_rec)`` (the
  candidate's ``(x W + b_in) + r (h R + b_rec)``); the kernel's gradient is summed over the
  steps like the recurrent kernel's, with ``input_dim`` rows. With one feature these are the
  operations, in the order, of the one-feature kernels before them, so that every published
  result stays exactly true. (Keras' ``SimpleRNN`` adds ``(x W + b) + h R``: the same sum
  with one feature, rounded otherwise with several.)
- The arrays of a block (about 3 kB per step for a 16-unit LSTM, 0.5 kB for the RNN) are
  allocated once per shape and reused every epoch (:func:`_workspaces`); fresh ones cost more in
  page faults than the backward pass. The shapes used last are kept side by side
  (``KEPT_SHAPES``), so that a run that computes a held-out loss every few epochs keeps the
  training set's and the held-out set's. Each block's forward and backward pass are separate
  tasks, so that 2 threads share 5 blocks 2.5 to 2.5 rather than 3 to 2 (:func:`_run_passes`);
  the held-out loss's second task sums the block's squared errors (:func:`_add_squared_errors`).

Bit-identical results on any x86-64 CPU, for any thread count:

- No ``fastmath``: LLVM may neither reassociate sums nor contract a multiply and an add into
  an FMA, so every lane does the same IEEE float32 operations on every instruction set.
  ``tanh`` is a rational function of plain arithmetic, not a libm call, for the same reason.
- Blocks are independent and are spread over threads (numba's thread count) in any order;
  each sequence's gradients are kept separately (per block and lane) and summed over the
  sequences in sequence order at the end, so neither the thread count nor the block a
  sequence lands in can change a bit.
- Arithmetic is float32 as in Keras. Gradients are summed per sequence in float32 over chunks
  of ``CHUNK`` steps (counted from the last step), and the chunks in float64. The held-out
  loss sums each sequence's squared errors in float64 in step order, then the sequences in
  sequence order.
- Adam's norms and bias corrections are computed exactly or by plain IEEE operations, not by
  libm or numpy reductions, whose results may depend on the CPU.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np
from llvmlite import ir
from numba import literal_unroll, njit, types
from numba.core import cgutils
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.extending import intrinsic

from rnn_cell_bench.cells import cell_spec
from rnn_cell_bench.models import GATES

BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7  # Keras Adam defaults

# LLVM unrolls the short loops over the lanes completely; only its SLP vectorizer, which numba
# leaves off by default, turns the unrolled statements back into vector instructions. It keeps
# the order of every operation (no fastmath), so it changes speed only, not results.
numba.config.SLP_VECTORIZE = 1

LANES = 8  # sequences per block (one per float32 lane of a 256-bit vector)
TILE = 8  # gates whose sums run side by side (independent chains hide the add latency)
# The step sums' tiles: each term there has two vector operands, and at 8 columns LLVM no
# longer unrolls the tile (measured: 3x slower), so they are 4 wide.
NARROW = 4
_REGISTER_FLOATS, _NARROW_FLOATS = TILE * LANES, NARROW * LANES
WINDOW = 8  # steps whose gradient terms are added to the float32 sums in one pass
CHUNK = 32  # steps summed in float32 before the per-sequence float64 gradient sums


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
_ONE = np.float32(1.0)


@njit(inline="always")
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


@njit(inline="always")
def _sigmoid(v):
    return _HALF * _tanh(_HALF * v) + _HALF


class _NoAliasCompiler(CompilerBase):
    """numba's nopython pipeline with every array argument marked ``noalias`` (as numba does
    for the bodies of ``prange`` loops). The kernels' arrays never overlap, and LLVM needs to
    know that to turn the per-lane statements into vector loads, operations and stores."""

    def define_pipelines(self):
        self.state.flags.noalias = True
        return [DefaultPassBuilder.define_nopython_pipeline(self.state)]


_lanes_kernel = njit(nogil=True, cache=True, error_model="numpy", pipeline_class=_NoAliasCompiler)


@intrinsic
def _stack_floats(typingctx, count):
    """A pointer to ``count`` (a compile-time constant) float32 on the calling kernel's stack."""
    if not isinstance(count, types.IntegerLiteral):
        return None
    size = count.literal_value

    def codegen(context, builder, signature, args):
        block = cgutils.alloca_once(builder, ir.ArrayType(ir.FloatType(), size))
        return builder.bitcast(block, ir.PointerType(ir.FloatType()))

    return types.CPointer(types.float32)(count), codegen


@njit(inline="always")
def _registers():
    """A ``(TILE, LANES)`` float32 scratch array on the stack: once the loops over it are
    unrolled, LLVM keeps it in vector registers (a heap array would stay in memory)."""
    return numba.carray(_stack_floats(_REGISTER_FLOATS), (TILE, LANES))


@njit(inline="always")
def _narrow_registers():
    """:func:`_registers` with ``NARROW`` rows."""
    return numba.carray(_stack_floats(_NARROW_FLOATS), (NARROW, LANES))


@njit(inline="always")
def _fixed(array):
    """``array``, after checking that its last dimension is ``LANES``: past the check LLVM
    knows the array's strides as constants, so that the gates of a unit lie a fixed distance
    apart, which it needs to vectorize the loops over the lanes."""
    if array.shape[-1] != LANES:
        raise ValueError("the last dimension must be LANES")
    return array


@njit(inline="always")
def _add_product(out, vectors, matrix):
    """``out[j] += vectors[k] * matrix[k, j]``, added one ``k`` after another, for every lane.

    The columns ``j`` go in tiles of ``TILE`` whose sums stay in registers while ``k`` runs:
    ``TILE`` independent additions per ``k`` keep the adder busy, where one column at a time
    would wait for each addition to finish before the next (the order of every sum is the same
    either way)."""
    rows, columns = matrix.shape
    for first in range(0, columns - TILE + 1, TILE):
        acc = _registers()
        for jj in range(TILE):
            for lane in range(LANES):
                acc[jj, lane] = out[first + jj, lane]
        for k in range(rows):
            for jj in range(TILE):
                m = matrix[k, first + jj]
                for lane in range(LANES):
                    acc[jj, lane] += vectors[k, lane] * m
        for jj in range(TILE):
            for lane in range(LANES):
                out[first + jj, lane] = acc[jj, lane]
    for k in range(rows):
        for j in range(columns - columns % TILE, columns):
            m = matrix[k, j]
            for lane in range(LANES):
                out[j, lane] += vectors[k, lane] * m


@njit(inline="always")
def _product(out, matrix, vectors):
    """``out[k] = sum over j of matrix[k, j] * vectors[j]``, summed from zero one ``j`` after
    another, for every lane; rows in tiles of ``TILE``, as in :func:`_add_product`."""
    rows, columns = matrix.shape
    for first in range(0, rows - TILE + 1, TILE):
        acc = _registers()
        for kk in range(TILE):
            for lane in range(LANES):
                acc[kk, lane] = 0
        for j in range(columns):
            for kk in range(TILE):
                m = matrix[first + kk, j]
                for lane in range(LANES):
                    acc[kk, lane] += m * vectors[j, lane]
        for kk in range(TILE):
            for lane in range(LANES):
                out[first + kk, lane] = acc[kk, lane]
    for k in range(rows - rows % TILE, rows):
        for lane in range(LANES):
            out[k, lane] = 0
        for j in range(columns):
            m = matrix[k, j]
            for lane in range(LANES):
                out[k, lane] += m * vectors[j, lane]


@njit(inline="always")
def _add_steps(out, left, right, count):
    """``out[k, j] += left[s, k] * right[s, j]`` for the steps ``s < count`` one after another,
    for every lane: a gradient's sum over the last few steps. Columns in tiles of ``NARROW`` kept
    in registers over the steps, so that ``out`` (too big for the L1 cache with the rest) is
    read and written once per call rather than once per step."""
    rows, columns = out.shape[0], out.shape[1]
    for first in range(0, columns - NARROW + 1, NARROW):
        for k in range(rows):
            acc = _narrow_registers()
            for jj in range(NARROW):
                for lane in range(LANES):
                    acc[jj, lane] = out[k, first + jj, lane]
            for step in range(count):
                for jj in range(NARROW):
                    for lane in range(LANES):
                        acc[jj, lane] += left[step, k, lane] * right[step, first + jj, lane]
            for jj in range(NARROW):
                for lane in range(LANES):
                    out[k, first + jj, lane] = acc[jj, lane]
    for k in range(rows):
        for j in range(columns - columns % NARROW, columns):
            for step in range(count):
                for lane in range(LANES):
                    out[k, j, lane] += left[step, k, lane] * right[step, j, lane]


@njit(inline="always")
def _add_sums(out, right, count):
    """``out[j] += right[s, j]`` for the steps ``s < count`` one after another (see
    :func:`_add_steps`)."""
    columns = out.shape[0]
    for first in range(0, columns - NARROW + 1, NARROW):
        acc = _narrow_registers()
        for jj in range(NARROW):
            for lane in range(LANES):
                acc[jj, lane] = out[first + jj, lane]
        for step in range(count):
            for jj in range(NARROW):
                for lane in range(LANES):
                    acc[jj, lane] += right[step, first + jj, lane]
        for jj in range(NARROW):
            for lane in range(LANES):
                out[first + jj, lane] = acc[jj, lane]
    for j in range(columns - columns % NARROW, columns):
        for step in range(count):
            for lane in range(LANES):
                out[j, lane] += right[step, j, lane]


@njit(inline="always")
def _flush(part, total):
    """Add the float32 chunk sums ``part`` to the float64 sums ``total`` and reset them."""
    flat_part, flat_total = part.reshape(part.size), total.reshape(total.size)
    for i in range(flat_part.size):
        flat_total[i] += flat_part[i]
        flat_part[i] = 0


@njit(inline="always")
def _flush_all(parts, sums):
    _flush(parts[0], sums[0])
    _flush(parts[1], sums[1])
    _flush(parts[2], sums[2])
    _flush(parts[3], sums[3])
    _flush(parts[4], sums[4])


@_lanes_kernel
def _lstm_forward(xs, ys, kernel, recurrent, bias, dense_kernel, dense_bias, state, loss):
    """Forward pass of one block: fills ``state`` = (hs, cs, acts, errors, z, prediction,
    c) and adds each lane's sum of squared errors to ``loss``. ``c`` is the current cell
    state: reading ``cs[t]`` while writing ``cs[t + 1]`` would keep LLVM from vectorizing."""
    xs, ys, loss = _fixed(xs), _fixed(ys), _fixed(loss)
    hs, cs, acts, errors = _fixed(state[0]), _fixed(state[1]), _fixed(state[2]), _fixed(state[3])
    z, prediction, c_now = _fixed(state[4]), _fixed(state[5]), _fixed(state[6])
    steps, features, units = xs.shape[0], xs.shape[1], recurrent.shape[0]
    gates = 4 * units
    for t in range(steps):
        # b + x_0 w_0, then + x_1 w_1 and so on: the order of the terms is fixed
        for j in range(gates):
            b, w = bias[j], kernel[0, j]
            for lane in range(LANES):
                z[j, lane] = b + xs[t, 0, lane] * w
        for i in range(1, features):
            for j in range(gates):
                w = kernel[i, j]
                for lane in range(LANES):
                    z[j, lane] += xs[t, i, lane] * w
        _add_product(z, hs[t], recurrent)
        for lane in range(LANES):
            prediction[lane] = dense_bias[0]
        # the gates of every unit first, then the states: two loops of independent iterations
        # keep more activations in flight than one loop in which each unit waits for its gates
        for j in range(units):
            for lane in range(LANES):
                acts[t, 4 * j, lane] = _sigmoid(z[4 * j, lane])
                acts[t, 4 * j + 1, lane] = _sigmoid(z[4 * j + 1, lane])
                acts[t, 4 * j + 2, lane] = _tanh(z[4 * j + 2, lane])
                acts[t, 4 * j + 3, lane] = _sigmoid(z[4 * j + 3, lane])
        for j in range(units):
            w = dense_kernel[j, 0]
            for lane in range(LANES):
                gi, gf = acts[t, 4 * j, lane], acts[t, 4 * j + 1, lane]
                gg, go = acts[t, 4 * j + 2, lane], acts[t, 4 * j + 3, lane]
                c = gf * c_now[j, lane] + gi * gg
                h = go * _tanh(c)
                c_now[j, lane] = c
                cs[t + 1, j, lane] = c
                hs[t + 1, j, lane] = h
                prediction[lane] += h * w
        for lane in range(LANES):
            err = prediction[lane] - ys[t, lane]
            errors[t, lane] = err
            loss[lane] += err * err


@_lanes_kernel
def _lstm_backward(xs, recurrent, dense_kernel, scale, state, work, parts, sums):
    """Backward through time for one block, from the forward ``state``; ``parts`` are the
    float32 gradient sums of the current chunk of steps, ``sums`` their float64 totals."""
    xs = _fixed(xs)
    hs, cs, acts, errors = _fixed(state[0]), _fixed(state[1]), _fixed(state[2]), _fixed(state[3])
    dh_next, dc_next, dy = _fixed(work[0]), _fixed(work[1]), _fixed(work[2])
    # the last steps' dz, inputs and hidden states, added to the gradient sums every WINDOW steps
    dz_steps, x_steps, h_steps = _fixed(work[3]), _fixed(work[4]), _fixed(work[5])
    part_kernel, part_recurrent, part_bias = _fixed(parts[0]), _fixed(parts[1]), _fixed(parts[2])
    part_dense, part_dense_bias = _fixed(parts[3]), _fixed(parts[4])
    steps, features, units = xs.shape[0], xs.shape[1], recurrent.shape[0]
    for t in range(steps - 1, -1, -1):
        step = (steps - 1 - t) % WINDOW
        dz = dz_steps[step]
        for lane in range(LANES):
            dy[lane] = scale * errors[t, lane]
            part_dense_bias[lane] += dy[lane]
            x_steps[step, 0, lane] = xs[t, 0, lane]
        for i in range(1, features):
            for lane in range(LANES):
                x_steps[step, i, lane] = xs[t, i, lane]
        for j in range(units):
            w = dense_kernel[j, 0]
            for lane in range(LANES):
                part_dense[j, lane] += hs[t + 1, j, lane] * dy[lane]
                h_steps[step, j, lane] = hs[t, j, lane]
                dh = dy[lane] * w + dh_next[j, lane]
                gi = acts[t, 4 * j, lane]
                gf = acts[t, 4 * j + 1, lane]
                gg = acts[t, 4 * j + 2, lane]
                go = acts[t, 4 * j + 3, lane]
                tc = _tanh(cs[t + 1, j, lane])  # as in the forward pass, bit for bit
                dc = dh * go * (_ONE - tc * tc) + dc_next[j, lane]
                dz[4 * j, lane] = dc * gg * gi * (_ONE - gi)
                dz[4 * j + 1, lane] = dc * cs[t, j, lane] * gf * (_ONE - gf)
                dz[4 * j + 2, lane] = dc * gi * (_ONE - gg * gg)
                dz[4 * j + 3, lane] = dh * tc * go * (_ONE - go)
                dc_next[j, lane] = dc * gf
        _product(dh_next, recurrent, dz)
        if step == WINDOW - 1 or t == 0:
            _add_steps(part_kernel, x_steps, dz_steps, step + 1)
            _add_sums(part_bias[0], dz_steps, step + 1)
            _add_steps(part_recurrent, h_steps, dz_steps, step + 1)
        if (steps - t) % CHUNK == 0 or t == 0:
            _flush_all(parts, sums)


@_lanes_kernel
def _gru_forward(xs, ys, kernel, recurrent, bias, dense_kernel, dense_bias, state, loss):
    """:func:`_lstm_forward` for the GRU: ``state`` = (hs, acts, inner_h, errors, inner,
    prediction, h, xw), ``h`` the current hidden state, ``xw`` the step's ``x W``."""
    xs, ys, loss = _fixed(xs), _fixed(ys), _fixed(loss)
    hs, acts, inner_h = _fixed(state[0]), _fixed(state[1]), _fixed(state[2])
    errors, inner, prediction, h_now = (
        _fixed(state[3]),
        _fixed(state[4]),
        _fixed(state[5]),
        _fixed(state[6]),
    )
    xw = _fixed(state[7])
    steps, features, units = xs.shape[0], xs.shape[1], recurrent.shape[0]
    gates = 3 * units
    for t in range(steps):
        # x W as x_0 w_0 + x_1 w_1 + ..., then (x W + b_in) + inner below, in that order
        for j in range(gates):
            b, k = bias[1, j], kernel[0, j]
            for lane in range(LANES):
                inner[j, lane] = b
                xw[j, lane] = xs[t, 0, lane] * k
        _add_product(inner, hs[t], recurrent)
        for i in range(1, features):
            for j in range(gates):
                k = kernel[i, j]
                for lane in range(LANES):
                    xw[j, lane] += xs[t, i, lane] * k
        for lane in range(LANES):
            prediction[lane] = dense_bias[0]
        for j in range(units):
            bz, br, bh = bias[0, 3 * j], bias[0, 3 * j + 1], bias[0, 3 * j + 2]
            w = dense_kernel[j, 0]
            for lane in range(LANES):
                gz = _sigmoid(xw[3 * j, lane] + bz + inner[3 * j, lane])
                gr = _sigmoid(xw[3 * j + 1, lane] + br + inner[3 * j + 1, lane])
                ih = inner[3 * j + 2, lane]
                gh = _tanh(xw[3 * j + 2, lane] + bh + gr * ih)
                h = gz * h_now[j, lane] + (_ONE - gz) * gh
                h_now[j, lane] = h
                hs[t + 1, j, lane] = h
                acts[t, 3 * j, lane] = gz
                acts[t, 3 * j + 1, lane] = gr
                acts[t, 3 * j + 2, lane] = gh
                inner_h[t, j, lane] = ih
                prediction[lane] += h * w
        for lane in range(LANES):
            err = prediction[lane] - ys[t, lane]
            errors[t, lane] = err
            loss[lane] += err * err


@_lanes_kernel
def _gru_backward(xs, recurrent, dense_kernel, scale, state, work, parts, sums):
    """:func:`_lstm_backward` for the GRU; ``part_bias`` rows: input bias, recurrent bias."""
    xs = _fixed(xs)
    hs, acts, inner_h, errors = (
        _fixed(state[0]),
        _fixed(state[1]),
        _fixed(state[2]),
        _fixed(state[3]),
    )
    dh_next, dy, total = _fixed(work[0]), _fixed(work[1]), _fixed(work[2])
    # the last steps' gradients w.r.t. x W + b_in and h_prev R + b_rec, inputs, hidden states
    input_steps, inner_steps = _fixed(work[3]), _fixed(work[4])
    x_steps, h_steps = _fixed(work[5]), _fixed(work[6])
    part_kernel, part_recurrent, part_bias = _fixed(parts[0]), _fixed(parts[1]), _fixed(parts[2])
    part_dense, part_dense_bias = _fixed(parts[3]), _fixed(parts[4])
    steps, features, units = xs.shape[0], xs.shape[1], recurrent.shape[0]
    for t in range(steps - 1, -1, -1):
        step = (steps - 1 - t) % WINDOW
        d_input, d_inner = input_steps[step], inner_steps[step]
        for lane in range(LANES):
            dy[lane] = scale * errors[t, lane]
            part_dense_bias[lane] += dy[lane]
            x_steps[step, 0, lane] = xs[t, 0, lane]
        for i in range(1, features):
            for lane in range(LANES):
                x_steps[step, i, lane] = xs[t, i, lane]
        for j in range(units):
            w = dense_kernel[j, 0]
            for lane in range(LANES):
                part_dense[j, lane] += hs[t + 1, j, lane] * dy[lane]
                h_steps[step, j, lane] = hs[t, j, lane]
                dh = dy[lane] * w + dh_next[j, lane]
                gz = acts[t, 3 * j, lane]
                gr = acts[t, 3 * j + 1, lane]
                gh = acts[t, 3 * j + 2, lane]
                da_h = dh * (_ONE - gz) * (_ONE - gh * gh)
                da_z = dh * (hs[t, j, lane] - gh) * gz * (_ONE - gz)
                da_r = da_h * inner_h[t, j, lane] * gr * (_ONE - gr)
                d_input[3 * j, lane] = da_z  # w.r.t. x W + b_in
                d_input[3 * j + 1, lane] = da_r
                d_input[3 * j + 2, lane] = da_h
                d_inner[3 * j, lane] = da_z  # w.r.t. h_prev R + b_rec
                d_inner[3 * j + 1, lane] = da_r
                d_inner[3 * j + 2, lane] = da_h * gr
                dh_next[j, lane] = dh * gz  # the direct path; the recurrent one is added below
        _product(total, recurrent, d_inner)
        for k in range(units):
            for lane in range(LANES):
                dh_next[k, lane] += total[k, lane]
        if step == WINDOW - 1 or t == 0:
            _add_steps(part_kernel, x_steps, input_steps, step + 1)
            _add_sums(part_bias[0], input_steps, step + 1)
            _add_sums(part_bias[1], inner_steps, step + 1)
            _add_steps(part_recurrent, h_steps, inner_steps, step + 1)
        if (steps - t) % CHUNK == 0 or t == 0:
            _flush_all(parts, sums)


@_lanes_kernel
def _rnn_forward(xs, ys, kernel, recurrent, bias, dense_kernel, dense_bias, state, loss):
    """:func:`_lstm_forward` for the plain tanh RNN: ``state`` = (hs, z, prediction, errors),
    ``z`` the step's ``b + x W + h_prev R``. No current-state copy is needed: the step reads
    ``hs[t]`` only in the recurrent product, before it writes ``hs[t + 1]``."""
    xs, ys, loss = _fixed(xs), _fixed(ys), _fixed(loss)
    hs, z, prediction, errors = (
        _fixed(state[0]),
        _fixed(state[1]),
        _fixed(state[2]),
        _fixed(state[3]),
    )
    steps, features, units = xs.shape[0], xs.shape[1], recurrent.shape[0]
    for t in range(steps):
        # b + x_0 w_0, then + x_1 w_1 and so on, then + h_prev R, as in the LSTM
        for j in range(units):
            b, w = bias[j], kernel[0, j]
            for lane in range(LANES):
                z[j, lane] = b + xs[t, 0, lane] * w
        for i in range(1, features):
            for j in range(units):
                w = kernel[i, j]
                for lane in range(LANES):
                    z[j, lane] += xs[t, i, lane] * w
        _add_product(z, hs[t], recurrent)
        for lane in range(LANES):
            prediction[lane] = dense_bias[0]
        for j in range(units):
            w = dense_kernel[j, 0]
            for lane in range(LANES):
                h = _tanh(z[j, lane])
                hs[t + 1, j, lane] = h
                prediction[lane] += h * w
        for lane in range(LANES):
            err = prediction[lane] - ys[t, lane]
            errors[t, lane] = err
            loss[lane] += err * err


@_lanes_kernel
def _rnn_backward(xs, recurrent, dense_kernel, scale, state, work, parts, sums):
    """:func:`_lstm_backward` for the plain tanh RNN: ``dz = dh (1 - h^2)`` from the step's
    output ``h`` (``hs[t + 1]``), ``dh`` the read-out's and the next step's ``R dz``."""
    xs = _fixed(xs)
    hs, errors = _fixed(state[0]), _fixed(state[3])
    dh_next, dy = _fixed(work[0]), _fixed(work[1])
    # the last steps' dz, inputs and hidden states, added to the gradient sums every WINDOW steps
    dz_steps, x_steps, h_steps = _fixed(work[2]), _fixed(work[3]), _fixed(work[4])
    part_kernel, part_recurrent, part_bias = _fixed(parts[0]), _fixed(parts[1]), _fixed(parts[2])
    part_dense, part_dense_bias = _fixed(parts[3]), _fixed(parts[4])
    steps, features, units = xs.shape[0], xs.shape[1], recurrent.shape[0]
    for t in range(steps - 1, -1, -1):
        step = (steps - 1 - t) % WINDOW
        dz = dz_steps[step]
        for lane in range(LANES):
            dy[lane] = scale * errors[t, lane]
            part_dense_bias[lane] += dy[lane]
            x_steps[step, 0, lane] = xs[t, 0, lane]
        for i in range(1, features):
            for lane in range(LANES):
                x_steps[step, i, lane] = xs[t, i, lane]
        for j in range(units):
            w = dense_kernel[j, 0]
            for lane in range(LANES):
                h = hs[t + 1, j, lane]
                part_dense[j, lane] += h * dy[lane]
                h_steps[step, j, lane] = hs[t, j, lane]
                dh = dy[lane] * w + dh_next[j, lane]
                dz[j, lane] = dh * (_ONE - h * h)
        _product(dh_next, recurrent, dz)
        if step == WINDOW - 1 or t == 0:
            _add_steps(part_kernel, x_steps, dz_steps, step + 1)
            _add_sums(part_bias[0], dz_steps, step + 1)
            _add_steps(part_recurrent, h_steps, dz_steps, step + 1)
        if (steps - t) % CHUNK == 0 or t == 0:
            _flush_all(parts, sums)


def _lanes(shape: tuple[int, ...]) -> np.ndarray:
    """Zeros of ``shape`` with a float32 lane for each sequence of a block."""
    return np.zeros(shape + (LANES,), dtype=np.float32)


def _workspace(cell: str, steps: int, units: int, input_dim: int) -> tuple:
    """The arrays one block needs from its forward pass to the end of its backward pass:
    (state, work, parts, sums, loss), see :func:`_lstm_block_forward`. About 3 kB per step
    and lane set for a 16-unit LSTM (60 MB at 20,000 steps; the RNN's about 0.5 kB), so they
    are allocated once and reused, not once per block and epoch. The errors are ``state[3]``
    for every cell (:func:`heldout_loss` reads them there)."""
    gates = GATES[cell] * units
    if cell == "lstm":
        # hs and cs (h_0 = c_0 = 0), activated i, f, g, o, errors, the step's z and prediction, c
        state = [(steps + 1, units), (steps + 1, units), (steps, gates), (steps,)]
        state += [(gates,), (), (units,)]
        # dh_next, dc_next, dy, and the last WINDOW steps' dz, inputs and hidden states
        work = [(units,), (units,), (), (WINDOW, gates), (WINDOW, input_dim), (WINDOW, units)]
        bias_rows = 1
    elif cell == "gru":
        # hs (h_0 = 0), activated z, r, h~, h_prev R_h + b_rec_h, errors, the step's inner
        # sums h_prev R + b_rec and prediction, h, the step's x W
        state = [(steps + 1, units), (steps, gates), (steps, units), (steps,)]
        state += [(gates,), (), (units,), (gates,)]
        # dh_next, dy, the recurrent sum, and the last WINDOW steps' gradients w.r.t.
        # x W + b_in and h_prev R + b_rec, inputs and hidden states
        work = [(units,), (), (units,), (WINDOW, gates), (WINDOW, gates), (WINDOW, input_dim)]
        work += [(WINDOW, units)]
        bias_rows = 2
    else:
        # the RNN: hs (h_0 = 0), the step's z and prediction, errors
        state = [(steps + 1, units), (units,), (), (steps,)]
        # dh_next, dy, and the last WINDOW steps' dz, inputs and hidden states
        work = [(units,), (), (WINDOW, units), (WINDOW, input_dim), (WINDOW, units)]
        bias_rows = 1
    # float32 gradient sums of the current chunk of steps: kernel, recurrent kernel, bias,
    # dense kernel, dense bias; then their float64 totals
    parts = [(input_dim, gates), (units, gates), (bias_rows, gates), (units,), ()]
    state, work, parts = (
        tuple(_lanes(shape) for shape in shapes) for shapes in (state, work, parts)
    )
    sums = tuple(np.zeros(part.shape) for part in parts)
    return state, work, parts, sums, np.zeros(LANES)


@njit(inline="always")
def _zero(array):
    flat = array.reshape(array.size)
    for i in range(flat.size):
        flat[i] = 0


@njit(inline="always")
def _reset(space):
    """Zero what a block reads before it writes it: the initial states (row 0 of ``hs`` and,
    for the LSTM, ``cs``; the current state), the backward carries, the gradient sums and the
    loss. Everything else is written step by step before it is read."""
    state, work, parts, sums, loss = space
    _zero(state[0][0])
    _zero(state[1][0])  # the LSTM's cs[0]; for the GRU the first row of acts, rewritten later
    _zero(state[6])
    _zero(work[0])
    _zero(work[1])
    for part in literal_unroll(parts):
        _zero(part)
    for total in literal_unroll(sums):
        _zero(total)
    _zero(loss)


@njit(inline="always")
def _rnn_reset(space):
    """:func:`_reset` for the RNN's workspace: ``h_0``, ``dh_next``, the gradient sums and the
    loss."""
    state, work, parts, sums, loss = space
    _zero(state[0][0])
    _zero(work[0])
    for part in literal_unroll(parts):
        _zero(part)
    for total in literal_unroll(sums):
        _zero(total)
    _zero(loss)


@njit(inline="always")
def _store(block, loss, sums, out):
    """Row ``block`` of the per-lane results ``out`` (see :func:`loss_and_gradients`)."""
    losses, d_kernel, d_recurrent, d_bias, d_dense, d_dense_bias = out
    losses[block] = loss
    d_kernel[block] = sums[0].reshape(d_kernel.shape[1:])
    d_recurrent[block] = sums[1].reshape(d_recurrent.shape[1:])
    d_bias[block] = sums[2].reshape(d_bias.shape[1:])
    d_dense[block] = sums[3]
    d_dense_bias[block] = sums[4]


@njit(nogil=True, cache=True)
def _lstm_block_forward(block, x, y, weights, space):
    """The forward pass of the ``LANES`` sequences of ``block`` into ``space``, a
    :func:`_workspace`."""
    kernel, recurrent, bias, dense_kernel, dense_bias = weights
    _reset(space)
    state, loss = space[0], space[4]
    _lstm_forward(
        x[block], y[block], kernel, recurrent, bias, dense_kernel, dense_bias, state, loss
    )


@njit(nogil=True, cache=True)
def _lstm_block_backward(block, x, weights, scale, space, out):
    """Backward through time for ``block`` from its forward pass in ``space``; its loss and
    gradient sums (per lane) go to row ``block`` of the arrays in ``out``."""
    recurrent, dense_kernel = weights[1], weights[3]
    state, work, parts, sums, loss = space
    _lstm_backward(x[block], recurrent, dense_kernel, scale, state, work, parts, sums)
    _store(block, loss, sums, out)


@njit(nogil=True, cache=True)
def _gru_block_forward(block, x, y, weights, space):
    """:func:`_lstm_block_forward` for the GRU."""
    kernel, recurrent, bias, dense_kernel, dense_bias = weights
    _reset(space)
    state, loss = space[0], space[4]
    _gru_forward(x[block], y[block], kernel, recurrent, bias, dense_kernel, dense_bias, state, loss)


@njit(nogil=True, cache=True)
def _gru_block_backward(block, x, weights, scale, space, out):
    """:func:`_lstm_block_backward` for the GRU."""
    recurrent, dense_kernel = weights[1], weights[3]
    state, work, parts, sums, loss = space
    _gru_backward(x[block], recurrent, dense_kernel, scale, state, work, parts, sums)
    _store(block, loss, sums, out)


@njit(nogil=True, cache=True)
def _rnn_block_forward(block, x, y, weights, space):
    """:func:`_lstm_block_forward` for the RNN."""
    kernel, recurrent, bias, dense_kernel, dense_bias = weights
    _rnn_reset(space)
    state, loss = space[0], space[4]
    _rnn_forward(x[block], y[block], kernel, recurrent, bias, dense_kernel, dense_bias, state, loss)


@njit(nogil=True, cache=True)
def _rnn_block_backward(block, x, weights, scale, space, out):
    """:func:`_lstm_block_backward` for the RNN."""
    recurrent, dense_kernel = weights[1], weights[3]
    state, work, parts, sums, loss = space
    _rnn_backward(x[block], recurrent, dense_kernel, scale, state, work, parts, sums)
    _store(block, loss, sums, out)


@njit(nogil=True, cache=True)
def _add_squared_errors(errors, start, out):
    """``out[lane] += errors[t, lane] ** 2`` in float64 for the steps ``t >= start`` one after
    another: each lane's (sequence's) held-out sum of squares, in step order. A float32
    value's square is exact in float64."""
    errors = _fixed(errors)
    for t in range(start, errors.shape[0]):
        for lane in range(LANES):
            e = np.float64(errors[t, lane])
            out[lane] += e * e


@njit(cache=True)
def _sum_sequences(values, batch):
    """Sum of ``values`` ``(blocks, n, LANES)`` over the first ``batch`` sequences, one whole
    sequence after another in sequence order."""
    total = np.zeros(values.shape[1])
    for sequence in range(batch):
        block, lane = divmod(sequence, LANES)
        for i in range(values.shape[1]):
            total[i] += values[block, i, lane]
    return total


PASSES = {
    "lstm": (_lstm_block_forward, _lstm_block_backward),
    "gru": (_gru_block_forward, _gru_block_backward),
    "rnn": (_rnn_block_forward, _rnn_block_backward),
}


# Workspaces by shape, least recently used first: the training set's and the held-out set's
# (a run alternates between them), and one more, at most KEPT_SHAPES shapes in all.
KEPT_SHAPES = 3
_WORKSPACES: OrderedDict = OrderedDict()
_WORKSPACES_LOCK = threading.Lock()


def _workspaces(cell: str, steps: int, units: int, input_dim: int, count: int) -> list[tuple]:
    """``count`` :func:`_workspace` s, kept for the next call of the same shape (every epoch
    of a run). The ``KEPT_SHAPES`` shapes used last are kept; a new one drops the one used
    longest ago (before allocating, so that memory stays bounded)."""
    key = (cell, steps, units, input_dim)
    spaces = _WORKSPACES.pop(key, [])
    while len(_WORKSPACES) >= KEPT_SHAPES:
        _WORKSPACES.popitem(last=False)
    while len(spaces) < count:
        spaces.append(_workspace(cell, steps, units, input_dim))
    _WORKSPACES[key] = spaces
    return spaces


def _run_passes(blocks: int, threads: int, spaces: list, forward, backward) -> None:
    """Run ``forward(block, space)`` and then ``backward(block, space)`` (the backward pass, or
    for the held-out loss the sum of the squared errors) for every block on ``threads``
    threads, each block in one of ``spaces`` (workspaces) from its forward pass to the end of
    its second pass.

    A thread takes the next forward pass while a workspace is free, else a finished forward's
    backward pass. Splitting each block into two tasks balances the threads where whole blocks
    could not (5 blocks on 2 threads: 2.5 blocks each instead of 3 and 2), and one workspace
    more than threads is enough for that. Each block writes only its own results, so neither
    the order nor the thread changes a bit."""
    if threads == 1:
        for block in range(blocks):
            forward(block, spaces[0])
            backward(block, spaces[0])
        return
    condition = threading.Condition()
    free, ready = list(range(len(spaces))), []  # free workspaces; forwarded (block, space)
    started, finished = 0, 0
    failures: list[BaseException] = []

    def next_task():
        nonlocal started
        with condition:
            while True:
                if failures or finished == blocks:
                    return None
                if started < blocks and free:
                    started += 1
                    return forward, started - 1, free.pop(0)
                if ready:
                    return (backward, *ready.pop(0))
                condition.wait()

    def work() -> None:
        nonlocal finished
        while (task := next_task()) is not None:
            run, block, space = task
            try:
                run(block, spaces[space])
            except BaseException as error:
                with condition:
                    failures.append(error)
                    condition.notify_all()
                raise
            with condition:
                if run is forward:
                    ready.append((block, space))
                else:
                    free.append(space)
                    finished += 1
                condition.notify_all()

    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(work) for _ in range(threads)]:
            done.result()


def _to_blocks(array: np.ndarray, blocks: int) -> np.ndarray:
    """``(batch, steps, d)`` to ``(blocks, steps, d, LANES)`` float32, zero-padded sequences."""
    batch, steps, features = array.shape
    padded = np.zeros((blocks * LANES, steps, features), dtype=np.float32)
    padded[:batch] = array
    blocked = padded.reshape(blocks, LANES, steps, features).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(blocked)


def _prepare(cell: str, inputs: np.ndarray, targets: np.ndarray, weights: list[np.ndarray]):
    """Checked and rearranged arguments of :func:`loss_and_gradients` and
    :func:`heldout_loss`: the weights with their gate columns unit-major (and that order), the
    inputs ``(blocks, steps, d, LANES)`` and targets ``(blocks, steps, LANES)``."""
    if cell not in PASSES:
        raise ValueError(f"the fused engine has no kernels for {cell!r}: {', '.join(PASSES)} only")
    kernel, recurrent, bias, dense_kernel, dense_bias = (
        np.ascontiguousarray(w, dtype=np.float32) for w in weights
    )
    units, gates = recurrent.shape
    if gates != GATES[cell] * units or kernel.ndim != 2 or kernel.shape[1] != gates:
        raise ValueError(f"weights do not have the {cell} layout")
    inputs, targets = np.asarray(inputs), np.asarray(targets)
    if inputs.ndim == 2:  # (batch, steps): one feature
        inputs = inputs[..., np.newaxis]
    if inputs.ndim != 3 or inputs.shape[2] != kernel.shape[0]:
        raise ValueError(
            f"inputs of shape {inputs.shape} do not fit a kernel of shape {kernel.shape}: "
            "they must be (batch, steps, input_dim) for a kernel (input_dim, gates)"
        )
    batch, steps = inputs.shape[0], inputs.shape[1]
    if targets.shape[:2] != (batch, steps) or targets.size != batch * steps:
        raise ValueError(f"targets must be ({batch}, {steps}, 1), not {targets.shape}")
    if batch == 0 or steps == 0:
        raise ValueError("inputs must hold at least one sequence of at least one step")
    # Gates unit-major inside: column u * n + g for gate g of unit u, so that a unit's gates
    # are a fixed distance apart (which LLVM needs to vectorize the gate loops).
    n = GATES[cell]
    order = np.arange(gates).reshape(n, units).T.ravel()  # unit-major column -> Keras column
    kernel, recurrent, bias = (
        np.ascontiguousarray(w[..., order]) for w in (kernel, recurrent, bias)
    )
    blocks = -(-batch // LANES)
    x = _to_blocks(inputs, blocks)
    y = _to_blocks(targets.reshape(batch, steps, 1), blocks).reshape(blocks, steps, LANES)
    return (kernel, recurrent, bias, dense_kernel, dense_bias), order, x, y


def _run_blocks(cell: str, x: np.ndarray, y: np.ndarray, weights: tuple, then) -> None:
    """Every block's forward pass and then ``then(block, space)`` in the same workspace (a
    backward pass, or a held-out sum), on numba's thread count of threads (at most one per
    block) with the workspaces of this shape (:func:`_workspaces`, :func:`_run_passes`)."""
    blocks, steps = x.shape[0], x.shape[1]
    input_dim, units = weights[0].shape[0], weights[1].shape[0]
    forward = PASSES[cell][0]
    threads = min(numba.get_num_threads(), blocks)
    count = min(threads + 1, blocks) if threads > 1 else 1
    with _WORKSPACES_LOCK:
        spaces = _workspaces(cell, steps, units, input_dim, count)
        _run_passes(
            blocks, threads, spaces, lambda block, space: forward(block, x, y, weights, space), then
        )


def loss_and_gradients(
    cell: str, inputs: np.ndarray, targets: np.ndarray, weights: list[np.ndarray]
) -> tuple[float, list[np.ndarray]]:
    """Loss and float32 gradients for ``weights`` in Keras order (see the module docstring):
    ``inputs`` ``(batch, steps, input_dim)``, ``targets`` ``(batch, steps, 1)``, the kernel
    ``(input_dim, G)``.

    Runs the blocks of ``LANES`` sequences on numba's thread count of threads."""
    weights, order, x, y = _prepare(cell, inputs, targets, weights)
    kernel, recurrent, bias = weights[:3]
    input_dim, (units, gates) = kernel.shape[0], recurrent.shape
    blocks, steps = x.shape[0], x.shape[1]
    batch = len(inputs)
    bias_rows = cell_spec(cell).bias_rows
    out = (
        np.zeros((blocks, LANES)),  # loss
        np.zeros((blocks, input_dim * gates, LANES)),  # kernel
        np.zeros((blocks, units * gates, LANES)),  # recurrent kernel
        np.zeros((blocks, bias_rows * gates, LANES)),  # bias
        np.zeros((blocks, units, LANES)),  # dense kernel
        np.zeros((blocks, LANES)),  # dense bias
    )
    scale = np.float32(2.0 / (batch * steps))
    backward = PASSES[cell][1]
    _run_blocks(
        cell, x, y, weights, lambda block, space: backward(block, x, weights, scale, space, out)
    )
    losses, d_kernel, d_recurrent, d_bias, d_dense, d_dense_bias = (
        _sum_sequences(values.reshape(blocks, -1, LANES), batch).astype(np.float32)
        for values in out
    )
    keras_order = np.argsort(order)
    grads = [
        d_kernel.reshape(input_dim, gates)[:, keras_order],
        d_recurrent.reshape(units, gates)[:, keras_order],
        d_bias.reshape(bias_rows, gates)[:, keras_order].reshape(bias.shape),
        d_dense.reshape(units, 1),
        d_dense_bias,
    ]
    return float(losses[0]) / (batch * steps), [np.ascontiguousarray(g) for g in grads]


def heldout_loss(
    cell: str,
    inputs: np.ndarray,
    targets: np.ndarray,
    weights: list[np.ndarray],
    start: int = 0,
) -> float:
    """Mean squared error of the model with ``weights`` (Keras order) on ``inputs``
    ``(batch, steps, input_dim)`` against ``targets`` ``(batch, steps, 1)``, over every
    sequence and the steps ``t >= start`` (the model still reads the steps before ``start``).

    The forward pass only, in the kernels of :func:`loss_and_gradients`, its blocks on numba's
    thread count of threads. Each sequence's squared errors are summed in float64 in step
    order, then the sequences in sequence order, so the thread count cannot change a bit. A
    held-out set keeps workspaces of its own shape beside the training set's (see
    :func:`_workspaces`), so calling it every few epochs of a run allocates them once."""
    weights, _, x, y = _prepare(cell, inputs, targets, weights)
    blocks, steps, batch = x.shape[0], x.shape[1], len(inputs)
    if isinstance(start, bool) or not isinstance(start, int | np.integer):
        raise ValueError(f"start must be an integer step, not {start!r}")
    if not 0 <= start < steps:
        raise ValueError(
            f"start must be a step of the held-out sequences (0 <= start < {steps}), not {start}"
        )
    out = np.zeros((blocks, LANES))  # each sequence's sum of squared errors
    _run_blocks(
        cell,
        x,
        y,
        weights,
        lambda block, space: _add_squared_errors(space[0][3], int(start), out[block]),
    )
    total = _sum_sequences(out.reshape(blocks, 1, LANES), batch)[0]
    return float(total / (batch * (steps - start)))


def _power(base: float, exponent: int) -> np.float32:
    """``base ** exponent`` by squaring in float64, then rounded to float32: plain IEEE
    operations, so the same on every CPU (libm's ``pow`` may differ by machine)."""
    result, factor = 1.0, float(base)
    while exponent:
        if exponent & 1:
            result *= factor
        factor *= factor
        exponent >>= 1
    return np.float32(result)


def _norm(arrays: list[np.ndarray]) -> np.float32:
    """The float32 Euclidean norm of all of ``arrays``: the squares of float32 values are exact
    in float64 and ``math.fsum`` adds them exactly, so the result is the same on every CPU."""
    squares = [np.square(a.astype(np.float64)).ravel() for a in arrays]
    return np.float32(math.sqrt(math.fsum(np.concatenate(squares))))


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
            norm = _norm(grads)
            scale = self.clipnorm * min(np.float32(1.0) / norm, np.float32(1.0) / self.clipnorm)
            return [g * np.float32(scale) for g in grads]
        clipped = []
        for g in grads:
            norm = _norm([g])
            clipped.append(g * self.clipnorm / max(norm, self.clipnorm))
        return clipped

    def apply(self, grads: list[np.ndarray], weights: list[np.ndarray]) -> None:
        """One Adam step on ``weights`` in place."""
        grads = self.clip_gradients(grads)
        step = self.iterations + 1
        alpha = (
            self.learning_rate
            * np.sqrt(np.float32(1.0) - _power(np.float32(BETA_2), step))
            / (np.float32(1.0) - _power(np.float32(BETA_1), step))
        )
        for g, w, m, v in zip(grads, weights, self.momentums, self.velocities, strict=True):
            m += (g - m) * np.float32(1.0 - BETA_1)
            v += (np.square(g) - v) * np.float32(1.0 - BETA_2)
            w -= (m * alpha) / (np.sqrt(v) + np.float32(EPSILON))
        self.iterations += 1

    def state(self) -> list[np.ndarray]:
        """Copies of the optimizer's variables in the order Keras' ``optimizer.variables``
        lists them: iteration, learning rate, then momentum and velocity of each weight."""
        state = [np.array(self.iterations, dtype=np.int64), self.learning_rate]
        for momentum, velocity in zip(self.momentums, self.velocities, strict=True):
            state += [momentum.copy(), velocity.copy()]
        return state

    def load_state(self, arrays: list[np.ndarray]) -> None:
        """Continue from :meth:`state` (the learning rate stays the configured one)."""
        self.iterations = int(arrays[0])
        self.momentums = [np.array(a, dtype=np.float32) for a in arrays[2::2]]
        self.velocities = [np.array(a, dtype=np.float32) for a in arrays[3::2]]


def compile_kernels() -> None:
    """Compile every kernel into numba's cache (``__pycache__`` beside this file): the first
    compilation takes 25 to 30 s per cell, so the set-up does it once (``make setup``). The
    input width is a run-time size, so one compilation serves every ``input_dim``."""
    from rnn_cell_bench.models import initial_weights

    for cell in PASSES:
        weights = initial_weights(cell, 4, seed=0)
        inputs, targets = np.ones((2, 3, 1)), np.zeros((2, 3, 1))
        _, grads = loss_and_gradients(cell, inputs, targets, weights)
        heldout_loss(cell, inputs, targets, weights)
        for clip in ("global", "per_variable"):
            FusedAdam([w.shape for w in weights], 0.001, 1.0, clip).apply(grads, weights)


if __name__ == "__main__":
    compile_kernels()
