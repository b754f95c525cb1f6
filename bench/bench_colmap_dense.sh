#!/bin/bash
# Dense COLMAP through the product's engine, on a machine where pycolmap has CUDA (pycolmap-cuda12; docs/colmap.md
# says what it needs): 12 views of a textured sphere, two uninterrupted jobs and one killed (SIGKILL of its process
# group) during dense stereo and resumed; per-step seconds, the result files and what the runs share are printed.
# From the repository root:  bash bench/bench_colmap_dense.sh   (IMAGES=N for another count; OUT=folder for copies)
set -u
W=/tmp/dense; rm -rf $W; mkdir -p $W
IMG=${IMAGES:-12}
python3 -c "import pycolmap; print('pycolmap', pycolmap.__version__, 'has_cuda', pycolmap.has_cuda)"
python3 -m keepalive_sim.sphere_scene $W/drive/images $IMG
run() { python3 -m colab_side run --engine colmap --images $W/drive/images --job $1 --drive-root $W/drive \
  --local-dir $W/local-$1 --heartbeat-seconds 5 --param dense=${DENSE:-on} --param batch=4 \
  --param patch_match.max_image_size=512 > $W/$1.out 2>&1; }
S=$SECONDS; run plain; echo "plain rc=$? in $((SECONDS-S)) s"
S=$SECONDS; run plain2; echo "plain2 rc=$? in $((SECONDS-S)) s"
tail -5 $W/plain.out
J=$W/drive/keepalive
grep -hE '"(node_done|error)"' $J/plain/events.jsonl | cut -c1-220
find $J/plain/result -type f -printf '%s %P\n' | sort -k2
S=$SECONDS
setsid bash -c "$(declare -f run); W=$W; run killed" & P=$!
for i in $(seq 600); do grep -q '"node": "stereo' $J/killed/events.jsonl 2>/dev/null && break; sleep 0.5; done
sleep ${KILL_AFTER:-8}; kill -9 -- -$P; wait $P 2>/dev/null; echo "killed during stereo"
grep -c '"chunk_done"' $J/killed/events.jsonl
run killed; echo "resumed rc=$? total $((SECONDS-S)) s"
grep -hE '"(node_done|error)"' $J/killed/events.jsonl | cut -c1-220
for j in plain plain2 killed; do (cd $J/$j/result && find . -type f | sort | xargs sha256sum) > $W/$j.txt; done
diff $W/plain.txt $W/plain2.txt && echo "TWO UNINTERRUPTED RUNS IDENTICAL" || echo "TWO UNINTERRUPTED RUNS DIFFER"
diff $W/plain.txt $W/killed.txt && echo "KILLED+RESUMED IDENTICAL TO UNINTERRUPTED" || echo "KILLED+RESUMED DIFFERS"
cat $W/plain.txt
python3 -c "
import pycolmap
for j in ('plain','plain2','killed'):
    r = pycolmap.Reconstruction('$J/'+j+'/result/sparse/0')
    print(j, 'registered', r.num_reg_images(), 'points', r.num_points3D(), 'reproj', round(r.compute_mean_reprojection_error(), 6))
"
OUT=${OUT:-$W/out}; mkdir -p $OUT; cp $W/plain.txt $W/plain2.txt $W/killed.txt $W/plain.out $W/killed.out $OUT/ 2>/dev/null
cp $J/plain/events.jsonl $OUT/plain-events.jsonl; cp $J/killed/events.jsonl $OUT/killed-events.jsonl
grep -H "Number of fused points" $W/*.out | sed "s/.*fusion.cc:[0-9]*\]//"
