"""One-call entry points: a zoo model (optionally pruned by a density profile) on a hardware
description, results as a pandas DataFrame. The CLI is a thin shell around these."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from hwmodels.hardware import Accelerator, load_hardware
from pruning.profiles import DensityProfile, apply_profile, load_profile, load_profile_file
from pruning.zoo import build_model, input_shape
from sim.estimator import estimate
from sim.workload import Workload, extract_workload

__all__ = [
    "estimate_network", "estimate_workloads", "han_form_table", "measured_workloads",
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


def profile_workloads(model: str, profile: DensityProfile | None, seed: int = 0, *,
                      dense: bool = True) -> dict[str, Workload]:
    """The dense workload of ``model`` and, with a profile, the pruned one.

    The pruned network is the dense one pruned by magnitude to the profile's weight densities,
    with the profile's input activation densities. The dense baseline counts every activation
    (density 1), as Han's FLOP column does: a profile says nothing of the dense network's zeros.
    Without a profile, densities are measured on one seeded random sample. ``dense=False``
    (with a profile) returns only ``{"pruned": ...}`` and skips the dense trace; the pruned
    workload is the same either way.
    """
    if not dense and profile is None:
        raise ValueError("dense=False needs a profile: without one there is only the dense workload")
    network = build_model(model, seed=seed)
    # The network is private to this call and nothing trains it: pruning writes its zeros into
    # fresh weight tensors (no torch.nn.utils.prune reparametrisation), so both traces may share
    # the parameters' storage instead of copying it.
    workloads = {}
    if dense:
        baseline = extract_workload(network, input_shape(model), name=model, seed=seed, copy_parameters=False)
        if profile is None:
            return {"dense": baseline}
        workloads["dense"] = baseline.with_input_densities({layer.name: 1.0 for layer in baseline.compute_layers})
    densities = apply_profile(network, profile, reparametrize=False)
    pruned = extract_workload(network, input_shape(model), name=model, seed=seed, copy_parameters=False)
    workloads["pruned"] = pruned.with_input_densities(densities)
    return workloads


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


def estimate_workloads(workloads: dict[str, Workload], hw: str | Path | Accelerator = "han45nm") -> pd.DataFrame:
    """:func:`sim.estimator.estimate` of each workload, tagged with its variant (same columns as
    :func:`estimate_network`); fixed-point layers are priced at their own widths
    (:func:`sim.estimator.operand_widths`)."""
    accelerator = resolve_hardware(hw)
    results = pd.concat(
        [estimate(workload, accelerator).assign(variant=variant)
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
