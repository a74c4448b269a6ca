// Binning policies (binning.hpp). The edge functions replay NumPy's float64 arithmetic step by
// step (np.linspace, np.quantile's 'linear' method, np.histogram_bin_edges 'sturges') so that the
// edges equal NumPy's bit for bit.
#include "driftguard/binning.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <iterator>
#include <limits>
#include <string>
#include <vector>

#include "driftguard/errors.hpp"
#include "driftguard/ks.hpp"
#include "driftguard/schema.hpp"
#include "kernels/check_batch.hpp"

namespace driftguard {

namespace {

// evidently's get_binned_data: a numeric column with more distinct reference values than this gets
// Sturges bins; any other column is binned by its values.
constexpr std::size_t kEvidentlyMaxDiscrete = 20;

// Below this many rows a batch is summarised on one thread: starting the team costs more.
constexpr std::size_t kParallelRows = 16384;

// np.linspace(start, stop, num), endpoint included, num >= 2, float64.
std::vector<double> linspace(double start, double stop, std::size_t num) {
  const auto div = static_cast<double>(num - 1);
  const double delta = stop - start;
  const double step = delta / div;
  std::vector<double> y(num);
  for (std::size_t i = 0; i < num; ++i) {
    const auto index = static_cast<double>(i);
    // NumPy divides first when the step underflows to zero (subnormal ranges, gh-5437).
    y[i] = (step == 0 ? index / div * delta : index * step) + start;
  }
  y.back() = stop;
  return y;
}

// NumPy's histogram range for a column whose values are all v: v -+ 0.5. Where half a unit is
// below the spacing of doubles (|v| >= 2^52), v -+ 0.5 rounds to v and NumPy fails ("Too many
// bins for data range"); the doubles on either side of v hold it instead.
std::vector<double> constant_edges(double v) {
  const double low = v - 0.5, high = v + 0.5;
  if (low < v && v < high) return {low, high};
  constexpr double kInf = std::numeric_limits<double>::infinity();
  return {std::nextafter(v, -kInf), std::nextafter(v, kInf)};
}

void check_range(const char* caller, double min, double max) {
  if (!std::isfinite(min) || !std::isfinite(max) || min > max) {
    throw InvalidInput(std::string(caller) + ": need finite min <= max, got [" +
                       std::to_string(min) + ", " + std::to_string(max) + "]");
  }
}

// One reference quantile as np.quantile's 'linear' method sees it: the sorted values at ranks
// `below` and `below + 1` mixed by `gamma`; at the top end both ranks are the last one.
struct QuantilePosition {
  std::size_t below = 0;
  std::size_t above = 0;
  double gamma = 0;
};

// NumPy's _lerp: the form is chosen by t so that t = 0 gives a and t = 1 gives b exactly.
double numpy_lerp(double a, double b, double t) {
  const double diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

// np.quantile's positions of the probabilities linspace(0, 1, bins + 1) among n >= 1 sorted values.
std::vector<QuantilePosition> quantile_positions(std::size_t n, std::size_t bins) {
  const auto last = static_cast<double>(n - 1);
  std::vector<QuantilePosition> positions;
  for (double q : linspace(0.0, 1.0, bins + 1)) {
    const double virtual_index = last * q;
    QuantilePosition p;
    if (virtual_index >= last) {
      p.below = p.above = n - 1;
    } else {
      const double below = std::floor(virtual_index);
      p.below = static_cast<std::size_t>(below);
      p.above = p.below + 1;
      p.gamma = virtual_index - below;
    }
    positions.push_back(p);
  }
  return positions;
}

// The quantile edges read from `sorted` at the positions' ranks, each rank holding the value a full
// sort puts there (a sorted sequence, or one after select_ranks): interpolated, sorted, repeats
// merged.
template <class Values>
std::vector<double> edges_at(const std::vector<QuantilePosition>& positions, const Values& sorted) {
  std::vector<double> edges;
  edges.reserve(positions.size());
  for (const QuantilePosition& p : positions) {
    edges.push_back(numpy_lerp(sorted[p.below], sorted[p.above], p.gamma));
  }
  std::sort(edges.begin(), edges.end());
  edges.erase(std::unique(edges.begin(), edges.end()), edges.end());
  return edges.size() < 2 ? constant_edges(edges.front()) : edges;
}

// The finite values of an ascending NaN-free column: those between its -Inf and +Inf runs.
std::span<const float> finite_part(std::span<const float> sorted) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const auto first = std::upper_bound(sorted.begin(), sorted.end(), -kInf);
  const auto last = std::lower_bound(first, sorted.end(), kInf);
  return {first, last};
}

// The end of the run of values equal to *first in ascending [first, last), first != last, by
// galloping: O(log of the run's length).
const float* end_of_run(const float* first, const float* last) {
  const float v = *first;
  std::size_t step = 1;
  const float* known = first;  // *known == v
  while (static_cast<std::size_t>(last - known) > step && known[step] == v) {
    known += step;
    step *= 2;
  }
  const float* bound = static_cast<std::size_t>(last - known) > step ? known + step : last;
  return std::upper_bound(known + 1, bound, v);
}

// Places the values of the given ranks (ascending) where a full sort would, like np.partition.
void select_ranks(std::vector<double>& values, const std::vector<std::size_t>& ranks) {
  auto first = values.begin();
  for (std::size_t rank : ranks) {
    const auto nth = values.begin() + static_cast<std::ptrdiff_t>(rank);
    std::nth_element(first, nth, values.end());
    first = std::next(nth);
  }
}

// Sorted union of `codes` and the windows' distinct values, for value-keyed bins.
std::vector<double> value_bins(const std::string& name, std::span<const std::int64_t> codes,
                               std::initializer_list<const ColumnStats*> windows) {
  std::vector<double> values(codes.begin(), codes.end());
  for (const ColumnStats* stats : windows) {
    if (stats->too_many_distinct) {
      throw InvalidInput("feature '" + name + "': more than " +
                         std::to_string(ColumnStats::kMaxDistinct) +
                         " distinct values, too many to bin by value");
    }
    values.insert(values.end(), stats->distinct.begin(), stats->distinct.end());
  }
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  if (values.empty()) {
    throw InvalidInput("feature '" + name + "': no categories and no finite values to bin");
  }
  return values;
}

// A reference column without one finite value gets a single bin holding every finite float: its
// PSI then weighs how much of each window is missing, so a feature that fills up in the current
// window shows as drift, and the other features are still scanned.
std::vector<double> edges_without_reference_values() {
  return {std::numeric_limits<float>::lowest(), std::numeric_limits<float>::max()};
}

std::vector<double> fixed_edges(const FeatureSpec& feature) {
  const auto& edges = feature.bin_edges;
  bool valid = edges.size() >= 2;
  for (std::size_t i = 0; valid && i < edges.size(); ++i) {
    valid = std::isfinite(edges[i]) && (i == 0 || edges[i - 1] < edges[i]);
  }
  if (!valid) {
    throw InvalidInput("feature '" + feature.name +
                       "': binning policy 'fixed' needs bin_edges of at least 2 finite, strictly "
                       "increasing values");
  }
  return edges;
}

}  // namespace

BinningPolicy parse_binning_policy(std::string_view name) {
  if (name == "quantile") return BinningPolicy::Quantile;
  if (name == "equal_width") return BinningPolicy::EqualWidth;
  if (name == "fixed") return BinningPolicy::Fixed;
  if (name == "evidently") return BinningPolicy::Evidently;
  throw InvalidInput("unknown binning policy '" + std::string(name) +
                     "' (expected quantile, equal_width, fixed or evidently)");
}

std::string_view to_string(BinningPolicy policy) {
  switch (policy) {
    case BinningPolicy::Quantile:
      return "quantile";
    case BinningPolicy::EqualWidth:
      return "equal_width";
    case BinningPolicy::Fixed:
      return "fixed";
    case BinningPolicy::Evidently:
      return "evidently";
  }
  return "unknown";
}

void ColumnStats::observe(float value) {
  if (!std::isfinite(value)) return;
  const double v = value;
  if (count == 0) {
    min = max = v;
  } else {
    min = std::min(min, v);
    max = std::max(max, v);
  }
  ++count;
  if (too_many_distinct) return;
  const auto it = std::lower_bound(distinct.begin(), distinct.end(), v);
  if (it != distinct.end() && *it == v) return;
  if (distinct.size() == kMaxDistinct) {
    too_many_distinct = true;
    distinct = {};
    return;
  }
  distinct.insert(it, v);
}

void ColumnStats::merge(const ColumnStats& other) {
  if (other.count == 0) return;
  if (count == 0) {
    min = other.min;
    max = other.max;
  } else {
    min = std::min(min, other.min);
    max = std::max(max, other.max);
  }
  count += other.count;
  if (too_many_distinct) return;
  std::vector<double> merged;
  if (!other.too_many_distinct) {
    merged.reserve(distinct.size() + other.distinct.size());
    std::set_union(distinct.begin(), distinct.end(), other.distinct.begin(), other.distinct.end(),
                   std::back_inserter(merged));
  }
  too_many_distinct = other.too_many_distinct || merged.size() > kMaxDistinct;
  distinct = too_many_distinct ? std::vector<double>{} : std::move(merged);
}

std::size_t ColumnStats::distinct_count() const { return distinct.size(); }

bool bins_by_value(const ColumnStats& reference, std::size_t bins) {
  return reference.count > 0 && !reference.too_many_distinct &&
         reference.distinct_count() <= bins && reference.count >= 2 * reference.distinct_count();
}

namespace {

// ColumnStats::of_sorted, listing at most `max_distinct` distinct values.
ColumnStats stats_of_sorted(std::span<const float> sorted, std::size_t max_distinct) {
  ColumnStats stats;
  const std::span<const float> finite = finite_part(sorted);
  if (finite.empty()) return stats;
  stats.count = finite.size();
  // observe() keeps the first of equal values (-0.0 and +0.0 are equal) as the min, the max and
  // the distinct value: here the first value of each run.
  stats.min = finite.front();
  const float* const last = finite.data() + finite.size();
  const float* run = finite.data();
  while (true) {
    const float* next = end_of_run(run, last);
    if (stats.distinct.size() == max_distinct) {
      stats.too_many_distinct = true;
      stats.distinct = {};
      // The last run starts at the first value equal to the last one.
      run = std::lower_bound(run, last, last[-1]);
      break;
    }
    stats.distinct.push_back(*run);
    if (next == last) break;
    run = next;
  }
  stats.max = *run;
  return stats;
}

}  // namespace

ColumnStats ColumnStats::of_sorted(std::span<const float> sorted) {
  return stats_of_sorted(sorted, kMaxDistinct);
}

ColumnStats ColumnStats::all_values_of_sorted(std::span<const float> sorted) {
  return stats_of_sorted(sorted, sorted.size());
}

bool evidently_bins_by_value(FeatureKind kind, const ColumnStats& reference) {
  return kind == FeatureKind::Categorical ||
         (!reference.too_many_distinct && reference.distinct_count() <= kEvidentlyMaxDiscrete);
}

void observe_columns(BatchView batch, std::vector<ColumnStats>& stats) {
  if (batch.space != MemorySpace::Host) {
    throw InvalidInput("observe_columns: the batch must be in host memory");
  }
  detail::check_batch(batch, stats.size(), "observe_columns");
  if (batch.rows == 0) return;

  const std::size_t features = batch.features;
  const auto rows = static_cast<std::ptrdiff_t>(batch.rows);
  // Row blocks per thread keep the row-major reads contiguous; the per-thread summaries merge in
  // any order to the same result.
#pragma omp parallel if (batch.rows >= kParallelRows)
  {
    std::vector<ColumnStats> local(features);
#pragma omp for schedule(static) nowait
    for (std::ptrdiff_t r = 0; r < rows; ++r) {
      const float* row = batch.data + static_cast<std::size_t>(r) * features;
      for (std::size_t f = 0; f < features; ++f) local[f].observe(row[f]);
    }
#pragma omp critical(driftguard_observe_columns)
    for (std::size_t f = 0; f < features; ++f) stats[f].merge(local[f]);
  }
}

std::vector<double> quantile_edges(std::span<const float> values, std::size_t bins) {
  if (bins == 0) throw InvalidInput("quantile_edges: bins must be at least 1");
  std::vector<double> sorted;
  sorted.reserve(values.size());
  for (float v : values) {
    if (std::isfinite(v)) sorted.push_back(v);
  }
  if (sorted.empty()) throw InvalidInput("quantile_edges: no finite values");

  const std::vector<QuantilePosition> positions = quantile_positions(sorted.size(), bins);
  std::vector<std::size_t> ranks;
  for (const QuantilePosition& p : positions) {
    ranks.push_back(p.below);
    ranks.push_back(p.above);
  }
  std::sort(ranks.begin(), ranks.end());
  ranks.erase(std::unique(ranks.begin(), ranks.end()), ranks.end());
  select_ranks(sorted, ranks);
  return edges_at(positions, sorted);
}

std::vector<double> quantile_edges_of_sorted(std::span<const float> sorted, std::size_t bins) {
  if (bins == 0) throw InvalidInput("quantile_edges_of_sorted: bins must be at least 1");
  const std::span<const float> finite = finite_part(sorted);
  if (finite.empty()) throw InvalidInput("quantile_edges_of_sorted: no finite values");
  return edges_at(quantile_positions(finite.size(), bins), finite);
}

std::vector<double> equal_width_edges(double min, double max, std::size_t bins) {
  if (bins == 0) throw InvalidInput("equal_width_edges: bins must be at least 1");
  check_range("equal_width_edges", min, max);
  if (min == max) return constant_edges(min);
  std::vector<double> edges = linspace(min, max, bins + 1);
  if (std::adjacent_find(edges.begin(), edges.end(), std::greater_equal<>()) != edges.end()) {
    throw InvalidInput("equal_width_edges: the range [" + std::to_string(min) + ", " +
                       std::to_string(max) + "] is too narrow for " + std::to_string(bins) +
                       " distinct bins");
  }
  return edges;
}

std::vector<double> sturges_edges(std::uint64_t count, double min, double max) {
  // NumPy's range for an empty array.
  if (count == 0) return {0.0, 1.0};
  check_range("sturges_edges", min, max);
  if (min == max) return constant_edges(min);
  const double ptp = max - min;
  const double width = ptp / (std::log2(static_cast<double>(count)) + 1.0);
  // NumPy takes one bin when the width underflows to zero.
  const std::size_t n_bins = width == 0 ? 1 : static_cast<std::size_t>(std::ceil(ptp / width));
  return linspace(min, max, n_bins + 1);
}

namespace {

// build_histogram_spec over `reference_columns` columns, feature f's quantile edges given by
// quantile_of(f, bins).
template <class QuantileOf>
HistogramSpec build_spec(const Schema& schema, const BinningOptions& options,
                         std::size_t reference_columns, const QuantileOf& quantile_of,
                         const std::vector<ColumnStats>& reference_stats,
                         const std::vector<ColumnStats>* current_stats) {
  const std::size_t n = schema.features.size();
  if (reference_stats.size() != n) {
    throw InvalidInput("binning: " + std::to_string(reference_stats.size()) +
                       " reference column stats for " + std::to_string(n) + " schema features");
  }
  if (options.policy == BinningPolicy::Evidently &&
      (current_stats == nullptr || current_stats->size() != n)) {
    throw InvalidInput("binning: policy 'evidently' needs column stats of the current window for " +
                       std::to_string(n) + " features");
  }
  if (options.policy == BinningPolicy::Quantile && reference_columns != n) {
    throw InvalidInput("binning: policy 'quantile' needs " + std::to_string(n) +
                       " reference columns, got " + std::to_string(reference_columns));
  }
  if ((options.policy == BinningPolicy::Quantile || options.policy == BinningPolicy::EqualWidth) &&
      options.bins == 0) {
    throw InvalidInput("binning: policy '" + std::string(to_string(options.policy)) +
                       "' needs bins >= 1");
  }

  HistogramSpec spec;
  for (std::size_t f = 0; f < n; ++f) {
    const FeatureSpec& feature = schema.features[f];
    const ColumnStats& reference = reference_stats[f];
    if (options.policy == BinningPolicy::Evidently) {
      const ColumnStats& current = (*current_stats)[f];
      if (evidently_bins_by_value(feature.kind, reference)) {
        // evidently keys these bins by the values of either window alone: an unseen schema code
        // would be a bin empty in both windows, which evidently's zero fill can turn into a
        // nonzero term.
        spec.add_categorical(value_bins(feature.name, {}, {&reference, &current}));
      } else {
        ColumnStats pooled = reference;
        pooled.merge(current);
        spec.add_numeric(sturges_edges(pooled.count, pooled.min, pooled.max));
      }
      continue;
    }
    if (feature.kind == FeatureKind::Categorical) {
      spec.add_categorical(value_bins(feature.name, feature.categories, {&reference}));
      continue;
    }
    switch (options.policy) {
      case BinningPolicy::Quantile:
        if (bins_by_value(reference, options.bins)) {
          spec.add_categorical(reference.distinct);
        } else {
          spec.add_numeric(reference.count == 0 ? edges_without_reference_values()
                                                : quantile_of(f, options.bins));
        }
        break;
      case BinningPolicy::EqualWidth:
        spec.add_numeric(reference.count == 0
                             ? edges_without_reference_values()
                             : equal_width_edges(reference.min, reference.max, options.bins));
        break;
      case BinningPolicy::Fixed:
        spec.add_numeric(fixed_edges(feature));
        break;
      case BinningPolicy::Evidently:
        break;  // handled above
    }
  }
  return spec;
}

}  // namespace

HistogramSpec build_histogram_spec(const Schema& schema, const BinningOptions& options,
                                   const SortedColumns& reference,
                                   const std::vector<ColumnStats>& reference_stats,
                                   const std::vector<ColumnStats>* current_stats) {
  const auto quantile_of = [&](std::size_t f, std::size_t bins) {
    return quantile_edges_of_sorted(reference.column(f), bins);
  };
  return build_spec(schema, options, reference.features, quantile_of, reference_stats,
                    current_stats);
}

HistogramSpec build_histogram_spec(const Schema& schema, const BinningOptions& options,
                                   const std::vector<std::vector<float>>& reference_columns,
                                   const std::vector<ColumnStats>& reference_stats,
                                   const std::vector<ColumnStats>* current_stats) {
  const auto quantile_of = [&](std::size_t f, std::size_t bins) {
    return quantile_edges(reference_columns[f], bins);
  };
  return build_spec(schema, options, reference_columns.size(), quantile_of, reference_stats,
                    current_stats);
}

}  // namespace driftguard
