#pragma once
// Drift reports: what a scan (scan.hpp) or a monitor window (monitor.hpp) found. The JSON form is
// documented in docs/report.md.
#include <array>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "driftguard/binning.hpp"
#include "driftguard/distances.hpp"
#include "driftguard/ks.hpp"
#include "driftguard/mmd.hpp"
#include "driftguard/multiple_testing.hpp"
#include "driftguard/psi.hpp"
#include "driftguard/schema.hpp"
#include "driftguard/validate.hpp"

namespace driftguard {

// Which per-feature result makes a feature drifted. A rule with a test also flags a feature whose
// values vanish from one window (or appear after none in the other): the test cannot run there.
enum class DriftRule {
  Psi,        // PSI band >= DriftOptions::drift_band
  Ks,         // KS p-value after the correction < alpha
  PsiOrKs,    // either
  Test,       // the kind's test, corrected over all features, < alpha: KS for numeric features,
              // chi-squared for categorical ones (KS of codes depends on how they are numbered)
  PsiOrTest,  // PSI or Test
};
// "psi" | "ks" | "psi_or_ks" | "test" | "psi_or_test"
DriftRule parse_drift_rule(std::string_view name);
std::string_view to_string(DriftRule rule);
bool uses_psi(DriftRule rule);
bool uses_test(DriftRule rule);  // every rule but Psi: needs KS
// Whether the rule tests a categorical feature by chi-squared instead of KS.
bool tests_categories_by_chi_squared(DriftRule rule);

struct FeatureDrift {
  std::string name;
  FeatureKind kind = FeatureKind::Numeric;
  // Bin edges (numeric) or codes (categorical); with by_value, a numeric feature's distinct
  // reference values (the evidently policy bins a few-valued numeric feature by value).
  bool by_value = false;
  std::vector<double> points;
  // Categorical features whose schema names its codes: the name of each point's code, parallel to
  // `points` (empty for a code the schema does not list); empty otherwise.
  std::vector<std::optional<std::string>> labels;
  // Histogram slots, HistogramCounts layout: [underflow | bins... | overflow | missing].
  std::vector<std::uint64_t> reference_slots;
  std::vector<std::uint64_t> current_slots;
  double psi = 0;  // NaN for an empty window (psi.hpp)
  PsiBand band = PsiBand::Stable;
  std::optional<KsResult> ks;
  // After the correction over the features' tests; NaN without a test, and for a categorical
  // feature under a rule that tests it by chi-squared (chi_squared_pvalue_adjusted then).
  double ks_pvalue_adjusted = 0;
  double chi_squared_pvalue_adjusted = std::numeric_limits<double>::quiet_NaN();
  // With DriftOptions::distances (NaN where a window has no value):
  std::optional<double> wasserstein, wasserstein_normed;
  std::optional<double> jensen_shannon;  // over the histogram slots except missing
  // Categorical features, with DriftOptions::distances or a rule that tests them by chi-squared.
  std::optional<ChiSquaredResult> chi_squared;
  std::optional<CvmResult> cramer_von_mises;  // numeric features
  bool drifted = false;                       // by the scan's DriftRule
  // A windowed scan's final report: in how many windows the feature drifted (its `drifted` is
  // then the whole-file PSI rule or any window's drift).
  std::uint64_t windows_drifted = 0;
  std::array<std::uint64_t, kCellFlagCount> reference_flags{};  // counts per CellFlag
  std::array<std::uint64_t, kCellFlagCount> current_flags{};
};

// Drift of one model output ("probability", or "probability[k]" for class k).
struct ScoreDrift {
  std::string name;
  // Bin edges (the reference-score quantiles), or with by_value the reference's distinct scores
  // when it has at most as many as the binning's bins (slots as a categorical feature's).
  bool by_value = false;
  std::vector<double> points;
  std::vector<std::uint64_t> reference_slots, current_slots;
  double psi = 0;
  PsiBand band = PsiBand::Stable;
  KsResult ks;
  bool drifted = false;  // PSI band >= DriftOptions::drift_band
};

// Where a window lies in the stream. Windows tumble: by row count, rows [k*W, (k+1)*W) of the
// file, or by /timestamp, the rows whose timestamps t have floor(t / W) == k.
struct WindowInfo {
  std::uint64_t index = 0;      // 0, 1, ... in stream order (empty windows are skipped)
  std::uint64_t first_row = 0;  // file rows [first_row, end_row) belong to the window
  std::uint64_t end_row = 0;
  std::uint64_t quarantined_rows = 0;  // unreadable rows inside the window (--on-bad-block skip)
  std::optional<std::int64_t> time_begin, time_end;  // by timestamp: [k*W, (k+1)*W)
};

// One window of a windowed scan, as the final report lists it (the full per-window report is its
// JSON Lines record).
struct WindowSummary {
  WindowInfo window;
  std::uint64_t rows = 0, rows_ok = 0;  // rows observed (quarantined rows excluded)
  std::vector<std::string> drifted_features;
  std::vector<std::string> drifted_scores;
  std::optional<double> mmd_pvalue;
  bool dataset_drift = false;
};

// Rows that could not be read (a corrupt block) and were skipped under --on-bad-block skip.
struct QuarantinedBlock {
  std::uint64_t first_row = 0;
  std::uint64_t rows = 0;
  std::string reason;
};

// The GPU failed and the rest of the run went on the CPU.
struct FailoverEvent {
  std::uint64_t row = 0;  // first file row of the batch (or window) whose work failed
  // "profile" (building the profile of a raw reference, row 0: the whole run then runs on the
  // CPU), "batch" (validate, score, histograms) or "window" (KS, MMD, ...)
  std::string stage;
  std::string from;    // the backend that failed
  std::string reason;  // the error
};

// How the stream ran (timings; differ from run to run).
struct PipelineStats {
  std::uint64_t batches = 0;
  std::uint64_t bytes = 0;     // feature bytes read
  double read_seconds = 0;     // the reader thread's time in HDF5 reads
  double compute_seconds = 0;  // the compute thread's time in batch stages and windows
  double latency_p50 = 0, latency_p95 = 0, latency_p99 = 0;  // seconds, read start -> batch done
};

struct ScanReport {
  std::string backend;  // "cpu" or "cuda"
  std::string device;
  std::string reference_path, current_path;
  bool reference_is_profile = false;
  std::uint64_t reference_rows = 0;
  std::uint64_t current_rows = 0;
  ValidationCounts reference_validation;
  ValidationCounts current_validation;
  BinningOptions binning;
  PsiOptions psi;
  PsiBands bands;
  PsiBand drift_band = PsiBand::Moderate;
  bool schema_inferred = false;
  KsOptions ks_options;
  Correction correction = Correction::BenjaminiHochberg;
  double alpha = 0.05;
  DriftRule drift_rule = DriftRule::Psi;
  std::vector<FeatureDrift> features;
  std::string score_model;         // the model's path, with DriftOptions::model_path
  std::vector<ScoreDrift> scores;  // one per model output
  std::optional<MmdResult> mmd;
  std::uint64_t mmd_current_finite_rows = 0;  // current rows without NaN/Inf, the MMD pool
  std::string mmd_skipped;  // why a requested MMD test did not run (too few finite rows)
  // Set on one window's report (Monitor::close_window, the JSON Lines records of a scan).
  std::optional<WindowInfo> window;
  // A windowed scan's final report: every window in order. Its features then carry the whole
  // file's validation and histograms, PSI over them (not for the evidently policy, whose bins
  // differ per window) and windows_drifted; KS, the distances, scores and MMD are per window.
  std::vector<WindowSummary> windows;
  std::uint64_t quarantined_rows = 0;
  std::vector<QuarantinedBlock> quarantined;
  std::vector<FailoverEvent> failovers;
  double seconds = 0;          // wall time of the whole scan
  double current_seconds = 0;  // wall time of the current window's pass (read + kernels)
  PipelineStats pipeline;

  std::size_t drifted_features() const;
  // Any feature or model score drifted, the MMD test rejected at alpha, or a window drifted.
  bool dataset_drift() const;
  std::string decision_rule() const;  // the rules above in words, for people and the report
  // docs/report.md; indent < 0 gives one line (JSON Lines).
  std::string to_json(int indent = 2) const;
  // The same content as one self-contained HTML page for people (tables, the verdict, per-feature
  // histograms as inline SVG; no scripts or external resources), rendered from to_json().
  std::string to_html() const;
};

// The page to_html gives, for a report already written: the text of a scan's --report file, or
// with `window` the record of that window index in the text of a --windows-jsonl file. Throws
// InvalidInput when the report is not a JSON object with report_version 1 or the window has no
// record; fields missing from the report show as dashes.
std::string report_html(std::string_view report_json,
                        std::optional<std::uint64_t> window = std::nullopt);

}  // namespace driftguard
