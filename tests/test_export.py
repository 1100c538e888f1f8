"""Export of pruned models (pruning.export): exact round trips through every format, atomic
writes, load-time validation, and Han 2015's storage overhead against a hand count."""

from __future__ import annotations

import math
import os
from collections import OrderedDict

import numpy as np
import pytest
import torch
from torch import nn

import pruning.export as export
from pruning.export import FORMATS, export_model, load_export, storage_overhead, storage_table
from pruning.formats import (as_matrix, encode_bitmask, encode_csc, encode_csr,
                             encode_relative_csc, size_bits, size_bytes)
from pruning.magnitude import prunable_layers, prune_to_density
from pruning.zoo import build_model, input_shape


def pruned(name: str, density: float = 0.1, seed: int = 0) -> nn.Module:
    model = build_model(name, seed=seed)
    for module in prunable_layers(model).values():
        prune_to_density(module, density)
    return model.eval()


def effective(module: nn.Module) -> torch.Tensor:
    return (module.weight_orig * module.weight_mask).detach()


@pytest.fixture(scope="module")
def lenet300():
    return pruned("lenet-300-100")


@pytest.fixture(scope="module")
def lenet5():
    return pruned("lenet-5")


def batch(name: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(123)
    return torch.randn((16, *input_shape(name)), generator=gen)


# --------------------------------------------------------------------------- round trips

@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", ["lenet-300-100", "lenet-5"])
def test_round_trip_identical_outputs(name, fmt, tmp_path, lenet300, lenet5):
    model = lenet300 if name == "lenet-300-100" else lenet5
    path = tmp_path / f"{name}.{fmt}.npz"
    report = export_model(model, path, fmt=fmt)
    fresh = build_model(name, seed=7)                    # different weights until loaded
    x = batch(name)
    with torch.no_grad():
        expected = model(x)
        assert not torch.equal(fresh.eval()(x), expected)
        loaded = load_export(path, fresh)
        assert loaded is fresh
        assert torch.equal(loaded.eval()(x), expected)
    for layer_name, module in prunable_layers(loaded).items():
        source = prunable_layers(model)[layer_name]
        assert not hasattr(module, "weight_orig") and not module._forward_pre_hooks
        assert isinstance(module.weight, nn.Parameter)
        assert torch.equal(module.weight, effective(source))
        assert torch.equal(module.bias, source.bias)
        entry = report[layer_name]
        n = source.weight_orig.numel()
        assert entry["nonzeros"] == round(0.1 * n) == int((module.weight != 0).sum())
        assert entry["dense_bits"] == 32 * n
        assert entry["stored_bits"] < entry["dense_bits"]
    assert report["total"]["file_bytes"] == path.stat().st_size
    assert report["total"]["nonzeros"] == sum(report[k]["nonzeros"] for k in report if k != "total")


@pytest.mark.parametrize("fmt", FORMATS)
def test_report_sizes_match_formats(fmt, tmp_path, lenet5):
    report = export_model(lenet5, tmp_path / "m.npz", fmt=fmt, index_bits_fc=5, index_bits_conv=8)
    encoders = {"csr": lambda m, b: encode_csr(m), "csc": lambda m, b: encode_csc(m),
                "relative": encode_relative_csc, "bitmask": lambda m, b: encode_bitmask(m)}
    for name, module in prunable_layers(lenet5).items():
        bits = 8 if isinstance(module, nn.Conv2d) else 5
        enc = encoders[fmt](as_matrix(effective(module).numpy()), bits)
        assert report[name]["stored_bits"] == size_bits(enc)
        if fmt == "relative":
            assert report[name]["index_bits"] == bits
            assert report[name]["fillers"] == enc.fillers
        else:
            assert report[name]["fillers"] == 0


def test_nominal_value_bits_keep_values_exact(tmp_path, lenet300):
    r32 = export_model(lenet300, tmp_path / "a.npz", value_bits=32)
    r8 = export_model(lenet300, tmp_path / "b.npz", value_bits=8)
    for name in ("fc1", "fc2", "fc3"):
        entries = r32[name]["nonzeros"] + r32[name]["fillers"]
        assert r32[name]["stored_bits"] - r8[name]["stored_bits"] == entries * 24
    fresh = load_export(tmp_path / "b.npz", build_model("lenet-300-100", seed=3))
    x = batch("lenet-300-100")
    with torch.no_grad():
        assert torch.equal(fresh.eval()(x), lenet300(x))


def test_unknown_format_rejected(tmp_path, lenet300):
    with pytest.raises(ValueError, match="coo"):
        export_model(lenet300, tmp_path / "x.npz", fmt="coo")
    assert not (tmp_path / "x.npz").exists()


# --------------------------------------------------------------------------- atomic writes

def _previous_file(tmp_path, model) -> tuple[os.PathLike, bytes]:
    path = tmp_path / "model.npz"
    export_model(model, path, fmt="csr")
    return path, path.read_bytes()


def test_failure_while_encoding_keeps_previous_file(tmp_path, monkeypatch, lenet300):
    path, before = _previous_file(tmp_path, lenet300)
    calls = {"n": 0}
    real = export.encode_relative_csc

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(export, "encode_relative_csc", flaky)
    with pytest.raises(RuntimeError, match="disk on fire"):
        export_model(lenet300, path, fmt="relative")
    assert calls["n"] == 2
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_failure_while_writing_keeps_previous_file(tmp_path, monkeypatch, lenet300):
    path, before = _previous_file(tmp_path, lenet300)

    def half_write(file, *args, **kwargs):
        file.write(b"PK\x03\x04 truncated archive")     # some bytes reach the disk, then boom
        raise OSError("no space left on device")

    monkeypatch.setattr(np, "savez", half_write)
    with pytest.raises(OSError, match="no space"):
        export_model(lenet300, path, fmt="relative")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]
    monkeypatch.undo()
    fresh = load_export(path, build_model("lenet-300-100", seed=5))    # still a valid export
    assert torch.equal(fresh.fc1.weight, effective(lenet300.fc1))


