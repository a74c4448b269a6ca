#pragma once
// Population Stability Index of one feature from reference and current histogram slots
// (HistogramCounts::slots layout: [underflow | bins... | overflow | missing]):
//
//   PSI = sum_i (c_i - r_i) * ln(c_i / r_i)
//
// over proportions r_i, c_i of each window. Which slots take part and how empty ones are handled
// is set by PsiOptions; the defaults are driftguard's policy, evidently_psi_options() reproduces
// evidently's PSI.
//
// The bins of the layout always take part. Numeric features: with merge_outer the underflow
// joins the first bin and the overflow the last (the outer bins are open-ended, the credit-risk
// convention); without it, each is a bin of its own. Categorical features: underflow is always 0
// and the overflow slot ("other": unknown codes) is always a bin of its own, merge_outer or not,
// since folding new categories into the last known one would hide exactly the drift PSI is meant
// to show. With include_missing the missing slot is a bin of its own. Catch-all slots (underflow
// and overflow when they are bins of their own, missing) take part only when a window has a value
// there, so an empty one never adds a term under the Evidently rule. Each window's proportions
// are its slot counts over the sum of the participating slots.
//
// evidently (0.7.x) drops NaN and +-Inf before its PSI. With evidently_psi_options() and a spec
// built by the evidently binning policy every finite value lands in a bin, so the results agree
// whenever the data has no +-Inf; driftguard counts -Inf/+Inf in the outer slots, which join the
// first/last bin (numeric) or "other" (categorical).
#include <cstdint>
#include <span>
#include <string_view>

#include "driftguard/schema.hpp"

namespace driftguard {

enum class EmptyBins {
  // A proportion that is 0 in one window becomes `epsilon` (no renormalisation); a slot empty in
  // both windows contributes nothing.
  Epsilon,
  // evidently's rule, applied to each window separately: zeros become min(nonzero) / 1e6 when that
  // minimum is <= 1e-4, else 1e-4. Bins empty in both windows are filled too (evidently does so
  // for its Sturges bins), so they can add a term when the two windows' fills differ.
  Evidently,
};

struct PsiOptions {
  bool merge_outer = true;      // numeric: underflow joins the first bin, overflow the last
  bool include_missing = true;  // missing values are a bin of their own
  EmptyBins empty_bins = EmptyBins::Epsilon;
  double epsilon = 1e-4;  // EmptyBins::Epsilon only; must be > 0 and finite
};
PsiOptions evidently_psi_options();  // merge_outer, no missing bin, EmptyBins::Evidently

// "epsilon" | "evidently"; anything else throws InvalidInput.
EmptyBins parse_empty_bins(std::string_view name);
std::string_view to_string(EmptyBins rule);

// `kind` is how the slots were binned (HistogramSpec::categorical). NaN when either window is
// empty (no row in any slot). A window whose rows all sit outside the participating slots (every
// value missing, without include_missing) has every proportion 0, filled as empty slots are, so
// a feature that empties out is as far from the other window as the fill allows, never "no
// drift"; evidently stops with an error there. InvalidInput when the slot counts differ or are < 4
// (one bin), or on a bad epsilon.
double psi(std::span<const std::uint64_t> reference_slots,
           std::span<const std::uint64_t> current_slots, const PsiOptions& options = {},
           FeatureKind kind = FeatureKind::Numeric);

enum class PsiBand { Stable, Moderate, Significant };
struct PsiBands {
  double moderate = 0.1;      // PSI >= moderate: moderate shift
  double significant = 0.25;  // PSI >= significant: significant shift
};
PsiBand psi_band(double psi_value, const PsiBands& bands = {});  // NaN -> Stable
std::string_view to_string(PsiBand band);       // "stable", "moderate", "significant"
PsiBand parse_psi_band(std::string_view name);  // the names above; InvalidInput otherwise

}  // namespace driftguard
