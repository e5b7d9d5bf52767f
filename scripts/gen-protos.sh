#!/usr/bin/env bash
# Generate the Python protobuf and gRPC stubs for protos/grpc_predict_v2.proto into a directory.
# Usage: scripts/gen-protos.sh PYTHON OUT_DIR
# The proto is compiled from protos/ as its include root so the descriptor's file name stays
# "grpc_predict_v2.proto", identical to KServe's; the generated absolute import is then made
# package-relative so the stubs live inside gateway/protocol. Type stubs (.pyi) for both modules
# come from mypy-protobuf, so mypy --strict checks the code that calls them.
set -euo pipefail
if [[ "${1:-}" == "--help" || $# -ne 2 ]]; then
  echo "usage: $0 PYTHON OUT_DIR" >&2
  [[ "${1:-}" == "--help" ]] && exit 0 || exit 2
fi
python=$1
out=$2
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
bin=$(dirname "$python")
"$python" -m grpc_tools.protoc -I"$root/protos" \
  --plugin=protoc-gen-mypy="$bin/protoc-gen-mypy" \
  --plugin=protoc-gen-mypy_grpc="$bin/protoc-gen-mypy_grpc" \
  --python_out="$out" --mypy_out=quiet:"$out" \
  --grpc_python_out="$out" --mypy_grpc_out=quiet:"$out" \
  "$root/protos/grpc_predict_v2.proto"
sed -i 's/^import grpc_predict_v2_pb2 as /from . import grpc_predict_v2_pb2 as /' \
  "$out/grpc_predict_v2_pb2_grpc.py" "$out/grpc_predict_v2_pb2_grpc.pyi"
