"""VectorMapNet for the Argoverse 2 online HD map challenge (importing registers the modules)."""

from .bev_neck import BEVResNetNeck
from .ipm_encoder import IPMEncoder
from .map_element_detector import MapElementDetector
from .polyline_generator import PolylineGenerator
from .vectormapnet import DGHead, VectorMapNet

__all__ = [
    'BEVResNetNeck',
    'DGHead',
    'IPMEncoder',
    'MapElementDetector',
    'PolylineGenerator',
    'VectorMapNet',
]
