"""Dataset side of the HD map task.

`map_targets` and `multiview` are pure numpy/shapely/cv2 (the maths, tested on its own); `dataset` and
`transforms` are the thin OpenMMLab adapters that register them (importing them needs mmengine/mmdet3d).
"""
