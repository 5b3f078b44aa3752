"""vertseg-tf benchmarks: scripts that measure and write JSON, and the suite `vertseg-tf bench`.

Each script runs on its own (`python benchmarks/<name>.py --help`) and exposes its measurement
as `run(quick: bool, ...) -> dict`; `benchmarks.suite` calls those side by side in one run.
This folder lives in the source checkout only: it is not part of the installed package.
"""
