#!/bin/sh
# TEST DOUBLE, not a compiler: stands in for mxcc / nvcc in CPU-only tests. It takes the real dialect's
# command line (flags, -o OUT, SOURCE last) and builds the source as host C into a shared object, the
# "module image" that tests/native/runtime_double.c loads. Line numbers in errors stay the source's own.
if [ "$1" = "--version" ]; then echo "ksdk test double compiler, version 0 (host cc underneath)"; exit 0; fi
out=""; src=""; prev=""
for a in "$@"; do
  if [ "$prev" = "-o" ]; then out="$a"; fi
  prev="$a"; src="$a"
done
exec cc -x c -shared -fPIC -O1 -Wall -Werror=implicit-function-declaration -o "$out" "$src"
