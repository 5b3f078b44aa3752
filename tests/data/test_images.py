import hashlib
import struct
import zlib

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset as DicomDataset
from pydicom.dataset import FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, SecondaryCaptureImageStorage, generate_uid

from vertseg_tf.data import images
from vertseg_tf.data.images import MAX_IMAGE_PIXELS, read_image, write_image
from vertseg_tf.errors import ConfigError, DataError

STORED = np.array([[0, 1, 100, 2000], [2047, 3000, 4000, 4095], [17, 512, 1024, 333]], np.uint16)


def _write_dicom(path, stored, photometric="MONOCHROME2", bits_stored=12, **tags):
    """A minimal single-frame DICOM written with pydicom alone (not with write_image)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = DicomDataset()
    ds.file_meta = meta
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "CR"
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = stored.shape[-2:]
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1
    ds.PixelRepresentation = 0
    for keyword, value in tags.items():
        setattr(ds, keyword, value)
    ds.PixelData = np.ascontiguousarray(stored, dtype="<u2").tobytes()
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


def _linear_window(x, center, width, y_min, y_max):
    """DICOM PS3.3 C.11.2.1.2.1 'LINEAR' window, written as a clipped ramp."""
    ramp = (x - (center - 0.5)) / (width - 1) + 0.5
    return np.clip(ramp, 0.0, 1.0) * (y_max - y_min) + y_min


def test_monochrome2_plain_is_stored_values(tmp_path):
    image, meta = read_image(_write_dicom(tmp_path / "a.dcm", STORED))
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, STORED.astype(np.float32))
    assert meta["shape"] == (3, 4)
    assert meta["source_format"] == "dicom"
    assert meta["photometric_interpretation"] == "MONOCHROME2"
    assert meta["pixel_spacing_mm"] is None


def test_monochrome1_is_inverted_so_bone_is_bright(tmp_path):
    image, _ = read_image(_write_dicom(tmp_path / "a.dcm", STORED, "MONOCHROME1"))
    np.testing.assert_array_equal(image, 4095.0 - STORED)


def test_rescale_slope_intercept(tmp_path):
    path = _write_dicom(tmp_path / "a.dcm", STORED, RescaleSlope=2, RescaleIntercept=-100)
    image, _ = read_image(path)
    np.testing.assert_allclose(image, 2.0 * STORED - 100.0, atol=1e-6)


def test_monochrome1_with_rescale_reflects_the_rescaled_range(tmp_path):
    path = _write_dicom(
        tmp_path / "a.dcm", STORED, "MONOCHROME1", RescaleSlope=0.5, RescaleIntercept=10
    )
    image, _ = read_image(path)
    np.testing.assert_allclose(image, 0.5 * (4095.0 - STORED) + 10.0, atol=1e-6)


@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
def test_window_center_width(tmp_path, photometric):
    path = _write_dicom(
        tmp_path / "a.dcm", STORED, photometric, WindowCenter=2000, WindowWidth=1001
    )
    image, _ = read_image(path)
    windowed = _linear_window(STORED.astype(np.float64), 2000, 1001, 0.0, 4095.0)
    expected = windowed if photometric == "MONOCHROME2" else 4095.0 - windowed
    np.testing.assert_allclose(image, expected, rtol=1e-6, atol=1e-3)


def test_window_after_rescale(tmp_path):
    path = _write_dicom(
        tmp_path / "a.dcm",
        STORED,
        RescaleSlope=2,
        RescaleIntercept=-1000,
        WindowCenter=3000,
        WindowWidth=4001,
    )
    image, _ = read_image(path)
    modality = 2.0 * STORED - 1000.0
    expected = _linear_window(modality, 3000, 4001, -1000.0, 2.0 * 4095 - 1000.0)
    np.testing.assert_allclose(image, expected, rtol=1e-6, atol=1e-3)


def _lut_item(first_mapped, entries, bits):
    item = DicomDataset()
    item.add_new("LUTDescriptor", "US", [len(entries), first_mapped, bits])
    item.add_new("LUTData", "US", [int(e) for e in entries])
    return item


def test_voi_lut_sequence_is_preferred_over_the_window(tmp_path):
    stored = np.array([[0, 1, 2], [3, 9, 4]], np.uint16)
    lut = np.array([10, 20, 40, 80, 160], np.uint16)
    path = _write_dicom(
        tmp_path / "a.dcm",
        stored,
        "MONOCHROME1",
        bits_stored=4,
        VOILUTSequence=Sequence([_lut_item(0, lut, 8)]),
        WindowCenter=2,
        WindowWidth=2,
    )
    image, _ = read_image(path)
    np.testing.assert_array_equal(image, 255.0 - lut[np.minimum(stored, 4)])


def test_modality_lut_sequence(tmp_path):
    stored = np.array([[0, 1], [2, 7]], np.uint16)
    lut = np.array([5, 500, 5000], np.uint16)
    path = _write_dicom(
        tmp_path / "a.dcm",
        stored,
        bits_stored=4,
        ModalityLUTSequence=Sequence([_lut_item(0, lut, 16)]),
    )
    image, _ = read_image(path)
    np.testing.assert_array_equal(image, lut[np.minimum(stored, 2)])


def test_pixel_spacing_is_preferred_over_imager_pixel_spacing(tmp_path):
    both = _write_dicom(
        tmp_path / "a.dcm", STORED, PixelSpacing=[0.1, 0.2], ImagerPixelSpacing=[0.3, 0.4]
    )
    imager_only = _write_dicom(tmp_path / "b.dcm", STORED, ImagerPixelSpacing=[0.3, 0.4])
    assert read_image(both)[1]["pixel_spacing_mm"] == (0.1, 0.2)
    assert read_image(imager_only)[1]["pixel_spacing_mm"] == (0.3, 0.4)


def test_non_positive_spacing_is_refused(tmp_path):
    path = _write_dicom(tmp_path / "a.dcm", STORED, PixelSpacing=[0, 0.2])
    with pytest.raises(DataError, match=r"a\.dcm: PixelSpacing: must be two positive"):
        read_image(path)


def test_multi_frame_is_refused(tmp_path):
    frames = np.stack([STORED, STORED])
    path = _write_dicom(tmp_path / "multi.dcm", frames, NumberOfFrames=2)
    with pytest.raises(DataError, match=r"multi\.dcm: NumberOfFrames: multi-frame"):
        read_image(path)


def test_colour_dicom_is_refused(tmp_path):
    path = _write_dicom(
        tmp_path / "rgb.dcm",
        np.zeros((2, 2 * 3), np.uint16),
        "RGB",
        SamplesPerPixel=3,
        PlanarConfiguration=0,
    )
    with pytest.raises(DataError, match=r"rgb\.dcm: PhotometricInterpretation: colour DICOM"):
        read_image(path)


def test_dicom_without_suffix_is_recognised_by_its_preamble(tmp_path):
    path = _write_dicom(tmp_path / "IM0001", STORED)
    image, meta = read_image(path)
    assert meta["source_format"] == "dicom"
    np.testing.assert_array_equal(image, STORED)


@pytest.mark.parametrize(
    ("name", "damage"),
    [
        ("truncated.dcm", lambda data: data[: len(data) - 7]),
        ("header_only.dcm", lambda data: data[:200]),
        ("garbage.dcm", lambda data: bytes(range(256)) * 3),
        ("truncated.png", lambda data: data[: len(data) // 2]),
        ("garbage.png", lambda data: b"not an image at all" * 10),
        ("empty.png", lambda data: b""),
    ],
)
def test_damaged_files_raise_data_error_naming_the_file(tmp_path, name, damage):
    if name.endswith(".dcm"):
        data = _write_dicom(tmp_path / "good.dcm", STORED).read_bytes()
    else:
        cv2.imwrite(str(tmp_path / "good.png"), STORED)
        data = (tmp_path / "good.png").read_bytes()
    (tmp_path / name).write_bytes(damage(data))
    with pytest.raises(DataError) as error:
        read_image(tmp_path / name)
    assert str(tmp_path / name) in str(error.value)


def test_missing_file_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="missing.png: image file not found"):
        read_image(tmp_path / "missing.png")


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_raster_grey_is_read_as_stored_values(tmp_path, dtype, suffix):
    stored = (STORED // (16 if dtype == np.uint8 else 1)).astype(dtype)
    cv2.imwrite(str(tmp_path / f"a{suffix}"), stored)
    image, meta = read_image(tmp_path / f"a{suffix}")
    assert image.dtype == np.float32
    np.testing.assert_array_equal(image, stored)
    assert meta == {
        "shape": (3, 4),
        "source_format": {".png": "png", ".tif": "tiff"}[suffix],
        "pixel_spacing_mm": None,
    }


@pytest.mark.parametrize("channels", [3, 4])
def test_colour_png_becomes_luminance_grey(tmp_path, channels):
    rng = np.random.default_rng(0)
    bgr = rng.integers(0, 65536, size=(5, 6, channels), dtype=np.uint16)
    cv2.imwrite(str(tmp_path / "colour.png"), bgr)
    image, _ = read_image(tmp_path / "colour.png")
    blue, green, red = (bgr[..., i].astype(np.float64) for i in range(3))
    np.testing.assert_allclose(image, 0.299 * red + 0.587 * green + 0.114 * blue, rtol=1e-5)


def test_jpeg_is_decoded(tmp_path):
    cv2.imwrite(str(tmp_path / "a.jpg"), np.full((8, 8), 100, np.uint8))
    image, meta = read_image(tmp_path / "a.jpg")
    assert meta["source_format"] == "jpeg"
    np.testing.assert_allclose(image, 100.0, atol=2.0)


@pytest.mark.parametrize("suffix", [".png", ".tiff"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
def test_write_image_raster_round_trip_is_exact(tmp_path, suffix, dtype):
    stored = np.random.default_rng(1).integers(0, np.iinfo(dtype).max, (9, 7), dtype=dtype)
    write_image(tmp_path / f"a{suffix}", stored)
    np.testing.assert_array_equal(
        cv2.imread(str(tmp_path / f"a{suffix}"), cv2.IMREAD_UNCHANGED), stored
    )
    np.testing.assert_array_equal(read_image(tmp_path / f"a{suffix}")[0], stored)
    assert [p.name for p in tmp_path.iterdir()] == [f"a{suffix}"]


def test_write_image_dicom_fields_and_exact_round_trip(tmp_path):
    stored = np.random.default_rng(2).integers(0, 65536, (6, 5), dtype=np.uint16)
    path = write_image(tmp_path / "a.dcm", stored, pixel_spacing_mm=(0.14, 0.125))
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.SOPClassUID == SecondaryCaptureImageStorage == ds.file_meta.MediaStorageSOPClassUID
    assert (ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit) == (6, 5, 16, 16, 15)
    assert (ds.PixelRepresentation, ds.SamplesPerPixel) == (0, 1)
    assert ds.PhotometricInterpretation == "MONOCHROME2"
    assert [float(s) for s in ds.PixelSpacing] == [0.14, 0.125]
    assert "WindowCenter" not in ds and "StudyDate" in ds and ds.StudyDate == ""
    np.testing.assert_array_equal(ds.pixel_array, stored)
    image, meta = read_image(path)
    np.testing.assert_array_equal(image, stored)
    assert meta["pixel_spacing_mm"] == (0.14, 0.125)


def test_write_image_dicom_bytes_are_deterministic(tmp_path):
    stored = np.arange(12, dtype=np.uint16).reshape(3, 4)
    first = write_image(tmp_path / "a.dcm", stored, window=(5, 10)).read_bytes()
    second = write_image(tmp_path / "b.dcm", stored, window=(5, 10)).read_bytes()
    other = write_image(tmp_path / "c.dcm", stored + 1, window=(5, 10)).read_bytes()
    assert hashlib.sha256(first).digest() == hashlib.sha256(second).digest()
    assert (
        pydicom.dcmread(tmp_path / "a.dcm").SOPInstanceUID
        != pydicom.dcmread(tmp_path / "c.dcm").SOPInstanceUID
    )
    assert first != other


def test_write_image_monochrome1_and_window(tmp_path):
    bone_dark = np.array([[255, 0], [10, 128]], np.uint8)
    path = write_image(tmp_path / "a.dcm", bone_dark, photometric="MONOCHROME1", window=(128, 256))
    ds = pydicom.dcmread(path)
    assert (ds.BitsStored, ds.PhotometricInterpretation) == (8, "MONOCHROME1")
    assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (128.0, 256.0)
    image, _ = read_image(path)
    expected = 255.0 - _linear_window(bone_dark.astype(np.float64), 128, 256, 0.0, 255.0)
    np.testing.assert_allclose(image, expected, rtol=1e-6, atol=1e-4)


def test_write_image_refuses_bad_arguments(tmp_path):
    with pytest.raises(ConfigError, match=".bmp"):
        write_image(tmp_path / "a.bmp", np.zeros((2, 2), np.uint8))
    with pytest.raises(ConfigError, match="photometric"):
        write_image(tmp_path / "a.dcm", np.zeros((2, 2), np.uint8), photometric="RGB")
    with pytest.raises(DataError, match="a.png"):
        write_image(tmp_path / "a.png", np.zeros((2, 2), np.float32))
    with pytest.raises(DataError, match="a.png"):
        write_image(tmp_path / "a.png", np.zeros((2, 2, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_invalid_window_is_a_data_error(tmp_path):
    path = _write_dicom(tmp_path / "w.dcm", STORED, WindowCenter=100, WindowWidth=0)
    with pytest.raises(DataError, match=r"w\.dcm: VOI LUT: cannot apply"):
        read_image(path)


def test_unknown_photometric_interpretation_is_refused(tmp_path):
    path = _write_dicom(tmp_path / "p.dcm", STORED, "HSV")
    with pytest.raises(
        DataError, match=r"p\.dcm: PhotometricInterpretation: 'HSV' is not supported"
    ):
        read_image(path)


def _png_header_claiming(width, height):
    """A PNG signature and IHDR chunk (8-bit grey) claiming the given size, then IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)

    def chunk(kind, body):
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def _tiff_header_claiming(width, height):
    """A little-endian TIFF whose first IFD holds only ImageWidth and ImageLength (LONG)."""
    entries = struct.pack("<HHII", 256, 4, 1, width) + struct.pack("<HHII", 257, 4, 1, height)
    return b"II*\x00" + struct.pack("<I", 8) + struct.pack("<H", 2) + entries + b"\x00" * 4


