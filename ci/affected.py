"""Prints the nox sessions a change needs: `python ci/affected.py [BASE]` (default origin/main).

A change inside one task package tests that task alone; a change to dcnv3/ or common/ fans out to every
package that depends on it; a change to the shared environment (ci/, noxfile.py, pyproject.toml) runs all.
"""

from __future__ import annotations

import subprocess
import sys

TASKS = ('occupancy', 'hdmap', 'openlane')
ALL = ('dcnv3', 'common', *TASKS)


def sessions_for(paths: list[str]) -> list[str]:
    selected: set[str] = set()
    for path in paths:
        top = path.split('/', 1)[0]
        if top == 'dcnv3':
            selected.update(ALL)
        elif top == 'common':
            selected.update(('common', *TASKS))
        elif top == 'packages':
            parts = path.split('/')
            if len(parts) > 1 and parts[1] in TASKS:
                selected.add(parts[1])
        elif path.endswith('.md') or top in {'.gitignore'}:
            continue
        else:  # ci/, .ci/, noxfile.py, pyproject.toml: the shared environment
            selected.update(ALL)
    return [s for s in ALL if s in selected]


def main() -> None:
    base = sys.argv[1] if len(sys.argv) > 1 else 'origin/main'
    changed = subprocess.run(
        ['git', 'diff', '--name-only', base], check=True, capture_output=True, text=True
    ).stdout.split()
    changed += subprocess.run(
        ['git', 'ls-files', '--others', '--exclude-standard'],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    print('\n'.join(sessions_for(changed)))


if __name__ == '__main__':
    main()
