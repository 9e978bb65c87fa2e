"""Image consistency verification harness for container engines."""

__version__ = "0.1.0"
