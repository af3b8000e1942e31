"""Loading weights and checkpoints without running code from the file.

A ``.pt`` / ``.pth`` / ``.pkl`` file is a pickle, and unpickling an arbitrary pickle runs
whatever the file asks for (``__reduce__`` can call ``os.system``). Every file the toolkit
reads as weights or checkpoint goes through :func:`torch_load`, which unpickles with
``torch.load(weights_only=True)``: only tensors, containers, numbers, strings and the few
harmless globals in :data:`SAFE_GLOBALS` (NumPy arrays, scalars and dtypes; ``argparse.Namespace``,
which old face checkpoints carry as their training arguments) are rebuilt; anything else is
refused with a one-line :class:`~fercore.errors.DataError` naming the file and the global.

A plain (non-torch) pickle, like EAC's VGGFace2 ``resnet50_ft_weight.pkl`` (a dict of NumPy
arrays), is read by :func:`torch_load` through a restricted unpickler with the same allow-list.

Converting a file that needs more (a whole pickled ``nn.Module``, custom classes) is a
separate, explicit step: :func:`convert_untrusted` (``fer-bench weights convert SRC DST
--trust-code``) unpickles it *with* code execution -- only for a file whose origin you trust --
and writes its tensors as a plain state dict that the safe loader reads. See docs/security.md.
"""

from __future__ import annotations

import argparse
import collections
import io
import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .errors import DataError

#: Flag/command that converts a trusted legacy pickle (named in every refusal).
CONVERT_HINT = "fer-bench weights convert SRC DST --trust-code"


def _numpy_globals() -> dict[str, Any]:
    try:
        from numpy._core import multiarray  # NumPy 2
    except ImportError:  # pragma: no cover - NumPy 1.x
        from numpy.core import multiarray

    reconstruct, scalar = multiarray._reconstruct, multiarray.scalar
    return {
        "numpy._core.multiarray._reconstruct": reconstruct,
        "numpy.core.multiarray._reconstruct": reconstruct,  # pickles written with NumPy 1.x
        "numpy._core.multiarray.scalar": scalar,
        "numpy.core.multiarray.scalar": scalar,
        "numpy.ndarray": np.ndarray,
        "numpy.dtype": np.dtype,
    }


def safe_globals() -> dict[str, Any]:
    """``{"module.name": object}``: every global a weights file may reference (nothing that
    can run code: array and scalar constructors, dtypes, an argparse namespace, OrderedDict)."""
    out = _numpy_globals()
    out.update({
        "argparse.Namespace": argparse.Namespace,
        "collections.OrderedDict": collections.OrderedDict,
    })
    dtypes = getattr(np, "dtypes", None)
    for name in dir(dtypes) if dtypes is not None else ():  # dtype classes (Float32DType ...) some pickles name
        obj = getattr(dtypes, name)
        if isinstance(obj, type) and issubclass(obj, np.dtype):
            out[f"numpy.dtypes.{name}"] = obj
    return out


SAFE_GLOBALS = tuple(sorted(safe_globals()))
_registered = False


def _register() -> None:
    global _registered
    if _registered:
        return
    import torch

    add = getattr(torch.serialization, "add_safe_globals", None)
    if add is not None:  # torch >= 2.4; older torch keeps its built-in allow-list
        try:
            add([(obj, name) for name, obj in safe_globals().items()])
        except (TypeError, ValueError):  # pragma: no cover - torch < 2.6 takes objects, not (obj, name)
            add(list({id(o): o for o in safe_globals().values()}.values()))
    _registered = True


class _RestrictedUnpickler(pickle.Unpickler):
    """A pickle reader that rebuilds only :data:`SAFE_GLOBALS` (plain pickles of arrays)."""

    _allowed = safe_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[f"{module}.{name}"]
        except KeyError:
            raise pickle.UnpicklingError(f"Unsupported global: GLOBAL {module}.{name}") from None

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids (a legacy torch file) are not supported")


def _refusal(exc: BaseException) -> str | None:
    """The global a refused pickle asked for, from torch's or our own message."""
    m = re.search(r"(?:Unsupported global|GLOBAL)[: ]+(?:GLOBAL )?([\w.]+)", str(exc))
    return m.group(1) if m else None


