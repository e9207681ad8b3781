"""interndrive.occupancy: see packages/occupancy/README.md."""

__version__ = '0.1.0'
