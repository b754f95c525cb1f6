#!/bin/bash
# pycolmap installed by the product from its wheel kept on "Drive" (a folder here), with real pip, as a later session
# on Colab does; then a "new runtime" whose wheel on Drive is damaged (moved aside, fetched again: with no network,
# blocked with one line). Run from the repository root where pycolmap is NOT installed, the wheel at hand:
#   WHEEL=pycolmap_cuda12-4.2.1-cp312-cp312-manylinux_2_28_x86_64.whl bash bench/colmap_install_from_drive.sh
# The CUDA wheel also needs the CUDA 12 runtime and X11 client libraries (docs/colmap.md). Run on an H200: docs/colmap.md.
set -u
W=/tmp/inst; rm -rf $W; D=$W/drive/keepalive/_meshroom/pycolmap; mkdir -p $D
python3 -c "import pycolmap" 2>&1 | tail -1
NAME=$(basename "$WHEEL"); cp "$WHEEL" $D/$NAME
(cd $D && sha256sum $NAME > $NAME.sha256)  # as the first session's download leaves it
python3 -m keepalive_sim.sphere_scene $W/drive/images 12
run() { python3 -m colab_side run --engine colmap --images $W/drive/images --job $1 --drive-root $W/drive \
  --local-dir $W/local-$1 --heartbeat-seconds 5 --param batch=4 --param patch_match.max_image_size=512 > $W/$1.out 2>&1; }
S=$SECONDS; run first; echo "first job rc=$? in $((SECONDS-S)) s"
grep -h '"install"' $W/drive/keepalive/first/events.jsonl
python3 -c "import pycolmap; print('now installed:', pycolmap.__version__, 'has_cuda', pycolmap.has_cuda)"
find $W/drive/keepalive/first/result -type f -printf '%s %P\n' | sort -k2
echo "--- a new runtime: pycolmap gone, the wheel on Drive damaged"
python3 -m pip uninstall -q -y "$(echo $NAME | cut -d- -f1 | tr _ -)"
printf 'cut' | dd of=$D/$NAME bs=1 seek=1000 conv=notrunc 2>/dev/null
export PIP_RETRIES=1 PIP_DEFAULT_TIMEOUT=5
S=$SECONDS; run second; echo "second job rc=$? in $((SECONDS-S)) s"
grep -hE "downloading|does not match" $W/second.out
python3 -c "import json; b=json.load(open('$W/drive/keepalive/second/heartbeat.json')); print(b['phase'], b.get('cause'), '|', b.get('reason'), '|', b.get('action'))"
ls $D
