"""The training process: engine choice, cluster time limits, TensorFlow's start-up noise."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import yaml
from conftest import REPO, copy_project, snakemake

from rnn_cell_bench.runtime import nvidia_devices_present, time_limit_minutes


def test_time_limits_follow_the_engine():
    default = dict(n_sequences=40, n_steps=20000, units=16, epochs=1000)
    fused, auto, keras = (time_limit_minutes(e, **default) for e in ("fused", "auto", "keras"))
    assert (fused, auto, keras) == (44, 77, 344)
    # Half the data: half the training time; more units: more time; fewer never less.
    assert time_limit_minutes("fused", **{**default, "n_steps": 10000}) == 10 + 17
    assert time_limit_minutes("fused", **{**default, "units": 32}) == 10 + 134
    assert time_limit_minutes("fused", **{**default, "units": 8}) == fused
    with pytest.raises(ValueError, match="train.engine"):
        time_limit_minutes("cudnn", **default)


@pytest.mark.parametrize(("engine", "minutes"), [("fused", 44), ("auto", 77), ("keras", 344)])
def test_the_train_rule_asks_for_the_engines_time(tmp_path, engine, minutes):
    project = copy_project(tmp_path / "project")
    config = yaml.safe_load((project / "tiny.yaml").read_text())
    config["data"] = {"n_sequences": 40, "n_steps": 20000, "periods": [250, 1100]}
    config["task"] = {"horizon": 200}
    config["train"] = {"epochs": 1000, "engine": engine}
    (project / "tiny.yaml").write_text(yaml.safe_dump(config))
    output = snakemake(project, "--dry-run").stdout
    limits = set(re.findall(r"runtime=(\d+)", output))
    assert limits == {str(minutes)}, output


def test_cuda_visible_devices_can_hide_every_gpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert not nvidia_devices_present()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "-1")
    assert not nvidia_devices_present()


IMPORT_TF = f"""
import sys
sys.path.insert(0, {str(REPO / "workflow")!r})
from rnn_cell_bench.runtime import import_tensorflow
import_tensorflow()
print("imported")
"""


@pytest.mark.skipif(nvidia_devices_present(), reason="the noise is filtered only without a GPU")
def test_tensorflow_start_up_noise_is_filtered_without_a_gpu():
    raw = subprocess.run(
        [sys.executable, "-c", "import tensorflow as tf; tf.config.list_physical_devices()"],
        capture_output=True,
        text=True,
    )
    filtered = subprocess.run(
        [sys.executable, "-c", IMPORT_TF], capture_output=True, text=True, check=True
    )
    assert "cuInit" in raw.stderr  # what a job log showed before
    assert "cuInit" not in filtered.stderr and "cuda drivers" not in filtered.stderr
    assert filtered.stdout.strip() == "imported"


def test_real_errors_pass_the_filter():
    script = IMPORT_TF.replace(
        "import_tensorflow()",
        "import os\nfrom rnn_cell_bench.runtime import NO_GPU_NOISE, _filtered_native_stderr\n"
        "with _filtered_native_stderr(NO_GPU_NOISE):\n"
        "    os.write(2, b'E0000 failed call to cuInit: noise\\nE0000 a real error\\n')",
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stderr == "E0000 a real error\n"
