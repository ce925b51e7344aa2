"""GPU memory as the worker sees it: is an error an out-of-memory, free the cache, what it holds now (the
beacon's), the peak to log.

Its own module so that the worker and the batch runner (inference/batch_runner.py) both import it and
neither imports the other. torch is imported on use: the worker's module loads before the models.
"""

from __future__ import annotations

from typing import Any


def is_oom(error: BaseException) -> bool:
    import torch

    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


def free_cuda_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def held(models: Any) -> tuple[int | None, int | None]:
    """(allocated, reserved) bytes on the models' CUDA device; (None, None) on CPU."""
    device = getattr(models, "device", None)
    if device is None or getattr(device, "type", None) != "cuda":
        return None, None
    import torch

    return torch.cuda.memory_allocated(device), torch.cuda.memory_reserved(device)


def memory_now() -> str:
    """Where the GPU memory stands now and its peak so far, as a clause of a log line (the warm-up's, per
    shape bucket: which shapes raise the peak)."""
    import torch

    gib = 2**30
    return (
        f" (GPU memory {torch.cuda.memory_allocated() / gib:.2f} GiB allocated, "
        f"{torch.cuda.memory_reserved() / gib:.2f} reserved, peak {torch.cuda.max_memory_reserved() / gib:.2f})"
    )


def peak_memory() -> str:
    """The GPU memory this worker peaked at, as a clause of its last log line (the benchmark reads it)."""
    import torch

    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return ""
    gib = 2**30
    return (
        f"; peak GPU memory {torch.cuda.max_memory_allocated() / gib:.2f} GiB allocated, "
        f"{torch.cuda.max_memory_reserved() / gib:.2f} GiB reserved"
    )
