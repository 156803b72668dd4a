"""Setup shim for OpenMMLab's install guides (``pip install -v -e .``).

The package's metadata and dependencies live in pyproject.toml only.
"""
from setuptools import setup

setup()
