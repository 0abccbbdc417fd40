#!/usr/bin/env bash
# Builds Horovod 0.28.1 with PyTorch (CPU) + Gloo support.
# Why a script and not an extra: horovod 0.28.1 compiles with C++14 but torch>=2.1
# needs C++17, so the sdist must be patched before building (an extra can't say that).
# Idempotent: does nothing when horovod.torch 0.28.1 already imports. The wheel it builds is
# kept in a cache outside any checkout (SPELLRAY_WHEEL_CACHE), keyed by the Python and torch
# it was built against, so a fresh virtualenv installs it in seconds instead of ten minutes.
set -euo pipefail

HOROVOD_VERSION=0.28.1
TORCH_VERSION=2.13.0
PYTHON=${PYTHON:-python}
LOG=${HOROVOD_BUILD_LOG:-/tmp/spellray-horovod-build.log}

log() { echo "[install_horovod] $*" | tee -a "$LOG"; }

if "$PYTHON" -c "import horovod, horovod.torch, sys; sys.exit(horovod.__version__ != '$HOROVOD_VERSION')" 2>/dev/null; then
    log "horovod $HOROVOD_VERSION with torch support already installed"
    exit 0
fi

# torch must be installed (and be the pinned CPU build) before horovod compiles against it.
if ! "$PYTHON" -c "import torch, sys; sys.exit(not torch.__version__.startswith('$TORCH_VERSION'))" 2>/dev/null; then
    log "installing torch==$TORCH_VERSION"
    "$PYTHON" -m pip install "torch==$TORCH_VERSION" >>"$LOG" 2>&1
fi
"$PYTHON" -c "import torch, sys; sys.exit(not torch.__version__.startswith('$TORCH_VERSION'))" \
    || { log "torch==$TORCH_VERSION is not importable after install; see $LOG"; exit 1; }
PY_TAG=$("$PYTHON" -c 'import sys; print(f"cp{sys.version_info[0]}{sys.version_info[1]}")')
CACHE_ROOT=${SPELLRAY_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/spellray/wheels}
CACHE="$CACHE_ROOT/horovod-$HOROVOD_VERSION-torch-$TORCH_VERSION-$PY_TAG"

works() {
    "$PYTHON" -c "import horovod.torch as hvd; print('horovod', __import__('horovod').__version__, 'gloo built:', hvd.gloo_built())" 2>>"$LOG" | tee -a "$LOG"
}
# horovod's own runtime deps (cloudpickle, psutil, pyyaml, packaging) without re-resolving torch.
runtime_deps() { "$PYTHON" -m pip install cloudpickle psutil pyyaml packaging >>"$LOG" 2>&1; }

wheel=$(ls "$CACHE"/horovod-"$HOROVOD_VERSION"-*.whl 2>/dev/null | head -n 1 || true)
if [ -n "$wheel" ]; then
    log "installing the cached build $wheel"
    if "$PYTHON" -m pip install --no-deps --force-reinstall "$wheel" >>"$LOG" 2>&1 \
            && runtime_deps && works; then
        exit 0
    fi
    log "the cached wheel does not work here; rebuilding it"
    rm -f "$wheel"
fi

command -v cmake >/dev/null || "$PYTHON" -m pip install cmake >>"$LOG" 2>&1

WORK=$(mktemp -d /tmp/horovod-src.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
log "downloading horovod==$HOROVOD_VERSION sdist into $WORK"
"$PYTHON" -m pip download --no-deps --no-binary :all: "horovod==$HOROVOD_VERSION" -d "$WORK" >>"$LOG" 2>&1
tar -xzf "$WORK"/horovod-"$HOROVOD_VERSION".tar.gz -C "$WORK"
SRC="$WORK/horovod-$HOROVOD_VERSION"

for f in "$SRC/CMakeLists.txt" "$SRC/horovod/torch/CMakeLists.txt"; do
    grep -q 'set(CMAKE_CXX_STANDARD 14)' "$f" \
        || { log "pattern 'set(CMAKE_CXX_STANDARD 14)' not found in $f: the sdist changed"; exit 1; }
    sed -i 's/set(CMAKE_CXX_STANDARD 14)/set(CMAKE_CXX_STANDARD 17)/' "$f"
    log "patched C++ standard 14 -> 17 in ${f#"$SRC"/}"
done

log "building horovod (about 10 minutes on 2 cores) into $CACHE"
mkdir -p "$CACHE"
(cd "$SRC" && HOROVOD_WITH_PYTORCH=1 HOROVOD_WITH_GLOO=1 HOROVOD_WITHOUT_MPI=1 \
    HOROVOD_WITHOUT_TENSORFLOW=1 HOROVOD_WITHOUT_MXNET=1 \
    "$PYTHON" -m pip wheel --no-build-isolation --no-deps . -w "$WORK/wheel" >>"$LOG" 2>&1) \
    || { log "horovod build failed; see $LOG"; exit 1; }
# Into the cache only once it is whole: a build cut short leaves no half wheel behind.
mv "$WORK"/wheel/horovod-"$HOROVOD_VERSION"-*.whl "$CACHE"/
wheel=$(ls "$CACHE"/horovod-"$HOROVOD_VERSION"-*.whl | head -n 1)
"$PYTHON" -m pip install --no-deps "$wheel" >>"$LOG" 2>&1 \
    || { log "installing $wheel failed; see $LOG"; exit 1; }
runtime_deps
works || { log "horovod does not import after the build; see $LOG"; exit 1; }
