"""One-call entry points: a zoo model (optionally pruned by a density profile) on a hardware
description, results as a pandas DataFrame. The CLI is a thin shell around these."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hwmodels.hardware import Accelerator, load_hardware
from pruning.profiles import DensityProfile, apply_profile, load_profile, load_profile_file
from pruning.zoo import build_model, input_shape
from sim.estimator import estimate
from sim.workload import Workload, extract_workload

__all__ = ["estimate_network", "profile_workloads", "resolve_hardware", "resolve_profile"]


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
    frames = [
        estimate(workload, accelerator).assign(variant=variant)
        for variant, workload in profile_workloads(model, density_profile, seed).items()
    ]
    results = pd.concat(frames, ignore_index=True)
    return results[["variant", *[c for c in results.columns if c != "variant"]]]
