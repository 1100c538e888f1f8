"""The ``prunesim`` command line: a thin shell over :mod:`sim.api`.

Bad input ends with one line on stderr naming what is wrong and what would be valid, exit status
2, no traceback, and no output file written.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import sys
from importlib import resources
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from hwmodels.energy import UnknownEnergyError
from hwmodels.hardware import HardwareError, available_presets, load_hardware
from pruning.profiles import ProfileError, available_profiles
from pruning.zoo import MODEL_NAMES, UnknownModelError
from pruning.datasets import DATASETS, DataError
from sim.api import estimate_network
from sim.jobs import DENSITY_SOURCES, JobError, PruneSettings, parse_target, run_prune, settings_match
from sim.estimator import totals as network_totals
from sim.report import (OutputError, area_edp_table, check_writable, command_line, comparison_table,
                        prunesim_version, render_files, to_markdown, write_files)
from sim.report_inputs import ReportInputError
from sim.mapping import SimulationError
from sim.sweepfile import SweepError, load_sweep
from sim.workload import WorkloadError

__all__ = ["main"]

USER_ERRORS = (HardwareError, ProfileError, UnknownModelError, UnknownEnergyError, WorkloadError,
               OutputError, DataError, JobError, SimulationError, SweepError,
               ReportInputError)  # SimulationError: also NumericsError
DEMO_MODELS = ("lenet-300-100", "lenet-5", "alexnet", "vgg-16")
DEMO_REPORT_MODELS = ("alexnet", "vgg-16")  # beside the LeNet-300-100 prune run, in the demo's report


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _print_table(results: pd.DataFrame, title: str) -> None:
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.float_format", lambda v: f"{v:,.3g}" if abs(v) < 1e3 else f"{v:,.0f}"):
        print(f"\n{title}")
        print(comparison_table(results).to_string(index=False))
        print(area_edp_table(network_totals(results)).to_string(index=False))


def _estimate_one(model: str, profile: str | None, profile_file: str | None, hw: str, seed: int,
                  command: str) -> tuple[pd.DataFrame, dict[str, str | bytes], str]:
    results = estimate_network(model, profile=profile, hw=hw, seed=seed, profile_file=profile_file)
    hardware = results["hardware"].iat[0]
    title = f"{model} · {profile or profile_file or 'dense'} · {hardware}"
    meta = {"kind": "estimate", "model": model, "profile": profile or profile_file or "none", "hardware": hardware,
            "seed": seed, "prunesim": prunesim_version(), "command": command}
    files = {**render_files(results, meta, title), "hardware.yaml": load_hardware(hw).to_yaml()}
    return results, files, title


def _cmd_estimate(args: argparse.Namespace) -> int:
    out = args.out or Path("reports") / f"{args.model}-{args.profile or 'dense'}-{Path(args.hw).stem}"
    check_writable(out)
    results, files, title = _estimate_one(args.model, args.profile, args.profile_file, args.hw,
                                          args.seed, args.command_line)
    _print_table(results, title)
    for path in write_files(out, files):
        print(f"wrote {path}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """The main job: the four networks under Han's profile on han45nm, LeNet-300-100 pruned on
    MNIST (and simulated on eie-64pe), and their comparison report."""
    out = Path(args.out)
    check_writable(out)
    summaries, outputs = [], {}
    bar = tqdm(DEMO_MODELS, desc="demo", unit="network", file=sys.stderr)
    for model in bar:
        bar.set_postfix_str(model)
        results, files, title = _estimate_one(model, "han2015", None, args.hw, args.seed, args.command_line)
        outputs[model] = files
        _print_table(results, title)
        summaries.append(comparison_table(results).assign(model=model).query("layer == 'total'"))
    summary = pd.concat(summaries, ignore_index=True).drop(columns=["layer"])
    summary = summary[["model", *[c for c in summary.columns if c != "model"]]]

    for model, files in outputs.items():
        write_files(out / model, files)

    # A short schedule of the real thing (BENCHMARKS.md has the full one): LeNet-300-100
    # trained on MNIST, pruned 12x in three rounds, energy from the measured masks.
    print("\nLeNet-300-100 on MNIST: train, prune 12x in 3 rounds, retrain (short demo schedule)")
    settings = PruneSettings(model="lenet-300-100", data="mnist", epochs=8, retrain_epochs=2, iterations=3,
                             seed=args.seed, hw=args.hw, download=True)
    run_dir = out / "lenet-300-100-mnist"
    if (run_dir / "settings.json").exists() and not settings_match(settings, run_dir):
        shutil.rmtree(run_dir)  # the demo's own output from other settings: redo it, don't fail
    pruned = run_prune(settings, run_dir, resume=True, progress=True)
    write_files(out, {
        "summary.csv": summary.to_csv(index=False),
        "summary.md": "# prunesim demo\n\n## Han 2015 profiles on " + args.hw + "\n\n" + to_markdown(summary)
        + "\n" + "\n".join(f"- [{m}]({m}/report.md)" for m in outputs) + "\n\n"
        + "## LeNet-300-100 pruned on MNIST (short schedule)\n\n"
        + f"test error {pruned['dense_test_error_pct']:.2f}% dense → {pruned['pruned_test_error_pct']:.2f}% pruned, "
        + f"{pruned['compression']:.1f}× fewer weights, energy {pruned['energy_saving']:.1f}× lower "
        + "([report](lenet-300-100-mnist/report/report.md))\n\n"
        + "## Comparison report\n\n[report/index.html](report/index.html) ([Markdown](report/report.md))\n",
    })
    print(f"\nwrote {out}/summary.md and one folder per network")

    # The pruned LeNet-300-100 on the EIE preset, cycle by cycle; then the comparison report of
    # the main job. Each step runs as the prunesim command it records in its results.
    eie = out / "lenet-300-100-mnist-eie"
    _run(["simulate", "--model", "lenet-300-100", "--checkpoint", str(run_dir / "rounds" / "final.pt"),
          "--hw", "eie-64pe", "--seed", str(args.seed), "--quiet", "--out", str(eie)])
    # A small design-space sweep (12 points on pruned AlexNet, analytical) for the Pareto section.
    sweep = out / "sweep"
    _run(["sweep", str(resources.files("sim") / "data" / "demo-sweep.yaml"), "--out", str(sweep),
          "--workers", "1", "--quiet"])
    _run(["report", str(run_dir), str(eie), str(sweep), *(str(out / model) for model in DEMO_REPORT_MODELS),
          "--out", str(out / "report"), "--title", "prunesim demo: what pruning saves on the shipped accelerators"])
    return 0


def _cmd_prune(args: argparse.Namespace) -> int:
    settings = PruneSettings(
        model=args.model, data=args.data, target_density=parse_target(args.target), iterations=args.iterations,
        layer_densities=args.layer_densities, epochs=args.epochs, lr=args.lr, batch_size=args.batch_size,
        regularization=args.regularization, reg_strength=args.reg_strength, retrain_epochs=args.retrain_epochs,
        retrain_lr=args.retrain_lr, retrain_regularization=args.retrain_regularization,
        separate_conv_fc=args.separate_conv_fc, augment_shift=args.augment_shift,
        max_accuracy_drop=args.max_accuracy_drop, seed=args.seed, hw=args.hw,
        activation_samples=args.activation_samples, val_size=args.val_size, data_dir=args.data_dir,
        download=args.download, **_compression_options(args))
    load_hardware(settings.hw)  # a bad --hw fails now, not after training
    run_dir = Path(args.run_dir or f"runs/{args.model}-{args.data}-{args.target}-seed{args.seed}")
    check_writable(run_dir)
    summary = run_prune(settings, run_dir, resume=args.resume, progress=not args.quiet)
    print(json.dumps(summary, indent=2))
    print(f"wrote {run_dir}/report/report.md")
    return 0


def _cmd_tradeoff(args: argparse.Namespace) -> int:
    from pruning.datasets import load_dataset
    from pruning.figures import tradeoff_plot
    from pruning.tradeoff import tradeoff
    from pruning.zoo import build_model


    settings = PruneSettings(model=args.model, data=args.data, epochs=args.epochs, retrain_epochs=args.retrain_epochs,
                             seed=args.seed, data_dir=args.data_dir)
    fractions = [float(f) for f in args.fractions.split(",")]
    if not all(0.0 < f < 1.0 for f in fractions):
        raise JobError(f"--fractions '{args.fractions}': each pruned fraction must lie in (0, 1)")
    if args.l1_strength is not None and not 0.0 <= args.l1_strength < float("inf"):
        raise JobError(f"--l1-strength {args.l1_strength}: must be a finite number >= 0")
    out = Path(args.out)
    check_writable(out)
    data = load_dataset(args.data, data_dir=args.data_dir, seed=args.seed)
    table = tradeoff(lambda: build_model(args.model, seed=args.seed), data, fractions, settings.train_config(),
                     settings.retrain_config(), seed=args.seed, progress=not args.quiet,
                     l1_strength=args.l1_strength)
    title = f"{args.model} on {args.data}: accuracy against parameters pruned (Han 2015 Fig. 5)"
    wide = table.pivot(index="pruned_fraction", columns="method", values="accuracy").reset_index()
    write_files(out, {"tradeoff.csv": table.to_csv(index=False), "tradeoff.png": tradeoff_plot(table, title),
                      "tradeoff.md": f"# {title}\n\nTest accuracy.\n\n" + to_markdown(wide)})
    print(wide.to_string(index=False))
    print(f"wrote {out}/tradeoff.md")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    """Pruning methods side by side: accuracy against sparsity and against estimated energy."""
    from sim.compare import CompareSettings, parse_list, run_compare

    settings = CompareSettings(
        model=args.model, data=args.data, methods=parse_list(args.methods, "--methods"),
        sparsities=parse_list(args.sparsity, "--sparsity", float), rounds=args.rounds, epochs=args.epochs,
        lr=args.lr, batch_size=args.batch_size, retrain_epochs=args.retrain_epochs, retrain_lr=args.retrain_lr,
        seed=args.seed, hw=args.hw, activation_samples=args.activation_samples, data_dir=args.data_dir,
        limit=args.limit, **_compression_options(args))
    load_hardware(settings.hw)  # a bad --hw fails now, not after training
    out = Path(args.out or f"reports/compare-{args.model}-{args.data}")
    check_writable(out)
    table = run_compare(settings, out, progress=not args.quiet)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"wrote {out}/compare.md")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    """Cycle-level simulation of a zoo network (dense, pruned by a profile, or a checkpoint)."""
    from sim.simulate import render_files as render_simulation
    from sim.simulate import simulate_network, summary_table

    source = args.profile or (Path(args.profile_file).stem if args.profile_file else None) or \
        ("checkpoint" if args.checkpoint else "dense")
    out = args.out or Path("reports") / f"{args.model}-{source}-{Path(args.hw).stem}-sim"
    if args.threads is not None and args.threads < 1:
        raise SimulationError(f"--threads {args.threads}: give at least 1")
    check_writable(out)
    simulation = simulate_network(args.model, profile=args.profile, hw=args.hw, seed=args.seed,
                                  profile_file=args.profile_file, checkpoint=args.checkpoint,
                                  ideal_memory=args.ideal_memory, numerics=not args.no_numerics,
                                  progress=not args.quiet, golden=args.golden, dense=not args.no_dense,
                                  threads=args.threads)
    hardware = simulation.layers["hardware"].iat[0]
    memory = "ideal memory" if args.ideal_memory else "real memory"
    title = f"{args.model} · {source} · {hardware} · {memory}"
    meta = {"kind": "simulate", "model": args.model,
            "source": args.profile or args.profile_file or args.checkpoint or "dense",
            "hardware": hardware, "ideal_memory": args.ideal_memory, "numerics": not args.no_numerics,
            "golden": args.golden, "dense": not args.no_dense,
            "seed": args.seed, "prunesim": prunesim_version(), "command": args.command_line}
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.float_format", lambda v: f"{v:,.3g}" if abs(v) < 1e3 else f"{v:,.0f}"):
        print(f"\n{title}")
        print(summary_table(simulation.layers).to_string(index=False))
        print(area_edp_table(simulation.totals()).to_string(index=False))
    files = {**render_simulation(simulation, meta, title), "hardware.yaml": load_hardware(args.hw).to_yaml()}
    for path in write_files(out, files):
        print(f"wrote {path}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    """Every design point of a sweep file on its workloads: tables, Pareto fronts, plots."""
    from sim.executors import InProcess, LocalPool, dask_executor
    from sim.sweep import OBJECTIVES, run_sweep

    for option, value in (("--workers", args.workers), ("--dask-local", args.dask_local)):
        if value is not None and value < 1:
            raise SweepError(f"{option} {value}: give at least 1")
    sweep = load_sweep(args.sweep_file)
    out = check_writable(args.out or Path("reports") / "sweeps" / Path(args.sweep_file).stem)
    points = len(sweep.points())
    meta = {"kind": "sweep", "prunesim": prunesim_version(), "command": args.command_line}
    print(f"{sweep.source}: {points} design points ({sweep.sampling}) x {len(sweep.workloads)} "
          f"workload(s), {sweep.mode} mode, base {sweep.base['name']}")
    if args.scheduler or args.dask_local:
        try:
            with dask_executor(args.scheduler, args.dask_local) as executor:
                result = run_sweep(sweep, out, executor, progress=not args.quiet, meta=meta)
        except ConnectionError as error:
            raise SweepError(str(error)) from None
    else:
        executor = InProcess() if args.workers == 1 else LocalPool(args.workers)
        result = run_sweep(sweep, out, executor, progress=not args.quiet, meta=meta)
    totals = result.totals
    print(f"evaluated {result.evaluated} point(s), {points - result.evaluated} already stored; "
          f"{int(totals['feasible'].sum())} of {len(totals)} (point, workload) pairs feasible")
    best = result.pareto[result.pareto["best_for"] != ""]
    for _, row in best.iterrows():
        values = " ".join(f"{path}={row[path]}" for path in sweep.parameters)
        print(f"{row['workload']}: best {row['best_for'].replace(' ', ' & ')}: point {row['point_id']} ({values}) "
              + ", ".join(f"{name} {row[name]:.4g}" for name in OBJECTIVES))
    for path in result.files:
        print(f"wrote {path}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    """A comparison report (index.html, report.md, figures) of results folders."""
    from sim.comparison_report import report_files

    check_writable(args.out)
    files = report_files(args.results, args.title, args.command_line, prunesim_version())
    for path in write_files(args.out, files):
        print(f"wrote {path}")
    if args.screenshot:
        from sim.browser import BrowserError, screenshot

        try:
            shot = screenshot(Path(args.out) / "index.html", Path(args.screenshot))
        except BrowserError as error:
            raise OutputError(f"--screenshot: {error}") from None
        print(f"wrote {shot.png}")
        for line in shot.console:  # the page should log nothing; say so if it did
            print(f"warning: browser console: {line}", file=sys.stderr)
    return 0


def _cmd_hw(args: argparse.Namespace) -> int:
    if args.hw_command == "list":
        for name in available_presets():
            print(f"{name:24s} {load_hardware(name).description}")
    else:
        from hwmodels.area import area_breakdown, area_table_for

        hw = load_hardware(args.name)
        print(hw.to_yaml(), end="")
        # The area as YAML comments, so that the output still loads as the description.
        parts = area_breakdown(hw)
        print(f"# area in mm² at {hw.energy.node_nm:g} nm (area table {area_table_for(hw).name}; "
              "DRAM is off chip, no die area):")
        for name, mm2 in [*parts.items(), ("total", sum(parts.values()))]:
            print(f"#   {name:16s} {mm2:10.4f}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    print("models:   " + ", ".join(MODEL_NAMES))
    print("profiles: " + ", ".join(available_profiles()))
    print("hardware: " + ", ".join(available_presets()))
    return 0


def _add_compression_options(command: argparse.ArgumentParser) -> None:
    """Deep Compression's later stages on the pruned model (prune and compare)."""
    command.add_argument("--quantise", type=int, metavar="BITS",
                         help="also quantise the pruned model to BITS-bit fixed point after training (weights and "
                              "activations, e.g. 8 or 16); energy priced at the real widths")
    command.add_argument("--activation-bits", type=int, metavar="BITS",
                         help="with --quantise: activations at BITS bits (default: as --quantise, e.g. W8A16)")
    command.add_argument("--per-channel", action="store_true",
                         help="with --quantise: one weight scale per output channel (default: per tensor)")
    command.add_argument("--share-bits", type=int, metavar="B",
                         help="also share weights: a k-means codebook of 2^B values per layer, B = 2..8, centroids "
                              "fine-tuned (before --quantise when both are given)")
    command.add_argument("--share-epochs", type=int, default=1, help="centroid fine-tuning epochs (default 1)")