def torch_load(path: str | Path, *, what: str = "weights file", map_location: Any = "cpu") -> Any:
    """Read a torch checkpoint or a plain pickle of arrays without running code from it.

    Raises :class:`DataError` naming ``path`` for a missing, unreadable or refused file (a
    refused one names the global it needed and how to convert a trusted file).
    """
    import torch

    _register()
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{what} not found", path)
    try:
        with warnings.catch_warnings():  # torch warns about plain pickles before refusing them
            warnings.simplefilter("ignore")
            return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 -- any failure becomes one message below
        first = exc
    if not _is_zip(path):
        try:
            with open(path, "rb") as fh:
                return _RestrictedUnpickler(fh, encoding="latin1").load()
        except Exception as exc:  # noqa: BLE001
            if _refusal(exc) or not _refusal(first):  # a plain pickle: its own reader's error says more
                first = exc
    bad = _refusal(first)
    if bad is not None:
        raise DataError(f"{what} holds a Python object ({bad}) that loading would have to run code to "
                        f"rebuild; refused. If you trust where the file comes from, convert it once with "
                        f"`{CONVERT_HINT}` (docs/security.md)", path) from None
    m = re.search(r"WeightsUnpickler error: ([^\n]+)", str(first))
    if m is not None:  # refused by torch's safe unpickler for another reason than a global
        raise DataError(f"{what} holds data the safe loader does not rebuild ({m.group(1).strip()}); refused. "
                        f"If you trust where the file comes from, convert it once with `{CONVERT_HINT}` "
                        "(docs/security.md)", path) from None
    msg = re.sub(r"\x1b\[[0-9;]*m", "", str(first)).strip().splitlines()
    raise DataError(f"cannot read {what} ({type(first).__name__}: {msg[0] if msg else ''}); expected a torch "
                    "checkpoint or a pickled dict of arrays", path) from None


def _is_zip(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def convert_untrusted(src: str | Path, dst: str | Path, *, trust_code: bool = False) -> dict[str, Any]:
    """Unpickle ``src`` WITH code execution and write its tensors to ``dst`` as a plain state dict.

    This is the only place the toolkit unpickles without restrictions, and it refuses unless
    ``trust_code`` is true: loading ``src`` runs any code the file contains, with your
    permissions. The output holds only tensors (``{"state_dict": {name: tensor}}``), so it is
    safe to share and loads with :func:`torch_load`. Returns ``{"tensors": n, "dst": ...}``.
    """
    import torch

    from .atomic import atomic_write_bytes
    from .errors import ConfigError

    if not trust_code:
        raise ConfigError("converting runs any code inside the file; pass --trust-code only for a file "
                          "whose origin you trust", flag="--trust-code")
    src, dst = Path(src).expanduser(), Path(dst).expanduser()
    if not src.is_file():
        raise DataError("weights file not found", src)
    try:
        obj = torch.load(src, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 -- a plain pickle
        try:
            with open(src, "rb") as fh:
                obj = pickle.load(fh, encoding="latin1")
        except Exception as exc:  # noqa: BLE001
            raise DataError(f"cannot read weights ({type(exc).__name__}: {exc})", src) from None
    state = tensor_state(obj, src)
    buf = io.BytesIO()
    torch.save({"state_dict": state}, buf)
    atomic_write_bytes(dst, buf.getvalue())
    return {"tensors": len(state), "dst": str(dst)}


#: Keys under which checkpoints nest their state dict.
NESTING_KEYS = ("state_dict", "model_state_dict", "model", "net", "params", "module")


def tensor_state(obj: Any, path: str | Path) -> dict[str, Any]:
    """The flat ``{name: tensor}`` inside a loaded checkpoint object (nested state dicts,
    an ``nn.Module``, NumPy arrays); :class:`DataError` naming ``path`` when it holds none."""
    import torch
    from torch import nn

    def is_tensor_dict(o: Mapping) -> bool:
        return any(isinstance(v, (torch.Tensor, np.ndarray)) for v in o.values())

    for _ in range(3):
        if isinstance(obj, Mapping):
            nested = next((obj[k] for k in NESTING_KEYS if isinstance(obj.get(k), Mapping)), None)
            if nested is not None and not is_tensor_dict(obj):
                obj = nested
                continue
        break
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping):
        raise DataError(f"file holds a {type(obj).__name__}, not a state dict", path)
    state = {}
    for k, v in obj.items():
        if isinstance(v, np.ndarray):
            v = torch.from_numpy(np.ascontiguousarray(v))
        if isinstance(v, torch.Tensor):
            state[str(k)] = v
    if not state:
        raise DataError("file holds no tensors", path)
    return state
