"""The ``avengers`` command."""

from langchain_avengers.cli.main import main

__all__ = ["main"]
