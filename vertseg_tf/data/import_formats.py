"""Every importer by name, above the modules that implement them.

`importers.py` holds Labelme and COCO, `corner_importers.py` the corner-annotated public sets
(AASCE 2019, BUU-LSPINE), which reuse `importers.py`'s helpers; the dispatch lives here so
that neither of the two imports the other back. The importers load only when one is called,
so the format names stay cheap to read (the CLI's parser uses them).
"""

from __future__ import annotations

from vertseg_tf.errors import ConfigError

__all__ = ["IMPORT_FORMATS", "import_dataset"]

IMPORT_FORMATS = ("labelme", "coco", "aasce", "corners-csv")


def import_dataset(kind: str, source, out, **options):
    """Import `source` into the native dataset folder `out` with the importer named `kind`.

    "labelme": `importers.import_labelme`, "coco": `importers.import_coco`, "aasce":
    `corner_importers.import_aasce`, "corners-csv": `corner_importers.import_corners_csv`;
    `options` pass through. Returns the new `Dataset`.

    Example (needs annotation files, so not run as a doctest):
        >>> dataset = import_dataset(  # doctest: +SKIP
        ...     "coco", "instances_default.json", "my_dataset", link=True)
    """
    if kind in ("labelme", "coco"):
        from vertseg_tf.data.importers import import_coco, import_labelme

        importer = import_labelme if kind == "labelme" else import_coco
    elif kind in ("aasce", "corners-csv"):
        from vertseg_tf.data.corner_importers import import_aasce, import_corners_csv

        importer = import_aasce if kind == "aasce" else import_corners_csv
    else:
        raise ConfigError(
            f"unknown import format {kind!r}; expected one of {', '.join(IMPORT_FORMATS)}"
        )
    return importer(source, out, **options)
