#!/usr/bin/env bash
# Mistral Vibe (Mistral's coding agent, tests/test_vibe.py's client) in its own venv:
#   tests/vibe/install.sh           install into ./.venv-vibe when a Python >= 3.12 exists
#   tests/vibe/install.sh --find    only print that Python's path (nothing when there is none)
# Vibe needs Python >= 3.12 and Souverain runs on 3.11, so they cannot share .venv.
# Without such a Python it says so and exits 0: test_vibe.py then skips with that reason.
set -euo pipefail
cd "$(dirname "$0")/../.."

find_python() {
  local candidate
  for candidate in python3.14 python3.13 python3.12 python3 \
      "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[2-9]*/bin/python; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

if [ "${1:-}" = "--find" ]; then
  find_python || true
  exit 0
fi

if ! python=$(find_python); then
  echo "tests/vibe/install.sh: no Python >= 3.12 found; Mistral Vibe not installed" >&2
  exit 0
fi
[ -x .venv-vibe/bin/python ] || "$python" -m venv .venv-vibe
# --no-deps: requirements.txt is the whole, pinned set (see its header for why).
.venv-vibe/bin/python -m pip install --quiet --no-deps -r tests/vibe/requirements.txt
