"""Radiograph files: read DICOM / PNG / JPEG / TIFF as float32 (bone bright), write PNG / DICOM.

`read_image` is the one place where stored pixel values become the image the rest of
vertseg-tf sees, so the classic DICOM traps are handled here: the Modality LUT (rescale slope
and intercept, or a Modality LUT Sequence), the VOI LUT (a VOI LUT Sequence, or window centre
and width) and MONOCHROME1, where a high stored value means dark.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import stat
import struct
from pathlib import Path
from typing import Any

import numpy as np

from vertseg_tf.atomic import write_bytes_atomic
from vertseg_tf.errors import ConfigError, DataError

__all__ = [
    "DICOM_SUFFIXES",
    "MAX_IMAGE_FILE_BYTES",
    "MAX_IMAGE_PIXELS",
    "declared_size",
    "read_image",
    "write_image",
]

DICOM_SUFFIXES = (".dcm", ".dicom")
MAX_IMAGE_PIXELS = 100_000_000
"""The most pixels (width x height, as the file header declares them) `read_image` decodes."""
MAX_IMAGE_FILE_BYTES = 2**30
"""The largest image file `read_image` reads (1 GiB)."""

_WRITABLE_SUFFIXES = (".png", ".tif", ".tiff", ".dcm")
_PHOTOMETRICS = ("MONOCHROME1", "MONOCHROME2")
_COLOUR_PHOTOMETRICS = (
    "RGB",
    "PALETTE COLOR",
    "YBR_FULL",
    "YBR_FULL_422",
    "YBR_PARTIAL_420",
    "YBR_ICT",
    "YBR_RCT",
)
_MAGIC_FORMATS = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


def read_image(path) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a single-frame greyscale radiograph as float32, bone bright.

    Output values:
        - PNG / JPEG / TIFF: the stored values as float32 (0-255 for 8 bit, 0-65535 for
          16 bit); colour images become grey with OpenCV's luminance weights
          (0.299 R + 0.587 G + 0.114 B), computed in float32.
        - DICOM: the stored values after the Modality LUT (RescaleSlope / RescaleIntercept
          or a Modality LUT Sequence) and then the VOI LUT (a VOI LUT Sequence, else the
          first WindowCenter / WindowWidth), as pydicom's `apply_modality_lut` and
          `apply_voi_lut` compute them. Without a VOI transform the values stay in modality
          units. MONOCHROME1 images are reflected inside the nominal output range
          [lo, hi] of those transforms (`lo + hi - value`) so that bone is bright; the range
          is that of the VOI LUT entries, else the stored bit range (BitsStored,
          PixelRepresentation) mapped through the rescale or the Modality LUT's bit depth.

    A file is DICOM when its suffix is `.dcm` / `.dicom` or it carries the `DICM` preamble
    marker; anything else is decoded by OpenCV.

    Args:
        path: the image file.

    Returns:
        `(image, meta)`: `image` is a float32 (H, W) array; `meta` has `"shape"` (H, W),
        `"source_format"` ("dicom", "png", "jpeg", "tiff" or "raster"),
        `"pixel_spacing_mm"` ((row, col) floats from PixelSpacing, else ImagerPixelSpacing,
        else None) and, for DICOM, `"photometric_interpretation"`.

    Limits, checked before anything is decoded: the file must be a regular file of at most
    `MAX_IMAGE_FILE_BYTES` (1 GiB), and the size its header declares (PNG, JPEG, TIFF,
    DICOM Rows x Columns) at most `MAX_IMAGE_PIXELS` (100 million pixels, e.g. 10000 x 10000;
    radiographs have a few million).

    Raises:
        DataError: naming the file, when it is missing, not a regular file, over a limit,
            empty, truncated, not decodable, multi-frame, colour DICOM, or has an invalid
            pixel spacing.

    Example (needs an image file, so not run as a doctest):
        >>> image, meta = read_image("images/img_0001.dcm")  # doctest: +SKIP
        >>> image.dtype, meta["pixel_spacing_mm"]  # doctest: +SKIP
        (dtype('float32'), (0.14, 0.14))
    """
    path = Path(path)
    data = _read_bounded(path)
    if not data:
        raise DataError(path, "image file is empty")
    if path.suffix.lower() in DICOM_SUFFIXES or data[128:132] == b"DICM":
        image, meta = _read_dicom(path, data)
    else:
        _check_pixel_count(path, declared_size(data))
        image, meta = _read_raster(path, data)
    if image.ndim != 2 or image.size == 0:
        raise DataError(path, f"expected a 2-D image, got shape {image.shape}")
    meta["shape"] = (int(image.shape[0]), int(image.shape[1]))
    return np.ascontiguousarray(image, dtype=np.float32), meta


