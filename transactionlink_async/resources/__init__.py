"""The API's resources, one module each: thin methods that build requests and parse answers."""

from .cases import Cases
from .parameters import Parameters
from .workflows import Workflows

__all__ = ["Cases", "Parameters", "Workflows"]
