"""The fused engine gives the same bits on every x86-64 instruction set and thread count.

numba compiles for the host CPU unless ``NUMBA_CPU_NAME`` names another target, and it can
generate code for an older one than the host: so one machine can check that the SSE2 baseline
(x86-64) and, on an AVX-512 host, AVX2 (haswell) give exactly the host's losses, gradients,
weights and held-out losses of every cell (LSTM, GRU, RNN), for one input feature and for
three. Each target gets its own numba cache folder, so the compiled kernels cannot be shared."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from llvmlite import binding as ll

WORKFLOW = Path(__file__).resolve().parents[1] / "workflow"

# A few epochs of fused training on random data, every cell, one input feature and three, with
# the held-out loss on sequences of another shape every epoch; every float array is written out.
TRAINING = """
import sys
import numba
import numpy as np
from rnn_cell_bench.fused import FusedAdam, heldout_loss, loss_and_gradients

numba.set_num_threads(int(sys.argv[2]))
rng = np.random.default_rng(0)
results = {}
for input_dim in (1, 3):
    # 19 sequences: two full blocks of 8 and a padded one; 11 held-out ones of another length
    inputs = rng.normal(size=(19, 300, input_dim)).astype(np.float32)
    targets = np.sin(np.cumsum(inputs[..., :1], axis=1) * 0.3).astype(np.float32)
    held_inputs = rng.normal(size=(11, 170, input_dim)).astype(np.float32)
    held_targets = np.sin(np.cumsum(held_inputs[..., :1], axis=1) * 0.3).astype(np.float32)
    # unit counts that leave remainders after every tile of the kernels' loops
    cases = (("lstm", 4, "global", 5), ("gru", 3, "per_variable", 7), ("rnn", 1, "global", 9))
    for cell, gates, clip, units in cases:
        weights = [
            rng.normal(0, 0.5, (input_dim, gates * units)).astype(np.float32),
            rng.normal(0, 0.3, (units, gates * units)).astype(np.float32),
            rng.normal(0, 0.1, (2, gates * units) if cell == "gru" else (gates * units,)),
            rng.normal(0, 0.3, (units, 1)).astype(np.float32),
            np.zeros(1, dtype=np.float32),
        ]
        weights = [np.asarray(w, dtype=np.float32) for w in weights]
        adam = FusedAdam([w.shape for w in weights], 0.01, 0.5, clip)
        name = f"{cell}_{input_dim}"
        losses, heldout = [], []
        for epoch in range(4):
            loss, grads = loss_and_gradients(cell, inputs, targets, weights)
            losses.append(loss)
            heldout += [heldout_loss(cell, held_inputs, held_targets, weights, s) for s in (0, 41)]
            adam.apply(grads, weights)
            for i, g in enumerate(grads):
                results[f"{name}_grad{epoch}_{i}"] = g
        results[f"{name}_losses"] = np.array(losses)
        results[f"{name}_heldout"] = np.array(heldout)
        for i, w in enumerate(weights + adam.momentums + adam.velocities):
            results[f"{name}_state_{i}"] = w
np.savez(sys.argv[1], **results)
"""

HOST_FEATURES = ll.get_host_cpu_features()
# (NUMBA_CPU_NAME or None for the host, threads). AVX2 (haswell) is a target of its own only
# where the host goes beyond it (AVX-512): on an AVX2 host the host runs are the AVX2 runs,
# and compiling the same vector width again would prove nothing new.
RUNS = {"host": (None, 1), "host-2-threads": (None, 2)}
if HOST_FEATURES.get("avx2") and HOST_FEATURES.get("avx512f"):
    RUNS["haswell"] = ("haswell", 2)
RUNS["x86-64"] = ("x86-64", 1)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("isa")
    processes = {}
    # Side by side: each other target compiles the kernels afresh, which is most of the time.
    for name, (cpu, threads) in RUNS.items():
        env = {**os.environ, "PYTHONPATH": str(WORKFLOW)}
        env.pop("NUMBA_CPU_FEATURES", None)
        env.pop("NUMBA_CPU_NAME", None)
        env.pop("NUMBA_CACHE_DIR", None)
        if cpu is not None:
            # One cache folder per target; the host's runs use the package's cache, which the
            # compiled_kernels fixture filled, as every training job does.
            env["NUMBA_CPU_NAME"] = cpu
            env["NUMBA_CACHE_DIR"] = str(folder / f"cache-{cpu}")
        path = folder / f"{name}.npz"
        command = [sys.executable, "-c", TRAINING, str(path), str(threads)]
        processes[name] = (path, subprocess.Popen(command, env=env))
    outputs = {}
    for name, (path, process) in processes.items():
        assert process.wait(timeout=600) == 0, f"the {name} run failed"
        with np.load(path) as content:
            outputs[name] = {key: content[key] for key in content.files}
    return outputs


@pytest.mark.parametrize("name", [name for name in RUNS if name != "host"])
def test_every_target_and_thread_count_gives_the_hosts_bits(results, name):
    reference, other = results["host"], results[name]
    assert reference.keys() == other.keys()
    for key, value in reference.items():
        assert value.dtype == other[key].dtype, key
        assert value.tobytes() == other[key].tobytes(), f"{key} differs under {name}"
    for input_dim in (1, 3):
        assert np.all(np.diff(reference[f"gru_{input_dim}_losses"]) < 0)  # it trains
        assert np.all(np.isfinite(reference[f"lstm_{input_dim}_losses"]))
        assert np.all(np.isfinite(reference[f"lstm_{input_dim}_heldout"]))
        assert reference[f"gru_{input_dim}_grad0_0"].shape == (input_dim, 21)
        assert np.all(np.isfinite(reference[f"rnn_{input_dim}_losses"]))
        assert np.all(np.isfinite(reference[f"rnn_{input_dim}_heldout"]))
        assert reference[f"rnn_{input_dim}_grad0_1"].shape == (9, 9)
        assert reference[f"rnn_{input_dim}_grad0_2"].shape == (9,)
