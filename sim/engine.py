"""The cycle-level engine: the DRAM channel, the buffers and the array of one layer as concurrent
SimPy units, ordered step by step (a step is a DRAM tile of :mod:`sim.mapping`).

Units and their contracts:

* :class:`sim.dram.DramChannel`: one channel, one bandwidth for every stream (weights, inputs and
  partial sums in; outputs and spilled partial sums out), serving transfers in program order.
* :class:`sim.buffers.PingPong`: double (or single) buffering: step i's operands are loaded into
  the slot freed when the array finishes step i−slots; its results go to the output slot freed
  when step i−slots's results have reached DRAM.
* :class:`sim.systolic.ArrayUnit`: computes the steps in order, each taking the cycles the mapper
  computed for it, once its operands are in and an output slot is free.

Program order of the channel: the reads of steps 0 … slots−1, then for every step i the write
of step i's results followed by the reads of step i+slots. So a tile's transfer overlaps the
previous tile's compute, and the whole run is a max-plus system (see :mod:`sim.dram`): a slower
DRAM never shortens it.

Stalls are the array's idle cycles, by cause: ``weights``, ``inputs``, ``psums`` (waiting for
that stream's data), ``output_drain`` (waiting for a free output slot, and the tail after the
last step until its results are in DRAM). Invariant: ``cycles = compute_cycles + Σ stalls``.
With ``ideal_memory`` every transfer takes zero cycles, so ``cycles = compute_cycles``.

SimPy sees steps and transfers only, never MACs or cycles: a layer costs O(steps) events.
"""

from __future__ import annotations

from dataclasses import dataclass

import simpy

from hwmodels.hardware import Accelerator
from sim.buffers import PingPong
from sim.dram import DramChannel, DramTiming, Transfer
from sim.mapping import READ_STREAMS, Schedule
from sim.systolic import ArrayUnit

__all__ = ["STALL_CAUSES", "EngineResult", "run_schedule"]

STALL_CAUSES = (*READ_STREAMS, "output_drain")


@dataclass(frozen=True)
class EngineResult:
    """Cycles of one layer: total, computing, and stalled by cause (all :data:`STALL_CAUSES`)."""

    cycles: int
    compute_cycles: int
    stalls: dict[str, int]
    dram_busy_cycles: int

    @property
    def stall_cycles(self) -> int:
        return sum(self.stalls.values())


def run_schedule(schedule: Schedule, hw: Accelerator, ideal_memory: bool = False) -> EngineResult:
    """Simulate ``schedule`` on ``hw`` (see the module docstring)."""
    env = simpy.Environment()
    steps = schedule.steps
    buffering = PingPong(schedule.mapping.slots)
    arrived = {stream: [env.event() for _ in range(steps)] for stream in READ_STREAMS}
    computed = [env.event() for _ in range(steps)]
    written = [env.event() for _ in range(steps)]
    reads = {stream: bits.tolist() for stream, bits in schedule.reads.items()}
    writes = schedule.writes.tolist()

    def loads(i: int):
        after = buffering.fill_after(i, computed)
        for stream in READ_STREAMS:
            yield Transfer(reads[stream][i], True, after, arrived[stream][i])

    def program():
        for i in range(min(buffering.slots, steps)):
            yield from loads(i)
        for i in range(steps):
            yield Transfer(writes[i], False, computed[i], written[i])
            if i + buffering.slots < steps:
                yield from loads(i + buffering.slots)

    def ready(i: int):
        for stream in READ_STREAMS:
            yield stream, arrived[stream][i]
        slot = buffering.result_after(i, written)
        if slot is not None:
            yield "output_drain", slot

    dram = DramChannel(env, DramTiming.of(hw, ideal_memory))
    array = ArrayUnit(env, schedule.cycles)
    env.process(dram.run(program()))
    finished = env.process(array.run(ready, computed))
    env.run(until=finished)
    array_done = env.now
    env.run()  # the last results still on their way to DRAM
    stalls = {cause: int(array.stalls.get(cause, 0)) for cause in STALL_CAUSES}
    stalls["output_drain"] += int(env.now - array_done)
    return EngineResult(int(env.now), int(array.busy), stalls, int(dram.busy))
