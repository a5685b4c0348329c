#!/usr/bin/env bash
# qplug's default model from nothing in one pass, within issue 16's 2 h on this project's 2-core CPU
# machine: the photos (fetched from Debian packages and PyPI wheels, never the reserved
# lomiri-wallpapers-* / digikam-data), one corpus (v2's images with v5's questions, built in one go
# instead of v2's images then v5's questions) and two training stages (training/recipes/qplug_fast.toml,
# qplug_fast_stage2.toml, bf16 autocast). The six-stage chain (scripts/reproduce_default_model.sh) is
# what the shipped v5 came from; this is its short form, measured against it in the model card.
# Resumable: run it again after an interruption (a finished step is skipped, a stage resumes from its
# last checkpoint). Each step's wall time goes to RUNS_DIR/times.tsv (a step interrupted and run again
# counts its last run only). The evaluation set is not built here: it is the base corpus's
# (scripts/build_corpus.sh's first step; bench/eval_default_model.py --corpus).
#   scripts/reproduce_fast.sh [CORPUS_DIR [RUNS_DIR]]   (default /work/corpus-fast, /work/runs-fast)
# The photo download cache is CORPUS_DIR/cache unless QPLUG_PHOTO_CACHE names another (build_corpus.sh's
# /work/corpus/cache holds the same files).
set -euo pipefail
corpus=${1:-/work/corpus-fast}
runs=${2:-/work/runs-fast}
cache=${QPLUG_PHOTO_CACHE:-$corpus/cache}
mkdir -p "$corpus" "$runs"
times="$runs/times.tsv"

step() {  # name done_marker command...: run a step unless its output exists, and time it
  local name=$1 done=$2
  shift 2
  if [ -e "$done" ]; then
    echo "$name: done before, skipped"
    return
  fi
  local start=$SECONDS
  "$@"
  printf '%s\t%s\n' "$name" "$((SECONDS - start))" >> "$times"
}

types=$(python -c "from qplug_training.corpus.distortions import default_types; print(','.join(default_types()))")
step tower /work/pretrained/efficientnet-lite0.safetensors \
  python -m qplug_training.pretrained --out /work/pretrained
photos() {
  python -m qplug_training.corpus.photos --out "$corpus/source" --cache "$cache"
  python -m qplug_training.corpus.procedural --into "$corpus/source" --count 24
}
step photos "$corpus/source/.procedural-done" photos
touch "$corpus/source/.procedural-done"
step build "$corpus/summary.json" python -m qplug_training.corpus.build --photos "$corpus/source" \
  --out "$corpus" --workers 2 --types "$types,fade_black,fade_flat" --grain-share 0.2 \
  --strong-blur-share 0.15 --paraphrase-share 0.8 --blur-ceiling --plain-share 0.25 \
  --composed-wordings --broad-wordings --extra-mcq 2 --describe-share 0.5
step pack "$corpus/train_packed.json" python -m qplug_training.corpus.pack "$corpus/train.json" \
  --out "$corpus/train_packed.json" --views 2 --tasks qalign:1,yes_no:3,mcq:3,what_how:1,pathway:2

train() {  # recipe run_dir [override...]
  local recipe=$1 run=$2
  shift 2
  local resume=()
  [ -d "$run/checkpoints" ] && resume=(--resume)
  OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} python -m qplug_training.train "$recipe" -o run.output_dir="$run" \
    -o data.image_root="$corpus" -o data.sources="[{path=\"$corpus/train_packed.json\", name=\"qplug-corpus-fast\"}]" \
    "${resume[@]}" "$@"
}
step stage1 "$runs/qplug-fast/export/model/model.safetensors" \
  train training/recipes/qplug_fast.toml "$runs/qplug-fast"
step stage2 "$runs/qplug-fast-stage2/export/model/model.safetensors" \
  train training/recipes/qplug_fast_stage2.toml "$runs/qplug-fast-stage2" -o model.path="$runs/qplug-fast/export/model"
echo "model: $runs/qplug-fast-stage2/export/model (qplug score --model DIR ...)"
awk -F'\t' '{s += $2; printf "%-8s %6d s\n", $1, $2} END {printf "total    %6d s\n", s}' "$times"
