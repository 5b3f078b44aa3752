"""What is burned into a v2 film after exposure: lines, text, markers, JPEG compression.

Lines across the endplates (a reader's measurements, the `artefact` condition of the levels they
cross) are drawn before the film is mirrored for a right-facing patient; text and markers after
it, so they read the right way round; JPEG compression last, so its 8 x 8 blocks sit on the
final image's grid.
"""

from __future__ import annotations

import cv2
import numpy as np

from vertseg_tf.data.synthetic.render import MAX_VALUE

__all__ = ["JPEG_PROBABILITY", "TEXT_PROBABILITY", "burn_text", "draw_endplate_lines", "jpeg"]

TEXT_PROBABILITY = 0.7
JPEG_PROBABILITY = 0.35
_WORDS = ("L", "R", "LAT", "ERECT", "SUPINE", "C-SPINE", "LAT C-SP", "XTABLE", "FLEX", "EXT",
          "ED", "AP", "PORTABLE", "kV 70", "mAs 16", "100 cm")


def draw_endplate_lines(image: np.ndarray, six_points: dict, levels, rng) -> list[list[float]]:
    """Draw straight lines along the endplates of `levels`, past both walls (in place).

    Args:
        image: uint16 image.
        six_points: level -> six-point name -> (x, y) px.
        levels: the levels whose endplates get a line (one or both endplates each).
        rng: the image's random generator.

    Returns:
        The lines drawn, each [x0, y0, x1, y1].
    """
    drawn = []
    value = MAX_VALUE if rng.uniform() < 0.7 else 0
    thickness = max(1, round(image.shape[0] / rng.uniform(400.0, 900.0)))
    for label in levels:
        points = six_points[label]
        sides = [s for s in ("superior", "inferior") if rng.uniform() < 0.7] or ["superior"]
        for side in sides:
            start, end = points[f"{side}_anterior"], points[f"{side}_posterior"]
            along = end - start
            a, b = start - rng.uniform(0.3, 1.2) * along, end + rng.uniform(0.3, 1.2) * along
            cv2.line(image, (round(a[0] * 16), round(a[1] * 16)),
                     (round(b[0] * 16), round(b[1] * 16)), value, thickness, cv2.LINE_AA, 4)
            drawn.append([float(a[0]), float(a[1]), float(b[0]), float(b[1])])
    return drawn


def burn_text(image: np.ndarray, avoid: np.ndarray, rng) -> list[dict]:
    """Burn 1-3 words or markers into corners of the image clear of `avoid` (in place).

    Args:
        image: uint16 image.
        avoid: (K, 2) points (px) no text box may cover (the annotated bodies).
        rng: the image's random generator.

    Returns:
        One record per item: its text and its box [x0, y0, x1, y1] (px, inclusive).
    """
    rows, cols = image.shape
    low, high = avoid.min(axis=0), avoid.max(axis=0)
    burned = []
    corners = rng.permutation(4)[: int(rng.integers(1, 4))]
    for corner in corners:
        text = str(rng.choice(_WORDS))
        scale = rows / 1400.0 * rng.uniform(0.7, 1.6)
        thickness = max(1, round(scale * rng.uniform(1.0, 2.5)))
        (width, height), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        pad = int(rng.uniform(0.02, 0.06) * cols)
        x = pad if corner % 2 == 0 else cols - pad - width
        y = pad + height if corner < 2 else rows - pad - base
        box = np.array([x - thickness - 4, y - height - thickness - 4,
                        x + width + thickness + 4, y + base + thickness + 4])
        box = np.clip(box, 0, [cols - 1, rows - 1, cols - 1, rows - 1])
        if box[0] <= high[0] and box[2] >= low[0] and box[1] <= high[1] and box[3] >= low[1]:
            continue
        value = MAX_VALUE if rng.uniform() < 0.8 else 0
        x0, y0, x1, y1 = (int(v) for v in box)
        mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), np.uint8)
        cv2.putText(mask, text, (int(x) - x0, int(y) - y0), cv2.FONT_HERSHEY_SIMPLEX, scale, 255,
                    thickness, cv2.LINE_AA)
        if rng.uniform() < 0.3:
            cv2.rectangle(mask, (0, 0), (x1 - x0, y1 - y0), 255, thickness)
        weight = mask.astype(np.float32) / 255.0
        roi = image[y0 : y1 + 1, x0 : x1 + 1]
        roi[...] = np.round(roi * (1.0 - weight) + value * weight).astype(np.uint16)
        burned.append({"text": text, "box": [int(v) for v in box]})
    return burned


def jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    """The image after 8-bit JPEG compression at `quality`, back in 16-bit steps."""
    ok, data = cv2.imencode(".jpg", (image >> 8).astype(np.uint8),
                            [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return cv2.imdecode(data, cv2.IMREAD_GRAYSCALE).astype(np.uint16) * 257