def _jpeg_claiming(width, height):
    """A real 8x8 JPEG with its SOF0 frame header patched to claim the given size."""
    data = bytearray(cv2.imencode(".jpg", np.zeros((8, 8), np.uint8))[1].tobytes())
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


@pytest.mark.parametrize(
    ("name", "header"),
    [
        ("huge.png", lambda: _png_header_claiming(100_000, 100_000)),
        ("huge.tif", lambda: _tiff_header_claiming(100_000, 100_000)),
        ("huge.jpg", lambda: _jpeg_claiming(60_000, 60_000)),
    ],
)
def test_declared_size_over_the_limit_is_refused_before_decoding(tmp_path, name, header):
    (tmp_path / name).write_bytes(header())
    with pytest.raises(DataError) as error:
        read_image(tmp_path / name)
    assert error.value.file == str(tmp_path / name)
    assert f"limit is {MAX_IMAGE_PIXELS:,} pixels" in error.value.problem


def test_dicom_declared_size_over_the_limit_is_refused(tmp_path):
    path = _write_dicom(tmp_path / "huge.dcm", STORED)
    ds = pydicom.dcmread(path)
    ds.Rows, ds.Columns = 60_000, 60_000
    ds.save_as(path)
    with pytest.raises(DataError, match="limit is"):
        read_image(path)


def test_the_pixel_limit_is_the_documented_boundary(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "MAX_IMAGE_PIXELS", 110)
    cv2.imwrite(str(tmp_path / "at.png"), np.ones((10, 11), np.uint8))
    cv2.imwrite(str(tmp_path / "over.png"), np.ones((10, 12), np.uint8))
    assert read_image(tmp_path / "at.png")[1]["shape"] == (10, 11)
    with pytest.raises(DataError, match="declares 12 x 10 pixels; the limit is 110 pixels"):
        read_image(tmp_path / "over.png")


def test_a_device_or_an_oversized_file_is_refused_before_reading(tmp_path, monkeypatch):
    with pytest.raises(DataError, match="/dev/zero: not a regular file"):
        read_image("/dev/zero")
    monkeypatch.setattr(images, "MAX_IMAGE_FILE_BYTES", 1000)
    (tmp_path / "big.png").write_bytes(_png_header_claiming(4, 4) + b"\x00" * 1000)
    with pytest.raises(DataError, match="big.png: file of 1,0.. bytes; the limit is 1,000"):
        read_image(tmp_path / "big.png")
