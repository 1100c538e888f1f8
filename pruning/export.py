"""A pruned model written out in a sparse format and loaded back, plus its storage cost.

Every Linear/Conv2d weight is exported as its *effective* weight (``weight_orig * weight_mask``
for a layer pruned with ``torch.nn.utils.prune``, else ``weight``), viewed as a matrix by
:func:`pruning.formats.as_matrix` (outputs × everything else) and encoded in one of
:data:`FORMATS` by :mod:`pruning.formats`. Everything else of the model's state (biases, other
parameters and buffers; a pruned bias as its effective value) is stored dense. The file is an
uncompressed ``.npz`` (plain numpy arrays plus a JSON header; loadable with
``allow_pickle=False``), written atomically: a temporary file in the same directory, fsync, then
``os.replace``, so a failure at any point leaves a previous file at the path untouched.

Sizes follow :func:`pruning.formats.size_bits`: Deep Compression (Han, Mao, Dally, ICLR 2016,
§2: CSR/CSC cost 2a + n + 1 numbers; relative indices with filler zeros) and EIE (ISCA 2016
§III-B). Han et al. 2015 (NIPS, §4) quote a 15.6% storage overhead for relative indices of 5 bits
(FC) and 8 bits (conv); :func:`storage_overhead` computes that measure.

``value_bits`` is the *nominal* width of a stored value: it enters every size, but values are kept
in their float dtype (float32 for the zoo models) so that ``load_export`` reproduces the pruned
model bit for bit. Left out, each layer's own width is used: a fixed-point layer's
``fixed_point_bits`` (:mod:`pruning.quantise`), a shared layer's ``stored_weight_bits`` plus its
codebook of ``codebook_entries`` values of 32 bits (or ``fixed_point_bits`` once quantised;
:mod:`pruning.sharing`), else 32.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pruning.formats import (CSC, CSR, Bitmask, RelativeCSC, as_matrix, bitmask_size_bits,
                             csc_size_bits, csr_size_bits, decode, encode_bitmask, encode_csc,
                             encode_csr, encode_relative_csc, relative_csc_size_bits,
                             relative_index_entries, size_bits)
from pruning.magnitude import make_permanent, prunable_layers
from pruning.quantise import value_bits_of, weight_bits_of

__all__ = ["FORMATS", "export_model", "load_export", "storage_overhead", "storage_table"]

FORMATS: tuple[str, ...] = ("csr", "csc", "relative", "bitmask")

_MAGIC = "prunesim-export"
_VERSION = 1
_META_KEY = "__meta__"
_FIELDS: dict[str, tuple[str, ...]] = {
    "csr": ("values", "col_index", "row_ptr"),
    "csc": ("values", "row_index", "col_ptr"),
    "relative": ("values", "gaps", "col_ptr"),
    "bitmask": ("values", "mask_bits"),
}
_CLASSES = {"csr": CSR, "csc": CSC, "relative": RelativeCSC, "bitmask": Bitmask}


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------

def _check_fmt(fmt: str) -> str:
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; valid: {', '.join(FORMATS)}")
    return fmt


def _to_numpy(tensor: torch.Tensor) -> np.ndarray:
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:      # numpy has no bfloat16; float32 holds it exactly
        tensor = tensor.float()
    return tensor.numpy()


def _effective_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """``model.state_dict()`` with every pruned tensor folded: ``X_orig`` and ``X_mask`` become
    ``X = X_orig * X_mask``, so the keys are those of the unpruned architecture."""
    state = model.state_dict()
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key.endswith("_orig") and key[:-5] + "_mask" in state:
            out[key[:-5]] = value.detach() * state[key[:-5] + "_mask"]
        elif key.endswith("_mask") and key[:-5] + "_orig" in state:
            continue
        else:
            out[key] = value.detach()
    return out


def _index_bits(module: nn.Module, index_bits_fc: int, index_bits_conv: int) -> int:
    return index_bits_conv if isinstance(module, nn.Conv2d) else index_bits_fc


def _encode(matrix: np.ndarray, fmt: str, index_bits: int, value_bits: int):
    if fmt == "csr":
        return encode_csr(matrix, value_bits)
    if fmt == "csc":
        return encode_csc(matrix, value_bits)
    if fmt == "relative":
        return encode_relative_csc(matrix, index_bits, value_bits)
    return encode_bitmask(matrix, value_bits)


def _write_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez ``arrays`` to ``path`` via a temporary file in the same directory + os.replace."""
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
            handle.flush()
            os.fsync(handle.fileno())
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


