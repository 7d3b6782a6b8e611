"""The learned generator's accelerator code path, run on the CPU: bf16 autocast and the out-of-memory back-off."""

from __future__ import annotations

import awkward as ak
import numpy as np
import pytest
import torch
import yaml

from parnassus.card import load_card
from parnassus.events import RunCounts
from parnassus.generators import make_generator
from parnassus.generators.neural import ROW_STEP, resolve_precision
from parnassus.io.hepmc import HepMCReader

from .conftest import EXAMPLE


def events(card, n: int = 24):
    return next(iter(HepMCReader(EXAMPLE, card.truth, n, RunCounts(), max_events=n)))


def with_sampling(trained, tmp_path, **sampling):
    data = yaml.safe_load(trained.read_text())
    data["generator"]["checkpoint"] = str((trained.parent / data["generator"]["checkpoint"]).resolve())
    data["sampling"].update(sampling)
    path = tmp_path / "card.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_card(path)


def test_bf16_autocast_samples_near_float32(trained, tmp_path):
    full_card = with_sampling(trained, tmp_path, precision="float32", batch_size=24)
    card = with_sampling(trained, tmp_path, precision="bfloat16", batch_size=24)
    batch = events(card)
    full = make_generator(full_card)(batch, 7)
    half = make_generator(card)(batch, 7)
    assert make_generator(card).autocast
    counts_full, counts_half = ak.to_numpy(ak.num(full)), ak.to_numpy(ak.num(half))
    assert np.all(np.isfinite(ak.to_numpy(ak.flatten(half.pt))))
    assert abs(counts_half.sum() - counts_full.sum()) <= 0.05 * counts_full.sum()  # same noise, bf16 arithmetic
    ht_full, ht_half = ak.to_numpy(ak.sum(full.pt, axis=1)), ak.to_numpy(ak.sum(half.pt, axis=1))
    assert np.median(np.abs(ht_half / ht_full - 1)) < 0.05
    # bf16 did run (a slot drawn otherwise may change the multiplicities, so compare the flat lists)
    assert not np.array_equal(ak.to_numpy(ak.flatten(full.pt)), ak.to_numpy(ak.flatten(half.pt)))


def test_out_of_memory_halves_the_rows_and_keeps_the_output(trained, tmp_path, monkeypatch):
    card = with_sampling(trained, tmp_path, batch_size=24)
    batch = events(card)
    expected = make_generator(card)(batch, 3)
    generator = make_generator(card)
    calls = []
    forward = type(generator.model.pfc).forward

    def limited(module, x, *args, **kwargs):
        calls.append(len(x))
        if len(x) > ROW_STEP:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return forward(module, x, *args, **kwargs)

    monkeypatch.setattr(type(generator.model.pfc), "forward", limited)
    assert generator.max_rows == 24
    result = generator(batch, 3)
    assert generator.max_rows == ROW_STEP and max(calls) > ROW_STEP
    assert ak.all(ak.num(result) == ak.num(expected))
    for field in ("pt", "eta", "phi", "z", "cls"):
        assert ak.all(result[field] == expected[field]), field


def test_out_of_memory_at_the_smallest_chunk_is_raised(trained, monkeypatch):
    generator = make_generator(load_card(trained))

    def exhausted(module, *args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")

    monkeypatch.setattr(type(generator.model.event), "forward", exhausted)
    with pytest.raises(torch.OutOfMemoryError):
        generator(events(load_card(trained), 4), 3)


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_is_bf16_only_where_the_cpu_has_bf16_arithmetic(trained, tmp_path, monkeypatch, native):
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
    generator = make_generator(with_sampling(trained, tmp_path, precision="auto"))
    assert generator.precision == ("bfloat16" if native else "float32")
    assert generator.autocast is native
    assert make_generator(with_sampling(trained, tmp_path, precision="float32")).precision == "float32"


def test_auto_precision_without_torch_s_cpu_probes_is_float32(monkeypatch):
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.delattr(torch.cpu, name)
    assert resolve_precision("auto", torch.device("cpu")) == "float32"
    assert resolve_precision("bfloat16", torch.device("cpu")) == "bfloat16"


@pytest.mark.parametrize("setting, expected", [(None, "64"), ("7", "7")])
def test_the_command_line_bounds_onednn_s_kernel_cache_unless_told(setting, expected):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "ONEDNN_PRIMITIVE_CACHE_CAPACITY"}
    if setting is not None:
        env["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] = setting
    code = "import os, parnassus.cli; print(os.environ['ONEDNN_PRIMITIVE_CACHE_CAPACITY'])"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == expected
