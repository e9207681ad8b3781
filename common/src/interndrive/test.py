"""`torchrun --nproc-per-node 8 -m interndrive.test CONFIG CHECKPOINT`: the short name of
`interndrive.common.test` (see `interndrive/train.py` for why it may live in the namespace).
"""

from interndrive.common.test import main

if __name__ == '__main__':
    raise SystemExit(main())
