#include "driftguard/scan.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/histogram.hpp"
#include "driftguard/profile.hpp"

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

ReferenceProfile reference_profile(Context& ctx, const ScanOptions& options, bool& is_profile) {
  is_profile = ReferenceProfile::is_profile(options.reference_path);
  if (!is_profile) {
    return ReferenceProfile::build(ctx, options.reference_path,
                                   {.schema = options.schema,
                                    .max_categories = options.max_categories,
                                    .range_margin = options.range_margin,
                                    .mmd_rows = options.mmd ? options.mmd_rows : 0,
                                    .seed = options.mmd_options.seed,
                                    .model_path = options.model_path,
                                    .model_options = options.model_options});
  }
  if (options.schema) {
    throw InvalidInput(options.reference_path +
                       ": a profile carries its own schema; --schema applies to raw reference "
                       "tables only");
  }
  ReferenceProfile profile = ReferenceProfile::load(options.reference_path);
  if (options.model_path && profile.score_model.empty()) {
    throw InvalidInput(options.reference_path +
                       ": the profile holds no reference scores; build it with "
                       "`driftguard profile --model`");
  }
  return profile;
}

// PSI and KS of each model output, current window against the profile's reference scores.
std::vector<ScoreDrift> score_drift(Context& ctx, const ScanOptions& options,
                                    const ReferenceProfile& ref, const Model& model,
                                    const std::vector<std::string>& names, BatchView window,
                                    const PsiOptions& psi_options) {
  const std::size_t outputs = model.outputs();
  if (ref.scores.features != outputs) {
    throw InvalidInput(options.reference_path + ": the reference scores have " +
                       std::to_string(ref.scores.features) + " outputs, the model " +
                       std::to_string(outputs));
  }
  const std::vector<float> scores = model_scores(ctx, model, names, window);
  const BatchView current{scores.data(), window.rows, outputs};
  HistogramSpec spec;
  for (std::size_t k = 0; k < outputs; ++k) {
    spec.add_numeric(quantile_edges(ref.scores.column(k), options.binning.bins));
  }
  const HistogramCounts reference_counts = histogram_of_sorted(ref.scores, spec);
  HistogramCounts current_counts(spec);
  histogram(ctx, current, spec, current_counts);
  const std::vector<KsResult> ks = ks_two_sample(ctx, ref.scores, current, options.ks_options);
  std::vector<ScoreDrift> drift(outputs);
  for (std::size_t k = 0; k < outputs; ++k) {
    ScoreDrift& d = drift[k];
    d.name = outputs == 1 ? "probability" : "probability[" + std::to_string(k) + "]";
    const auto edges = spec.points_of(k);
    d.edges.assign(edges.begin(), edges.end());
    const auto ref_slots = reference_counts.slots(k), cur_slots = current_counts.slots(k);
    d.reference_slots.assign(ref_slots.begin(), ref_slots.end());
    d.current_slots.assign(cur_slots.begin(), cur_slots.end());
    d.psi = psi(ref_slots, cur_slots, psi_options);
    d.band = psi_band(d.psi, options.bands);
    d.ks = ks[k];
    d.drifted = !std::isnan(d.psi) && d.band >= options.drift_band;
  }
  return drift;
}

}  // namespace

DriftRule parse_drift_rule(std::string_view name) {
  if (name == "psi") return DriftRule::Psi;
  if (name == "ks") return DriftRule::Ks;
  if (name == "psi_or_ks") return DriftRule::PsiOrKs;
  throw InvalidInput("unknown drift rule '" + std::string(name) +
                     "' (expected psi, ks or psi_or_ks)");
}

std::string_view to_string(DriftRule rule) {
  switch (rule) {
    case DriftRule::Psi:
      return "psi";
    case DriftRule::Ks:
      return "ks";
    case DriftRule::PsiOrKs:
      return "psi_or_ks";
  }
  return "unknown";
}