# ---------------------------------------------------------------------------------------------
# Export / load
# ---------------------------------------------------------------------------------------------

def export_model(model: nn.Module, path: str | Path, fmt: str = "relative", index_bits_fc: int = 5,
                 index_bits_conv: int = 8, value_bits: int | None = None) -> dict:
    """Write ``model`` to ``path`` with every Linear/Conv2d weight in sparse format ``fmt``.

    ``fmt`` is one of :data:`FORMATS`. Relative indices use ``index_bits_conv`` bits for Conv2d
    and ``index_bits_fc`` for Linear layers (Han 2015: 8 and 5); CSR/CSC use the minimal absolute
    index width, the bitmask none. All encoding happens in memory first; the file is then written
    atomically (temporary file + ``os.replace``).

    Returns a size report ``{layer: {...}, "total": {...}}``; per layer (model order):
    ``format``, ``shape`` (of the weight tensor), ``dense_bits`` (weights × value_bits),
    ``nonzeros``, ``fillers`` (filler zeros; 0 except for ``relative``), ``stored_bits``
    (:func:`pruning.formats.size_bits` of the encoded weight: values + indices/mask + pointers),
    ``index_bits`` (bits per stored index; 0 for the bitmask), ``pointer_bits``, ``value_bits``,
    ``codebook_bits`` (a shared layer's codebook, included in ``stored_bits``; else 0).
    ``total`` sums ``dense_bits``, ``nonzeros``, ``fillers``, ``stored_bits``, and gives
    ``value_bits`` (the widest layer's), ``other_bits`` (dense bits of the rest of the state at its dtype's width)
    and ``file_bytes`` (size of the written file). Raises ValueError for an unknown ``fmt``.
    """
    _check_fmt(fmt)
    path = Path(path)
    layers = prunable_layers(model)
    state = _effective_state(model)
    arrays: dict[str, np.ndarray] = {}
    report: dict[str, dict] = {}
    layer_meta: dict[str, dict] = {}
    weight_keys = set()
    widths = weight_bits_of(model) if value_bits is None else {name: value_bits for name in layers}
    for name, module in layers.items():
        key = f"{name}.weight" if name else "weight"
        weight = _to_numpy(state[key])
        weight_keys.add(key)
        layer_bits = widths[name]
        codebook_entries = int(getattr(module, "codebook_entries", 0)) if value_bits is None else 0
        codebook_bits = codebook_entries * value_bits_of(module)
        encoded = _encode(as_matrix(weight), fmt, _index_bits(module, index_bits_fc, index_bits_conv),
                          layer_bits)
        for field in _FIELDS[fmt]:
            arrays[f"weight/{name}/{field}"] = np.asarray(getattr(encoded, field))
        nonzeros = int(np.count_nonzero(encoded.values))
        fillers = len(encoded.values) - nonzeros if fmt == "relative" else 0
        index_bits = 0 if fmt == "bitmask" else encoded.index_bits
        pointer_bits = 0 if fmt == "bitmask" else encoded.pointer_bits
        layer_meta[name] = {"kind": type(module).__name__, "shape": list(weight.shape),
                            "matrix_shape": list(encoded.shape), "index_bits": index_bits,
                            "pointer_bits": pointer_bits, "value_bits": layer_bits}
        report[name] = {"format": fmt, "shape": tuple(weight.shape),
                        "dense_bits": int(weight.size) * layer_bits, "nonzeros": nonzeros,
                        "fillers": fillers, "stored_bits": size_bits(encoded) + codebook_bits,
                        "index_bits": index_bits, "pointer_bits": pointer_bits,
                        "value_bits": layer_bits, "codebook_bits": codebook_bits}
    other_keys = [k for k in state if k not in weight_keys]
    other_bits = 0
    for key in other_keys:
        array = _to_numpy(state[key])
        arrays[f"state/{key}"] = array
        other_bits += int(array.size) * array.dtype.itemsize * 8
    widest = max(widths.values(), default=32)
    meta = {"magic": _MAGIC, "version": _VERSION, "fmt": fmt, "value_bits": widest,
            "index_bits_fc": index_bits_fc, "index_bits_conv": index_bits_conv,
            "layers": layer_meta, "state": other_keys}
    arrays[_META_KEY] = np.array(json.dumps(meta))
    _write_atomically(path, arrays)

    total = {key: sum(r[key] for r in report.values())
             for key in ("dense_bits", "nonzeros", "fillers", "stored_bits")}
    total.update(value_bits=widest, other_bits=other_bits, file_bytes=path.stat().st_size)
    report["total"] = total
    return report


