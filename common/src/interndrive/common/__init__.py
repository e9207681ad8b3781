"""interndrive.common: the shared InternImage backbone, BEV layers and tooling of interndrive."""

__version__ = '0.1.0'
