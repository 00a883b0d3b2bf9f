#!/usr/bin/env bash
# Run a command while two busy loops keep both cores busy, and report its wall time and exit code.
#
#   bash bench/under_load.sh make test
#   bash bench/under_load.sh make demo DEMO_DIR=/tmp/demo-loaded
#
# "Load is not failure": the suite and the demo must pass on a busy machine, the same as on an idle one.
set -u
python3 -c 'while True: pass' & a=$!
python3 -c 'while True: pass' & b=$!
trap 'kill $a $b 2>/dev/null' EXIT
start=$(date +%s)
"$@"
rc=$?
echo "under load (2 busy loops): '$*' exited $rc after $(( $(date +%s) - start )) s"
exit $rc
