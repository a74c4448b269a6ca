#!/usr/bin/env bash
# The main job on the bundled data: build driftguard, convert the bundled UCI credit-card data
# into a reference window (clients under 40) and a current window (40 and over), and scan it
# against the data's schema (datasets/uci_credit_card.schema.json, from the UCI documentation):
# validation, PSI, KS, distances, the MMD test, and the drift of an XGBoost model's default
# probability (tests/models/xgb_uci_binary_logistic.json, trained on this data by
# tests/golden/make_score_golden.py).
# Writes build/demo/report.json and the same report as a page, build/demo/report.html. Extra
# arguments go to `driftguard scan`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
"$root/scripts/install_deps.sh"
"$root/scripts/build.sh" "$root/build"
demo="$root/build/demo"
mkdir -p "$demo"
# A failed run must not leave the last run's report looking like this one's.
rm -f "$demo/report.json" "$demo/report.html"
"$root/build/datasets/driftguard-data" uci --input "$root/datasets/uci_credit_card.csv.gz" \
  --output-dir "$demo"
"$root/build/host/driftguard" scan --reference "$demo/uci_age_reference.h5" \
  --current "$demo/uci_age_current.h5" --schema "$root/datasets/uci_credit_card.schema.json" \
  --model "$root/tests/models/xgb_uci_binary_logistic.json" --mmd \
  --report "$demo/report.json" --html "$demo/report.html" "$@"
echo "report: $demo/report.json, $demo/report.html"