def _read_meta(data) -> dict:
    if _META_KEY not in data.files:
        raise ValueError("not a prunesim export (no header)")
    meta = json.loads(str(data[_META_KEY][()]))
    if meta.get("magic") != _MAGIC or meta.get("version") != _VERSION:
        raise ValueError(f"not a prunesim export of version {_VERSION}")
    _check_fmt(meta["fmt"])
    return meta


def _decode_layer(data, name: str, info: dict, fmt: str, value_bits: int) -> np.ndarray:
    missing = [f for f in _FIELDS[fmt] if f"weight/{name}/{f}" not in data.files]
    if missing:
        raise ValueError(f"layer {name!r}: export lacks {', '.join(missing)}")
    fields = {field: data[f"weight/{name}/{field}"] for field in _FIELDS[fmt]}
    shape = tuple(int(s) for s in info["matrix_shape"])
    if fmt == "bitmask":
        encoded = Bitmask(shape, fields["values"], fields["mask_bits"], value_bits)
    else:
        encoded = _CLASSES[fmt](shape, *fields.values(), value_bits, int(info["index_bits"]),
                                int(info["pointer_bits"]))
    return decode(encoded).reshape(tuple(int(s) for s in info["shape"]))


def load_export(path: str | Path, model: nn.Module) -> nn.Module:
    """Fill ``model`` (a freshly built model of the exported architecture) from the file at
    ``path`` and return it.

    Weights are the decoded matrices (pruned entries exact zeros), reshaped to each layer's
    weight shape; the rest of the state is copied as stored. If ``model`` carries pruning
    reparametrisations they are removed first (``make_permanent``), so the result has plain
    parameters and no pruning hooks. Everything is checked before anything is written: a layer
    of the file absent from the model, a model layer or state entry absent from the file, or a
    shape mismatch raises ValueError naming the layer/entry, leaving ``model`` unchanged.
    """
    with np.load(Path(path), allow_pickle=False) as data:
        meta = _read_meta(data)
        fmt, value_bits = meta["fmt"], int(meta["value_bits"])
        layers = prunable_layers(model)
        target = _effective_state(model)
        new_values: dict[str, np.ndarray] = {}
        for name, info in meta["layers"].items():
            if name not in layers:
                raise ValueError(f"layer {name!r} of the export is not a Linear/Conv2d layer of the model")
            key = f"{name}.weight" if name else "weight"
            expected = tuple(target[key].shape)
            if tuple(info["shape"]) != expected:
                raise ValueError(f"layer {name!r}: exported weight shape {tuple(info['shape'])} "
                                 f"!= model's {expected}")
            new_values[key] = _decode_layer(data, name, info, fmt, int(info.get("value_bits", value_bits)))
        missing = [name for name in layers if name not in meta["layers"]]
        if missing:
            raise ValueError(f"layer(s) {missing} of the model are not in the export")
        for key in meta["state"]:
            if key not in target:
                raise ValueError(f"state entry {key!r} of the export is not in the model")
            array = data[f"state/{key}"]
            if tuple(array.shape) != tuple(target[key].shape):
                raise ValueError(f"state entry {key!r}: exported shape {tuple(array.shape)} "
                                 f"!= model's {tuple(target[key].shape)}")
            new_values[key] = array
        absent = [key for key in target if key not in new_values]
        if absent:
            raise ValueError(f"state entries {absent} of the model are not in the export")

    make_permanent(model)
    state = model.state_dict()
    with torch.no_grad():
        for key, array in new_values.items():
            state[key].copy_(torch.from_numpy(np.ascontiguousarray(array)))
    return model


