"""The package version, read from the installed distribution (pyproject.toml is the source)."""

from importlib import metadata

try:
    __version__ = metadata.version("langchain-avengers")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
