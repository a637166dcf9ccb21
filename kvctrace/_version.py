"""The package version, in its own base module so that modules inside the package never import
the package root (``kvctrace/__init__.py`` imports the store and the trace)."""
__version__ = "0.1.0"