std::size_t ScanReport::drifted_features() const {
  return static_cast<std::size_t>(std::count_if(features.begin(), features.end(),
                                                [](const FeatureDrift& f) { return f.drifted; }));
}

bool ScanReport::dataset_drift() const {
  const bool score_drift =
      std::any_of(scores.begin(), scores.end(), [](const ScoreDrift& s) { return s.drifted; });
  return drifted_features() > 0 || score_drift || (mmd && mmd->pvalue < alpha);
}

std::string ScanReport::decision_rule() const {
  char alpha_text[32];
  std::snprintf(alpha_text, sizeof alpha_text, "%g", alpha);
  const std::string psi_rule = "PSI band >= " + std::string(to_string(drift_band));
  const std::string ks_rule = "KS p-value (" + std::string(to_string(correction)) +
                              "-adjusted over features) < " + alpha_text;
  std::string rule = "a feature drifts when its ";
  rule += drift_rule == DriftRule::Psi  ? psi_rule
          : drift_rule == DriftRule::Ks ? ks_rule
                                        : psi_rule + " or its " + ks_rule;
  rule += "; the dataset drifts when a feature drifts";
  if (!scores.empty()) rule += ", when a model score's " + psi_rule;
  if (mmd) rule += std::string(" or the MMD permutation p-value < ") + alpha_text;
  return rule;
}