def test_failure_without_previous_file_leaves_nothing(tmp_path, monkeypatch, lenet300):
    def boom(*args, **kwargs):
        raise OSError("boom")

    monkeypatch.setattr(export.os, "replace", boom)
    with pytest.raises(OSError):
        export_model(lenet300, tmp_path / "new.npz")
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- load validation

def _variant(fc1_in=784, fc1_out=300, last="fc3") -> nn.Sequential:
    return nn.Sequential(OrderedDict([
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(fc1_in, fc1_out)),
        ("relu1", nn.ReLU()),
        ("fc2", nn.Linear(fc1_out, 100)),
        ("relu2", nn.ReLU()),
        (last, nn.Linear(100, 10)),
    ]))


def test_load_rejects_unknown_layer(tmp_path, lenet300):
    path = tmp_path / "m.npz"
    export_model(lenet300, path)
    target = _variant(last="fc9")
    before = target.fc1.weight.detach().clone()
    with pytest.raises(ValueError, match="'fc3'"):
        load_export(path, target)
    assert torch.equal(target.fc1.weight, before)       # nothing written before the check


def test_load_rejects_shape_mismatch(tmp_path, lenet300):
    path = tmp_path / "m.npz"
    export_model(lenet300, path)
    with pytest.raises(ValueError, match="'fc1'"):
        load_export(path, _variant(fc1_in=785))
    with pytest.raises(ValueError, match="'fc1'"):
        load_export(path, build_model("lenet-5"))


def test_load_into_pruned_model_removes_hooks(tmp_path, lenet300):
    path = tmp_path / "m.npz"
    export_model(lenet300, path, fmt="bitmask")
    target = pruned("lenet-300-100", density=0.5, seed=9)
    load_export(path, target)
    assert not hasattr(target.fc2, "weight_mask") and not target.fc2._forward_pre_hooks
    assert torch.equal(target.fc2.weight, effective(lenet300.fc2))


# --------------------------------------------------------------------------- storage overhead

def _fillers_by_hand(weight: np.ndarray, index_bits: int) -> int:
    """Walk each column: a run of g zeros before a non-zero costs g // 2**bits fillers."""
    matrix = weight.reshape(weight.shape[0], -1)
    total = 0
    for j in range(matrix.shape[1]):
        previous = -1
        for i in np.flatnonzero(matrix[:, j]).tolist():
            total += (i - previous - 1) // (1 << index_bits)
            previous = i
    return total


def test_storage_overhead_hand_calculation(tmp_path, lenet300):
    report = export_model(lenet300, tmp_path / "m.npz", fmt="relative", index_bits_fc=5)
    stored = payload = 0
    for name, module in prunable_layers(lenet300).items():
        w = effective(module).numpy()
        nz = int(np.count_nonzero(w))
        fillers = _fillers_by_hand(w, 5)
        entries = nz + fillers
        pointer_bits = math.ceil(math.log2(entries + 1))
        layer_bits = entries * (32 + 5) + (w.shape[1] + 1) * pointer_bits
        assert report[name]["fillers"] == fillers
        assert report[name]["stored_bits"] == layer_bits
        stored += layer_bits
        payload += nz * 32
    expected = stored / payload - 1
    overhead = storage_overhead(report)
    assert overhead == pytest.approx(expected, rel=1e-12)
    # At least the 5/32 = 15.6% of the indices themselves (Han 2015), plus fillers and pointers.
    assert overhead > 5 / 32
    assert overhead < 0.5
    single = storage_overhead(report["fc3"])
    fc3 = report["fc3"]
    assert single == pytest.approx(fc3["stored_bits"] / (fc3["nonzeros"] * 32) - 1)


def test_storage_table_matches_encoders_and_export(tmp_path, lenet5):
    table = storage_table(lenet5, index_bits_fc=5, index_bits_conv=8)
    assert [row["layer"] for row in table] == ["conv1", "conv2", "fc1", "fc2", "total"]
    for row in table[:-1]:
        module = getattr(lenet5, row["layer"])
        m = as_matrix(effective(module).numpy())
        bits = 8 if row["kind"] == "Conv2d" else 5
        assert row["weights"] == m.size and row["dense_bytes"] == m.size * 4
        assert row["nonzeros"] == np.count_nonzero(m)
        assert row["csr_bytes"] == size_bytes(encode_csr(m))
        assert row["csc_bytes"] == size_bytes(encode_csc(m))
        assert row["relative_bytes"] == size_bytes(encode_relative_csc(m, bits))
        assert row["bitmask_bytes"] == size_bytes(encode_bitmask(m))
    total = table[-1]
    assert total["weights"] == 430_500 and total["dense_bytes"] == 430_500 * 4
    assert total["relative_bytes"] == sum(r["relative_bytes"] for r in table[:-1])
    report = export_model(lenet5, tmp_path / "m.npz", fmt="relative")
    assert total["relative_overhead"] == pytest.approx(storage_overhead(report), rel=1e-12)
    assert list(tmp_path.iterdir()) == [tmp_path / "m.npz"]


def test_storage_overhead_needs_nonzeros():
    with pytest.raises(ValueError):
        storage_overhead({"fc": {"stored_bits": 10, "nonzeros": 0, "value_bits": 32}})
