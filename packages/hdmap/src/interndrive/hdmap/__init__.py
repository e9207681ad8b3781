"""interndrive.hdmap: see packages/hdmap/README.md."""

__version__ = '0.1.0'
