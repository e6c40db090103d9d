"""Which arithmetic a policy trains and samples in: ``model.precision``.

``bf16-mixed`` keeps fp32 master weights and fp32 optimizer state (so checkpoints, resume and the
optimizer are exactly as in fp32) and runs every forward and backward on a bf16 working copy,
refreshed from the masters after each step; our decoder samples from a bf16 copy with a bf16 KV
cache; log-probabilities always come from an fp32 log-softmax. ``auto`` picks it where the device
computes bf16 natively and it pays: a CPU with AMX or avx512_bf16 (measured on SmolLM2-135M: a
training step 2.0x, decoding 2.6x faster than fp32, LOG.md), a CUDA device with bf16. Our own
small transformer stays fp32 under ``auto``: its matrices are too small for bf16 to pay on a CPU
(bench/train.py: 90 ms a step in fp32, 260 ms in bf16).
"""

from __future__ import annotations

from pathlib import Path

CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (empty where the system does not say)."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def native_bf16(device: str) -> tuple[bool, str]:
    """Whether ``device`` computes bf16 natively, and what says so."""
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return True, f"{torch.cuda.get_device_name(torch.device(device))} computes bf16 natively"
        return False, "this CUDA device has no native bf16"
    if device != "cpu":
        return False, f"device {device!r}: bf16 is not known to pay there"
    found = [f for f in CPU_BF16_FLAGS if f in cpu_flags()]
    if found:
        return True, f"this CPU computes bf16 natively: {', '.join(found)}"
    return False, f"this CPU has no native bf16: none of {', '.join(CPU_BF16_FLAGS)}"


def resolve(precision: str, device: str, model_type: str, dtype: str = "float32") -> tuple[str, str]:
    """(``fp32`` | ``bf16-mixed`` | ``bf16``, why) for a policy's ``model.precision``."""
    if dtype == "bfloat16":
        return "bf16", "model.dtype = 'bfloat16': weights, gradients and optimizer state all in bf16"
    if precision != "auto":
        return precision, f"model.precision = '{precision}'"
    if model_type != "hf":
        return "fp32", "our small transformer trains faster in fp32, bench/train.py"
    native, why = native_bf16(device)
    return ("bf16-mixed", why) if native else ("fp32", why)
