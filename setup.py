"""Packaging beyond what pyproject.toml can say: the verification suites stay at the top of the repository
(`suites/`), and ship inside the package as `harness.suites`, so an installed harness (`pip install .`,
not editable) finds them wherever it runs; every other package is found under `harness/`."""

from setuptools import find_packages, setup

setup(packages=[*find_packages(include=["harness", "harness.*"]), "harness.suites"],
      package_dir={"harness.suites": "suites"})
