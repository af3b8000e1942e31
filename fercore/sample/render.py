"""Procedural face renderer for the embedded sample set.

A face is drawn from two parameter sets:

* :class:`Identity` -- who the person is: face shape, skin tone, hair, eye/brow/nose/mouth
  geometry, glasses, beard and a *resting face* (some people's brows sit low, some mouths
  turn down at rest). Drawn once per person.
* :class:`Shot` -- one photograph: the expression as FACS action-unit intensities, head pose
  (yaw, pitch, roll, scale, shift), gaze, lighting and background.

Expressions move the features the way their action units do (Ekman & Friesen's FACS):

====  =====================  ==================================================
AU    name                   what the renderer moves
====  =====================  ==================================================
1     inner brow raiser      inner ends of the brows up
2     outer brow raiser      outer ends of the brows up
4     brow lowerer           brows down and together, frown lines between them
5     upper lid raiser       upper lids up (more white above the iris)
6     cheek raiser           lower lids up, crow's feet, deeper cheek folds
7     lid tightener          both lids narrow
9     nose wrinkler          wrinkles across the nose bridge, nostrils up
10    upper lip raiser       upper lip up, upper teeth shown
12    lip corner puller      mouth corners up and out (smile)
15    lip corner depressor   mouth corners down
17    chin raiser            lower lip pushed up, chin boss line
20    lip stretcher          mouth wider, corners pulled sideways
23    lip tightener          lips thinner, mouth narrower
25    lips part              lips apart
26    jaw drop               mouth open, chin lower
====  =====================  ==================================================

Drawing happens at 2x the output size with anti-aliased OpenCV primitives; the face layer
is warped by the head pose, composited over the background, lit, and reduced to the output
size with area interpolation. Everything random comes from the generator passed in, so a
face is a pure function of its parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

import cv2
import numpy as np

AU_NAMES = ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7", "AU9", "AU10", "AU12", "AU15", "AU17",
            "AU20", "AU23", "AU25", "AU26")

#: Prototype action-unit intensities of the seven basic expressions (EMFACS-style).
PROTOTYPES: dict[str, dict[str, float]] = {
    "surprise": {"AU1": 1.0, "AU2": 1.0, "AU5": 0.9, "AU25": 0.6, "AU26": 1.0},
    "fear": {"AU1": 0.9, "AU2": 0.5, "AU4": 0.7, "AU5": 1.0, "AU20": 1.0, "AU25": 0.8, "AU26": 0.3},
    "disgust": {"AU4": 0.4, "AU9": 1.0, "AU10": 1.0, "AU15": 0.4, "AU17": 0.5, "AU25": 0.2},
    "happiness": {"AU6": 0.9, "AU12": 1.0, "AU25": 0.6},
    "sadness": {"AU1": 1.0, "AU4": 0.6, "AU15": 1.0, "AU17": 0.6},
    "anger": {"AU4": 1.0, "AU5": 0.5, "AU7": 0.9, "AU17": 0.3, "AU23": 1.0},
    "neutral": {},
}

SKIN_TONES = np.array([  # RGB, light to dark
    (255, 226, 205), (246, 206, 170), (234, 189, 146), (214, 160, 112),
    (190, 132, 88), (150, 98, 62), (112, 72, 46), (84, 54, 36)], dtype=np.float64)
HAIR_COLOURS = np.array([
    (20, 16, 14), (48, 34, 26), (86, 58, 38), (130, 92, 56), (182, 146, 96),
    (214, 190, 140), (150, 70, 40), (160, 160, 160)], dtype=np.float64)
IRIS_COLOURS = np.array([(60, 40, 25), (95, 65, 40), (70, 100, 120), (80, 110, 70), (40, 30, 25)],
                        dtype=np.float64)


@dataclass(frozen=True)
class Identity:
    """One person (see module docstring). Build with :func:`random_identity`."""

    skin: tuple[float, float, float]
    hair: tuple[float, float, float]
    iris: tuple[float, float, float]
    lip: tuple[float, float, float]
    hair_style: int          # 0 bald, 1 short, 2 side part, 3 long
    face_w: float            # half width of the face, fraction of canvas
    face_h: float            # half height, fraction of canvas
    jaw: float               # 0 round .. 1 pointed chin
    eye_sep: float           # eye centre distance from the midline (face units)
    eye_y: float
    eye_w: float
    eye_h: float
    brow_gap: float          # brow height above the eye (face units)
    brow_thick: float        # pixels at the 2x drawing scale
    brow_len: float
    brow_arch: float
    nose_len: float
    nose_w: float
    mouth_y: float
    mouth_w: float
    lip_thick: float
    glasses: bool
    beard: float             # 0 none .. 1 full
    rest: dict[str, float] = field(default_factory=dict)  # resting-face AU offsets


@dataclass(frozen=True)
class Shot:
    """One photograph of an identity: expression, pose, light and background."""

    aus: dict[str, float]
    intensity: float         # expression intensity the prototype was scaled by
    yaw: float               # radians
    pitch: float
    roll: float              # degrees
    scale: float
    shift: tuple[float, float]   # pixels at output size
    gaze: tuple[float, float]
    light_dir: float         # radians
    light_strength: float
    ambient: float
    light_tint: tuple[float, float, float]
    bg: tuple[tuple[float, float, float], tuple[float, float, float]]
    bg_angle: float
    bg_blobs: int
    focus_sigma: float       # camera defocus at output size (pixels)
    noise_sigma: float       # sensor noise (8-bit levels)


def random_identity(rng: np.random.Generator) -> Identity:
    """Draw a person."""
    t = rng.uniform(0, len(SKIN_TONES) - 1)
    i = int(t)
    skin = SKIN_TONES[i] * (1 - (t - i)) + SKIN_TONES[min(i + 1, len(SKIN_TONES) - 1)] * (t - i)
    skin = np.clip(skin * rng.uniform(0.95, 1.05, 3), 0, 255)
    hair = np.clip(HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] * rng.uniform(0.85, 1.15), 0, 255)
    lip = np.clip(skin * np.array([0.82, 0.55, 0.55]) * rng.uniform(0.9, 1.05), 0, 255)
    rest = {
        "AU4": float(np.clip(rng.normal(0, 0.12), -0.15, 0.3)),
        "AU1": float(np.clip(rng.normal(0, 0.10), -0.1, 0.25)),
        "AU15": float(np.clip(rng.normal(0, 0.10), -0.1, 0.25)),
        "AU12": float(np.clip(rng.normal(0, 0.10), -0.1, 0.25)),
        "AU5": float(np.clip(rng.normal(0, 0.12), -0.2, 0.25)),
        "AU7": float(np.clip(rng.normal(0, 0.10), -0.1, 0.25)),
    }
    return Identity(
        skin=tuple(skin), hair=tuple(hair), iris=tuple(IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))]),
        lip=tuple(lip), hair_style=int(rng.choice(4, p=[0.1, 0.35, 0.3, 0.25])),
        face_w=rng.uniform(0.33, 0.39), face_h=rng.uniform(0.43, 0.49), jaw=rng.uniform(0.1, 0.6),
        eye_sep=rng.uniform(0.38, 0.46), eye_y=rng.uniform(-0.18, -0.08), eye_w=rng.uniform(0.27, 0.33),
        eye_h=rng.uniform(0.075, 0.095), brow_gap=rng.uniform(0.13, 0.18), brow_thick=rng.uniform(3.0, 6.0),
        brow_len=rng.uniform(0.3, 0.38), brow_arch=rng.uniform(0.0, 0.05), nose_len=rng.uniform(0.22, 0.3),
        nose_w=rng.uniform(0.11, 0.16), mouth_y=rng.uniform(0.42, 0.5), mouth_w=rng.uniform(0.44, 0.54),
        lip_thick=rng.uniform(0.035, 0.055), glasses=bool(rng.random() < 0.2),
        beard=float(rng.uniform(0.3, 1.0)) if rng.random() < 0.15 else 0.0, rest=rest)


def random_shot(rng: np.random.Generator, expression: str, identity: Identity,
                intensity: tuple[float, float] = (0.45, 1.0), au_jitter: float = 0.1,
                distractor: float = 0.22) -> Shot:
    """Draw a photograph of ``identity`` showing ``expression``.

    The action units are the prototype scaled by a random intensity, plus the person's
    resting face, plus per-unit jitter, plus weak random activation of other units
    (``distractor``), so classes overlap the way real expressions do.
    """
    proto = PROTOTYPES[expression]
    k = rng.uniform(*intensity)
    aus = {}
    for au in AU_NAMES:
        v = proto.get(au, 0.0) * k + identity.rest.get(au, 0.0) + rng.normal(0, au_jitter)
        if au not in proto:
            v += rng.uniform(0, distractor) * (rng.random() < 0.35)
        aus[au] = float(np.clip(v, 0.0, 1.0))
    c1 = rng.uniform(20, 235, 3)
    c2 = np.clip(c1 + rng.normal(0, 50, 3), 0, 255)
    return Shot(
        aus=aus, intensity=float(k), yaw=rng.uniform(-0.35, 0.35), pitch=rng.uniform(-0.12, 0.12), roll=rng.uniform(-12, 12),
        scale=rng.uniform(0.9, 1.08), shift=(rng.uniform(-5, 5), rng.uniform(-4, 4)),
        gaze=(rng.uniform(-0.3, 0.3), rng.uniform(-0.2, 0.2)), light_dir=rng.uniform(0, 2 * np.pi),
        light_strength=rng.uniform(0.05, 0.45), ambient=rng.uniform(0.8, 1.1),
        light_tint=tuple(rng.uniform(0.9, 1.1, 3)), bg=(tuple(c1), tuple(c2)), bg_angle=rng.uniform(0, np.pi),
        bg_blobs=int(rng.integers(0, 6)), focus_sigma=rng.uniform(0.0, 0.5), noise_sigma=rng.uniform(0.5, 2.0))


class _Canvas:
    """Drawing helpers at scale ``s`` (2x output) in face coordinates.

    Face coordinates: ``u`` in [-1, 1] across the face, ``v`` in [-1, 1] from forehead to
    chin. Features sit on a cylinder, so yaw moves them sideways with foreshortening while
    the silhouette stays put.
    """

    def __init__(self, size: int, ident: Identity, shot: Shot):
        self.n = size
        self.cx, self.cy = size / 2, size * 0.53
        self.a, self.b = ident.face_w * size, ident.face_h * size
        self.yaw, self.pitch = shot.yaw, shot.pitch
        self.img = np.zeros((size, size, 3), np.float32)
        self.alpha = np.zeros((size, size), np.float32)

    def P(self, u: float, v: float) -> tuple[float, float]:
        phi = np.arcsin(np.clip(u, -0.999, 0.999))
        x = self.cx + self.a * np.sin(phi + self.yaw)
        th = np.arcsin(np.clip(v, -0.999, 0.999))
        y = self.cy + self.b * np.sin(th + self.pitch * np.cos(phi))
        return float(x), float(y)

    def side_scale(self, u: float) -> float:
        """Horizontal foreshortening of a feature centred at ``u``."""
        phi = np.arcsin(np.clip(u, -0.999, 0.999))
        return float(max(0.35, np.cos(phi + self.yaw) / max(np.cos(phi), 0.35)))

    @staticmethod
    def pts(points) -> np.ndarray:
        return np.round(np.asarray(points, np.float64) * 16).astype(np.int32)  # 4 fractional bits

    def poly(self, points, colour, layer=None, alpha=True) -> None:
        tgt = self.img if layer is None else layer
        cv2.fillPoly(tgt, [self.pts(points)], colour, cv2.LINE_AA, 4)
        if alpha and layer is None:
            cv2.fillPoly(self.alpha, [self.pts(points)], 1.0, cv2.LINE_AA, 4)

    def line(self, points, colour, thick: float, closed=False, layer=None) -> None:
        tgt = self.img if layer is None else layer
        cv2.polylines(tgt, [self.pts(points)], closed, colour, max(1, int(round(thick))), cv2.LINE_AA, 4)


def _bezier(p0, p1, p2, n=12) -> list[tuple[float, float]]:
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = (np.asarray(p, np.float64) for p in (p0, p1, p2))
    return [tuple(q) for q in (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2]


@lru_cache(maxsize=4)
def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    yy.setflags(write=False)
    xx.setflags(write=False)
    return yy, xx


def _background(n: int, shot: Shot, rng: np.random.Generator) -> np.ndarray:
    """Two-colour gradient with soft blobs, drawn at quarter size and enlarged (it is blurry)."""
    q = max(n // 4, 8)
    yy, xx = _grid(q)
    t = (np.cos(shot.bg_angle) * xx + np.sin(shot.bg_angle) * yy) / q
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    c1, c2 = np.array(shot.bg[0], np.float32), np.array(shot.bg[1], np.float32)
    bg = c1 * (1 - t[..., None]) + c2 * t[..., None]
    for _ in range(shot.bg_blobs):
        c = (int(rng.integers(0, q)), int(rng.integers(0, q)))
        col = rng.uniform(0, 255, 3)
        cv2.circle(bg, c, int(rng.integers(q // 12 + 1, q // 4)), tuple(float(x) for x in col), -1, cv2.LINE_AA)
    bg = cv2.GaussianBlur(bg, (0, 0), q / 40)
    return cv2.resize(bg, (n, n), interpolation=cv2.INTER_LINEAR)


def render_face(ident: Identity, shot: Shot, rng: np.random.Generator, size: int = 100) -> np.ndarray:
    """Render one face as an ``size x size x 3`` ``uint8`` RGB image."""
    n = 2 * size
    c = _Canvas(n, ident, shot)
    au = shot.aus
    skin = np.array(ident.skin, np.float32)
    hair = tuple(float(x) for x in ident.hair)
    dark = tuple(float(x) for x in skin * 0.55)
    line_col = tuple(float(x) for x in skin * 0.62)

    # --- hair behind the head, neck, ears
    if ident.hair_style == 3:
        cv2.ellipse(c.img, (int(c.cx), int(c.cy - c.b * 0.1)), (int(c.a * 1.25), int(c.b * 1.15)), 0, 0, 360, hair, -1, cv2.LINE_AA)
        cv2.ellipse(c.alpha, (int(c.cx), int(c.cy - c.b * 0.1)), (int(c.a * 1.25), int(c.b * 1.15)), 0, 0, 360, 1.0, -1, cv2.LINE_AA)
    neck = [(c.cx - c.a * 0.5, c.cy + c.b * 0.6), (c.cx + c.a * 0.5, c.cy + c.b * 0.6),
            (c.cx + c.a * 0.62, n + 2), (c.cx - c.a * 0.62, n + 2)]
    c.poly(neck, tuple(float(x) for x in skin * 0.8))
    for side in (-1, 1):
        ex, ey = c.cx + side * c.a * (0.98 - 0.25 * side * np.sin(c.yaw)), c.cy - c.b * 0.05
        cv2.ellipse(c.img, (int(ex), int(ey)), (int(c.a * 0.14), int(c.b * 0.2)), 0, 0, 360,
                    tuple(float(x) for x in skin * 0.9), -1, cv2.LINE_AA)
        cv2.ellipse(c.alpha, (int(ex), int(ey)), (int(c.a * 0.14), int(c.b * 0.2)), 0, 0, 360, 1.0, -1, cv2.LINE_AA)

    # --- face outline (jaw drop lengthens the chin)
    th = np.linspace(0, 2 * np.pi, 72, endpoint=False)
    x, y = np.sin(th), -np.cos(th)
    low = y > 0
    x = np.where(low, x * (1 - ident.jaw * 0.45 * y**2), x)
    y = np.where(low, y * (1 + 0.1 * au["AU26"]), y)
    outline = np.stack([c.cx + c.a * x, c.cy + c.b * y], 1)
    c.poly(outline, tuple(float(v) for v in skin))
    face_mask = np.zeros((n, n), np.float32)
    cv2.fillPoly(face_mask, [c.pts(outline)], 1.0, cv2.LINE_AA, 4)
    # 3-D shading: darker towards the silhouette
    yy, xx = _grid(n)
    r2 = ((xx - c.cx - c.a * 0.15 * np.sin(c.yaw)) / c.a) ** 2 + ((yy - c.cy) / c.b) ** 2
    np.clip(r2, 0, 1.3, out=r2)
    r2 **= 1.5
    r2 *= -0.22 * face_mask
    r2 += 1.0
    c.img *= r2[..., None]

    # --- beard (stubble / full) on the lower face
    if ident.beard > 0:
        beard_mask = face_mask * (yy > c.cy + c.b * (0.25 - 0.1 * ident.beard))
        speck = rng.random((n, n)).astype(np.float32) < 0.25 + 0.5 * ident.beard
        amount = beard_mask * speck * (0.5 + 0.5 * ident.beard)
        c.img = c.img * (1 - amount[..., None]) + np.array(hair, np.float32) * amount[..., None]

    # --- cheek folds (nasolabial), deepened by AU6/AU10/AU12
    fold = min(1.0, 0.35 * au["AU6"] + 0.5 * au["AU12"] + 0.45 * au["AU10"] + 0.1)
    for side in (-1, 1):
        p0 = c.P(side * (ident.nose_w + 0.08), ident.nose_len * 0.6 + 0.08)
        p2 = c.P(side * (ident.mouth_w + 0.06 + 0.05 * au["AU12"]), ident.mouth_y + 0.02)
        p1 = c.P(side * (ident.mouth_w + 0.12), (ident.nose_len + ident.mouth_y) / 2)
        col = tuple(float(v) for v in skin * (1 - 0.3 * fold))
        c.line(_bezier(p0, p1, p2), col, 1 + 2.5 * fold)

    # --- eyes: almond opening (white), iris clipped to it, lids
    eye_mask = np.zeros((n, n), np.float32)
    lids, irises = [], []
    for side in (-1, 1):
        u0, v0 = side * ident.eye_sep, ident.eye_y
        k = c.side_scale(u0)
        hw = ident.eye_w * 0.5
        up = ident.eye_h * (1 + 0.9 * au["AU5"] - 0.5 * au["AU7"] - 0.25 * au["AU6"])
        lo = ident.eye_h * 0.7 * (1 + 0.25 * au["AU5"] - 0.55 * au["AU6"] - 0.35 * au["AU7"])
        up, lo = max(up, 0.012), max(lo, 0.008)
        inner, outer = c.P(u0 - side * hw, v0), c.P(u0 + side * hw, v0)
        top = _bezier(inner, c.P(u0, v0 - 2 * up), outer)
        bot = _bezier(outer, c.P(u0, v0 + 2 * lo), inner)
        c.poly(top + bot, (246, 244, 240), alpha=False)
        cv2.fillPoly(eye_mask, [c.pts(top + bot)], 1.0, cv2.LINE_AA, 4)
        irises.append((c.P(u0 + shot.gaze[0] * hw * 0.5, v0 + shot.gaze[1] * up), ident.eye_w * 0.27 * c.a))
        lids.append((top, bot, side, u0, v0, hw, k, lo))
    ys, xs = np.nonzero(eye_mask)
    if len(ys):
        win = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
        layer = c.img.copy()  # irises drawn on a copy, then kept only inside the eye openings
        for ic, r in irises:
            cv2.circle(layer, c.pts([ic])[0], int(r * 16), tuple(float(v) for v in ident.iris), -1, cv2.LINE_AA, 4)
            cv2.circle(layer, c.pts([ic])[0], int(r * 0.45 * 16), (12, 10, 10), -1, cv2.LINE_AA, 4)
            cv2.circle(layer, c.pts([(ic[0] + r * 0.3, ic[1] - r * 0.3)])[0], int(r * 0.18 * 16),
                       (250, 250, 250), -1, cv2.LINE_AA, 4)
        m = eye_mask[win][..., None]
        c.img[win] += m * (layer[win] - c.img[win])
    for top, bot, side, u0, v0, hw, k, lo in lids:
        c.line(top, (30, 22, 20), 3.2)           # upper lid + lashes
        c.line(bot, line_col, 1.4)               # lower lid
        lid_crease = _bezier(c.P(u0 - side * hw * 0.9, v0 - 0.01), c.P(u0, v0 - 2 * ident.eye_h * (1.8 + 0.6 * au["AU5"])),
                             c.P(u0 + side * hw * 0.9, v0 - 0.01))
        c.line(lid_crease, line_col, 1.2)
        if au["AU6"] > 0.35:                      # crow's feet
            for j in (-1, 0, 1):
                a0 = c.P(u0 + side * (hw + 0.03), v0 + 0.02 * j)
                a1 = c.P(u0 + side * (hw + 0.09), v0 + 0.045 * j)
                c.line([a0, a1], line_col, 1 + 1.5 * (au["AU6"] - 0.35))
        if au["AU6"] > 0.2:                       # raised cheek under the eye
            cheek = _bezier(c.P(u0 - side * hw, v0 + 2 * lo + 0.05), c.P(u0, v0 + 2 * lo + 0.1 - 0.04 * au["AU6"]),
                            c.P(u0 + side * hw, v0 + 2 * lo + 0.05))
            c.line(cheek, line_col, 1 + 1.5 * au["AU6"])

    # --- brows
    for side in (-1, 1):
        u0, v0 = side * ident.eye_sep, ident.eye_y - ident.brow_gap
        half = ident.brow_len * 0.5
        inner_u = u0 - side * half + side * 0.07 * au["AU4"]
        outer_u = u0 + side * half
        inner_v = v0 - 0.14 * au["AU1"] + 0.07 * au["AU4"] - 0.02 * au["AU2"]
        outer_v = v0 - 0.12 * au["AU2"] + 0.03 * au["AU4"] - 0.03 * au["AU1"]
        mid_v = (inner_v + outer_v) / 2 - ident.brow_arch - 0.03 * au["AU2"] + 0.02 * au["AU1"] * (1 - au["AU2"])
        pts = _bezier(c.P(inner_u, inner_v), c.P(u0 + side * 0.02, mid_v - 0.02), c.P(outer_u, outer_v))
        c.line(pts, hair, ident.brow_thick * (0.85 + 0.3 * c.side_scale(u0)))
    if au["AU4"] > 0.3:                           # frown lines
        for side in (-1, 1):
            a0, a1 = c.P(side * 0.06, ident.eye_y - ident.brow_gap + 0.02), c.P(side * 0.045, ident.eye_y - 0.02)
            c.line([a0, a1], line_col, 1 + 2 * (au["AU4"] - 0.3))
    if au["AU1"] + au["AU2"] > 0.9:              # forehead lines
        for j in range(2):
            v = ident.eye_y - ident.brow_gap - 0.2 - 0.08 * j
            c.line(_bezier(c.P(-0.35, v + 0.02), c.P(0, v - 0.02), c.P(0.35, v + 0.02)), line_col,
                   1 + 1.2 * (au["AU1"] + au["AU2"] - 0.9))

    # --- nose
    nl, nw = ident.nose_len, ident.nose_w
    tip_v = ident.eye_y + nl + 0.05 - 0.02 * au["AU9"]
    c.line([c.P(0.03, ident.eye_y + 0.05), c.P(0.05, tip_v - 0.06)], line_col, 1.2)
    c.line(_bezier(c.P(-nw, tip_v - 0.01), c.P(0, tip_v + 0.06), c.P(nw, tip_v - 0.01)), dark, 1.8)
    for side in (-1, 1):
        cx_, cy_ = c.P(side * nw * 0.55, tip_v + 0.005 - 0.02 * au["AU9"])
        cv2.ellipse(c.img, (int(cx_), int(cy_)), (max(1, int(c.a * nw * 0.28)), max(1, int(c.b * 0.02))),
                    side * 20, 0, 360, tuple(float(v) for v in skin * 0.35), -1, cv2.LINE_AA)
    if au["AU9"] > 0.25:                          # nose-bridge wrinkles
        for j in range(3):
            v = ident.eye_y + 0.03 + 0.04 * j
            c.line(_bezier(c.P(-0.09, v + 0.01), c.P(0, v - 0.015), c.P(0.09, v + 0.01)), line_col,
                   1 + 2 * (au["AU9"] - 0.25))

    # --- mouth
    mv = ident.mouth_y
    hw = ident.mouth_w * 0.5 * (1 + 0.35 * au["AU20"] + 0.22 * au["AU12"] - 0.25 * au["AU23"] - 0.1 * au["AU10"])
    corner_dv = -0.1 * au["AU12"] + 0.09 * au["AU15"] + 0.015 * au["AU20"] - 0.02 * au["AU10"]
    lip = ident.lip_thick * (1 - 0.55 * au["AU23"])
    opening = 0.012 + 0.05 * au["AU25"] + 0.16 * au["AU26"] + 0.03 * au["AU20"] * au["AU25"]
    opening *= 1 - 0.7 * au["AU23"]
    upper_raise = 0.05 * au["AU10"]
    lower_push = -0.03 * au["AU17"]
    smile_bow = 0.05 * au["AU12"]
    L, R = c.P(-hw, mv + corner_dv), c.P(hw, mv + corner_dv)
    up_inner = _bezier(L, c.P(0, mv - upper_raise - smile_bow * 0.3 + opening * 0.05), R)
    up_outer = _bezier(R, c.P(0, mv - upper_raise - 2.2 * lip - smile_bow * 0.2), L)
    lo_inner = _bezier(R, c.P(0, mv + opening + lower_push + smile_bow), L)
    lo_outer = _bezier(L, c.P(0, mv + opening + lower_push + 2.4 * lip + smile_bow * 1.1), R)
    lipc = tuple(float(v) for v in ident.lip)
    if opening > 0.02:
        c.poly(up_inner + lo_inner, (60, 22, 25), alpha=False)
        teeth = 0.25 * au["AU25"] + 0.6 * au["AU10"] + 0.6 * au["AU12"] + 0.4 * au["AU20"]
        if teeth > 0.2:
            th_v = min(opening * 0.6, 0.035 + 0.02 * teeth)
            tl = _bezier(c.P(-hw * 0.8, mv + corner_dv * 0.6), c.P(0, mv - upper_raise + th_v), c.P(hw * 0.8, mv + corner_dv * 0.6))
            c.poly(up_inner[2:-2] + tl[::-1], (238, 236, 226), alpha=False)
    c.poly(up_inner + up_outer, lipc, alpha=False)
    c.poly(lo_inner[::-1] + lo_outer[::-1], tuple(v * 1.05 for v in lipc), alpha=False)
    c.line(up_inner, tuple(float(v) for v in np.array(lipc) * 0.55), 1.4)
    if au["AU17"] > 0.3:                          # chin boss
        c.line(_bezier(c.P(-0.12, mv + 0.2), c.P(0, mv + 0.16), c.P(0.12, mv + 0.2)), line_col, 1 + 1.5 * au["AU17"])

    # --- hair on top
    if ident.hair_style in (1, 2, 3):
        top = c.cy - c.b
        hp = [(c.cx - c.a * 1.05, c.cy - c.b * 0.15)]
        for t in np.linspace(np.pi, 2 * np.pi, 24):
            hp.append((c.cx + c.a * 1.06 * np.cos(t), c.cy - c.b * 0.35 + c.b * 0.75 * np.sin(t)))
        hp.append((c.cx + c.a * 1.05, c.cy - c.b * 0.15))
        part = 0.25 if ident.hair_style == 2 else 0.0
        fringe = [(c.cx + c.a * (0.95 - i * 0.19 + part * np.sin(i)), top + c.b * (0.45 - 0.12 * abs(np.sin(i * 1.3)))) for i in range(11)]
        c.poly(hp + fringe, hair)

    # --- glasses
    if ident.glasses:
        frame = (25.0, 25.0, 28.0)
        for side in (-1, 1):
            u0 = side * ident.eye_sep
            x0, y0 = c.P(u0, ident.eye_y)
            cv2.ellipse(c.img, (int(x0), int(y0)), (int(c.a * ident.eye_w * 0.75 * c.side_scale(u0)), int(c.b * 0.1)),
                        0, 0, 360, frame, 2, cv2.LINE_AA)
        c.line([c.P(-ident.eye_sep + ident.eye_w * 0.7, ident.eye_y - 0.02), c.P(ident.eye_sep - ident.eye_w * 0.7, ident.eye_y - 0.02)], frame, 2)

    # --- pose: roll / scale / shift of the face layer, composite over the background
    M = cv2.getRotationMatrix2D((c.cx, c.cy), shot.roll, shot.scale)
    M[:, 2] += np.array(shot.shift) * 2
    face = cv2.warpAffine(c.img, M, (n, n), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(np.maximum(c.alpha, face_mask), M, (n, n), flags=cv2.INTER_LINEAR)
    # reduce to the output size, then composite and light there (4x fewer pixels)
    face = cv2.resize(face, (size, size), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(alpha, (size, size), interpolation=cv2.INTER_AREA)[..., None]
    img = _background(size, shot, rng)
    img += alpha * (face - img)

    # --- lighting: directional gradient with a colour tint, then ambient
    sy, sx = _grid(size)
    d = np.array([np.cos(shot.light_dir), np.sin(shot.light_dir)], np.float32)
    g = ((sx - size / 2) * d[0] + (sy - size / 2) * d[1]) / (size / 2)
    light = shot.ambient + shot.light_strength * np.clip(g, -1, 1)
    img *= light[..., None] * np.array(shot.light_tint, np.float32)
    out = np.clip(img, 0, 255)
    if shot.focus_sigma > 0.05:
        out = cv2.GaussianBlur(out, (0, 0), shot.focus_sigma)
    out = out + rng.normal(0, shot.noise_sigma, out.shape).astype(np.float32)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)
