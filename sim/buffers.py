"""The on-chip SRAM buffers: how their capacity is shared out, how they double-buffer, and what
they are asked to read and write.

* **Allotment.** A buffer that holds several data kinds (weights, inputs, outputs) gives each an
  equal share of its capacity; a buffer that holds one kind gives it all
  (:func:`allotments`, in bits).
* **Double buffering.** A kind's share is split into ``slots`` halves (ping-pong): while the array
  works on the tile in one half, the DRAM channel fills the other with the next tile, or drains
  the previous results from it. With one slot (a buffer that only fits one tile) there is no
  overlap. :class:`PingPong` says which earlier event frees the slot a tile needs.
* **Accesses.** The mapper (:mod:`sim.mapping`) counts bits read and written per data kind;
  :func:`accesses` turns them into reads and writes of each buffer, in accesses of the buffer's
  word (``width_bits``; a fractional count is a partial word, priced pro rata like the energy
  table's width-proportional SRAM energy).

Every bit that arrives from DRAM is written once into its buffer; every bit the array consumes
is read once from it per use; every result is written once and read once more on its way out
(to DRAM or back into the array as a partial sum).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from hwmodels.hardware import Accelerator

if TYPE_CHECKING:
    import simpy

__all__ = ["KINDS", "BufferAccesses", "PingPong", "accesses", "allotments"]

KINDS = ("weights", "inputs", "outputs")


def allotments(hw: Accelerator) -> dict[str, int]:
    """Bits of buffer capacity each data kind may use (an equal share of the buffer holding it)."""
    served = {kind: hw.buffer_for(kind) for kind in KINDS}
    return {kind: buffer.capacity_bytes * 8 // sum(b is buffer for b in served.values())
            for kind, buffer in served.items()}


@dataclass(frozen=True)
class PingPong:
    """Slot bookkeeping of double (``slots=2``) or single (``slots=1``) buffering.

    Tile i's operands go into the slot tile i−slots used, free once the array has finished tile
    i−slots; tile i's results go into the output slot of tile i−slots, free once those results
    have been written to DRAM.
    """

    slots: int

    def fill_after(self, i: int, computed: list["simpy.Event"]) -> "simpy.Event | None":
        """The event after which tile i's operands may be loaded (None: at once)."""
        return computed[i - self.slots] if i >= self.slots else None

    def result_after(self, i: int, written: list["simpy.Event"]) -> "simpy.Event | None":
        """The event after which tile i may write its results (None: at once)."""
        return written[i - self.slots] if i >= self.slots else None


@dataclass(frozen=True)
class BufferAccesses:
    """Reads and writes of one buffer, in bits and in accesses of its word."""

    name: str
    width_bits: int
    read_bits: float
    write_bits: float

    @property
    def reads(self) -> float:
        return self.read_bits / self.width_bits

    @property
    def writes(self) -> float:
        return self.write_bits / self.width_bits


def accesses(hw: Accelerator, read_bits: dict[str, float], write_bits: dict[str, float]) -> list[BufferAccesses]:
    """Per-buffer accesses (in ``hw.buffers`` order) from bits read and written per data kind."""
    out = []
    for buffer in hw.buffers:
        kinds = [kind for kind in KINDS if hw.buffer_for(kind) is buffer]
        out.append(BufferAccesses(buffer.name, buffer.width_bits,
                                  float(sum(read_bits.get(kind, 0) for kind in kinds)),
                                  float(sum(write_bits.get(kind, 0) for kind in kinds))))
    return out
