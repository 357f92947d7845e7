#!/usr/bin/env bash
# Installs what shardlm needs to build and test (Debian 12, as root or with
# sudo). Idempotent: installs only what is missing and says what it did.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap          # Bazel 4.2.3 (offline, WORKSPACE-based)
  g++
  libabsl-dev
  libprotobuf-dev protobuf-compiler
  libgtest-dev libgmock-dev
  libbenchmark-dev
  libgflags-dev libgoogle-glog-dev
  libeigen3-dev
  libssl-dev
  libcpp-httplib-dev       # HTTP server of `shardlm serve`
  nlohmann-json3-dev       # JSON of `shardlm serve`, tokenizer.json
  libicu-dev               # regex pre-tokenization of BPE tokenizers
  python3
)

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

# The serve tests drive the server with the official OpenAI Node client,
# pinned in third_party/node/package.json (package-lock.json), installed into
# third_party/node/node_modules (ignored by git and Bazel). Needs node and
# npm (Node 20); without them the client tests skip.
install_node_clients() {
  local dir
  dir="$(cd "$(dirname "$0")" && pwd)/third_party/node"
  if [ -d "$dir/node_modules/openai" ]; then
    echo "setup.sh: OpenAI Node client already installed in third_party/node."
  elif command -v npm >/dev/null; then
    echo "setup.sh: installing the OpenAI Node client into third_party/node"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "setup.sh: npm not found; the serve tests will skip the OpenAI Node client"
  fi
}

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup.sh: all ${#PACKAGES[@]} packages already installed; nothing to do."
  install_node_clients
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then SUDO=sudo; else
    echo "setup.sh: need root (or sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi

echo "setup.sh: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
echo "setup.sh: installed ${#missing[@]} package(s)."
install_node_clients