def _read_bounded(path: Path) -> bytes:
    """The bytes of a regular file of at most `MAX_IMAGE_FILE_BYTES`, else a `DataError`."""
    try:
        with path.open("rb") as stream:
            status = os.fstat(stream.fileno())
            if not stat.S_ISREG(status.st_mode):
                raise DataError(path, "not a regular file; expected an image file")
            if status.st_size > MAX_IMAGE_FILE_BYTES:
                raise DataError(
                    path,
                    f"file of {status.st_size:,} bytes; the limit is {MAX_IMAGE_FILE_BYTES:,}",
                )
            return stream.read(MAX_IMAGE_FILE_BYTES + 1)
    except FileNotFoundError:
        raise DataError(path, "image file not found") from None
    except OSError as error:
        raise DataError(path, f"cannot read image file ({error.strerror or error})") from None


def _check_pixel_count(path: Path, size: tuple[int, int] | None) -> None:
    if size is not None and size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise DataError(
            path,
            f"declares {size[0]} x {size[1]} pixels; the limit is {MAX_IMAGE_PIXELS:,} pixels",
        )


def declared_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) as a PNG, JPEG or TIFF header declares it, read without decoding.

    Returns None for other formats and for headers too short or damaged to say; the decoder
    then decides (OpenCV refuses images over its own pixel limit).

    Example:
        >>> declared_size(open("scan.png", "rb").read())  # doctest: +SKIP
        (2048, 2500)
    """
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_size(data)
    return None


# JPEG start-of-frame markers (baseline, progressive, lossless, ...); C4, C8 and CC are not.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    offset = 2
    while offset + 9 <= len(data):
        if data[offset] != 0xFF:
            return None
        marker = data[offset + 1]
        if marker in _JPEG_FRAME_MARKERS:
            height, width = struct.unpack(">HH", data[offset + 5 : offset + 9])
            return width, height
        if marker == 0xFF or 0xD0 <= marker <= 0xD9 or marker == 0x01:
            offset += 1 if marker == 0xFF else 2
            continue
        (length,) = struct.unpack(">H", data[offset + 2 : offset + 4])
        offset += 2 + length
    return None


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    try:
        (ifd,) = struct.unpack(order + "I", data[4:8])
        (count,) = struct.unpack(order + "H", data[ifd : ifd + 2])
        values = {}
        for index in range(count):
            entry = data[ifd + 2 + 12 * index : ifd + 14 + 12 * index]
            tag, kind = struct.unpack(order + "HH", entry[:4])
            if tag in (256, 257):
                value_format = order + ("H" if kind == 3 else "I")
                width = struct.calcsize(value_format)
                values[tag] = struct.unpack(value_format, entry[8 : 8 + width])[0]
    except struct.error:
        return None
    if 256 in values and 257 in values:
        return values[256], values[257]
    return None


def _read_raster(path: Path, data: bytes) -> tuple[np.ndarray, dict[str, Any]]:
    import cv2

    # OpenCV would also print its own warning for a broken file; the DataError says it all.
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    source_format = next(
        (name for magic, name in _MAGIC_FORMATS if data.startswith(magic)), "raster"
    )
    try:
        image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as error:
        message = " ".join(str(error.err or error).split())
        raise DataError(path, f"cannot decode image ({message})") from None
    if image is None:
        raise DataError(
            path, f"cannot decode image (corrupt, truncated or unsupported {source_format} file)"
        )
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 3:
        conversion = {3: cv2.COLOR_BGR2GRAY, 4: cv2.COLOR_BGRA2GRAY}.get(image.shape[2])
        if conversion is None:
            raise DataError(path, f"unsupported number of channels {image.shape[2]}")
        image = cv2.cvtColor(image.astype(np.float32), conversion)
    return image.astype(np.float32), {"source_format": source_format, "pixel_spacing_mm": None}


def _read_dicom(path: Path, data: bytes) -> tuple[np.ndarray, dict[str, Any]]:
    import pydicom
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    # pydicom fails on damaged files with many unrelated exception types, hence the broad catches.
    try:
        ds = pydicom.dcmread(io.BytesIO(data), force=True)
        has_pixels = "PixelData" in ds and "Rows" in ds
        photometric = str(ds.get("PhotometricInterpretation", "")).strip()
        samples = int(ds.get("SamplesPerPixel", 1) or 1)
        frames = int(ds.get("NumberOfFrames", 1) or 1)
    except Exception as error:  # noqa: BLE001
        raise DataError(path, f"not a readable DICOM file ({error})") from None
    if not has_pixels:
        raise DataError(path, "not a DICOM image: no pixel data (corrupt, truncated or not DICOM)")
    if samples != 1 or photometric in _COLOUR_PHOTOMETRICS:
        raise DataError(
            path,
            f"colour DICOM ({photometric}, {samples} samples per pixel) is not supported; "
            "expected a MONOCHROME1/MONOCHROME2 radiograph",
            field="PhotometricInterpretation",
        )
    if photometric not in _PHOTOMETRICS:
        raise DataError(
            path,
            f"{photometric!r} is not supported; expected MONOCHROME1 or MONOCHROME2",
            field="PhotometricInterpretation",
        )
    if frames != 1:
        raise DataError(
            path, f"multi-frame DICOM ({frames} frames) is not supported", field="NumberOfFrames"
        )
    _check_pixel_count(path, (int(ds.get("Columns", 0) or 0), int(ds.Rows or 0)))
    try:
        stored = ds.pixel_array
    except Exception as error:  # noqa: BLE001
        problem = f"cannot decode DICOM pixel data ({error})"
        raise DataError(path, problem, field="PixelData") from None
    try:
        values = np.asarray(
            apply_voi_lut(apply_modality_lut(stored, ds), ds, index=0), dtype=np.float64
        )
        if photometric == "MONOCHROME1":
            low, high = _nominal_output_range(ds)
            values = low + high - values
    except Exception as error:  # noqa: BLE001
        problem = f"cannot apply the Modality/VOI LUT or window ({error})"
        raise DataError(path, problem, field="VOI LUT") from None
    meta = {
        "source_format": "dicom",
        "photometric_interpretation": photometric,
        "pixel_spacing_mm": _dicom_spacing(path, ds),
    }
    return values, meta


def _nominal_output_range(ds) -> tuple[float, float]:
    """The range the Modality and VOI transforms map into (see `read_image`)."""
    if ds.get("VOILUTSequence"):
        depth = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**depth - 1)
    if ds.get("ModalityLUTSequence"):
        depth = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**depth - 1)
    bits = int(ds.BitsStored)
    if int(ds.get("PixelRepresentation", 0)) == 0:
        low, high = 0.0, float(2**bits - 1)
    else:
        low, high = float(-(2 ** (bits - 1))), float(2 ** (bits - 1) - 1)
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        low, high = low * slope + intercept, high * slope + intercept
    return low, high


def _dicom_spacing(path: Path, ds) -> tuple[float, float] | None:
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is None or value == "":
            continue
        try:
            spacing = tuple(float(v) for v in value)
        except (TypeError, ValueError):
            raise DataError(path, f"must be two numbers, got {value!r}", field=keyword) from None
        if len(spacing) != 2 or not all(math.isfinite(s) and s > 0 for s in spacing):
            raise DataError(path, f"must be two positive numbers, got {value!r}", field=keyword)
        return spacing
    return None


def write_image(
    path,
    image: np.ndarray,
    *,
    pixel_spacing_mm: tuple[float, float] | None = None,
    photometric: str = "MONOCHROME2",
    window: tuple[float, float] | None = None,
) -> Path:
    """Write a 2-D uint8/uint16 image as PNG / TIFF or as a single-frame DICOM, atomically.

    The format follows the suffix: `.png`, `.tif` / `.tiff` (8 or 16 bit, lossless, no
    spacing stored) or `.dcm` (Secondary Capture, explicit VR little endian, BitsAllocated 16,
    BitsStored 8 or 16, unsigned). The bytes depend only on the arguments: the DICOM UIDs
    are derived from a hash of the pixels and options and no date or time is written, so the
    same input gives a byte-identical file. The file is written under a temporary name and
    renamed.

    Args:
        path: output file; its suffix picks the format.
        image: (H, W) uint8 or uint16 array of stored values.
        pixel_spacing_mm: (row, col) spacing written to DICOM PixelSpacing; ignored for
            PNG / TIFF, which cannot hold it (keep it in `dataset.json`).
        photometric: DICOM PhotometricInterpretation, "MONOCHROME2" (high = bright) or
            "MONOCHROME1" (high = dark: pass the stored values already inverted, bone dark).
        window: optional DICOM (WindowCenter, WindowWidth).

    Returns:
        The written path.

    Raises:
        ConfigError: for an unknown suffix or photometric interpretation.
        DataError: for an image that is not a 2-D uint8/uint16 array.

    Example:
        >>> write_image("img.dcm", np.zeros((4, 5), np.uint16), pixel_spacing_mm=(0.1, 0.1))
        PosixPath('img.dcm')
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _WRITABLE_SUFFIXES:
        raise ConfigError(
            f"{path}: cannot write {suffix or 'no'} suffix; use one of {_WRITABLE_SUFFIXES}"
        )
    if photometric not in _PHOTOMETRICS:
        raise ConfigError(f"photometric must be one of {_PHOTOMETRICS}, got {photometric!r}")
    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0 or image.dtype not in (np.uint8, np.uint16):
        raise DataError(
            path, f"expected a non-empty 2-D uint8/uint16 array, got {image.dtype} {image.shape}"
        )
    if suffix == ".dcm":
        data = _dicom_bytes(image, pixel_spacing_mm, photometric, window)
    else:
        import cv2

        ok, encoded = cv2.imencode(suffix, np.ascontiguousarray(image))
        if not ok:
            raise DataError(path, f"OpenCV could not encode the image as {suffix}")
        data = encoded.tobytes()
    write_bytes_atomic(data, path)
    return path


