// The host side of KS: option names, the SortedColumns contract, and the step from a backend's
// per-feature extremes to SciPy's statistic, location, sign and p-value.
#include "kernels/ks_host.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "driftguard/errors.hpp"
#include "kernels/parallel.hpp"

namespace driftguard {

KsMethod parse_ks_method(std::string_view name) {
  if (name == "auto") return KsMethod::Auto;
  if (name == "exact") return KsMethod::Exact;
  if (name == "asymp") return KsMethod::Asymp;
  throw InvalidInput("unknown KS method '" + std::string(name) +
                     "' (expected auto, exact or asymp)");
}

KsAlternative parse_ks_alternative(std::string_view name) {
  if (name == "two-sided") return KsAlternative::TwoSided;
  if (name == "less") return KsAlternative::Less;
  if (name == "greater") return KsAlternative::Greater;
  throw InvalidInput("unknown KS alternative '" + std::string(name) +
                     "' (expected two-sided, less or greater)");
}

std::string_view to_string(KsMethod method) {
  switch (method) {
    case KsMethod::Auto:
      return "auto";
    case KsMethod::Exact:
      return "exact";
    case KsMethod::Asymp:
      return "asymp";
  }
  return "unknown";
}

std::string_view to_string(KsAlternative alternative) {
  switch (alternative) {
    case KsAlternative::TwoSided:
      return "two-sided";
    case KsAlternative::Less:
      return "less";
    case KsAlternative::Greater:
      return "greater";
  }
  return "unknown";
}

void SortedColumns::check() const {
  detail::check_sorted_layout(*this, "SortedColumns");
  for (std::size_t f = 0; f < features; ++f) {
    const std::span<const float> c = column(f);
    for (std::size_t i = 0; i < c.size(); ++i) {
      if (std::isnan(c[i])) {
        throw InvalidInput("SortedColumns: feature " + std::to_string(f) + " holds NaN");
      }
      if (i > 0 && c[i] < c[i - 1]) {
        throw InvalidInput("SortedColumns: feature " + std::to_string(f) +
                           " is not in ascending order at index " + std::to_string(i));
      }
    }
  }
}

namespace detail {

void check_sorted_layout(const SortedColumns& columns, const char* what) {
  const auto fail = [what](const std::string& why) {
    throw InvalidInput(std::string(what) + ": " + why);
  };
  if (columns.offsets.size() != columns.features + 1) {
    fail("offsets has " + std::to_string(columns.offsets.size()) + " entries, expected " +
         std::to_string(columns.features + 1));
  }
  if (columns.nan_counts.size() != columns.features) {
    fail("nan_counts has " + std::to_string(columns.nan_counts.size()) + " entries, expected " +
         std::to_string(columns.features));
  }
  if (columns.offsets.front() != 0 ||
      !std::is_sorted(columns.offsets.begin(), columns.offsets.end())) {
    fail("offsets must start at 0 and never decrease");
  }
  if (columns.offsets.back() != columns.values.size()) {
    fail("offsets end at " + std::to_string(columns.offsets.back()) + " but there are " +
         std::to_string(columns.values.size()) + " values");
  }
}

KsResult ks_result(const KsExtremes& extremes, std::uint64_t n_reference,
                   std::uint64_t nan_reference, const KsOptions& options) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  KsResult r;
  r.n_reference = n_reference;
  r.nan_reference = nan_reference;
  r.n_current = extremes.n_current;
  r.nan_current = extremes.nan_current;
  if (n_reference == 0 || extremes.n_current == 0) {
    r.statistic = r.pvalue = r.statistic_location = kNaN;
    return r;
  }
  // ks_2samp: minS = clip(-min(cddiffs), 0, 1), maxS = max(cddiffs); two-sided takes minS only
  // when strictly larger.
  const double max_s = extremes.max.diff;
  const double min_s = std::clamp(-extremes.min.diff, 0.0, 1.0);
  const bool less = options.alternative == KsAlternative::Less ||
                    (options.alternative == KsAlternative::TwoSided && min_s > max_s);
  const KsCandidate& chosen = less ? extremes.min : extremes.max;
  r.statistic_location = chosen.value;
  r.statistic_sign = less ? -1 : 1;
  r.pvalue = ks_pvalue(less ? min_s : max_s, n_reference, extremes.n_current, options,
                       &r.method_used, &r.statistic);
  return r;
}

std::vector<KsResult> ks_results(int threads, const SortedColumns& reference,
                                 std::span<const KsExtremes> extremes, const KsOptions& options) {
  std::vector<KsResult> results(extremes.size());
  parallel_for(threads, extremes.size(), [&](std::size_t f) {
    results[f] = ks_result(extremes[f], reference.offsets[f + 1] - reference.offsets[f],
                           reference.nan_counts[f], options);
  });
  return results;
}

}  // namespace detail
}  // namespace driftguard
