"""Frozen CLIP text and image encoders from open_clip (LRDif's ``E_L`` and ``E_I``).

* **Model and weights are settings.** ``model`` is an open_clip architecture name
  (``"ViT-B-32"``) or ``"tiny"`` (a 2-layer, 64-wide, 64-px CLIP that builds offline in
  ~0.1 s, for tests and the ``tiny`` preset). ``pretrained`` is an open_clip tag
  (``"openai"``, downloaded once by open_clip into its hub cache), a local weights file, or
  ``None`` for random weights. Random weights are drawn under ``init_seed`` in a forked
  generator, so they are the same in every process; that is why CLIP's weights are never part
  of a model's state dict (checkpoints stay small; a checkpoint rebuilds the same encoder).
* **Label prompts** come from ``template`` (default ``"a photo of a {} face."``) filled with
  an adjective for each canonical class (``happiness`` -> ``"happy"``, see
  :data:`EXPRESSION_WORDS`); other names are used as they are.
* **Class text embeddings** are computed once, when the encoder is built, and kept as a buffer.
  By default they are *centred* over the classes (``center_text=True``) before the L2
  normalisation: prompts that differ in one word are nearly parallel in CLIP space (cosine
  0.83-0.99 with the tiny CLIP), so the label signal is a small difference on a large shared
  direction; removing the class mean leaves only the class-specific part. It is a fixed
  affine map of the paper's ``E_L(y)`` (FPEN's first layer could learn it) that makes
  stage 1 learn much faster (the tiny preset's oracle reaches 94% in 4 epochs instead of 45%).
* **Free text** (LLDif's captions): :meth:`FrozenCLIP.encode_texts` encodes each new string on
  its own (batch-independent) and caches it in memory; these are never centred.
* **Image embeddings** are cached per record id (:class:`ImageEmbeddingCache`). The rule that
  keeps the cache valid: an entry also stores a fingerprint (BLAKE2b of the exact input
  tensor), and it is used only when the new input has the same fingerprint -- un-augmented
  inputs (evaluation, training with ``augment=()``) hit after the first epoch, augmented ones
  miss and are recomputed (the entry then holds the latest view). Batches without ``"id"``
  are never cached. With ``cache_dir`` the cache is also kept on disk (one file per CLIP
  identity, written atomically by :meth:`FrozenCLIP.save_cache`).

Embeddings are L2-normalised by default (CLIP's cosine space; ``normalize=False`` keeps raw).
"""

from __future__ import annotations

import hashlib
import io
import json
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fercore.atomic import atomic_write_bytes
from fercore.errors import ConfigError

