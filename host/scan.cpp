#include "driftguard/scan.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/histogram.hpp"

namespace driftguard {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// About 16 MiB of rows per batch, rounded to whole HDF5 chunks so no chunk is read twice.
std::size_t batch_rows_for(const Hdf5BatchReader& reader, std::size_t requested) {
  if (requested > 0) return requested;
  const std::size_t row_bytes = reader.features() * sizeof(float);
  const std::size_t target = std::max<std::size_t>(1, (std::size_t{16} << 20) / row_bytes);
  const std::size_t chunk = std::max<std::size_t>(1, reader.chunk_rows());
  return std::max(chunk, target / chunk * chunk);
}

// The reference window, row-major in host memory: quantile edges need every value.
struct ReferenceWindow {
  std::vector<std::string> names;
  std::size_t rows = 0, features = 0;
  std::vector<float> values;

  BatchView view() const { return {values.data(), rows, features}; }
  std::vector<float> column(std::size_t f) const {
    std::vector<float> out(rows);
    for (std::size_t r = 0; r < rows; ++r) out[r] = values[r * features + f];
    return out;
  }
};

ReferenceWindow read_reference(const std::string& path) {
  Hdf5BatchReader reader(path);
  ReferenceWindow ref{reader.feature_names(), reader.rows(), reader.features(), {}};
  ref.values.resize(ref.rows * ref.features);
  const std::size_t step = batch_rows_for(reader, 0);
  for (std::size_t first = 0; first < ref.rows; first += step) {
    reader.read(first, step, ref.values.data() + first * ref.features);
  }
  return ref;
}

// Streams the current window in batches through `body(BatchView)`.
template <typename Body>
std::uint64_t for_each_batch(Hdf5BatchReader& reader, std::size_t batch_rows, Body&& body) {
  const std::size_t step = batch_rows_for(reader, batch_rows);
  std::vector<float> buffer(step * reader.features());
  std::uint64_t rows = 0;
  for (std::size_t first = 0; first < reader.rows(); first += step) {
    const std::size_t n = reader.read(first, step, buffer.data());
    body(BatchView{buffer.data(), n, reader.features()});
    rows += n;
  }
  return rows;
}

std::vector<ColumnStats> column_stats(BatchView batch) {
  std::vector<ColumnStats> stats(batch.features);
  observe_columns(batch, stats);
  return stats;
}

}  // namespace

std::size_t ScanReport::drifted_features() const {
  return static_cast<std::size_t>(std::count_if(features.begin(), features.end(),
                                                [](const FeatureDrift& f) { return f.drifted; }));
}

ScanReport scan(Context& ctx, const ScanOptions& options) {
  const Clock::time_point start = Clock::now();
  ScanReport report;
  report.backend = std::string(to_string(ctx.backend()));
  report.device = ctx.device_name();
  report.reference_path = options.reference_path;
  report.current_path = options.current_path;
  report.binning = options.binning;
  report.psi =
      options.binning.policy == BinningPolicy::Evidently ? evidently_psi_options() : options.psi;
  report.bands = options.bands;
  report.drift_band = options.drift_band;

  const ReferenceWindow ref = read_reference(options.reference_path);
  Hdf5BatchReader current(options.current_path);

  Schema schema;
  if (options.schema) {
    schema = *options.schema;
  } else {
    SchemaInferrer inferrer(ref.names, options.max_categories, options.range_margin);
    inferrer.observe(ref.view());
    schema = inferrer.finish();
    report.schema_inferred = true;
  }
  try {
    schema.check_names(ref.names);
  } catch (const InvalidInput& e) {
    throw InvalidInput(options.reference_path + ": " + e.what());
  }
  try {
    schema.check_names(current.feature_names());
  } catch (const InvalidInput& e) {
    throw InvalidInput(options.current_path + ": " + e.what());
  }

  // Bins come from the reference (and, for evidently's pooled bins, from a first current pass).
  const std::vector<ColumnStats> reference_stats = column_stats(ref.view());
  std::vector<ColumnStats> current_stats;
  if (options.binning.policy == BinningPolicy::Evidently) {
    current_stats.resize(current.features());
    for_each_batch(current, options.batch_rows,
                   [&](BatchView batch) { observe_columns(batch, current_stats); });
  }
  std::vector<std::vector<float>> reference_columns;
  if (options.binning.policy == BinningPolicy::Quantile) {
    reference_columns.reserve(ref.features);
    for (std::size_t f = 0; f < ref.features; ++f) reference_columns.push_back(ref.column(f));
  }
  const HistogramSpec spec =
      build_histogram_spec(schema, options.binning, reference_columns, reference_stats,
                           current_stats.empty() ? nullptr : &current_stats);
  const ValidationRules rules = ValidationRules::from_schema(schema);

  report.reference_rows = ref.rows;
  report.reference_validation = ValidationCounts(ref.features);
  HistogramCounts reference_counts(spec);
  validate_histogram(ctx, ref.view(), rules, spec, report.reference_validation, reference_counts);

  const Clock::time_point current_start = Clock::now();
  report.current_validation = ValidationCounts(current.features());
  HistogramCounts current_counts(spec);
  report.current_rows = for_each_batch(current, options.batch_rows, [&](BatchView batch) {
    validate_histogram(ctx, batch, rules, spec, report.current_validation, current_counts);
  });
  report.current_seconds = seconds_since(current_start);

  for (std::size_t f = 0; f < schema.features.size(); ++f) {
    FeatureDrift drift;
    drift.name = schema.features[f].name;
    drift.kind = schema.features[f].kind;
    const auto points = spec.points_of(f);
    drift.points.assign(points.begin(), points.end());
    const auto ref_slots = reference_counts.slots(f);
    const auto cur_slots = current_counts.slots(f);
    drift.reference_slots.assign(ref_slots.begin(), ref_slots.end());
    drift.current_slots.assign(cur_slots.begin(), cur_slots.end());
    drift.psi = psi(ref_slots, cur_slots, report.psi, drift.kind);
    drift.band = psi_band(drift.psi, options.bands);
    drift.drifted = !std::isnan(drift.psi) && drift.band >= options.drift_band;
    for (CellFlag flag : kAllCellFlags) {
      drift.reference_flags[flag_index(flag)] = report.reference_validation.count(f, flag);
      drift.current_flags[flag_index(flag)] = report.current_validation.count(f, flag);
    }
    report.features.push_back(std::move(drift));
  }
  report.seconds = seconds_since(start);
  return report;
}

}  // namespace driftguard
