#pragma once
// Per-feature histograms over fixed bins, accumulated over batches in one pass over the
// row-major batch, optionally fused with validation (validate_histogram).
//
// Numeric features have edges e_0 < e_1 < ... < e_B (B >= 1 bins, finite, strictly increasing):
//   bin i holds e_i <= x < e_{i+1}; the last bin is closed, e_{B-1} <= x <= e_B (NumPy's rule);
//   x < e_0 (and -Inf) counts as underflow, x > e_B (and +Inf) as overflow, NaN as missing.
//   Comparisons are exact: the float value is compared with the double edge.
// Categorical features list their codes c_0 < ... < c_{B-1} (values exactly representable as
//   float, usually integer codes): bin i holds x == c_i; any other
//   non-NaN value (unknown code, +-Inf) counts in the overflow slot ("other"); underflow stays 0.
// Counts are bit-identical on the CPU and CUDA backends.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "driftguard/batch.hpp"
#include "driftguard/validate.hpp"

namespace driftguard {

class Context;

struct HistogramSpec {
  std::vector<std::uint8_t> categorical;  // per feature; 1 = points are category codes
  std::vector<std::uint32_t> offsets;     // features + 1 entries into points
  std::vector<double> points;             // numeric: edges; categorical: codes

  // Appends one feature.
  void add_numeric(std::span<const double> edges);
  void add_categorical(std::span<const double> codes);
  std::size_t features() const noexcept { return categorical.size(); }
  std::size_t bins(std::size_t feature) const {
    const std::size_t n = offsets[feature + 1] - offsets[feature];
    return categorical[feature] ? n : n - 1;
  }
  std::span<const double> points_of(std::size_t feature) const {
    return {points.data() + offsets[feature], points.data() + offsets[feature + 1]};
  }
  // Throws InvalidInput unless every feature has >= 2 finite strictly increasing edges (numeric)
  // or >= 1 finite strictly increasing codes, each exactly representable as float (categorical).
  void check() const;
};

// Per feature, bins(f) + 3 slots: [underflow | bin_0 .. bin_{B-1} | overflow | missing].
// Accessors of one feature take feature < features(), unchecked, as std::vector's operator[]
// (HistogramSpec's too).
class HistogramCounts {
 public:
  HistogramCounts() = default;
  explicit HistogramCounts(const HistogramSpec& spec);

  std::size_t features() const noexcept { return offsets_.empty() ? 0 : offsets_.size() - 1; }
  std::span<const std::uint64_t> bins(std::size_t feature) const {
    return {counts_.data() + offsets_[feature] + 1, counts_.data() + offsets_[feature + 1] - 2};
  }
  // All slots of one feature in the order above.
  std::span<const std::uint64_t> slots(std::size_t feature) const {
    return {counts_.data() + offsets_[feature], counts_.data() + offsets_[feature + 1]};
  }
  std::uint64_t underflow(std::size_t f) const { return counts_[offsets_[f]]; }
  std::uint64_t overflow(std::size_t f) const { return counts_[offsets_[f + 1] - 2]; }
  std::uint64_t missing(std::size_t f) const { return counts_[offsets_[f + 1] - 1]; }
  // Sum of all slots of a feature: every row seen.
  std::uint64_t total(std::size_t feature) const;

  // Flat storage, for backends and serialisation.
  std::vector<std::uint64_t>& raw() noexcept { return counts_; }
  const std::vector<std::uint64_t>& raw() const noexcept { return counts_; }
  const std::vector<std::size_t>& offsets() const noexcept { return offsets_; }

  HistogramCounts& operator+=(const HistogramCounts& other);  // InvalidInput on layout mismatch
  bool operator==(const HistogramCounts&) const = default;

 private:
  std::vector<std::uint64_t> counts_;
  std::vector<std::size_t> offsets_;  // features + 1
};

// Adds the batch's values into `counts` (built from `spec`).
void histogram(Context& ctx, BatchView batch, const HistogramSpec& spec, HistogramCounts& counts);

// validate() and histogram() in a single pass over the batch; results equal the two calls.
void validate_histogram(Context& ctx, BatchView batch, const ValidationRules& rules,
                        const HistogramSpec& spec, ValidationCounts& validation,
                        HistogramCounts& counts, ValidationMasks masks = {});

}  // namespace driftguard
