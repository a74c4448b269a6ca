#pragma once
// Binning policies: how the histogram bins of each feature are chosen before PSI is computed.
//
//   quantile     edges at the reference quantiles i/B, i = 0..B (NumPy's default linear
//                interpolation, np.quantile), repeated edges merged, so heavy ties give fewer
//                bins. The credit-risk convention (default, B = 10).
//   equal_width  B equal bins over the reference [min, max] (np.linspace).
//   fixed        the schema's bin_edges for each numeric feature.
//   evidently    evidently's PSI binning: a numeric feature with more than 20 distinct reference
//                values gets Sturges bins over the pooled reference + current values
//                (np.histogram_bin_edges(..., bins="sturges")); any other feature is binned by the
//                distinct values of reference and current together. Needs a pass over the current
//                data first (ColumnStats of both windows).
// Categorical features (per the schema) are always binned by their codes: the schema's categories
// plus any other code seen in the reference (quantile, equal_width, fixed) or in either window
// (evidently).
// A constant column gets the single bin [v - 0.5, v + 0.5], as NumPy does.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "driftguard/batch.hpp"
#include "driftguard/histogram.hpp"

namespace driftguard {

struct Schema;

enum class BinningPolicy { Quantile, EqualWidth, Fixed, Evidently };
BinningPolicy parse_binning_policy(std::string_view name);  // InvalidInput on unknown names
std::string_view to_string(BinningPolicy policy);

struct BinningOptions {
  BinningPolicy policy = BinningPolicy::Quantile;
  std::size_t bins = 10;  // quantile and equal_width
};

// Summary of one feature's finite values in one window, accumulated over batches.
struct ColumnStats {
  static constexpr std::size_t kMaxDistinct = 4096;
  std::uint64_t count = 0;       // finite values
  double min = 0, max = 0;       // valid when count > 0
  std::vector<double> distinct;  // sorted distinct finite values while at most kMaxDistinct
  bool too_many_distinct = false;

  void observe(float value);  // NaN and +-Inf are ignored
  void merge(const ColumnStats& other);
  std::size_t distinct_count() const;  // valid when !too_many_distinct
};
// Per-feature ColumnStats of a host batch, accumulated into `stats` (size = batch.features).
void observe_columns(BatchView batch, std::vector<ColumnStats>& stats);

// Edges for one numeric column from its reference values (NaN and +-Inf ignored; order free).
std::vector<double> quantile_edges(std::span<const float> values, std::size_t bins);
std::vector<double> equal_width_edges(double min, double max, std::size_t bins);
std::vector<double> sturges_edges(std::uint64_t count, double min, double max);

// The histogram layout for every feature of `schema`. `reference_columns[f]` holds feature f's
// reference values (column-major copy); `reference_stats` and, for the evidently policy,
// `current_stats` summarise the windows. InvalidInput when a policy cannot be applied (fixed
// without bin_edges, evidently without current stats or with too many distinct values).
HistogramSpec build_histogram_spec(const Schema& schema, const BinningOptions& options,
                                   const std::vector<std::vector<float>>& reference_columns,
                                   const std::vector<ColumnStats>& reference_stats,
                                   const std::vector<ColumnStats>* current_stats);

}  // namespace driftguard
