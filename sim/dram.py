"""The DRAM channel: one bandwidth shared by every stream, with a latency.

Traffic is counted in bits and priced in bursts (``burst_bytes`` is the width of one DRAM
action, as in :mod:`sim.estimator`); transfers are not padded to whole bursts, which keeps the
traffic of a mapping independent of how its tiles are cut.

Timing of one transfer of ``bits``:

* the channel is busy ``ceil(bits / bits_per_cycle)`` cycles, ``bits_per_cycle =
  bandwidth_gbs · 8e9 / clock_hz`` (25.6 GB/s at 1 GHz: 204.8 bits per cycle);
* a read's data arrive ``latency_cycles = ceil(latency_ns · clock_GHz)`` after the channel has
  sent them (the latency is pipelined: it does not occupy the channel);
* a write is done when the channel has sent it (posted write).

The channel serves transfers one at a time in *program order* (:mod:`sim.engine` fixes it: the
prefetch of tile i+s, the write-back of tile i, ...), each once the event it depends on has
happened. With a fixed order every start time is a max of sums of durations (a max-plus system),
so making any transfer slower never makes a run shorter: no timing anomaly of the kind a
first-come-first-served arbiter can show.

``ideal`` timing (``--ideal-memory``): infinite bandwidth and no latency, every transfer takes
zero cycles; the traffic is still counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterable

from hwmodels.hardware import Accelerator

if TYPE_CHECKING:
    import simpy

__all__ = ["DramChannel", "DramTiming", "Transfer"]


@dataclass(frozen=True)
class DramTiming:
    """Cycle costs of the DRAM of ``hw`` at its clock (or zero costs when ``ideal``)."""

    bits_per_cycle: float
    latency_cycles: int
    burst_bits: int

    @classmethod
    def of(cls, hw: Accelerator, ideal: bool = False) -> "DramTiming":
        burst_bits = hw.dram.burst_bytes * 8
        if ideal:
            return cls(math.inf, 0, burst_bits)
        clock_hz = hw.clock_mhz * 1e6
        return cls(hw.dram.bandwidth_gbs * 8e9 / clock_hz,
                   math.ceil(hw.dram.latency_ns * hw.clock_mhz / 1e3 - 1e-9), burst_bits)

    def busy_cycles(self, bits: int) -> int:
        """Cycles the channel is occupied by ``bits``."""
        return 0 if not bits or math.isinf(self.bits_per_cycle) else math.ceil(bits / self.bits_per_cycle)


@dataclass
class Transfer:
    """One transfer of the program: ``bits`` to move once ``after`` has happened (None: at once);
    ``done`` is triggered when its data are there (read) or sent (write)."""

    bits: int
    read: bool
    after: "simpy.Event | None"
    done: "simpy.Event"


class DramChannel:
    """The channel as a SimPy unit (see the module docstring). ``busy`` counts its busy cycles."""

    def __init__(self, env: "simpy.Environment", timing: DramTiming):
        self.env = env
        self.timing = timing
        self.busy = 0

    def _arrive(self, done: "simpy.Event") -> None:
        latency = self.timing.latency_cycles
        if latency:
            self.env.timeout(latency).callbacks.append(lambda _event: done.succeed())
        else:
            done.succeed()

    def run(self, program: Iterable[Transfer]):
        env = self.env
        for transfer in program:
            if transfer.after is not None and not transfer.after.triggered:
                yield transfer.after
            cycles = self.timing.busy_cycles(transfer.bits)
            if cycles:
                yield env.timeout(cycles)
                self.busy += cycles
            if transfer.read and transfer.bits:
                self._arrive(transfer.done)
            else:
                transfer.done.succeed()
