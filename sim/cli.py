"""The ``prunesim`` command line: a thin shell over :mod:`sim.api`.

Bad input ends with one line on stderr naming what is wrong and what would be valid, exit status
2, no traceback, and no output file written.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd
import yaml
from tqdm import tqdm

from hwmodels.energy import UnknownEnergyError
from hwmodels.hardware import HardwareError, available_presets, load_hardware
from pruning.profiles import ProfileError, available_profiles
from pruning.zoo import MODEL_NAMES, UnknownModelError
from sim.api import estimate_network
from sim.report import OutputError, check_writable, comparison_table, render_files, write_files
from sim.workload import WorkloadError

__all__ = ["main"]

USER_ERRORS = (HardwareError, ProfileError, UnknownModelError, UnknownEnergyError, WorkloadError,
               OutputError)
DEMO_MODELS = ("lenet-300-100", "lenet-5", "alexnet", "vgg-16")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("prunesim")
    except PackageNotFoundError:
        return "unknown"


def _print_table(results: pd.DataFrame, title: str) -> None:
    with pd.option_context("display.width", 200, "display.max_columns", 30,
                           "display.float_format", lambda v: f"{v:,.3g}" if abs(v) < 1e3 else f"{v:,.0f}"):
        print(f"\n{title}")
        print(comparison_table(results).to_string(index=False))


def _estimate_one(model: str, profile: str | None, profile_file: str | None, hw: str, seed: int,
                  command: str) -> tuple[pd.DataFrame, dict[str, str | bytes], str]:
    results = estimate_network(model, profile=profile, hw=hw, seed=seed, profile_file=profile_file)
    hardware = results["hardware"].iat[0]
    title = f"{model} · {profile or profile_file or 'dense'} · {hardware}"
    meta = {"model": model, "profile": profile or profile_file or "none", "hardware": hardware,
            "seed": seed, "prunesim": _version(), "command": command}
    return results, render_files(results, meta, title), title


def _cmd_estimate(args: argparse.Namespace) -> int:
    out = args.out or Path("reports") / f"{args.model}-{args.profile or 'dense'}-{Path(args.hw).stem}"
    check_writable(out)
    results, files, title = _estimate_one(args.model, args.profile, args.profile_file, args.hw,
                                          args.seed, " ".join(["prunesim", *sys.argv[1:]]))
    _print_table(results, title)
    for path in write_files(out, files):
        print(f"wrote {path}")
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    """The main job: the four networks under Han's profile on han45nm."""
    out = Path(args.out)
    check_writable(out)
    summaries, outputs = [], {}
    bar = tqdm(DEMO_MODELS, desc="demo", unit="network", file=sys.stderr)
    for model in bar:
        bar.set_postfix_str(model)
        results, files, title = _estimate_one(model, "han2015", None, args.hw, args.seed,
                                              f"prunesim demo --out {out}")
        outputs[model] = files
        _print_table(results, title)
        summaries.append(comparison_table(results).assign(model=model).query("layer == 'total'"))
    summary = pd.concat(summaries, ignore_index=True).drop(columns=["layer"])
    summary = summary[["model", *[c for c in summary.columns if c != "model"]]]
    from sim.report import to_markdown

    for model, files in outputs.items():
        write_files(out / model, files)
    write_files(out, {
        "summary.csv": summary.to_csv(index=False),
        "summary.md": "# prunesim demo: Han 2015 profiles on " + args.hw + "\n\n" + to_markdown(summary)
        + "\n" + "\n".join(f"- [{m}]({m}/report.md)" for m in outputs) + "\n",
    })
    print(f"\nwrote {out}/summary.md and one folder per network")
    return 0


def _cmd_hw(args: argparse.Namespace) -> int:
    if args.hw_command == "list":
        for name in available_presets():
            print(f"{name:24s} {load_hardware(name).description}")
    else:
        import dataclasses

        print(yaml.safe_dump(dataclasses.asdict(load_hardware(args.name)), sort_keys=False), end="")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    print("models:   " + ", ".join(MODEL_NAMES))
    print("profiles: " + ", ".join(available_profiles()))
    print("hardware: " + ", ".join(available_presets()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="prunesim", description="What does pruning actually save on real hardware? "
                     "Prune networks, run them on accelerator models, price the actions at 45 nm.")
    parser.add_argument("--version", action="version", version=f"prunesim {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    estimate = commands.add_parser(
        "estimate", help="analytical per-layer estimate: MACs, FLOP%%, memory traffic, energy",
        description="Estimate a zoo network, dense and pruned by a density profile, on a hardware "
                    "description. Prints a per-layer table and writes results.csv, results.json, "
                    "report.md and energy.png.")
    estimate.add_argument("--model", required=True, help=f"zoo network: {', '.join(MODEL_NAMES)}")
    source = estimate.add_mutually_exclusive_group()
    source.add_argument("--profile", help=f"density profile: {', '.join(available_profiles())}")
    source.add_argument("--profile-file", help="your own density profile (YAML, same schema)")
    estimate.add_argument("--hw", default="han45nm", help="hardware preset name or YAML file (default han45nm)")
    estimate.add_argument("--out", help="output folder (default reports/MODEL-PROFILE-HW)")
    estimate.add_argument("--seed", type=int, default=0, help="seed of weights and samples (default 0)")
    estimate.set_defaults(run=_cmd_estimate)

    demo = commands.add_parser("demo", help="the main job: four networks, Han's profile, han45nm",
                               description="LeNet-300-100, LeNet-5, AlexNet and VGG-16 under Han 2015's "
                                           "per-layer densities, estimated on han45nm.")
    demo.add_argument("--out", default="reports/demo", help="output folder (default reports/demo)")
    demo.add_argument("--hw", default="han45nm", help="hardware preset or YAML file (default han45nm)")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_cmd_demo)

    hw = commands.add_parser("hw", help="list or show hardware presets")
    hw_commands = hw.add_subparsers(dest="hw_command", required=True, parser_class=_Parser)
    hw_commands.add_parser("list", help="list the shipped hardware presets")
    show = hw_commands.add_parser("show", help="print a preset (or YAML file) after validation")
    show.add_argument("name")
    hw.set_defaults(run=_cmd_hw)

    listing = commands.add_parser("list", help="list models, profiles and hardware presets")
    listing.set_defaults(run=_cmd_list)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except USER_ERRORS as error:
        print(f"prunesim: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
