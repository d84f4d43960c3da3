"""What a speed benchmark records about the machine it ran on, beside its figures."""

from __future__ import annotations

import os
import platform
import time

import torch


def machine() -> dict[str, object]:
    """torch version, CPU, visible cores, the load average when the run ended (figures taken while other jobs
    shared the cores are not comparable), and the time."""
    return {
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpus_visible": os.cpu_count(),
        "load_average_at_end": os.getloadavg()[0],
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
