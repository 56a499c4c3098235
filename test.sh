#!/usr/bin/env bash
# Everything the test suite needs, then the whole suite:   ./test.sh   (pytest options pass on)
#   1. PostgreSQL with pgvector and Redis up on their standard local ports (scripts/services.sh);
#   2. Souverain installed into ./.venv with the test extras (./install.sh test);
#   3. pytest.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/services.sh
./install.sh test
exec .venv/bin/pytest "$@"
