"""`vertseg-tf app`: a local web page for the semi-automatic workflow (click the centres, see
the outlines and read-outs, download the result), and the JSON API behind it.

Needs the `[app]` extra (FastAPI, uvicorn, python-multipart); `create_app` imports them.
"""

from __future__ import annotations

__all__ = ["create_app"]


def __getattr__(name):
    if name == "create_app":
        from vertseg_tf.app.server import create_app

        return create_app
    raise AttributeError(f"module 'vertseg_tf.app' has no attribute {name!r}")
