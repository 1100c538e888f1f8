"""Golden mode of the memory system: the DRAM channel, the double buffers and the array's steps
stepped clock by clock, a second implementation of :mod:`sim.engine`'s timing.

:mod:`sim.engine` lets SimPy order events (a transfer finishes, a step's data are in, a step is
computed); here every cycle is visited and every unit's state is explicit, so the two agree only
if the event model loses nothing between its events. What is shared is what the hardware is
given, not how time passes: the steps of the mapped layer (their compute cycles and the bits each
reads and writes, :class:`sim.mapping.Schedule`), the controller's transfer order and the DRAM's
parameters. The array's step durations are checked on their own by :func:`sim.golden.golden_systolic`
(ideal memory: its PE grid's cycles equal the steps' sum).

The machine, per cycle ``t`` (all units settle before the cycle is counted; a zero-cycle action
completes in the cycle it starts, as in the event model):

* *Controller.* Issues the transfers in the engine's program order: the operand loads of steps
  0 … s−1, then per step i the write-back of its results and the loads of step i+s (s = 1 or 2
  slots). A load into a slot waits until the step that used the slot has been computed.
* *DRAM channel.* One transfer at a time, busy ``ceil(bits / bits_per_cycle)`` cycles; a read's
  data are in ``latency`` cycles after it was sent (pipelined), a write is done when sent.
* *Array.* Starts step i once its weights, inputs and partial sums are in and the output slot of
  step i−s has been written out; busy for the step's cycles. Each cycle it waits counts as a
  stall of the first of weights, inputs, psums, output slot that is not ready; the cycles after
  its last step until the last results are in DRAM count as ``output_drain``.
"""

from __future__ import annotations

from dataclasses import dataclass

from hwmodels.hardware import Accelerator
from sim.dram import DramTiming
from sim.mapping import READ_STREAMS, Schedule, SimulationError

__all__ = ["GOLDEN_MAX_CYCLES", "GoldenEngine", "check_engine", "golden_engine"]

GOLDEN_MAX_CYCLES = 5_000_000
"""Longest run (cycles) the clock-by-clock engine accepts: it visits every cycle in Python."""


@dataclass
class GoldenEngine:
    """Cycles of one layer counted clock by clock (same meaning as :class:`sim.engine.EngineResult`)."""

    cycles: int = 0
    compute_cycles: int = 0
    stalls: dict[str, int] | None = None
    dram_busy_cycles: int = 0


def _transfers(schedule: Schedule) -> list[tuple[float, bool, tuple | None, tuple]]:
    """The controller's program: (bits, is_read, event waited for or None, event it completes).
    Events are ("computed", i), ("written", i) and (stream, i) for a read's arrival."""
    slots, steps = schedule.mapping.slots, schedule.steps

    def loads(i: int) -> list:
        wait = ("computed", i - slots) if i >= slots else None
        return [(float(schedule.reads[stream][i]), True, wait, (stream, i)) for stream in READ_STREAMS]

    program = [transfer for i in range(min(slots, steps)) for transfer in loads(i)]
    for i in range(steps):
        program.append((float(schedule.writes[i]), False, ("computed", i), ("written", i)))
        if i + slots < steps:
            program += loads(i + slots)
    return program


def golden_engine(schedule: Schedule, hw: Accelerator, ideal_memory: bool = False) -> GoldenEngine:
    """Run ``schedule`` on ``hw`` clock by clock (module docstring)."""
    timing = DramTiming.of(hw, ideal_memory)
    program = _transfers(schedule)
    step_cycles = [int(c) for c in schedule.cycles]
    steps, slots = len(step_cycles), schedule.mapping.slots
    if not ideal_memory:
        bound = sum(step_cycles) + sum(timing.busy_cycles(bits) for bits, *_ in program) \
            + timing.latency_cycles * len(program)
        if bound > GOLDEN_MAX_CYCLES:
            raise SimulationError(f"the layer may take up to {bound:,} cycles with its DRAM; golden mode visits "
                                  f"every cycle and takes runs of at most {GOLDEN_MAX_CYCLES:,}")
    happened: dict[tuple, int] = {}  # event → the cycle it happened in
    last_event = 0  # the latest of those cycles

    def ready(event: tuple | None, now: int) -> bool:
        return event is None or happened.get(event, now + 1) <= now

    result = GoldenEngine(stalls={cause: 0 for cause in (*READ_STREAMS, "output_drain")})
    sending, sent_at = 0, None  # the channel: program position, and the cycle the current transfer ends
    step, computed_at = 0, None  # the array: its step, and the cycle that step's compute ends
    array_done = None
    now = 0
    while True:
        settled = False
        while not settled:  # everything that can happen in this cycle
            settled = True
            if sent_at is not None and sent_at == now:
                bits, is_read, _, event = program[sending]
                happened[event] = now + timing.latency_cycles if is_read and bits else now
                last_event = max(last_event, happened[event])
                sending, sent_at, settled = sending + 1, None, False
            if sent_at is None and sending < len(program) and ready(program[sending][2], now):
                busy = timing.busy_cycles(program[sending][0])
                result.dram_busy_cycles += busy
                sent_at, settled = now + busy, False
            if computed_at is not None and computed_at == now:
                happened[("computed", step)] = now
                step, computed_at, settled = step + 1, None, False
            if computed_at is None and step < steps and all(ready((s, step), now) for s in READ_STREAMS) \
                    and ready(("written", step - slots) if step >= slots else None, now):
                computed_at, settled = now + step_cycles[step], False
                result.compute_cycles += step_cycles[step]
        if step == steps and array_done is None:
            array_done = now
        if array_done is not None and sending == len(program) and last_event <= now:
            break
        if computed_at is None and step < steps:  # the array waits this cycle: on what, first
            waiting = [s for s in READ_STREAMS if not ready((s, step), now)] or ["output_drain"]
            result.stalls[waiting[0]] += 1
        now += 1
    result.stalls["output_drain"] += now - array_done
    result.cycles = now
    return result


def check_engine(layer_name: str, schedule: Schedule, hw: Accelerator, engine, ideal_memory: bool) -> GoldenEngine:
    """Run :func:`golden_engine` and require the fast engine's result (:class:`sim.engine.EngineResult`)
    to equal it: cycles, compute cycles, stalls by cause and DRAM busy cycles."""
    golden = golden_engine(schedule, hw, ideal_memory)
    pairs = {"cycles": (engine.cycles, golden.cycles), "compute cycles": (engine.compute_cycles, golden.compute_cycles),
             "DRAM busy cycles": (engine.dram_busy_cycles, golden.dram_busy_cycles),
             **{f"{cause} stall cycles": (engine.stalls[cause], golden.stalls[cause]) for cause in golden.stalls}}
    for name, (fast, slow) in pairs.items():
        if fast != slow:
            raise SimulationError(f"layer '{layer_name}': golden mode disagrees with the fast engine on {name} "
                                  f"(fast {fast}, golden {slow})")
    return golden
