"""The `transactionlink` command line: demo, run, status, wait, result, cancel."""

from .main import amain, main

__all__ = ["amain", "main"]
