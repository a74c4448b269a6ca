#include "driftguard/monitor.hpp"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <optional>

#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/histogram.hpp"
#include "kernels/context_impl.hpp"
#include "kernels/parallel.hpp"

namespace driftguard {

bool DriftOptions::holds_window() const noexcept {
  return ks || distances || mmd || model_path.has_value() ||
         binning.policy == BinningPolicy::Evidently;
}

void DriftOptions::check() const {
  if (!(alpha > 0 && alpha < 1)) throw InvalidInput("alpha must be in (0, 1)");
  if (uses_test(drift_rule) && !ks) {
    throw InvalidInput("the drift rule '" + std::string(to_string(drift_rule)) +
                       "' needs KS, which is switched off");
  }
  // Caught here, not when the first window closes (which would fail, and the window never end).
  if (mmd && mmd_rows < 2) throw InvalidInput("MMD needs mmd_rows >= 2");
  if (mmd && mmd_options.permutations == 0) throw InvalidInput("MMD needs permutations >= 1");
}

namespace {

// Slots without the last one (missing): missing values are validation's business, not part of
// the distributions compared.
std::span<const std::uint64_t> without_missing(std::span<const std::uint64_t> slots) {
  return slots.first(slots.size() - 1);
}

// build_histogram_spec over the profile; a feature it cannot bin is named with the reference.
HistogramSpec histogram_spec_of(const ReferenceProfile& ref, const BinningOptions& binning,
                                const std::vector<ColumnStats>& reference_stats,
                                const std::vector<ColumnStats>* current_stats) {
  try {
    return build_histogram_spec(ref.schema, binning, ref.sorted, reference_stats, current_stats);
  } catch (const InvalidInput& e) {
    throw InvalidInput(ref.name() + ": " + e.what());
  }
}

// Every distinct finite value of column f of a host window, for value bins past
// ColumnStats::kMaxDistinct.
ColumnStats all_values_of_column(BatchView window, std::size_t f) {
  std::vector<float> column;
  column.reserve(window.rows);
  for (std::size_t r = 0; r < window.rows; ++r) {
    const float v = window.data[r * window.features + f];
    if (!std::isnan(v)) column.push_back(v);
  }
  std::sort(column.begin(), column.end());
  return ColumnStats::all_values_of_sorted(column);
}

// FeatureDrift::labels: the schema's name for each code the categorical feature is binned by.
std::vector<std::optional<std::string>> labels_of(const FeatureSpec& feature,
                                                  const HistogramSpec& spec, std::size_t f) {
  std::vector<std::optional<std::string>> labels;
  if (feature.labels.empty() || spec.categorical[f] == 0) return labels;
  for (const double point : spec.points_of(f)) {
    // Under the evidently policy the points are any values seen, 2.5 or 1e30 included.
    const bool integral =
        std::abs(point) <= static_cast<double>(kMaxCategoryCode) && point == std::trunc(point);
    const auto code = integral ? static_cast<std::int64_t>(point) : std::int64_t{0};
    const auto at = std::lower_bound(feature.categories.begin(), feature.categories.end(), code);
    const bool listed = integral && at != feature.categories.end() && *at == code;
    labels.push_back(
        listed ? std::optional<std::string>(
                     feature.labels[static_cast<std::size_t>(at - feature.categories.begin())])
               : std::nullopt);
  }
  return labels;
}

}  // namespace

struct Monitor::Impl {
  Context* ctx;
  // Set after a CUDA failure: the rest of the run goes here.
  std::unique_ptr<Context> cpu_fallback;
  std::vector<FailoverEvent> failovers;

  ReferenceProfile profile;
  DriftOptions options;
  PsiOptions psi_options;
  ValidationRules rules;
  std::vector<ColumnStats> reference_stats;
  // Fixed bins and reference counts; unset under the evidently policy (bins pooled per window).
  std::optional<HistogramSpec> spec;
  HistogramCounts reference_counts;
  std::vector<double> normed_scale;  // per feature, wasserstein1_normed_scale of the reference
  std::optional<BoundModel> model;
  HistogramSpec score_spec;
  HistogramCounts reference_score_counts;

  // The current window.
  std::uint64_t rows = 0;
  std::uint64_t windows_closed = 0, rows_closed = 0;  // close_window()'s numbering
  std::uint64_t first_row = 0;  // the stream position of its first batch (labels failovers)
  ValidationCounts validation;
  HistogramCounts counts;
  std::vector<float> held;    // rows x features, when options.holds_window()
  std::vector<float> scores;  // rows x model outputs, with a model
  // KS of a raw window (no distances) against profile.sorted, made on the first window of each
  // context: on CUDA the reference is uploaded once for the run, not once per window.
  std::optional<ResidentReference> resident;
  // The window's sorted columns, when the distances need them: sorted window after window into
  // the same memory.
  SortedColumns current_sorted;

