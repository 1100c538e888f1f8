"""Regenerate the ``sram`` rows of ``hwmodels/data/area45.yaml`` with CACTI (not run by tests).

The rows are CACTI 7.0's total area of a plain scratchpad RAM (``cache type "ram"``, one bank,
no tag) at 45 nm with a 64-bit port, for the capacities and read-write port counts below. CACTI
is the copy shipped in the PyPI package ``hwcomponents-cacti`` 1.0.40 (Accelergy's CACTI
wrapper), run with that package's own ``default_cfg.cfg`` (``itrs-lstp`` cells and periphery,
design objective 0:0:1000000:0:0, i.e. minimise leakage, deviations 20:10:100000:100:100) plus the
lines the package itself appends for a memory, so the figures are what that package returns.

Build CACTI once (no network needed after the download)::

    pip download hwcomponents-cacti==1.0.40 --no-deps --python-version 3.12 --only-binary=:all: -d /tmp/cacti
    cd /tmp/cacti && unzip -q hwcomponents_cacti-1.0.40-py3-none-any.whl
    make -C /tmp/cacti/hwcomponents_cacti/cacti opt

then ``python benchmarks/cacti_sram_area.py /tmp/cacti/hwcomponents_cacti`` prints the YAML rows.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import tempfile
from pathlib import Path

CAPACITIES = (1024, 2048, 8192, 16384, 32768, 65536, 131072, 524288, 1048576, 2097152, 8388608)
PORTS = (1, 2)
WIDTH_BITS = 64
NODE_UM = 0.045


def cacti_area(package: Path, capacity: int, ports: int) -> tuple[float, float]:
    """(total area in mm², CACTI's area efficiency in %) of one RAM."""
    config = (package / "default_cfg.cfg").read_text() + "".join(f"{line}\n" for line in (
        "", f"-size (bytes) {capacity}", f"-read-write port  {ports}", f"-block size (bytes) {WIDTH_BITS // 8}",
        f"-technology (u) {NODE_UM}", f"-output/input bus width  {WIDTH_BITS}", "-UCA bank 1",
        '-cache type "ram"', "-tag size (b) 0", "-associativity 1"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "ram.cfg"
        path.write_text(config)
        subprocess.run(["./cacti", "-infile", str(path)], cwd=package / "cacti", check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        row = list(csv.DictReader(Path(f"{path}.out").read_text().splitlines()))[-1]
    return float(row[" Area (mm2)"]), float(row[" Data arrary area efficiency %"])  # (sic: CACTI's spelling)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package", type=Path, help="the unpacked hwcomponents_cacti folder, CACTI built in it")
    args = parser.parse_args()
    for ports in PORTS:
        for capacity in CAPACITIES:
            area, efficiency = cacti_area(args.package, capacity, ports)
            print(f"  - {{capacity_bytes: {capacity}, ports: {ports}, bits: {WIDTH_BITS}, value: {area:g}, "
                  f"unit: mm2, source: cacti7, where: *cacti_run, note: \"area efficiency {efficiency:g} %\"}}")


if __name__ == "__main__":
    main()
