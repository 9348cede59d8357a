#!/usr/bin/env bash
# Creates the peer environments that the scripts in bench/ compare learnmech against, under
# $VENVS (default ~/venvs), from the package index pip is configured with. Idempotent: an
# environment whose check passed once is kept (delete its folder to rebuild it). torch is
# always installed first and pinned to 2.13.0 (a bare `torch` would pull the CUDA build).
#
#   nt      neural-tangents 0.6.5 on jax/jaxlib 0.5.3 (analytic and empirical kernels)
#   nt423   neural-tangents 0.6.5 on jax/jaxlib 0.4.23 (its STRUCTURED_DERIVATIVES fails on
#           jax >= 0.4.30: jax.interpreters.ad.source_info_util is gone)
#   peers   torch 2.13.0, learnmech's dependencies (scripts run with PYTHONPATH=src) and the
#           torch peers: PyHessian 0.1, microsoft/mup 1.0.0, ckatorch 1.0.3, torch-cka 0.21,
#           curvlinops-for-pytorch 3.0.1, hessian-eigenthings 1.0.0a5
#
# neural-tangents and mup are installed without their declared dependencies: neural-tangents
# declares tensorflow and tf2jax, used only by its experimental TF converter (the bench
# stubs that module); mup declares torchvision, used only by its examples. Every
# environment ends with an import check; one that fails is reported with its reason (the
# log is $VENVS/NAME.log) and the others are still built. Exit status: number of failures.
#
#   bash bench/peers.sh [nt] [nt423] [peers]        # default: all three
set -u
VENVS="${VENVS:-$HOME/venvs}"
PYTHON="${PYTHON:-python3}"
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
mkdir -p "$VENVS"
CONSTRAINT="$VENVS/constraints.txt"
echo "torch==2.13.0" >"$CONSTRAINT"
failures=0

# fail NAME REASON: report a peer that could not be installed (kept in $VENVS/NAME.status)
fail() {
  echo "peer environment $1: NOT INSTALLED: $2" | tee "$VENVS/$1.status"
  failures=$((failures + 1))
}

# build NAME CHECK STEP...: each STEP is one pip command line run in the environment
build() {
  local name=$1 check=$2
  shift 2
  local dir="$VENVS/$name" log="$VENVS/$name.log"
  if [ -f "$dir/.ok" ] && "$dir/bin/python" -c "$check" >/dev/null 2>&1; then
    echo "peer environment $name: present ($dir)"
    return
  fi
  rm -rf "$dir"
  : >"$log"
  if ! "$PYTHON" -m venv "$dir" >>"$log" 2>&1; then
    fail "$name" "python -m venv failed (see $log)"
    return
  fi
  "$dir/bin/python" -m pip install -q --upgrade pip >>"$log" 2>&1
  local step
  for step in "$@"; do
    echo "+ pip install $step" >>"$log"
    # shellcheck disable=SC2086  # each step is a word list on purpose
    if ! "$dir/bin/python" -m pip install -q -c "$CONSTRAINT" $step >>"$log" 2>&1; then
      fail "$name" "pip install $step: $(grep -E 'ERROR|No matching' "$log" | tail -1)"
      return
    fi
  done
  if ! "$dir/bin/python" -c "$check" >>"$log" 2>&1; then
    fail "$name" "import check failed: $(tail -1 "$log")"
    return
  fi
  touch "$dir/.ok"
  rm -f "$VENVS/$name.status"
  echo "peer environment $name: built ($dir)"
}

NT_CHECK='import sys, types
sys.modules["neural_tangents.experimental"] = types.ModuleType("neural_tangents.experimental")
import jax, neural_tangents
print(jax.__version__, neural_tangents.__version__)'

requirements() {  # learnmech's runtime dependencies, read from pyproject.toml
  "$PYTHON" - "$REPO/pyproject.toml" <<'EOF'
import sys, tomllib
print(" ".join(tomllib.load(open(sys.argv[1], "rb"))["project"]["dependencies"]))
EOF
}

PEERS_CHECK='import torch, pyhessian, mup, ckatorch, torch_cka, curvlinops, hessian_eigenthings
assert torch.__version__.startswith("2.13.0"), torch.__version__
import importlib.metadata as m
print(*(f"{p} {m.version(p)}" for p in ("torch", "pyhessian", "mup", "ckatorch", "torch-cka",
      "curvlinops-for-pytorch", "hessian-eigenthings")), sep="; ")'

wanted=("$@")
[ ${#wanted[@]} -eq 0 ] && wanted=(nt nt423 peers)
for name in "${wanted[@]}"; do
  case $name in
    nt) build nt "$NT_CHECK" "jax==0.5.3 jaxlib==0.5.3 frozendict numpy" \
                             "--no-deps neural-tangents==0.6.5" ;;
    nt423) build nt423 "$NT_CHECK" "jax==0.4.23 jaxlib==0.4.23 numpy<2 scipy<1.13 frozendict" \
                                   "--no-deps neural-tangents==0.6.5" ;;
    peers) build peers "$PEERS_CHECK" "torch==2.13.0" "$(requirements)" \
                       "--no-deps pyhessian==0.1 mup==1.0.0" "seaborn tqdm" \
                       "ckatorch==1.0.3 torch-cka==0.21" \
                       "curvlinops-for-pytorch==3.0.1 hessian-eigenthings==1.0.0a5" ;;
    *) echo "unknown peer environment: $name (allowed: nt, nt423, peers)" >&2; exit 2 ;;
  esac
done
for name in "${wanted[@]}"; do
  [ -f "$VENVS/$name/.ok" ] && echo "$name: $("$VENVS/$name/bin/python" -c "$( [ "${name#nt}" != "$name" ] && echo "$NT_CHECK" || echo "$PEERS_CHECK")" 2>/dev/null | tail -1)"
done
exit "$failures"
