"""What a run ran on, recorded in its store so that its report can say (times mean little without)."""

from __future__ import annotations

import os
import platform

import torch


def machine(device: str = "cpu") -> dict[str, str | int]:
    """The processor (or GPU), the cores this process may use, torch's threads and versions."""
    out: dict[str, str | int] = {"cpu": _cpu_name(), "cores": len(os.sched_getaffinity(0)) if hasattr(
        os, "sched_getaffinity") else (os.cpu_count() or 1), "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__, "python": platform.python_version(), "device": device}
    if device.startswith("cuda") and torch.cuda.is_available():
        out["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return out


def describe(info: dict) -> str:
    """One line: 'Intel Xeon ... · 2 cores · torch 2.13.0 (2 threads)'."""
    if not info:
        return "not recorded (a run older than this field)"
    where = info.get("gpu") or info.get("cpu") or "unknown processor"
    return (f"{where} · {info.get('cores', '?')} cores · torch {info.get('torch', '?')} "
            f"({info.get('torch_threads', '?')} threads) · {info.get('device', 'cpu')}")


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()
