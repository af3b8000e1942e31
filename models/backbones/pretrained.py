"""Load a user's pretrained weights (MS-Celeb-1M, ImageNet, VGGFace2) into a backbone.

Face-pretrained weights are not downloadable (they live on the authors' private drives), so the
toolkit never fetches anything: a method's ``pretrained=PATH`` setting names a local file and
:func:`load_pretrained` reads it, whatever common layout it has, and reports what it loaded.

Understood layouts:

- a plain ``state_dict`` or one nested under ``state_dict`` / ``model_state_dict`` / ``model`` /
  ``net`` / ``params`` (MS-Celeb ResNet-18 ``resnet18_msceleb.pth`` = ``{"state_dict": ...}``,
  MA-Net / SCN ``*.pth.tar``, POSTER++ ``ir50.pth``);
- ``module.`` prefixes from ``nn.DataParallel``;
- a wrapper prefix (``features.``, ``backbone.``, ``base.``, ``model.``, ``encoder.``) and the
  ``nn.Sequential(*resnet.children())`` numbering (``features.0`` = ``conv1``, ``features.4`` =
  ``layer1`` ...) of the FER repositories that save a trimmed torchvision ResNet;
- a pickled dict of NumPy arrays (EAC's VGGFace2 ``resnet50_ft_weight.pkl``), read by a restricted
  unpickler: no code in a weights file ever runs (:mod:`fercore.safeload`);
- a backbone-specific renaming through the module's ``adapt_state_dict(state)`` (IR-50 from
  POSTER++'s ``new_ir50.pth``).

Tensors load when name *and* shape match. Everything else is reported: missing (the backbone
has it, the file does not: these stay at their initial values), unexpected (in the file only,
e.g. the 12,666-way MS-Celeb classifier ``fc.*``), and shape mismatches. A file that is missing,
unreadable, or shares no tensor with the backbone raises :class:`~fercore.errors.DataError`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from torch import Tensor, nn

from fercore.errors import DataError
from fercore.safeload import tensor_state, torch_load

WRAPPER_PREFIXES = ("module.", "features.", "feature.", "backbone.", "base.", "model.", "encoder.", "net.")
#: ``nn.Sequential(*torchvision_resnet.children())`` index -> attribute name.
RESNET_CHILDREN = {"0": "conv1", "1": "bn1", "4": "layer1", "5": "layer2", "6": "layer3", "7": "layer4"}


@dataclass
class LoadReport:
    """What :func:`load_pretrained` did."""

    path: str
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = field(default_factory=list)
    rename: str = "as is"

    @property
    def total(self) -> int:
        return len(self.loaded) + len(self.missing) + len(self.mismatched)

    def summary(self, limit: int = 8) -> str:
        def few(keys):
            keys = list(keys)
            more = f" ... (+{len(keys) - limit})" if len(keys) > limit else ""
            return ", ".join(keys[:limit]) + more

        lines = [f"pretrained {self.path}: loaded {len(self.loaded)}/{self.total} tensors (keys {self.rename})"]
        if self.missing:
            lines.append(f"  missing (kept at initial values) {len(self.missing)}: {few(self.missing)}")
        if self.mismatched:
            lines.append(f"  shape mismatch (skipped) {len(self.mismatched)}: "
                         + few(f"{k} {tuple(a)} vs {tuple(b)}" for k, a, b in self.mismatched))
        if self.unexpected:
            lines.append(f"  unused from the file {len(self.unexpected)}: {few(self.unexpected)}")
        return "\n".join(lines)


def read_state_dict(path: str | Path) -> dict[str, Tensor]:
    """The flat ``{name: tensor}`` in a checkpoint file (see the module docstring for layouts).

    Read with :func:`fercore.safeload.torch_load`: nothing in the file is executed; a file that
    needs more than tensors, arrays and plain containers is refused (docs/security.md).
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError("pretrained weights not found (pass an existing file to pretrained=PATH, "
                        "or leave it unset to train from scratch)", path)
    obj = torch_load(path, what="pretrained weights")
    return tensor_state(obj, path)


def _candidates(state: dict[str, Tensor]):
    """Renamings to try, as (description, renamed state)."""
    yield "as is", state
    stripped = dict(state)
    for p in WRAPPER_PREFIXES:
        if stripped and all(k.startswith(p) for k in stripped):
            stripped = {k[len(p):]: v for k, v in stripped.items()}
    yield "without wrapper prefixes", stripped
    # strip a wrapper prefix only where present (mixed files: 'module.features.x' + 'module.fc')
    partial = {}
    for k, v in state.items():
        while True:
            p = next((p for p in WRAPPER_PREFIXES if k.startswith(p)), None)
            if p is None:
                break
            k = k[len(p):]
        partial[k] = v
    yield "without wrapper prefixes (partial)", partial
    seq = {}
    for k, v in partial.items():
        m = re.match(r"^(\d+)\.(.*)$", k)
        seq[f"{RESNET_CHILDREN.get(m.group(1), m.group(1))}.{m.group(2)}" if m else k] = v
    yield "from nn.Sequential(resnet.children()) numbering", seq


def load_pretrained(module: nn.Module, path: str | Path, *, verbose: bool = True) -> LoadReport:
    """Load the tensors of ``path`` that fit ``module``; returns (and prints) a :class:`LoadReport`.

    Raises :class:`~fercore.errors.DataError` for a missing or unreadable file, or one that shares
    no tensor (by name and shape) with ``module``.
    """
    state = read_state_dict(path)
    target = module.state_dict()
    adapt = getattr(module, "adapt_state_dict", None)
    best = None
    for how, cand in _candidates(state):
        if adapt is not None:
            cand = adapt(cand)
        score = sum(1 for k, v in cand.items() if k in target and tuple(target[k].shape) == tuple(v.shape))
        if best is None or score > best[0]:
            best = (score, how, cand)
    score, how, cand = best
    if score == 0:
        raise DataError(f"no tensor in the file matches the backbone {type(module).__name__} by name and shape "
                        f"(file keys like {', '.join(list(state)[:3])}; backbone keys like "
                        f"{', '.join(list(target)[:3])}): is it weights for this backbone?", path)
    report = LoadReport(str(path), rename=how)
    merged = dict(target)
    for k, v in cand.items():
        if k not in target:
            report.unexpected.append(k)
        elif tuple(target[k].shape) != tuple(v.shape):
            report.mismatched.append((k, tuple(v.shape), tuple(target[k].shape)))
        else:
            merged[k] = v.to(dtype=target[k].dtype)
            report.loaded.append(k)
    report.missing = [k for k in target if k not in cand and not k.endswith("num_batches_tracked")]
    module.load_state_dict(merged, strict=True)
    if verbose:
        from fercore.progress import console

        console.print(report.summary())
    return report
