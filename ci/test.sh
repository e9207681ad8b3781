#!/usr/bin/env bash
# The test command of the README. With no argument: lint + every package's tests (the whole suite).
# With package names (dcnv3, common, occupancy, hdmap, openlane, or "affected" for the packages touched
# since origin/main), only those: a change to one task can be tested alone.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet 'nox>=2024.10'
if [ "$#" -eq 0 ]; then
    exec python3 -m nox
fi
if [ "$1" = "affected" ]; then
    mapfile -t sessions < <(python3 ci/affected.py "${2:-origin/main}")
    set -- "${sessions[@]}"
fi
exec python3 -m nox -s lint "$@"