#: The offline test-size CLIP (open_clip ``CLIP`` kwargs).
TINY_CLIP_CFG = {
    "embed_dim": 32,
    "vision_cfg": {"image_size": 64, "layers": 2, "width": 64, "patch_size": 16, "head_width": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}
DEFAULT_TEMPLATE = "a photo of a {} face."
#: Canonical class name -> the word put into the prompt.
EXPRESSION_WORDS = {"surprise": "surprised", "fear": "fearful", "disgust": "disgusted", "happiness": "happy",
                    "sadness": "sad", "anger": "angry", "neutral": "neutral", "contempt": "contemptuous"}
_OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
_OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def class_prompts(class_names: Sequence[str], template: str = DEFAULT_TEMPLATE) -> list[str]:
    """One prompt per class: ``template.format(word)``."""
    if "{}" not in template:
        raise ConfigError(f"the template needs a '{{}}' where the class goes, got {template!r}",
                          flag="clip_template")
    return [template.format(EXPRESSION_WORDS.get(n.lower(), n)) for n in class_names]


def image_fingerprint(image: Tensor) -> bytes:
    """16-byte BLAKE2b digest of one input tensor's shape and exact float32 values."""
    arr = image.detach().to("cpu", torch.float32).contiguous().numpy()
    h = hashlib.blake2b(digest_size=16)
    h.update(str(arr.shape).encode())
    h.update(arr.tobytes())
    return h.digest()


def _is_path(pretrained: str) -> bool:
    return any(s in pretrained for s in ("/", "\\")) or pretrained.endswith((".pt", ".pth", ".bin", ".safetensors"))


def build_clip(model: str, pretrained: str | None, init_seed: int = 0):
    """``(open_clip model, tokenizer)`` for a name and weights source (see the module doc)."""
    from fercore.compat import import_open_clip

    oc = import_open_clip()
    if pretrained is not None and _is_path(pretrained):
        p = Path(pretrained).expanduser()
        if not p.is_file():
            raise ConfigError(f"CLIP weights file not found: {p}", flag="clip_pretrained")
        pretrained = str(p)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        if model == "tiny":
            if pretrained is not None:
                raise ConfigError("the 'tiny' CLIP has no pretrained weights; use clip_pretrained=None",
                                  flag="clip_pretrained")
            clip = oc.CLIP(**TINY_CLIP_CFG)
            tokenizer = oc.get_tokenizer("ViT-B-32")
        else:
            if model not in oc.list_models():
                raise ConfigError(f"unknown open_clip model {model!r} (e.g. ViT-B-32, ViT-B-16, RN50, or 'tiny')",
                                  flag="clip_model")
            try:
                clip = oc.create_model(model, pretrained=pretrained)
            except Exception as exc:  # download failures, bad files
                raise ConfigError(f"cannot load CLIP {model} weights {pretrained!r} ({exc}); offline, pass a "
                                  "local weights file, e.g. clip_pretrained=/path/to/open_clip_model.safetensors",
                                  flag="clip_pretrained") from None
            tokenizer = oc.get_tokenizer(model)
    if pretrained is None and model != "tiny":
        warnings.warn(f"CLIP {model} has random weights (clip_pretrained=None): fine for speed and memory "
                      "figures, not for accuracy", stacklevel=3)
    clip.eval().requires_grad_(False)
    return clip, tokenizer


class ImageEmbeddingCache:
    """Record id -> (input fingerprint, embedding); a lookup hits only on an equal fingerprint."""

    def __init__(self, identity: str):
        self.identity = identity
        self.entries: dict[str, tuple[bytes, Tensor]] = {}
        self.hits = 0
        self.misses = 0
        self.dirty = False

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: str, fingerprint: bytes) -> Tensor | None:
        entry = self.entries.get(key)
        if entry is not None and entry[0] == fingerprint:
            self.hits += 1
            return entry[1]
        self.misses += 1
        return None

    def put(self, key: str, fingerprint: bytes, embedding: Tensor) -> None:
        self.entries[key] = (fingerprint, embedding.detach().to("cpu", torch.float32).clone())
        self.dirty = True

    def to_bytes(self) -> bytes:
        keys = sorted(self.entries)
        buf = io.BytesIO()
        torch.save({"identity": self.identity, "keys": keys,
                    "fingerprints": [self.entries[k][0] for k in keys],
                    "embeddings": torch.stack([self.entries[k][1] for k in keys]) if keys else torch.empty(0)},
                   buf)
        return buf.getvalue()

    def load(self, path: Path) -> bool:
        """Merge a saved cache; ``False`` (and nothing loaded) if it belongs to another CLIP."""
        try:
            data = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:
            return False
        if data.get("identity") != self.identity:
            return False
        for k, fp, e in zip(data["keys"], data["fingerprints"], data["embeddings"]):
            self.entries[k] = (fp, e)
        return True