def _compression_options(args: argparse.Namespace) -> dict:
    return {"quantise": args.quantise, "activation_bits": args.activation_bits, "per_channel": args.per_channel,
            "share_bits": args.share_bits, "share_epochs": args.share_epochs}


def _add_data_options(command: argparse.ArgumentParser) -> None:
    """--model, --data and --data-dir of the commands that train on MNIST-like data."""
    command.add_argument("--model", default="lenet-300-100", help="lenet-300-100 or lenet-5")
    command.add_argument("--data", default="mnist", help=f"data set: {', '.join(DATASETS)}")
    command.add_argument("--data-dir", help="folder holding the IDX files (else $PRUNESIM_DATA, ../shared/data, cache)")


def _add_network_options(command: argparse.ArgumentParser, profile_help: str) -> argparse._MutuallyExclusiveGroup:
    """--model and the mutually exclusive --profile / --profile-file of the commands that run a zoo
    network; returns the group so a command can add another source to it."""
    command.add_argument("--model", required=True, help=f"zoo network: {', '.join(MODEL_NAMES)}")
    source = command.add_mutually_exclusive_group()
    source.add_argument("--profile", help=f"{profile_help}: {', '.join(available_profiles())}")
    source.add_argument("--profile-file", help="your own density profile (YAML, same schema)")
    return source


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="prunesim", description="What does pruning actually save on real hardware? "
                     "Prune networks, run them on accelerator models, price the actions at 45 nm.")
    parser.add_argument("--version", action="version", version=f"prunesim {prunesim_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    estimate = commands.add_parser(
        "estimate", help="analytical per-layer estimate: MACs, FLOP%%, memory traffic, energy",
        description="Estimate a zoo network, dense and pruned by a density profile, on a hardware "
                    "description. Prints a per-layer table and writes results.csv, results.json, "
                    "report.md and energy.png.")
    _add_network_options(estimate, "density profile")
    estimate.add_argument("--hw", default="han45nm", help="hardware preset name or YAML file (default han45nm)")
    estimate.add_argument("--out", help="output folder (default reports/MODEL-PROFILE-HW)")
    estimate.add_argument("--seed", type=int, default=0, help="seed of weights and samples (default 0)")
    estimate.set_defaults(run=_cmd_estimate)

    demo = commands.add_parser("demo", help="the main job: four networks under Han's profile, and "
                                            "LeNet-300-100 pruned on MNIST",
                               description="LeNet-300-100, LeNet-5, AlexNet and VGG-16 under Han 2015's "
                                           "per-layer densities, estimated on han45nm; then LeNet-300-100 "
                                           "trained and pruned 12x on MNIST with a short schedule, simulated on "
                                           "eie-64pe; ends with the comparison report in OUT/report/.")
    demo.add_argument("--out", default="reports/demo", help="output folder (default reports/demo)")
    demo.add_argument("--hw", default="han45nm", help="hardware preset or YAML file (default han45nm)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_cmd_demo)

    prune = commands.add_parser(
        "prune", help="train, prune (Han 2015) and retrain on MNIST-like data; report accuracy and energy",
        description="Train a network, prune it with Han et al.'s method (iterative prune and retrain), "
                    "export it sparse, and estimate its energy dense vs pruned from the measured masks and "
                    "activations. Everything lands in --run-dir; --resume continues a killed run.")
    _add_data_options(prune)
    prune.add_argument("--download", action="store_true", help="download the data set if it is not found")
    prune.add_argument("--target", default="12x", help="compression (12x) or kept fraction (0.08); default 12x")
    prune.add_argument("--iterations", type=int, default=3, help="prune → retrain rounds (1 = one-shot)")
    prune.add_argument("--layer-densities", default="auto", choices=DENSITY_SOURCES,
                       help="how the target splits over layers (default auto: Han's per-layer ratios)")
    prune.add_argument("--epochs", type=int, help="dense training epochs (default per network)")
    prune.add_argument("--lr", type=float, help="dense training learning rate (default per network)")
    prune.add_argument("--batch-size", type=int)
    prune.add_argument("--regularization", default="l2", choices=("l1", "l2", "none"))
    prune.add_argument("--reg-strength", type=float)
    prune.add_argument("--retrain-epochs", type=int, default=6)
    prune.add_argument("--retrain-lr", type=float, help="default: 1/10 of --lr (Han)")
    prune.add_argument("--retrain-regularization", default="l2", choices=("l1", "l2", "none"))
    prune.add_argument("--separate-conv-fc", action="store_true",
                       help="retrain conv layers with FC fixed, then FC with conv fixed (Han §3.3)")
    prune.add_argument("--augment-shift", type=int, default=0, metavar="PIXELS",
                       help="move each training image by a random offset of up to PIXELS in each direction, "
                            "in training and retraining (default 0: Han's recipe, no augmentation)")
    prune.add_argument("--max-accuracy-drop", type=float, default=0.005,
                       help="with --layer-densities sensitivity: allowed drop per layer (default 0.005)")
    prune.add_argument("--hw", default="han45nm", help="hardware for the energy estimate (default han45nm)")
    prune.add_argument("--activation-samples", type=int, default=2000,
                       help="test images on which activation densities are measured")
    prune.add_argument("--val-size", type=int, default=5000,
                       help="training images held out for validation (default 5000; 0 trains on all, "
                            "as Caffe did for Han's LeNets)")
    prune.add_argument("--run-dir", help="run folder (default runs/MODEL-DATA-TARGET-seedN)")
    prune.add_argument("--resume", action="store_true", help="continue the run in --run-dir")
    prune.add_argument("--seed", type=int, default=0)
    prune.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_compression_options(prune)
    prune.set_defaults(run=_cmd_prune)

    trade = commands.add_parser(
        "tradeoff", help="Han Fig. 5: accuracy vs parameters pruned, L1/L2, with/without retraining, iterative",
        description="Train with L1 and with L2, prune to each fraction one-shot (with and without "
                    "retraining) and iteratively, and plot test accuracy against the fraction pruned.")
    trade.add_argument("--model", default="lenet-300-100")
    trade.add_argument("--data", default="mnist")
    trade.add_argument("--data-dir")
    trade.add_argument("--fractions", default="0.5,0.7,0.8,0.9,0.95,0.98", help="pruned fractions, comma-separated")
    trade.add_argument("--epochs", type=int, help="dense training epochs (default per network)")
    trade.add_argument("--retrain-epochs", type=int, default=3)
    trade.add_argument("--seed", type=int, default=0)
    trade.add_argument("--out", default="reports/tradeoff")
    trade.add_argument("--l1-strength", type=float,
                       help="L1 penalty of the L1 curves (default: the network's L2 strength)")
    trade.add_argument("--quiet", action="store_true")
    trade.set_defaults(run=_cmd_tradeoff)

    compare = commands.add_parser(
        "compare", help="pruning methods side by side: accuracy vs sparsity and vs estimated energy",
        description="Train one dense network, prune a copy with each method up the sparsity ladder "
                    "(retraining after every round), and write compare.csv/.md/.json and plots of test "
                    "accuracy against sparsity and against the estimated energy.")
    _add_data_options(compare)
    compare.add_argument("--methods", default="han,flipout,relief",
                         help="comma-separated: han, flipout, relief, magnitude (global magnitude)")
    compare.add_argument("--sparsity", default="0.9,0.95,0.98,0.99", help="fractions pruned, comma-separated")
    compare.add_argument("--limit", type=int, help="use only the first N training and test images (quick runs)")
    compare.add_argument("--rounds", type=int, default=2, help="prune → retrain rounds per sparsity (default 2)")
    compare.add_argument("--epochs", type=int, help="dense training epochs (default per network)")
    compare.add_argument("--lr", type=float, help="dense training learning rate (default per network)")
    compare.add_argument("--batch-size", type=int)
    compare.add_argument("--retrain-epochs", type=int, default=2, help="epochs after every round (default 2)")
    compare.add_argument("--retrain-lr", type=float, help="default: 1/10 of --lr")
    compare.add_argument("--hw", default="han45nm", help="hardware for the energy estimate (default han45nm)")
    compare.add_argument("--activation-samples", type=int, default=1000)
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--out", help="output folder (default reports/compare-MODEL-DATA)")
    compare.add_argument("--quiet", action="store_true", help="no progress bars")
    _add_compression_options(compare)
    compare.set_defaults(run=_cmd_compare)

    simulate = commands.add_parser(
        "simulate", help="cycle-level simulation on a systolic or EIE-like array: cycles, stalls, traffic, energy",
        description="Simulate a zoo network layer by layer on a systolic-array description (SimPy: DRAM "
                    "channel, double-buffered SRAM, array; systolic-ws-32x32-gated gates zero operands, "
                    "systolic-ws-32x32-sparse skips zero weights stored compressed) or an EIE-like sparse array "
                    "(eie-64pe: real masks, filler zeros, activation queues), check every layer's output against a "
                    "reference, price the actions at 45 nm. Prints a per-layer table and writes "
                    "results.csv, actions.csv, totals.csv, results.json, report.md and energy.png.")
    sim_source = _add_network_options(simulate, "density profile (adds a pruned variant)")
    sim_source.add_argument("--checkpoint", help="a model pruned by 'prunesim prune': RUN/rounds/final.pt, a round "
                                                 "checkpoint, or a .npz sparse export")
    simulate.add_argument("--hw", default="systolic-ws-32x32",
                          help="systolic or eie preset, or YAML file (default systolic-ws-32x32)")
    simulate.add_argument("--ideal-memory", action="store_true",
                          help="infinite DRAM bandwidth, no latency: cycles are the array's compute cycles")
    simulate.add_argument("--golden", action="store_true",
                          help="also run the cycle-by-cycle golden model (small layers only) and require it to "
                               "agree with the fast model to the cycle")
    simulate.add_argument("--no-numerics", action="store_true",
                          help="skip computing and checking each layer's output through the dataflow")
    simulate.add_argument("--no-dense", action="store_true",
                          help="with a profile: simulate only the pruned variant, not the dense baseline "
                               "(about half the time; the pruned numbers are the same)")
    simulate.add_argument("--threads", type=int, help="layers simulated at once (default: the machine's cores; "
                                                      "the results do not depend on it)")
    simulate.add_argument("--out", help="output folder (default reports/MODEL-SOURCE-HW-sim)")
    simulate.add_argument("--seed", type=int, default=0, help="seed of weights and samples (default 0)")
    simulate.add_argument("--quiet", action="store_true", help="no progress bar")
    simulate.set_defaults(run=_cmd_simulate)

    sweep = commands.add_parser(
        "sweep", help="design-space sweep: every point of a sweep file on its workloads, Pareto fronts",
        description="Evaluate every design point of SWEEP.yaml (a base hardware description, parameters to "
                    "vary on a grid or at random, workloads) analytically or cycle by cycle, in a local process "
                    "pool or on a Dask cluster. Writes results.parquet/.csv (per point, workload, layer), "
                    "totals.parquet/.csv, pareto.csv and pareto_WORKLOAD.png. Rerun with the same --out to "
                    "resume: finished points are not evaluated again.")
    sweep.add_argument("sweep_file", metavar="SWEEP.yaml", help="the sweep file (format: README, sim/sweepfile.py)")
    sweep.add_argument("--out", help="output folder (default reports/sweeps/NAME)")
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, help="local worker processes (default: the machine's cores; 1: "
                                                   "in this process)")
    where.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="run the points on this Dask scheduler "
                                                                     "(its workers need prunesim installed)")
    where.add_argument("--dask-local", type=int, metavar="N", help="run on a Dask LocalCluster of N worker processes")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")
    sweep.set_defaults(run=_cmd_sweep)

    report = commands.add_parser(
        "report", help="comparison report (self-contained HTML + Markdown) of estimate/simulate/prune/sweep results",
        description="Read results folders written by 'prunesim estimate/simulate/sweep --out' or a prune run, and "
                    "write a comparison report into --out: index.html (self-contained: plots embedded, no "
                    "script, no external resource) and report.md with its plots as PNG files beside it. "
                    "Sections: energy per layer by component (DRAM, SRAM, RF, MAC, index), memory traffic per "
                    "level, FLOP and MAC savings, cycles and stall causes (simulate results), Pareto fronts "
                    "(sweep results), the hardware descriptions, the commands and version that produced it.")
    report.add_argument("results", nargs="+", metavar="RESULTS", help="results folders (or a file in one)")
    report.add_argument("--out", required=True, help="output folder, e.g. reports/NAME")
    report.add_argument("--title", default="prunesim comparison report", help="the report's title")
    report.add_argument("--screenshot", metavar="PNG",
                        help="also render index.html in headless Chromium and save a screenshot there")
    report.set_defaults(run=_cmd_report)

    hw = commands.add_parser("hw", help="list or show hardware presets")
    hw_commands = hw.add_subparsers(dest="hw_command", required=True, parser_class=_Parser)
    hw_commands.add_parser("list", help="list the shipped hardware presets")
    show = hw_commands.add_parser("show", help="print a preset (or YAML file) after validation")
    show.add_argument("name")
    hw.set_defaults(run=_cmd_hw)

    listing = commands.add_parser("list", help="list models, profiles and hardware presets")
    listing.set_defaults(run=_cmd_list)
    return parser


def _run(argv: list[str]) -> int:
    """Run one prunesim command in this process; what it writes records it as its command."""
    args = build_parser().parse_args(argv)
    args.command_line = command_line(argv)
    return args.run(args)


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(sys.argv[1:] if argv is None else argv)
    except USER_ERRORS as error:
        print(f"prunesim: error: {error}", file=sys.stderr)
        return 2


def entry() -> None:
    """The console script: :func:`main` for a process of its own. The modules imported by now
    (~165,000 objects, most of them torch's) live as long as the process, so they are frozen out of
    the garbage collector: its full collections, the one at exit included, no longer walk them
    (0.2 s less per command). Not in :func:`main`, which tests call in their own process."""
    gc.freeze()
    sys.exit(main())


if __name__ == "__main__":
    entry()
