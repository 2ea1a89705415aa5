#!/bin/sh
# Rebuilds weights/rose-micro and test/fixtures/rose-micro. Needs Debian's python3-torch (apt) and,
# for speed, OpenBLAS: Debian's torch links the reference BLAS (~2 GFLOP/s here); OpenBLAS is ~40x
# faster. One thread: on these shared cores it was faster than two (measured), and it keeps the
# summation order fixed. OpenBLAS is unpacked into weights/recipe/.build/openblas (no system change) and preloaded.
set -e
HERE=$(cd "$(dirname "$0")" && pwd)
OB="$HERE/.build/openblas"
if [ ! -e "$OB/usr/lib/x86_64-linux-gnu/openblas-pthread/libblas.so.3" ]; then
  mkdir -p "$OB" && (cd "$OB" && apt-get download libopenblas0-pthread && dpkg-deb -x libopenblas0-pthread_*.deb .)
fi
export LD_LIBRARY_PATH="$OB/usr/lib/x86_64-linux-gnu/openblas-pthread${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
exec /usr/bin/python3 "$HERE/build.py" "$@"
