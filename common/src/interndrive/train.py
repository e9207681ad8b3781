"""`torchrun --nproc-per-node 8 -m interndrive.train CONFIG`: the short name of `interndrive.common.train`.

A module may live directly in the PEP 420 namespace `interndrive` (only `__init__.py` may not), and only
interndrive-common ships this one, so the launch command users know from OpenMMLab's tools works as is.
"""

from interndrive.common.train import main

if __name__ == '__main__':
    raise SystemExit(main())