# ---------------------------------------------------------------------------------------------
# Storage accounting
# ---------------------------------------------------------------------------------------------

def storage_overhead(report: dict) -> float:
    """Han 2015's storage overhead of a sparse encoding:
    ``stored bits (values + indices + pointers) / (non-zeros × value_bits) − 1``, summed over
    the layers of an :func:`export_model` report (its ``total`` entry is ignored), or of a single
    layer's entry. E.g. 5-bit relative indices alone on 32-bit values give 5/32 = 15.6%
    (Han 2015 §4). Raises ValueError if there are no non-zeros."""
    entries = [report] if "stored_bits" in report else [v for k, v in report.items() if k != "total"]
    stored = sum(int(e["stored_bits"]) for e in entries)
    payload = sum(int(e["nonzeros"]) * int(e["value_bits"]) for e in entries)
    if payload == 0:
        raise ValueError("storage overhead is undefined without non-zeros")
    return stored / payload - 1.0


def storage_table(model: nn.Module, index_bits_fc: int = 5, index_bits_conv: int = 8,
                  value_bits: int = 32) -> list[dict]:
    """Storage of every Linear/Conv2d weight of ``model`` in each format, without writing a file.

    One row per layer (model order) and a final row with ``layer == "total"``. Keys: ``layer``,
    ``kind``, ``shape``, ``weights``, ``nonzeros``, ``fillers`` and ``index_bits`` (of the
    relative format), ``dense_bytes`` (weights × value_bits / 8), ``csr_bytes``, ``csc_bytes``,
    ``relative_bytes``, ``bitmask_bytes`` (each ``ceil(size_bits / 8)`` of that format, equal to
    ``pruning.formats.size_bytes`` of the encoded weight) and ``relative_overhead``
    (:func:`storage_overhead` of the relative format; NaN for a layer with no non-zeros). Sizes
    come from counts (non-zeros, filler zeros), so a 138M-weight VGG-16 costs no encoding. The
    total row sums the bytes of the layers and recomputes the overhead from summed bits.
    """
    rows: list[dict] = []
    sums = {"weights": 0, "nonzeros": 0, "fillers": 0, "dense_bytes": 0, "csr_bytes": 0,
            "csc_bytes": 0, "relative_bytes": 0, "bitmask_bytes": 0}
    relative_bits_total = 0
    state = _effective_state(model)
    for name, module in prunable_layers(model).items():
        weight = _to_numpy(state[f"{name}.weight" if name else "weight"])
        matrix = as_matrix(weight)
        shape = tuple(matrix.shape)
        bits = _index_bits(module, index_bits_fc, index_bits_conv)
        nonzeros, fillers = relative_index_entries(matrix != 0, bits)
        relative_bits = relative_csc_size_bits(shape, nonzeros + fillers, bits, value_bits)
        row = {
            "layer": name, "kind": type(module).__name__, "shape": tuple(weight.shape),
            "weights": int(weight.size), "nonzeros": nonzeros, "fillers": fillers,
            "index_bits": bits,
            "dense_bytes": math.ceil(int(weight.size) * value_bits / 8),
            "csr_bytes": math.ceil(csr_size_bits(shape, nonzeros, value_bits) / 8),
            "csc_bytes": math.ceil(csc_size_bits(shape, nonzeros, value_bits) / 8),
            "relative_bytes": math.ceil(relative_bits / 8),
            "bitmask_bytes": math.ceil(bitmask_size_bits(shape, nonzeros, value_bits) / 8),
            "relative_overhead": (relative_bits / (nonzeros * value_bits) - 1.0) if nonzeros else math.nan,
        }
        rows.append(row)
        for key in sums:
            sums[key] += row[key]
        relative_bits_total += relative_bits
    payload = sums["nonzeros"] * value_bits
    rows.append({"layer": "total", "kind": "", "shape": (), **sums, "index_bits": None,
                 "relative_overhead": relative_bits_total / payload - 1.0 if payload else math.nan})
    return rows
