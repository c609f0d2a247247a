#!/usr/bin/env bash
# Here, before a GPU session: pack what the device machine lacks into git-ignored folders that a run carries.
#   .whl/  the Python wheels (../shared/device/pack.sh)
#   .sbx/  bubblewrap as Debian's package, and setup.sh that unpacks it there and points KSDK_BWRAP at it
#   .kb/   KernelBench's level folders and its src/ (its evaluator, for benchmarks/kernelbench_peer.py), from a
#          snapshot's git directory (the fetch tool's), never committed
# Usage: bash benchmarks/pack_device.sh [KERNELBENCH_GIT_DIR]
# Then: run(carry=[".whl", ".sbx", ".kb"], command="source .whl/prelude.sh && source .sbx/setup.sh && ...")
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
ex="$(git rev-parse --git-dir)/info/exclude"; mkdir -p "$(dirname "$ex")"
for p in /.whl/ /.sbx/ /.kb/ /.kbout/; do grep -qxF "$p" "$ex" 2>/dev/null || echo "$p" >> "$ex"; done
KSDK_DEVICE_EXTRA="${KSDK_DEVICE_EXTRA:-} einops" bash ../shared/device/pack.sh  # einops: two of level 3's problems import it
rm -rf .sbx && mkdir -p .sbx
(cd .sbx && apt-get download bubblewrap >/dev/null)
cat > .sbx/setup.sh <<'SETUP'
# sourced on the device machine: bubblewrap from the carried package, without touching /
mkdir -p /tmp/sbx && for f in .sbx/*.deb; do dpkg -x "$f" /tmp/sbx; done
export KSDK_BWRAP=/tmp/sbx/usr/bin/bwrap
"$KSDK_BWRAP" --version
SETUP
ls .sbx | sed 's/^/sandbox: /'
if [ -n "${1:-}" ]; then
  rm -rf .kb && mkdir -p .kb
  git --git-dir "$1" archive HEAD KernelBench/level1 KernelBench/level2 KernelBench/level3 src | tar -x -C .kb
  echo "kernelbench: $(git --git-dir "$1" rev-parse --short HEAD), $(ls .kb/KernelBench/level1 | wc -l) level1 files," \
    "evaluator $(ls .kb/src/kernelbench/eval.py)"
fi
