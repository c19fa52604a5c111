"""The package's version, in a base module every layer (and the simulator) may import without the package's face."""

__version__ = "0.1.0"
