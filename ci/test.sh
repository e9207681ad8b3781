#!/usr/bin/env bash
# Per-package CI entry: lint + the named packages' test sessions (dcnv3, common, occupancy, hdmap,
# openlane), or "affected" for the packages touched since origin/main (a change to dcnv3/ or common/
# fans out to every task). The whole suite is the README's test command, `python3 -m nox` (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
    echo "usage: bash ci/test.sh PACKAGE... | affected [BASE]   (whole suite: python3 -m nox)" >&2
    exit 2
fi
python3 -m pip install --quiet 'nox>=2024.10'
if [ "$1" = "affected" ]; then
    mapfile -t sessions < <(python3 ci/affected.py "${2:-origin/main}")
    set -- "${sessions[@]}"
fi
exec python3 -m nox -s lint "$@"
