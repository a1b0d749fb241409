"""Eastron SDM230-Modbus: single phase, two modules wide, factory default 2400 baud."""

from __future__ import annotations

from ._eastron import EastronSinglePhase, eastron_profile


class EastronSdm230(EastronSinglePhase):
    """SDM230-Modbus input registers (the single-phase SDM layout)."""


PROFILE = eastron_profile("eastron_sdm230", "Eastron SDM230", EastronSdm230, baudrate=2400)
