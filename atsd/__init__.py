"""atsd: a heat-pump optimizer for a Nordic home, running on a Raspberry Pi."""

__version__ = "0.1.0"
