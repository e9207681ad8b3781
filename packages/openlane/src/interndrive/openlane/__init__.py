"""interndrive.openlane: see packages/openlane/README.md."""

__version__ = '0.1.0'