def _dicom_bytes(image: np.ndarray, spacing, photometric: str, window) -> bytes:
    import pydicom
    from pydicom.dataset import Dataset as DicomDataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid
    from pydicom.valuerep import format_number_as_ds

    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(image).tobytes())
    digest.update(repr((image.shape, str(image.dtype), spacing, photometric, window)).encode())
    key = digest.hexdigest()
    instance_uid = generate_uid(entropy_srcs=[key, "instance"])

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian

    ds = DicomDataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = instance_uid
    ds.StudyInstanceUID = generate_uid(entropy_srcs=[key, "study"])
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[key, "series"])
    ds.Modality = "OT"
    ds.ConversionType = "WSD"
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
        "PatientOrientation",
    ):
        setattr(ds, keyword, "")
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = int(image.shape[0]), int(image.shape[1])
    ds.BitsAllocated = 16
    ds.BitsStored = 8 * image.dtype.itemsize
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if spacing is not None:
        ds.PixelSpacing = [format_number_as_ds(float(s)) for s in spacing]
    if window is not None:
        ds.WindowCenter = format_number_as_ds(float(window[0]))
        ds.WindowWidth = format_number_as_ds(float(window[1]))
    ds.PixelData = np.ascontiguousarray(image, dtype="<u2").tobytes()

    buffer = io.BytesIO()
    pydicom.dcmwrite(buffer, ds, enforce_file_format=True)
    return buffer.getvalue()
