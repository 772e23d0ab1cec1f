"""The SDK version, as installed (reported by code servers so the control plane can show it)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("partita")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
