"""One-call entry points: a zoo model (optionally pruned by a density profile) on a hardware
description, results as a pandas DataFrame. The CLI is a thin shell around these."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from hwmodels.energy import UnknownEnergyError
from hwmodels.hardware import Accelerator, Precision, load_hardware
from hwmodels.pricing import energy_table_for
from pruning.profiles import DensityProfile, apply_profile, load_profile, load_profile_file
from pruning.zoo import build_model, input_shape
from sim.estimator import estimate
from sim.workload import Workload, WorkloadError, extract_workload

__all__ = [
    "estimate_network", "estimate_workloads", "fixed_point_hardware", "han_form_table", "measured_workloads",
    "profile_workloads", "resolve_hardware", "resolve_profile",
]

if TYPE_CHECKING:
    import torch


def resolve_hardware(hw: str | Path | Accelerator) -> Accelerator:
    """A preset name, a YAML path or an already validated description."""
    return hw if isinstance(hw, Accelerator) else load_hardware(hw)


def resolve_profile(model: str, profile: str | None, profile_file: str | Path | None) -> DensityProfile | None:
    if profile and profile_file:
        raise ValueError("give a profile name or a profile file, not both")
    if profile_file:
        return load_profile_file(profile_file, model)
    return load_profile(profile, model) if profile else None


def profile_workloads(model: str, profile: DensityProfile | None, seed: int = 0) -> dict[str, Workload]:
    """The dense workload of ``model`` and, with a profile, the pruned one.

    The pruned network is the dense one pruned by magnitude to the profile's weight densities,
    with the profile's input activation densities. The dense baseline counts every activation
    (density 1), as Han's FLOP column does: a profile says nothing of the dense network's zeros.
    Without a profile, densities are measured on one seeded random sample.
    """
    network = build_model(model, seed=seed)
    dense = extract_workload(network, input_shape(model), name=model, seed=seed)
    if profile is None:
        return {"dense": dense}
    dense = dense.with_input_densities({layer.name: 1.0 for layer in dense.compute_layers})
    densities = apply_profile(network, profile)
    pruned = extract_workload(network, input_shape(model), name=model, seed=seed)
    return {"dense": dense, "pruned": pruned.with_input_densities(densities)}


def estimate_network(
    model: str,
    profile: str | None = None,
    hw: str | Path | Accelerator = "han45nm",
    seed: int = 0,
    profile_file: str | Path | None = None,
) -> pd.DataFrame:
    """Per-layer analytical estimate of ``model`` on ``hw``: one row per (variant, layer), the
    variants being ``dense`` and, with a profile, ``pruned``. Columns: ``variant`` then
    :data:`sim.estimator.RESULT_COLUMNS`. Same arguments and seed, same numbers."""
    accelerator = resolve_hardware(hw)
    density_profile = resolve_profile(model, profile, profile_file)
    return estimate_workloads(profile_workloads(model, density_profile, seed), accelerator)


def measured_workloads(models: dict[str, "torch.nn.Module"], sample, name: str) -> dict[str, Workload]:
    """Workloads of trained models (e.g. ``{"dense": ..., "pruned": ...}``) with masks from the
    models and activation densities measured on ``sample`` (a batch, e.g. test images)."""
    return {variant: extract_workload(model, sample=sample, name=name) for variant, model in models.items()}


def fixed_point_hardware(workload: Workload, hw: Accelerator) -> Accelerator:
    """The hardware that runs ``workload`` at its real widths: ``hw`` itself unless the
    workload's layers are b-bit fixed point (``Layer.fixed_point_bits``), then ``hw`` with a
    b-bit integer MAC array (accumulator max(b, hw's accumulator width)), so MACs, register
    file, SRAM and DRAM traffic are priced at b bits. The energy table must have that integer
    MAC (horowitz45: int8 and int32, no int16 multiply): otherwise UnknownEnergyError naming
    the width; layers of different widths (or some fixed point, some not) are a WorkloadError."""
    widths = {layer.fixed_point_bits for layer in workload.compute_layers}
    if widths == {None}:
        return hw
    if len(widths) > 1:
        raise WorkloadError(f"workload '{workload.model}' mixes layer widths {sorted(widths, key=str)}; "
                            "the estimator prices one fixed-point width per network")
    bits = widths.pop()
    table = energy_table_for(hw)
    valid = sorted(r.bits for r in table.arithmetic_rows if r.dtype == "int" and r.op == "mult"
                   and any((a.dtype, a.op, a.bits) == ("int", "add", r.bits) for a in table.arithmetic_rows))
    if bits not in valid:
        raise UnknownEnergyError(f"{bits}-bit fixed-point layers: energy table '{table.name}' has no "
                                 f"{bits}-bit int MAC (add and mult); valid widths: {', '.join(map(str, valid))}")
    precision = Precision(dtype="int", bits=bits,
                          accumulator_bits=max(bits, hw.mac_array.precision.accumulator_bits))
    return hw.with_changes(mac_array=dataclasses.replace(hw.mac_array, precision=precision))


def estimate_workloads(workloads: dict[str, Workload], hw: str | Path | Accelerator = "han45nm") -> pd.DataFrame:
    """:func:`sim.estimator.estimate` of each workload, tagged with its variant (same columns as
    :func:`estimate_network`); fixed-point workloads run on :func:`fixed_point_hardware`."""
    accelerator = resolve_hardware(hw)
    results = pd.concat(
        [estimate(workload, fixed_point_hardware(workload, accelerator)).assign(variant=variant)
         for variant, workload in workloads.items()],
        ignore_index=True,
    )
    return results[["variant", *[c for c in results.columns if c != "variant"]]]


def han_form_table(dense: Workload, pruned: Workload) -> pd.DataFrame:
    """Han et al. 2015 Tables 2–5 for our own run: per compute layer Weights, FLOP (2 per MAC,
    dense), Act% (density of the layer's output activations after its nonlinearity, measured:
    the next compute layer's input density; 100% for the last layer, as Han prints), Weights%
    kept and FLOP% left (Weights% × input density); and the network total."""
    rows = []
    layers = pruned.compute_layers
    for index, layer in enumerate(layers):
        act = layers[index + 1].input_density if index + 1 < len(layers) else 1.0
        dense_layer = dense.layer(layer.name)
        flop_kept = 2 * layer.dense_macs * layer.weight_density * layer.input_density
        rows.append({
            "layer": layer.name,
            "weights": dense_layer.weight_count,
            "flop": 2 * dense_layer.dense_macs,
            "act_pct": 100 * act,
            "weights_pct": 100 * layer.weight_density,
            "flop_pct": 100 * flop_kept / (2 * layer.dense_macs),
            "flop_kept": flop_kept,
            "nonzero_weights": layer.nonzero_weights,
        })
    table = pd.DataFrame(rows)
    total = {
        "layer": "total",
        "weights": int(table["weights"].sum()),
        "flop": int(table["flop"].sum()),
        "act_pct": float("nan"),
        "weights_pct": 100 * table["nonzero_weights"].sum() / table["weights"].sum(),
        "flop_pct": 100 * table["flop_kept"].sum() / table["flop"].sum(),
    }
    table = pd.concat([table, pd.DataFrame([total])], ignore_index=True)
    return table.drop(columns=["flop_kept", "nonzero_weights"])
