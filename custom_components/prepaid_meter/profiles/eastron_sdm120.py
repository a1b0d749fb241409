"""Eastron SDM120-Modbus: single phase, DIN rail, factory default 2400 baud."""

from __future__ import annotations

from ._eastron import EastronSinglePhase, eastron_profile


class EastronSdm120(EastronSinglePhase):
    """SDM120-Modbus input registers (the single-phase SDM layout)."""


PROFILE = eastron_profile("eastron_sdm120", "Eastron SDM120", EastronSdm120, baudrate=2400)
