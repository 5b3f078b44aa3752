"""Doctests of `vertseg_tf` run in a fresh temporary folder.

Examples that write files (`runs/report`, `out/summary.json`) then leave the checkout alone,
and each starts from an empty folder.
"""

import pytest


@pytest.fixture(autouse=True)
def _doctest_in_a_temporary_folder(request, tmp_path, monkeypatch):
    if type(request.node).__name__ == "DoctestItem":
        monkeypatch.chdir(tmp_path)
