#!/usr/bin/env bash
# Mark the example essay through llama-cpp-python's OpenAI-compatible server (a server no one here
# wrote), in JSON mode, with the model given as $1 (default: the embedded Qwen GGUF). Prints the
# CLI's result and the wall time; docs/ENDPOINTS.md records what it gave.
#   benchmarks/endpoint_check.sh [MODEL.gguf] [json_mode|json_schema] [sentences|free]
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-$HOME/.cache/draftmark/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf}
mode=${2:-json_mode}
evidence=${3:-sentences}
port=$(.venv/bin/python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
log=$(mktemp)
.venv/bin/python -m llama_cpp.server --model "$model" --model_alias endpoint-check --host 127.0.0.1 \
  --port "$port" --n_ctx 8192 --n_threads "$(nproc)" --seed 0 >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 240); do curl -sf "http://127.0.0.1:$port/v1/models" >/dev/null && break; sleep 0.5; done
start=$(date +%s)
set +e
DRAFTMARK_LLM_BASE_URL="http://127.0.0.1:$port/v1" DRAFTMARK_LLM_MODEL=endpoint-check DRAFTMARK_LLM_API_KEY=none \
  DRAFTMARK_STRUCTURED_OUTPUT="$mode" DRAFTMARK_EVIDENCE_MODE="$evidence" DRAFTMARK_REQUEST_TIMEOUT_S=900 \
  .venv/bin/draftmark mark examples/stalin-1929.txt --scheme stalin-power-1929 --format json
code=$?
set -e
echo "exit $code; wall $(( $(date +%s) - start )) s; model $(basename "$model"); $mode; evidence $evidence" >&2
