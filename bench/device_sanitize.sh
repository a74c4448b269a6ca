#!/usr/bin/env bash
# compute-sanitizer over quick CUDA cases of every suite: memcheck (out-of-bounds and misaligned
# accesses, CUDA API errors) and racecheck (shared-memory hazards) on kernels that had never run
# before their first device session. bench/device_check.sh runs it last with DEVICE_SANITIZE=1;
# alone: run(command="tar -xJf .gpu.tar.xz && source .gpu/env.sh; bash bench/device_sanitize.sh",
# carry=[".gpu.tar.xz"], timeout_s=200)
# Writes $OUT/sanitizer.log (every report, with file:line: the kernels are built with -lineinfo)
# and prints one line per run: clean, errors, timed out or failed. compute-sanitizer runs on the
# Firecracker machines; on gVisor it refuses the device (.library/device/KINDS.md), which this
# script reports and then stops (exit 3). Exit 0 when every run was clean, 1 otherwise.
set -uo pipefail
out=${OUT:?OUT must name the output folder}
bin=.gpu/bin
log=$out/sanitizer.log
sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda*/bin/compute-sanitizer 2>/dev/null |
  head -1)
if [ -z "$sanitizer" ]; then
  echo "device_sanitize: no compute-sanitizer on this machine" | tee "$log"
  exit 3
fi
: >"$log"
# tool | binary | gtest filter: small inputs, each run well under its 45 s.
runs=(
  "memcheck|test_parity_cuda|CudaParity.VectorWarpRowsFewBins:CudaParity.ScalarBlockRows:CudaParity.OneRow:CudaParity.EmptyBatch:CudaParity.HostBatchInSeveralChunks:CudaParity.MisalignedDeviceBatch:CudaBinSearch.*"
  "memcheck|test_ks|*Ks.StatisticMatchesFloat64BruteForce/cuda:*Ks.NaNAreLeftOutAndCounted/cuda:*Ks.OneValueEach/cuda:*Ks.EmptyCurrentWindowGivesNaN/cuda:*Ks.FromBatchSortsEachColumnAndCountsNaN/cuda"
  "memcheck|test_mmd|*MmdTest.MatchesBruteForce/cuda:*MmdTest.LinearMatchesItsDefinition/cuda:*MmdTest.RejectsBadInput/cuda"
  "memcheck|test_score|*ScoreGolden.CudaMatchesCpu/cuda:*ScoreGolden.EmptyBatchWritesNothing/cuda"
  "memcheck|test_validate_histogram|*ValidateHistogram.CategoricalCodesOfEveryKind/cuda:*ValidateHistogram.ManyBinsAndMixedBinCounts/cuda:*ValidateHistogram.OneRow/cuda"
  "racecheck|test_parity_cuda|CudaParity.VectorWarpRowsFewBins:CudaParity.ScalarBlockRows"
  "racecheck|test_ks|*Ks.StatisticMatchesFloat64BruteForce/cuda"
  "racecheck|test_mmd|*MmdTest.MatchesBruteForce/cuda"
  "racecheck|test_score|*ScoreGolden.CudaMatchesCpu/cuda"
)
status=0
for entry in "${runs[@]}"; do
  IFS='|' read -r tool binary filter <<<"$entry"
  [ -x "$bin/$binary" ] || { echo "missing $bin/$binary" | tee -a "$log"; status=1; continue; }
  part=$(mktemp)
  timeout 45 "$sanitizer" --tool "$tool" --error-exitcode 86 --print-limit 20 \
    "$bin/$binary" --gtest_filter="$filter" --gtest_brief=1 >"$part" 2>&1
  rc=$?
  { echo "== $tool $binary $filter (exit $rc)"; cat "$part"; } >>"$log"
  if grep -q "Device not supported" "$part"; then
    echo "device_sanitize: compute-sanitizer does not support this device (a gVisor machine?)"
    rm -f "$part"
    exit 3
  fi
  case $rc in
    0) verdict="clean" ;;
    86) verdict="ERRORS: $(grep -cE '^========= (Invalid|Race|Program hit|.*hazard)' "$part") reports" ;;
    124) verdict="timed out after 45 s" ;;
    *) verdict="failed (exit $rc): $(grep -E '\[  FAILED  \]|ERROR SUMMARY' "$part" | head -2 | tr '\n' ' ')" ;;
  esac
  [ "$rc" = 0 ] || status=1
  printf '%-9s %-24s %s\n' "$tool" "$binary" "$verdict"
  rm -f "$part"
done
echo "device_sanitize: exit status $status (reports in sanitizer.log)"
exit $status
