"""vertseg-tf benchmarks: scripts that measure and write JSON, and the suite `vertseg-tf bench`.

Each script runs on its own from the repository root (`python -m benchmarks.<name> --help`,
which puts the root on `sys.path`, so `vertseg_tf` and the test fixtures import without any
path editing) and exposes its measurement as `run(quick: bool, ...) -> dict`;
`benchmarks.suite` calls those side by side in one run.
This folder lives in the source checkout only: it is not part of the installed package.
"""
