#pragma once
// Population Stability Index of one feature from reference and current histogram slots
// (HistogramCounts::slots layout: [underflow | bins... | overflow | missing]):
//
//   PSI = sum_i (c_i - r_i) * ln(c_i / r_i)
//
// over proportions r_i, c_i of each window. Which slots take part and how empty ones are handled
// is set by PsiOptions; the defaults are driftguard's policy, evidently_psi_options() reproduces
// evidently's PSI.
#include <cstdint>
#include <span>
#include <string_view>

namespace driftguard {

enum class EmptyBins {
  // A proportion that is 0 in one window becomes `epsilon` (no renormalisation); a slot empty in
  // both windows contributes nothing.
  Epsilon,
  // evidently's rule, applied to each window separately: zeros become min(nonzero) / 1e6 when that
  // minimum is <= 1e-4, else 1e-4.
  Evidently,
};

struct PsiOptions {
  bool merge_outer = true;      // underflow joins the first bin, overflow the last (open ends)
  bool include_missing = true;  // missing values are a bin of their own
  EmptyBins empty_bins = EmptyBins::Epsilon;
  double epsilon = 1e-4;
};
PsiOptions evidently_psi_options();  // merge_outer, no missing bin, EmptyBins::Evidently

// NaN when either window has no counted value. InvalidInput when the slot counts differ or < 3.
double psi(std::span<const std::uint64_t> reference_slots,
           std::span<const std::uint64_t> current_slots, const PsiOptions& options = {});

enum class PsiBand { Stable, Moderate, Significant };
struct PsiBands {
  double moderate = 0.1;      // PSI >= moderate: moderate shift
  double significant = 0.25;  // PSI >= significant: significant shift
};
PsiBand psi_band(double psi_value, const PsiBands& bands = {});  // NaN -> Stable
std::string_view to_string(PsiBand band);                        // "stable", "moderate", ...

}  // namespace driftguard
