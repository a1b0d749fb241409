"""Faults the simulator injects on command, per unit, to exercise the client's error paths."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class Fault:
    """How one unit misbehaves right now; the default is a healthy unit."""

    #: Never answer (a dead meter, a cut A/B pair, a wrong unit id).
    silent: bool = False
    #: Seconds to wait before answering (a slow meter; longer than the client timeout = late).
    delay: float = 0.0
    #: Answer every request with this Modbus exception code.
    exception: int | None = None
    #: Answer with a damaged frame (bad CRC on RTU, broken header on TCP).
    corrupt: bool = False
    #: Accept relay writes but leave the relay where it is (a welded contact).
    relay_stuck: bool = False
    #: Carry out writes but never answer them (the acknowledgement is lost on the line).
    mute_writes: bool = False

    @property
    def healthy(self) -> bool:
        """Whether nothing is injected."""
        return self == Fault()
