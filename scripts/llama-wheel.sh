#!/usr/bin/env bash
# Build (once) and install llama-cpp-python for the embedded model.
#
# PyPI ships llama-cpp-python only as source, and its default build uses -march=native,
# which on some virtual machines emits instructions the VM then refuses (we saw
# "Illegal instruction" on first decode). We build a portable AVX2/FMA/F16C wheel into our own
# wheelhouse, keyed by these flags, so pip's generic wheel cache can never hand back a
# native build. First run: ~10 minutes on 2 cores; afterwards: seconds.
set -euo pipefail
PY=${PY:-.venv/bin/python}
VERSION=0.3.36
FLAGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=OFF -DLLAMA_CURL=OFF"
VARIANT=avx2-v1
WHEELHOUSE=${DRAFTMARK_WHEELHOUSE:-${XDG_CACHE_HOME:-$HOME/.cache}/draftmark/wheels/$VARIANT}
mkdir -p "$WHEELHOUSE"
if ! ls "$WHEELHOUSE"/llama_cpp_python-$VERSION-*.whl >/dev/null 2>&1; then
  echo "building llama-cpp-python $VERSION ($VARIANT); about 10 minutes on 2 cores, once" >&2
  CMAKE_ARGS="$FLAGS" CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) \
    "$PY" -m pip wheel --no-cache-dir --no-deps -w "$WHEELHOUSE" "llama-cpp-python==$VERSION"
fi
"$PY" -m pip install -q --find-links "$WHEELHOUSE" "llama-cpp-python==$VERSION"
"$PY" - <<'PY'
import llama_cpp
print(f"llama-cpp-python {llama_cpp.__version__} ready", flush=True)
PY
