#!/usr/bin/env bash
# MNIST end to end: train an NSM MLP -> compile it -> run it on the ideal chip and on the
# realistic presets, and print one summary table.
#
#   NSMX_MNIST_DIR=/path/to/mnist bash examples/mnist_pipeline.sh
#
# Environment (all optional except NSMX_MNIST_DIR):
#   OUT      output folder (default runs/mnist-pipeline)
#   CKPT     an existing mnist-mlp checkpoint: skips training (default: the shipped
#            examples/checkpoints/mnist-mlp-nsm.pt when present, else train)
#   EPOCHS   training epochs (default 15: about 10 minutes on 2 cores; 97 % MC accuracy)
#   SAMPLES  MC samples per test example (default 100)
#   LIMIT    test examples (default 10000, the full test set)
#   MODE     chip sampling mode, exact or clt (default clt: about 2 minutes per chip on 2 cores;
#            exact draws every cell: about 6 minutes per chip, see docs/results/hardware.md)
#   CHIPS    chips to run (default "ideal rram-selector selector-fefet")
#   NSMX     the nsmx command (default .venv/bin/nsmx, else nsmx on the PATH)
set -euo pipefail

: "${NSMX_MNIST_DIR:?set NSMX_MNIST_DIR to the folder of the MNIST IDX files}"
OUT=${OUT:-runs/mnist-pipeline}
EPOCHS=${EPOCHS:-15}
SAMPLES=${SAMPLES:-100}
LIMIT=${LIMIT:-10000}
MODE=${MODE:-clt}
CHIPS=${CHIPS:-ideal rram-selector selector-fefet}
if [ -z "${NSMX:-}" ]; then
  if [ -x .venv/bin/nsmx ]; then NSMX=.venv/bin/nsmx; else NSMX=nsmx; fi
fi
mkdir -p "$OUT"

# 1. Train (or reuse a checkpoint). The learning-rate schedule is the one of the shipped runs.
if [ -z "${CKPT:-}" ] && [ -f examples/checkpoints/mnist-mlp-nsm.pt ]; then
  CKPT=examples/checkpoints/mnist-mlp-nsm.pt
fi
if [ -z "${CKPT:-}" ]; then
  "$NSMX" train --model mnist-mlp --rule nsm --epochs "$EPOCHS" --lr 1e-3 --lr-step-epochs 4 \
    --eval-samples 1 --out "$OUT/train" --resume --no-progress
  CKPT=$OUT/train/checkpoint.pt
fi

# 2. Compile into a chip-independent crossbar program.
"$NSMX" compile "$CKPT" -o "$OUT/mnist-mlp.nsmx"

# 3. Run on each chip; the software reference runs once (same samples, same seed).
software=""
for chip in $CHIPS; do
  extra=()
  if [ -n "$software" ]; then extra=(--no-software); fi
  "$NSMX" run "$OUT/mnist-mlp.nsmx" --chip "$chip" --samples "$SAMPLES" --limit "$LIMIT" \
    --mode "$MODE" --no-progress --json "${extra[@]}" > "$OUT/run-$chip.log"
  sed '$d' "$OUT/run-$chip.log"  # the table; the last line is the JSON result
  tail -n 1 "$OUT/run-$chip.log" > "$OUT/run-$chip.json"
  software=done
done

# 4. One table.
PY=python3
if [ -x .venv/bin/python ]; then PY=.venv/bin/python; fi
"$PY" - "$OUT" $CHIPS <<'EOF'
import json, sys
out, chips = sys.argv[1], sys.argv[2:]
rows = [json.load(open(f"{out}/run-{c}.json")) for c in chips]
sw = rows[0]["software_accuracy"]
print(f"\nMNIST test, {rows[0]['n']} examples x {rows[0]['samples']} MC samples "
      f"({rows[0]['mode']} mode)")
print(f"  {'configuration':<18}{'accuracy':>10}{'NLL':>9}{'wall':>9}")
print(f"  {'software':<18}{sw:>10.2%}{rows[0]['software_nll']:>9.4f}"
      f"{rows[0]['software_wall_s']:>8.0f}s")
for r in rows:
    print(f"  {r['chip']:<18}{r['chip_accuracy']:>10.2%}{r['chip_nll']:>9.4f}{r['wall_s']:>8.0f}s")
EOF
