"""Eastron SDM120-Modbus: single phase, DIN rail, factory default 2400 baud."""

from __future__ import annotations

from ._eastron import single_phase

PROFILE = single_phase("eastron_sdm120", "Eastron SDM120", baudrate=2400)
