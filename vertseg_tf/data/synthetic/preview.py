"""Contact sheet of synthetic images: outlines, labels and conditions drawn on each tile."""

from __future__ import annotations

import cv2
import numpy as np

from vertseg_tf.data.dataset import ImageRecord

__all__ = ["PREVIEW_IMAGES", "contact_sheet", "preview_tile"]

PREVIEW_IMAGES = 12
TILE_SIZE = (420, 520)  # (width, height) of one tile in pixels
_COLUMNS = 4
_NORMAL = (80, 220, 80)
_FRACTURE = (60, 60, 255)
_OTHER = (0, 170, 255)
_SHORT = {"fracture": "FX", "osteoporosis": "OP", "degenerative": "DEG", "implant": "IMP",
          "artefact": "ART", "listhesis": "LIS"}


def preview_tile(image: np.ndarray, record: ImageRecord, width: int | None = None) -> np.ndarray:
    """One BGR tile: the image scaled to fit, C3-C7 outlines and labels, facing, conditions.

    Args:
        image: (rows, cols) uint16 bone-bright image.
        record: its annotation (image pixel coordinates).
        width: tile width in pixels (default `TILE_SIZE[0]`); the height keeps its proportion.

    Returns:
        (height, width, 3) uint8 array.
    """
    width = int(width or TILE_SIZE[0])
    height = round(width * TILE_SIZE[1] / TILE_SIZE[0])
    caption = max(18, round(34 * width / TILE_SIZE[0]))
    font = max(0.33, 0.45 * width / TILE_SIZE[0])
    scale = min(width / image.shape[1], (height - caption) / image.shape[0])
    size = (max(1, int(image.shape[1] * scale)), max(1, int(image.shape[0] * scale)))
    grey = cv2.resize((image >> 8).astype(np.uint8), size, interpolation=cv2.INTER_AREA)
    tile = np.zeros((height, width, 3), np.uint8)
    tile[: size[1], : size[0]] = cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)
    for vertebra in record.vertebrae:
        colour = _NORMAL
        if vertebra.conditions:
            colour = _FRACTURE if "fracture" in vertebra.conditions else _OTHER
        points = np.round(vertebra.contour * scale * 16).astype(np.int32)
        cv2.polylines(tile, [points], True, colour, 1, cv2.LINE_AA, 4)
        x, y = (vertebra.center * scale).astype(int)
        cv2.circle(tile, (int(x), int(y)), 2, colour, -1, cv2.LINE_AA)
        cv2.putText(tile, vertebra.label, (int(x) - 8, int(y) + 4), cv2.FONT_HERSHEY_SIMPLEX,
                    0.35, colour, 1, cv2.LINE_AA)
    conditions = sorted({c for v in record.vertebrae for c in v.conditions})
    text = f"{record.id} {record.split}"
    facing = record.extra.get("facing") or record.extra.get("synthetic", {}).get("facing")
    if facing:
        text += f" faces {facing}"
    if conditions:
        text += " " + ",".join(_SHORT.get(c, c) for c in conditions)
    cv2.putText(tile, text, (4, height - caption // 3), cv2.FONT_HERSHEY_SIMPLEX, font,
                _OTHER if conditions else (230, 230, 230), 1, cv2.LINE_AA)
    return tile


def contact_sheet(tiles: list[np.ndarray]) -> np.ndarray:
    """Arrange tiles (all of one size) in rows of four on a dark background (BGR uint8)."""
    height, width = tiles[0].shape[:2] if tiles else TILE_SIZE[::-1]
    rows = max(1, -(-len(tiles) // _COLUMNS))
    sheet = np.full((rows * height, min(len(tiles), _COLUMNS) * width or width, 3), 16, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, _COLUMNS)
        sheet[r * height : (r + 1) * height, c * width : (c + 1) * width] = tile
    return sheet
