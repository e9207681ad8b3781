"""OpenLane-V2 baseline model (ROAD_BEVFormer): heads, assigners, detector (OpenMMLab glue)."""
