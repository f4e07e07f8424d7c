#!/usr/bin/env bash
# Regenerates proto/territorypb from proto/territory/v1/*.proto with pinned
# tools, all built from the Go module proxy (no protoc binary needed):
#   bash proto/generate.sh
set -euo pipefail
BUF_VERSION=v1.75.0
PROTOC_GEN_GO_VERSION=v1.36.11
PROTOC_GEN_GO_GRPC_VERSION=v1.6.2

here=$(cd "$(dirname "$0")" && pwd)
tools=${TERRITORY_PROTO_TOOLS:-$here/../bin/proto-tools}
mkdir -p "$tools"
GOBIN=$tools go install "github.com/bufbuild/buf/cmd/buf@$BUF_VERSION"
GOBIN=$tools go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
GOBIN=$tools go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"

cd "$here"
rm -rf territorypb.tmp && mkdir territorypb.tmp
PATH=$tools:$PATH buf generate --template buf.gen.yaml -o territorypb.tmp
# paths=source_relative puts files under territory/v1/ of the output dir.
mkdir -p territorypb
rm -f territorypb/*.pb.go
mv territorypb.tmp/territorypb/territory/v1/*.pb.go territorypb/
rm -rf territorypb.tmp
echo "generated: $(ls territorypb)"