ScanReport scan(Context& ctx, const ScanOptions& options) {
  if (!(options.alpha > 0 && options.alpha < 1)) throw InvalidInput("alpha must be in (0, 1)");
  if (options.drift_rule != DriftRule::Psi && !options.ks) {
    throw InvalidInput("the drift rule '" + std::string(to_string(options.drift_rule)) +
                       "' needs KS, which is switched off");
  }
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
  report.ks_options = options.ks_options;
  report.correction = options.correction;
  report.alpha = options.alpha;
  report.drift_rule = options.drift_rule;

  const ReferenceProfile ref = reference_profile(ctx, options, report.reference_is_profile);
  if (options.mmd && ref.mmd_rows < 2) {
    throw InvalidInput(options.reference_path +
                       ": MMD needs at least 2 reference rows without "
                       "NaN or Inf (the profile keeps " +
                       std::to_string(ref.mmd_rows) + ")");
  }
  report.schema_inferred = ref.schema_inferred;
  report.reference_rows = ref.rows;
  report.reference_validation = ref.validation;
  const Schema& schema = ref.schema;

  Hdf5BatchReader current(options.current_path);
  try {
    schema.check_names(current.feature_names());
  } catch (const InvalidInput& e) {
    throw InvalidInput(options.current_path + ": " + e.what());
  }
  const std::size_t features = current.features();
  const Clock::time_point current_start = Clock::now();

  // KS, MMD and evidently's pooled bins need the whole current window; otherwise it streams.
  const bool hold_window = options.ks || options.distances || options.mmd || options.model_path ||
                           options.binning.policy == BinningPolicy::Evidently;
  const std::size_t step = batch_rows_for(current, options.batch_rows);
  std::vector<float> window;
  if (hold_window) {
    window.resize(current.rows() * features);
    for (std::size_t first = 0; first < current.rows(); first += step) {
      current.read(first, step, window.data() + first * features);
    }
  }
  const BatchView window_view{window.data(), hold_window ? current.rows() : 0, features};

  std::vector<ColumnStats> current_stats;
  if (options.binning.policy == BinningPolicy::Evidently) {
    current_stats.resize(features);
    observe_columns(window_view, current_stats);
  }
  std::vector<std::vector<float>> reference_columns;
  if (options.binning.policy == BinningPolicy::Quantile) {
    for (std::size_t f = 0; f < features; ++f) {
      const auto column = ref.sorted.column(f);
      reference_columns.emplace_back(column.begin(), column.end());
    }
  }
  const HistogramSpec spec =
      build_histogram_spec(schema, options.binning, reference_columns, ref.column_stats(),
                           current_stats.empty() ? nullptr : &current_stats);
  const ValidationRules rules = ValidationRules::from_schema(schema);
  const HistogramCounts reference_counts = ref.histogram(spec);

  report.current_validation = ValidationCounts(features);
  HistogramCounts current_counts(spec);
  if (hold_window) {
    validate_histogram(ctx, window_view, rules, spec, report.current_validation, current_counts);
  } else {
    std::vector<float> buffer(step * features);
    for (std::size_t first = 0; first < current.rows(); first += step) {
      const std::size_t n = current.read(first, step, buffer.data());
      validate_histogram(ctx, {buffer.data(), n, features}, rules, spec, report.current_validation,
                         current_counts);
    }
  }
  report.current_rows = report.current_validation.rows;

  // The distances need the current columns sorted; KS then reuses them instead of sorting again.
  SortedColumns current_sorted;
  if (options.distances) current_sorted = SortedColumns::from_batch(ctx, window_view);
  std::vector<KsResult> ks;
  if (options.ks) {
    ks = options.distances ? ks_two_sample(ctx, ref.sorted, current_sorted, options.ks_options)
                           : ks_two_sample(ctx, ref.sorted, window_view, options.ks_options);
  }
  std::vector<double> ks_pvalues;
  for (const KsResult& r : ks) ks_pvalues.push_back(r.pvalue);
  const std::vector<double> ks_adjusted = adjust_pvalues(ks_pvalues, options.correction);

  if (options.mmd) {
    const std::vector<float> sample = sample_finite_rows(
        window_view, options.mmd_rows, options.mmd_options.seed, &report.mmd_current_finite_rows);
    const std::size_t sample_rows = sample.size() / features;
    if (sample_rows < 2) {
      throw InvalidInput(options.current_path +
                         ": MMD needs at least 2 current rows without NaN or Inf");
    }
    report.mmd = mmd_test(ctx, {ref.mmd_sample.data(), ref.mmd_rows, features},
                          {sample.data(), sample_rows, features}, options.mmd_options);
  }
  if (options.model_path) {
    const Model model = Model::load(*options.model_path, options.model_options);
    report.score_model = *options.model_path;
    report.scores =
        score_drift(ctx, options, ref, model, current.feature_names(), window_view, options.psi);
  }
  report.current_seconds = seconds_since(current_start);

  for (std::size_t f = 0; f < features; ++f) {
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
    const bool psi_drift = !std::isnan(drift.psi) && drift.band >= options.drift_band;
    bool ks_drift = false;
    drift.ks_pvalue_adjusted = std::nan("");
    if (options.ks) {
      drift.ks = ks[f];
      drift.ks_pvalue_adjusted = ks_adjusted[f];
      ks_drift = ks_adjusted[f] < options.alpha;  // false for NaN
    }
    if (options.distances) {
      const auto ref_column = ref.sorted.column(f), cur_column = current_sorted.column(f);
      drift.wasserstein = wasserstein1(ref_column, cur_column);
      drift.wasserstein_normed = wasserstein1_normed(ref_column, cur_column);
      // Missing values are validation's business, not part of the distributions compared.
      const auto without_missing = [](std::span<const std::uint64_t> slots) {
        return slots.first(slots.size() - 1);
      };
      drift.jensen_shannon =
          jensen_shannon(without_missing(ref_slots), without_missing(cur_slots), 2.0);
      if (drift.kind == FeatureKind::Categorical) {
        drift.chi_squared = chi_squared(without_missing(ref_slots), without_missing(cur_slots));
      } else {
        drift.cramer_von_mises = cramer_von_mises(ref_column, cur_column);
      }
    }
    drift.drifted = options.drift_rule == DriftRule::Psi  ? psi_drift
                    : options.drift_rule == DriftRule::Ks ? ks_drift
                                                          : psi_drift || ks_drift;
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
