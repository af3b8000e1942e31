"""One place that turns a ``--device`` flag into a :class:`torch.device`.

Every command resolves its flag once with :func:`resolve_device` and passes the
``torch.device`` down; nothing below a command looks at the text again.
"""

from __future__ import annotations

import torch

from .errors import ConfigError


def resolve_device(text: str | torch.device, flag: str = "--device") -> torch.device:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` -> a device that exists here.

    ``auto`` is CUDA when available, else the CPU. A device this machine lacks (no CUDA build,
    ``cuda:N`` past the device count, no MPS) or an unknown name is a :class:`ConfigError`
    naming ``flag``.
    """
    if isinstance(text, str) and text.strip().lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text.strip() if isinstance(text, str) else text)
    except (RuntimeError, TypeError):
        raise ConfigError(f"unknown device {text!r}; use auto, cpu or cuda (cuda:N)", flag=flag) from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"CUDA is not available on this machine (torch {torch.__version__}); "
                              "use --device cpu or install a CUDA build of torch", flag=flag)
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"{dev} does not exist ({torch.cuda.device_count()} CUDA device(s))", flag=flag)
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ConfigError("MPS is not available on this machine; use --device cpu", flag=flag)
    elif dev.type != "cpu":
        raise ConfigError(f"unsupported device {text!r}; use auto, cpu or cuda", flag=flag)
    return dev
