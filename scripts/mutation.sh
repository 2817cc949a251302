#!/usr/bin/env bash
# Mutation testing of the core modules with mutmut (https://pypi.org/project/mutmut/),
# not part of CI (too slow: a whole run takes hours on 2 cores; docs/testing.md says how
# it works, docs/journal/mutation.md gives the figures). Run from anywhere:
#
#     bash scripts/mutation.sh            # a fresh run: every mutant
#     bash scripts/mutation.sh --resume   # go on with an interrupted run
#
# What is mutated, and which test files are run against it, is set in setup.cfg
# ([mutmut]): every module of minipixel/ but the command line (cli, cli_pictures), the
# pictures (viz), the benchmark and testing/. mutmut first runs those tests once to
# learn which tests reach which function, then runs, for each mutant, only the tests
# that reach its function (of them, only the files tests/conftest.py's MUTATION_TESTS
# lists for its module).
# The score and the survivors are printed at the end (survivors: `mutmut show NAME`
# prints one as a diff).
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${MUTATION_VENV:-.venv-mutation}
if [[ ! -x $venv/bin/mutmut ]]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -e ".[test]" "mutmut==3.8.1"
fi
if [[ ${1:-} != --resume ]]; then
    rm -rf mutants
fi
start=$(date +%s)
# One BLAS thread per worker: mutmut runs two workers on the two cores.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
export MUTATION_SLOW_LOG=$PWD/mutants/too-slow.txt MUTATION_TIME_LOG=$PWD/mutants/times.tsv
"$venv/bin/mutmut" run --max-children "${MUTATION_JOBS:-2}" >mutation.log 2>&1 || true
echo "mutmut run: $(( $(date +%s) - start )) s (log: mutation.log)"
"$venv/bin/python" scripts/mutation_score.py