class FrozenCLIP(nn.Module):
    """Frozen open_clip encoders with cached class text embeddings and image embeddings.

    Args:
        class_names: one name per class index (canonical names get adjective prompts).
        model, pretrained, init_seed: which CLIP (see the module doc).
        template: the label prompt template.
        normalize: L2-normalise the embeddings.
        cache: cache image embeddings by record id (see the module doc for the validity rule).
        cache_dir: keep the image-embedding cache on disk in this folder.
        center_text: subtract the mean over classes from the text embeddings (then
            re-normalise when ``normalize``).
    """

    def __init__(self, class_names: Sequence[str], model: str = "ViT-B-32", pretrained: str | None = "openai",
                 template: str = DEFAULT_TEMPLATE, init_seed: int = 0, normalize: bool = True,
                 cache: bool = True, cache_dir: str | Path | None = None, center_text: bool = True):
        super().__init__()
        clip, tokenizer = build_clip(model, pretrained, init_seed)
        self.__dict__["_clip"] = clip  # not a submodule: never in the state dict, never trained
        self._tokenizer = tokenizer
        self._text_cache: dict[str, Tensor] = {}
        self.normalize = normalize
        self.prompts = class_prompts(class_names, template)
        visual = clip.visual
        size = visual.image_size
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (size, size)
        cfg = getattr(visual, "preprocess_cfg", None) or {}
        self.register_buffer("mean", torch.tensor(cfg.get("mean", _OPENAI_MEAN)).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(cfg.get("std", _OPENAI_STD)).view(1, 3, 1, 1), persistent=False)
        with torch.no_grad():
            text = clip.encode_text(tokenizer(self.prompts), normalize=normalize).float()
            if center_text and len(self.prompts) > 1:
                text = text - text.mean(0, keepdim=True)
                if normalize:
                    text = F.normalize(text, dim=1)
        self.register_buffer("text_embeddings", text, persistent=False)
        self.embed_dim = text.shape[1]
        identity = json.dumps([model, pretrained, init_seed, normalize, list(self.image_size)])
        self.cache = ImageEmbeddingCache(identity) if cache else None
        self.cache_path = None
        if cache and cache_dir is not None:
            digest = hashlib.blake2b(identity.encode(), digest_size=8).hexdigest()
            self.cache_path = Path(cache_dir).expanduser() / f"clip-image-embeddings-{digest}.pt"
            if self.cache_path.is_file():
                self.cache.load(self.cache_path)

    @property
    def clip(self) -> nn.Module:
        return self._clip

    def _apply(self, fn, recurse=True):
        super()._apply(fn, recurse)
        self._clip._apply(fn)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self._clip.eval()
        return self

    def encode_labels(self, labels: Tensor) -> Tensor:
        """``E_L(y)``: ``(B,)`` class indices -> ``(B, E)`` text embeddings of their prompts."""
        if labels.min() < 0 or labels.max() >= len(self.prompts):
            raise ConfigError(f"label out of range 0..{len(self.prompts) - 1}: got {labels.tolist()}",
                              flag="class_names")
        return self.text_embeddings[labels.to(self.text_embeddings.device)]

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> Tensor:
        """Free text (e.g. captions) -> ``(N, E)`` text embeddings (L2-normalised when
        ``normalize``, never centred), cached per string in memory.

        Each new string is encoded on its own, so an embedding does not depend on which other
        strings were encoded with it (batch-independent, bit for bit).
        """
        device = self.text_embeddings.device
        for t in dict.fromkeys(texts):
            if t not in self._text_cache:
                tokens = self._tokenizer([t]).to(device)
                self._text_cache[t] = self._clip.encode_text(tokens, normalize=self.normalize).float()[0].cpu()
        if not texts:
            return torch.empty(0, self.embed_dim, device=device)
        return torch.stack([self._text_cache[t] for t in texts]).to(device)

    @torch.no_grad()
    def _encode(self, images: Tensor) -> Tensor:
        x = images.to(self.mean.device, torch.float32)
        if tuple(x.shape[-2:]) != self.image_size:
            x = F.interpolate(x, size=self.image_size, mode="bicubic", align_corners=False, antialias=True)
        x = (x.clamp(0, 1) - self.mean) / self.std
        return self._clip.encode_image(x, normalize=self.normalize).float()

    def encode_images(self, images: Tensor, ids: Sequence[str] | None = None) -> Tensor:
        """``E_I(x)``: ``(B, 3, H, W)`` RGB in [0, 1] -> ``(B, E)``; cached by ``ids``."""
        if self.cache is None or ids is None or len(ids) != images.shape[0]:
            return self._encode(images)
        fps = [image_fingerprint(im) for im in images]
        found = [self.cache.get(str(k), fp) for k, fp in zip(ids, fps)]
        todo = [i for i, e in enumerate(found) if e is None]
        if todo:
            fresh = self._encode(images[todo])
            for j, i in enumerate(todo):
                self.cache.put(str(ids[i]), fps[i], fresh[j])
                found[i] = fresh[j]
        device = self.text_embeddings.device
        return torch.stack([e.to(device) for e in found])

    def save_cache(self) -> Path | None:
        """Write the image-embedding cache to ``cache_dir`` if it changed (atomic)."""
        if self.cache is None or self.cache_path is None or not self.cache.dirty:
            return None
        atomic_write_bytes(self.cache_path, self.cache.to_bytes())
        self.cache.dirty = False
        return self.cache_path
