#pragma once
// Binning policies: how the histogram bins of each feature are chosen before PSI is computed.
//
//   quantile     edges at the reference quantiles i/B, i = 0..B (NumPy's default linear
//                interpolation, np.quantile), repeated edges merged, so heavy ties give fewer
//                bins. The credit-risk convention (default, B = 10). A discrete column
//                (bins_by_value) is binned by its reference values instead, as categorical
//                features are: merged quantile edges would put a 0/1 flag's two values in one
//                closed bin, whose PSI stays 0 however the flag's share moves.
//   equal_width  B equal bins over the reference [min, max] (np.linspace).
//   fixed        the schema's bin_edges for each numeric feature.
//   evidently    evidently's PSI binning: a numeric feature with more than 20 distinct reference
//                values gets Sturges bins over the pooled reference + current values
//                (np.histogram_bin_edges(..., bins="sturges")); any other feature, categorical
//                ones included, is binned by the distinct values of reference and current
//                together (categorical-mode bins, evidently's value-count keys), without the
//                schema's unseen categories: evidently has no such bins, and its zero fill would
//                give one empty in both windows a nonzero PSI term. Needs a pass over the current
//                data first (ColumnStats of both windows).
// Under the other policies categorical features are binned by their codes: the schema's
// categories plus any other code seen in the reference.
// A constant column gets the single bin [v - 0.5, v + 0.5], as NumPy does. Under quantile and
// equal_width a reference column without a finite value gets the single bin [lowest float, max
// float]: its PSI compares the windows' missing shares, and the scan goes on.
// Binning by values needs the windows' distinct values: ColumnStats lists at most kMaxDistinct of
// them, and build_histogram_spec refuses stats past that; a caller holding the values completes
// them first (ColumnStats::all_values_of_sorted), as Monitor does.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "driftguard/batch.hpp"
#include "driftguard/histogram.hpp"

namespace driftguard {

struct Schema;
enum class FeatureKind;
struct SortedColumns;

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

  // The stats of an ascending column without NaN (a SortedColumns column; +-Inf allowed and
  // ignored): equal to observe() over its values in that order. O(distinct values x log(run
  // length)), stopping after kMaxDistinct + 1 distinct values.
  static ColumnStats of_sorted(std::span<const float> sorted);
  // The same with every distinct value listed, however many (too_many_distinct stays false), for
  // value bins of a column known in full. Not for observe() or merge() afterwards.
  static ColumnStats all_values_of_sorted(std::span<const float> sorted);
};
// Whether the evidently policy bins a feature by the values of both windows (categorical
// features, and numeric ones with at most 20 distinct reference values) rather than on Sturges
// edges.
bool evidently_bins_by_value(FeatureKind kind, const ColumnStats& reference);
// Whether the quantile policy bins a numeric column (or a model score) by its reference values: it
// has at most `bins` distinct finite values, each seen twice on average (count >= 2 x distinct).
// A value of the current window that the reference never took counts in the "other" slot, a bin
// of its own for PSI. The repeat condition keeps a continuous column with a reference of a few
// rows on quantile edges, where nearly every current value would be "other".
bool bins_by_value(const ColumnStats& reference, std::size_t bins);

// Per-feature ColumnStats of a host batch, accumulated into `stats` (size = batch.features;
// InvalidInput otherwise or for a device batch). Multi-threaded (OpenMP) on large batches.
void observe_columns(BatchView batch, std::vector<ColumnStats>& stats);

// Edges for one numeric column from its reference values (NaN and +-Inf ignored; order free).
// Bit-identical to NumPy's float64 results. InvalidInput when bins == 0 or no value is finite.
std::vector<double> quantile_edges(std::span<const float> values, std::size_t bins);
// The same for values in ascending order without NaN (a SortedColumns column; +-Inf allowed and
// ignored), read in place at the quantiles' ranks: O(bins log bins + log n), no copy. Equals
// quantile_edges() of the same values bit for bit (but for the sign of a zero edge where -0.0 and
// +0.0 tie: selection keeps either). Same errors.
std::vector<double> quantile_edges_of_sorted(std::span<const float> sorted, std::size_t bins);
// InvalidInput when bins == 0, the range is not finite or min > max, or the range is too narrow to
// give distinct edges.
std::vector<double> equal_width_edges(double min, double max, std::size_t bins);
// np.histogram_bin_edges(a, bins="sturges") for `count` finite values spanning [min, max];
// [0, 1] when count == 0, as NumPy gives for an empty array.
std::vector<double> sturges_edges(std::uint64_t count, double min, double max);

// The histogram layout for every feature of `schema`. `reference` holds the reference's sorted
// columns (a profile's, laid out as SortedColumns::check() requires; read by the quantile policy
// only, may be SortedColumns{} otherwise);
// `reference_stats` and, for the evidently policy, `current_stats` summarise the windows.
// InvalidInput naming the feature when a policy cannot be applied (fixed without valid
// bin_edges, evidently without current stats, value bins with too many distinct values or with
// nothing to bin).
HistogramSpec build_histogram_spec(const Schema& schema, const BinningOptions& options,
                                   const SortedColumns& reference,
                                   const std::vector<ColumnStats>& reference_stats,
                                   const std::vector<ColumnStats>* current_stats);
// The same for callers without sorted columns: `reference_columns[f]` holds feature f's reference
// values in any order (NaN and +-Inf allowed; quantile edges by selection, quantile_edges()).
// Equals the overload above on the same values.
HistogramSpec build_histogram_spec(const Schema& schema, const BinningOptions& options,
                                   const std::vector<std::vector<float>>& reference_columns,
                                   const std::vector<ColumnStats>& reference_stats,
                                   const std::vector<ColumnStats>* current_stats);

}  // namespace driftguard
