"""Eastron SDM230-Modbus: single phase, two modules wide, factory default 2400 baud."""

from __future__ import annotations

from ._eastron import single_phase

PROFILE = single_phase("eastron_sdm230", "Eastron SDM230", baudrate=2400)