  mutable std::mutex mutex;

  Context& active() { return cpu_fallback ? *cpu_fallback : *ctx; }

  // Runs `step` on the active backend; a CUDA failure moves the monitor to the CPU for good and
  // runs the step again there. Steps write their results only after they succeed.
  template <class Step>
  auto with_failover(const char* stage, std::uint64_t row, Step&& step) {
    try {
      return step(active());
    } catch (const CudaError& e) {
      if (cpu_fallback) throw;
      failovers.push_back({row, stage, std::string(to_string(ctx->backend())), e.what()});
      cpu_fallback = cpu_fallback_context(*ctx);
      return step(*cpu_fallback);
    }
  }

  // report() with the window's place among those closed so far.
  ScanReport numbered_report() {
    ScanReport out = report();
    WindowInfo info;
    info.index = windows_closed;
    info.first_row = rows_closed;
    info.end_row = rows_closed + rows;
    out.window = info;
    return out;
  }

  void reset_window() {
    rows = 0;
    validation = ValidationCounts(profile.features());
    if (spec) counts = HistogramCounts(*spec);
    held.clear();
    scores.clear();
  }

  ScanReport report();
  std::vector<ScoreDrift> score_drift(Context& ctx, BatchView window);
};

Monitor::Monitor(Context& ctx, ReferenceProfile profile, DriftOptions options,
                 std::size_t expected_window_rows)
    : impl_(std::make_unique<Impl>()) {
  options.check();
  Impl& m = *impl_;
  m.ctx = &ctx;
  m.profile = std::move(profile);
  m.options = std::move(options);
  const ReferenceProfile& ref = m.profile;
  const DriftOptions& opt = m.options;
  if (opt.mmd && ref.mmd_rows < 2) {
    throw InvalidInput(ref.name() +
                       ": MMD needs at least 2 reference rows without NaN or Inf (the profile "
                       "keeps " +
                       std::to_string(ref.mmd_rows) + ")");
  }
  m.psi_options =
      opt.binning.policy == BinningPolicy::Evidently ? evidently_psi_options() : opt.psi;
  m.rules = ValidationRules::from_schema(ref.schema);
  m.reference_stats = ref.column_stats();
  // Categorical features are binned by every value the reference takes, however many: the
  // profile holds them all.
  for (std::size_t f = 0; f < ref.features(); ++f) {
    if (m.reference_stats[f].too_many_distinct &&
        ref.schema.features[f].kind == FeatureKind::Categorical) {
      m.reference_stats[f] = ColumnStats::all_values_of_sorted(ref.sorted.column(f));
    }
  }
  if (opt.binning.policy != BinningPolicy::Evidently) {
    m.spec = histogram_spec_of(ref, opt.binning, m.reference_stats, nullptr);
    m.reference_counts = ref.histogram(*m.spec);
  }
  if (opt.distances) {
    for (std::size_t f = 0; f < ref.features(); ++f) {
      m.normed_scale.push_back(wasserstein1_normed_scale(ref.sorted.column(f)));
    }
  }
  if (opt.model_path) {
    if (ref.score_model.empty()) {
      throw InvalidInput(ref.name() +
                         ": the profile holds no reference scores; build it with "
                         "`driftguard profile --model`");
    }
    const Model model = Model::load(*opt.model_path, opt.model_options);
    if (model.fingerprint() != ref.score_model_fingerprint) {
      throw InvalidInput(ref.name() + ": the reference scores were made with the model " +
                         ref.score_model + " (fingerprint " + ref.score_model_fingerprint +
                         "), not with " + *opt.model_path + " (fingerprint " + model.fingerprint() +
                         ", or another iteration range); scan with that model or rebuild the "
                         "profile with `driftguard profile --model`");
    }
    if (ref.scores.features != model.outputs()) {
      throw InvalidInput(ref.name() + ": the reference scores have " +
                         std::to_string(ref.scores.features) + " outputs, the model " +
                         std::to_string(model.outputs()));
    }
    std::vector<std::string> names;
    for (const FeatureSpec& feature : ref.schema.features) names.push_back(feature.name);
    m.model.emplace(model, names);
    for (std::size_t k = 0; k < model.outputs(); ++k) {
      // A score with few values (binary:hinge's classes, a model of a few stumps) is binned by
      // value: merged quantile edges would put all of them in one bin and its PSI would stay 0.
      const ColumnStats stats = ColumnStats::of_sorted(ref.scores.column(k));
      if (stats.count == 0) {
        throw InvalidInput(*opt.model_path + ": output " + std::to_string(k) +
                           " has no finite score on the reference window (every score is NaN "
                           "or infinite), so its drift cannot be binned");
      }
      if (bins_by_value(stats, opt.binning.bins)) {
        m.score_spec.add_categorical(stats.distinct);
      } else {
        m.score_spec.add_numeric(quantile_edges_of_sorted(ref.scores.column(k), opt.binning.bins));
      }
    }
    m.reference_score_counts = histogram_of_sorted(ref.scores, m.score_spec);
  }
  if (opt.holds_window() && expected_window_rows > 0) {
    m.held.reserve(expected_window_rows * ref.features());
    // Room for a whole window's values up front: every window then sorts into the same memory.
    if (opt.distances) m.current_sorted.values.reserve(expected_window_rows * ref.features());
    if (m.model) m.scores.reserve(expected_window_rows * m.model->model().outputs());
  }
  m.reset_window();
}

Monitor::~Monitor() = default;
Monitor::Monitor(Monitor&&) noexcept = default;
Monitor& Monitor::operator=(Monitor&&) noexcept = default;

void Monitor::observe(BatchView batch, std::uint64_t first_row) {
  Impl& m = *impl_;
  const std::lock_guard lock(m.mutex);
  if (batch.features != m.profile.features()) {
    throw InvalidInput("Monitor::observe: batch has " + std::to_string(batch.features) +
                       " features, the profile " + std::to_string(m.profile.features()));
  }
  if (batch.space != MemorySpace::Host) {
    throw InvalidInput("Monitor::observe: batches live in host memory");
  }
  if (batch.rows == 0) return;
  ValidationCounts validation(batch.features);
  HistogramCounts counts = m.spec ? HistogramCounts(*m.spec) : HistogramCounts();
  std::vector<float> scores;
  m.with_failover("batch", first_row, [&](Context& ctx) {
    validation = ValidationCounts(batch.features);
    if (m.spec) {
      counts = HistogramCounts(*m.spec);
      validate_histogram(ctx, batch, m.rules, *m.spec, validation, counts);
    } else {
      validate(ctx, batch, m.rules, validation);
    }
    if (m.model) {
      scores.resize(batch.rows * m.model->model().outputs());
      score(ctx, *m.model, batch, {.probability = scores.data()});
    }
  });
  if (m.rows == 0) m.first_row = first_row;
  m.rows += batch.rows;
  m.validation += validation;
  if (m.spec) m.counts += counts;
  if (m.options.holds_window()) {
    m.held.insert(m.held.end(), batch.data, batch.data + batch.rows * batch.features);
  }
  m.scores.insert(m.scores.end(), scores.begin(), scores.end());
}

ScanReport Monitor::snapshot() {
  const std::lock_guard lock(impl_->mutex);
  return impl_->numbered_report();
}

ScanReport Monitor::close_window() {
  const std::lock_guard lock(impl_->mutex);
  Impl& m = *impl_;
  ScanReport report = m.numbered_report();
  ++m.windows_closed;
  m.rows_closed += m.rows;
  m.reset_window();
  return report;
}

std::uint64_t Monitor::window_rows() const {
  const std::lock_guard lock(impl_->mutex);
  return impl_->rows;
}

const ReferenceProfile& Monitor::profile() const noexcept { return impl_->profile; }
const DriftOptions& Monitor::options() const noexcept { return impl_->options; }

std::string Monitor::backend() const {
  const std::lock_guard lock(impl_->mutex);
  return std::string(to_string(impl_->cpu_fallback ? Backend::Cpu : impl_->ctx->backend()));
}

std::vector<FailoverEvent> Monitor::failovers() const {
  const std::lock_guard lock(impl_->mutex);
  return impl_->failovers;
}

// PSI and KS of each model output, the window's scores against the profile's reference scores.
std::vector<ScoreDrift> Monitor::Impl::score_drift(Context& ctx, BatchView window) {
  const std::size_t outputs = model->model().outputs();
  const BatchView current{scores.data(), window.rows, outputs};
  HistogramCounts current_counts(score_spec);
  histogram(ctx, current, score_spec, current_counts);
  const std::vector<KsResult> ks = ks_two_sample(ctx, profile.scores, current, options.ks_options);
  std::vector<ScoreDrift> drift(outputs);
  for (std::size_t k = 0; k < outputs; ++k) {
    ScoreDrift& d = drift[k];
    d.name = outputs == 1 ? "probability" : "probability[" + std::to_string(k) + "]";
    const auto points = score_spec.points_of(k);
    d.by_value = score_spec.categorical[k] != 0;
    d.points.assign(points.begin(), points.end());
    const auto ref_slots = reference_score_counts.slots(k), cur_slots = current_counts.slots(k);
    d.reference_slots.assign(ref_slots.begin(), ref_slots.end());
    d.current_slots.assign(cur_slots.begin(), cur_slots.end());
    // Binned by value, "other" (a score no reference row had) is a bin of its own, as a
    // category's: folded into the last value's bin it would hide exactly the new scores.
    d.psi = psi(ref_slots, cur_slots, options.psi,
                d.by_value ? FeatureKind::Categorical : FeatureKind::Numeric);
    d.band = psi_band(d.psi, options.bands);
    d.ks = ks[k];
    d.drifted = !std::isnan(d.psi) && d.band >= options.drift_band;
  }
  return drift;
}

ScanReport Monitor::Impl::report() {
  const DriftOptions& opt = options;
  const ReferenceProfile& ref = profile;
  const std::size_t features = ref.features();
  ScanReport report;
  report.reference_path = ref.name();
  report.reference_is_profile = !ref.file.empty();
  report.reference_rows = ref.rows;
  report.reference_validation = ref.validation;
  report.schema_inferred = ref.schema_inferred;
  report.binning = opt.binning;
  report.psi = psi_options;
  report.bands = opt.bands;
  report.drift_band = opt.drift_band;
  report.ks_options = opt.ks_options;
  report.correction = opt.correction;
  report.alpha = opt.alpha;
  report.drift_rule = opt.drift_rule;
  report.current_validation = validation;
  report.current_rows = rows;

  const BatchView window{held.data(), opt.holds_window() ? rows : 0, features};
  // The window's histogram: counted per batch, or under the evidently policy, over bins pooled
  // from both windows, now.
  HistogramSpec window_spec;
  HistogramCounts window_counts;
  if (spec) {
    window_spec = *spec;
    window_counts = counts;
  } else {
    std::vector<ColumnStats> current_stats(features);
    observe_columns(window, current_stats);
    for (std::size_t f = 0; f < features; ++f) {
      if (current_stats[f].too_many_distinct &&
          evidently_bins_by_value(ref.schema.features[f].kind, reference_stats[f])) {
        current_stats[f] = all_values_of_column(window, f);
      }
    }
    window_spec = histogram_spec_of(ref, opt.binning, reference_stats, &current_stats);
    window_counts = with_failover("window", first_row, [&](Context& ctx) {
      HistogramCounts counts(window_spec);
      histogram(ctx, window, window_spec, counts);
      return counts;
    });
  }
  const HistogramCounts window_reference_counts =
      spec ? reference_counts : ref.histogram(window_spec);

  // The distances need the window's columns sorted; KS then reuses them instead of sorting again.
  std::vector<KsResult> ks;
  with_failover("window", first_row, [&](Context& ctx) {
    if (opt.distances) current_sorted.assign_from_batch(ctx, window);
    if (opt.ks) {
      if (opt.distances) {
        ks = ks_two_sample(ctx, ref.sorted, current_sorted, opt.ks_options);
      } else {
        if (!resident || &resident->context() != &ctx) resident.emplace(ctx, ref.sorted);
        ks = ks_two_sample(ctx, *resident, window, opt.ks_options);
      }
    }
  });
  // Categorical features' chi-squared tests, from the histograms.
  const bool by_chi_squared = tests_categories_by_chi_squared(opt.drift_rule);
  std::vector<std::optional<ChiSquaredResult>> chi_squared_results(features);
  if (opt.distances || by_chi_squared) {
    for (std::size_t f = 0; f < features; ++f) {
      if (ref.schema.features[f].kind != FeatureKind::Categorical) continue;
      chi_squared_results[f] = chi_squared(without_missing(window_reference_counts.slots(f)),
                                           without_missing(window_counts.slots(f)));
    }
  }
  // The family the correction runs over: each feature's test.
  std::vector<double> test_pvalues;
  for (std::size_t f = 0; f < ks.size(); ++f) {
    test_pvalues.push_back(by_chi_squared && chi_squared_results[f] ? chi_squared_results[f]->pvalue
                                                                    : ks[f].pvalue);
  }
  const std::vector<double> test_adjusted = adjust_pvalues(test_pvalues, opt.correction);

  if (opt.mmd) {
    const std::vector<float> sample = sample_finite_rows(window, opt.mmd_rows, opt.mmd_options.seed,
                                                         &report.mmd_current_finite_rows);
    const std::size_t sample_rows = sample.size() / features;
    if (sample_rows >= 2) {
      report.mmd = with_failover("window", first_row, [&](Context& ctx) {
        return mmd_test(ctx, {ref.mmd_sample.data(), ref.mmd_rows, features},
                        {sample.data(), sample_rows, features}, opt.mmd_options);
      });
    } else {
      report.mmd_skipped = "the current window has " +
                           std::to_string(report.mmd_current_finite_rows) +
                           " rows without NaN or Inf; the test needs 2";
    }
  }
  if (model) {
    report.score_model = *opt.model_path;
    report.scores =
        with_failover("window", first_row, [&](Context& ctx) { return score_drift(ctx, window); });
  }

  // The distances over the sorted samples, the costly part of a window's report: one feature
  // per worker.
  std::vector<double> wasserstein(features);
  std::vector<CvmResult> cramer_von_mises_results(features);
  if (opt.distances) {
    detail::parallel_for(active().cpu_threads(), features, [&](std::size_t f) {
      const auto ref_column = ref.sorted.column(f), cur_column = current_sorted.column(f);
      if (ref.schema.features[f].kind == FeatureKind::Categorical) {
        wasserstein[f] = wasserstein1(ref_column, cur_column);
      } else {
        const WassersteinAndCvm both = wasserstein1_and_cramer_von_mises(ref_column, cur_column);
        wasserstein[f] = both.wasserstein;
        cramer_von_mises_results[f] = both.cramer_von_mises;
      }
    });
  }

  for (std::size_t f = 0; f < features; ++f) {
    FeatureDrift drift;
    drift.name = ref.schema.features[f].name;
    drift.kind = ref.schema.features[f].kind;
    const auto points = window_spec.points_of(f);
    drift.by_value = drift.kind == FeatureKind::Numeric && window_spec.categorical[f] != 0;
    drift.points.assign(points.begin(), points.end());
    drift.labels = labels_of(ref.schema.features[f], window_spec, f);
    const auto ref_slots = window_reference_counts.slots(f);
    const auto cur_slots = window_counts.slots(f);
    drift.reference_slots.assign(ref_slots.begin(), ref_slots.end());
    drift.current_slots.assign(cur_slots.begin(), cur_slots.end());
    drift.psi = psi(ref_slots, cur_slots, psi_options,
                    drift.by_value ? FeatureKind::Categorical : drift.kind);
    drift.band = psi_band(drift.psi, opt.bands);
    const bool psi_drift = !std::isnan(drift.psi) && drift.band >= opt.drift_band;
    bool test_drift = false;
    drift.ks_pvalue_adjusted = std::nan("");
    drift.chi_squared = chi_squared_results[f];
    if (opt.ks) {
      drift.ks = ks[f];
      const bool chi_squared_test = by_chi_squared && chi_squared_results[f].has_value();
      (chi_squared_test ? drift.chi_squared_pvalue_adjusted : drift.ks_pvalue_adjusted) =
          test_adjusted[f];
      // A column whose values all vanish from one window (or appear in a window after none in
      // the other) cannot be tested, and its NaN p-value must not read as "no drift". A window
      // without rows (every block of it unreadable and skipped) has no column to have emptied:
      // its report says 0 rows and names the skipped blocks.
      const bool emptied = rows > 0 && (ks[f].n_reference == 0) != (ks[f].n_current == 0);
      test_drift = emptied || test_adjusted[f] < opt.alpha;  // false for NaN
    }
    if (opt.distances) {
      drift.wasserstein = wasserstein[f];
      drift.wasserstein_normed = wasserstein[f] / normed_scale[f];
      drift.jensen_shannon =
          jensen_shannon(without_missing(ref_slots), without_missing(cur_slots), 2.0);
      if (drift.kind != FeatureKind::Categorical) {
        drift.cramer_von_mises = cramer_von_mises_results[f];
      }
    }
    drift.drifted =
        (uses_psi(opt.drift_rule) && psi_drift) || (uses_test(opt.drift_rule) && test_drift);
    for (CellFlag flag : kAllCellFlags) {
      drift.reference_flags[flag_index(flag)] = report.reference_validation.count(f, flag);
      drift.current_flags[flag_index(flag)] = validation.count(f, flag);
    }
    report.features.push_back(std::move(drift));
  }
  // After the window's stages, which may have failed over.
  report.backend = std::string(to_string(active().backend()));
  report.device = active().device_name();
  report.failovers = failovers;
  return report;
}

}  // namespace driftguard
