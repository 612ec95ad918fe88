"""A description of the machine a benchmark ran on, for its report."""
from __future__ import annotations

import os
import platform

import numpy as np
import torch


def describe_machine(device: torch.device) -> dict:
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "platform": platform.platform(),
        "load_average": [round(x, 2) for x in os.getloadavg()],  # 1, 5 and 15 min: how shared the machine was
    }


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
