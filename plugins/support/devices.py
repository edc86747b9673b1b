"""Where torch encoders run: ``device: auto`` picks CUDA, then MPS, then the CPU."""

from __future__ import annotations


def select_device(device: str = "auto"):
    """A ``torch.device`` for ``device``: ``auto``, ``cpu``, ``cuda``, ``cuda:1``, ``mps``.

    Asking for an accelerator that is not there is an error, not a silent fallback: a
    comparison run on the wrong device would be slow without saying why.
    """
    import torch

    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    chosen = torch.device(device)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device '{device}' was asked for but torch sees no CUDA device")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device '{device}' was asked for but MPS is not available")
    return chosen


def on_cpu(device: str = "auto") -> bool:
    """Whether ``device`` resolves to the CPU, where a network's weights and activations
    take the worker's own memory rather than an accelerator's."""
    return select_device(device).type == "cpu"
