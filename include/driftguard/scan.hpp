#pragma once
// A drift scan of a current window against a reference: validation of every current cell,
// per-feature histograms and PSI, per-feature two-sample KS with multiple-testing correction, and
// optionally a multivariate MMD permutation test. The reference is a raw HDF5 table
// (hdf5_io.hpp) or a reference profile built from one (profile.hpp). The report's JSON form is
// documented in docs/report.md.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "driftguard/binning.hpp"
#include "driftguard/distances.hpp"
#include "driftguard/ks.hpp"
#include "driftguard/mmd.hpp"
#include "driftguard/model.hpp"
#include "driftguard/multiple_testing.hpp"
#include "driftguard/psi.hpp"
#include "driftguard/schema.hpp"
#include "driftguard/validate.hpp"

namespace driftguard {

class Context;

// Which per-feature result makes a feature drifted.
enum class DriftRule {
  Psi,     // PSI band >= ScanOptions::drift_band
  Ks,      // KS p-value after the correction < alpha
  PsiOrKs  // either
};
DriftRule parse_drift_rule(std::string_view name);  // "psi" | "ks" | "psi_or_ks"
std::string_view to_string(DriftRule rule);

struct ScanOptions {
  // A raw reference table, or a profile (ReferenceProfile::is_profile) that carries its schema.
  std::string reference_path;
  std::string current_path;
  std::optional<Schema> schema;     // raw reference only; inferred when absent
  std::size_t max_categories = 20;  // schema inference (SchemaInferrer)
  double range_margin = 0.1;        // schema inference (SchemaInferrer)
  BinningOptions binning;
  // The binning policy's PSI rules: evidently_psi_options() for the evidently policy, else these.
  PsiOptions psi;
  PsiBands bands;
  PsiBand drift_band = PsiBand::Moderate;
  std::size_t batch_rows = 0;  // rows per current batch; 0 = a multiple of the file's chunk

  // KS needs every current value: the current window is held in memory while it is on.
  bool ks = true;
  KsOptions ks_options;
  Correction correction = Correction::BenjaminiHochberg;
  double alpha = 0.05;  // significance level of the KS and MMD decisions
  DriftRule drift_rule = DriftRule::Psi;

  // Wasserstein-1 (plain and evidently's normed), Jensen-Shannon distance (base 2) over the
  // histogram, chi-squared (categorical features) and Cramer-von Mises (numeric features).
  // Needs the current window held and its columns sorted.
  bool distances = true;

  // Score drift: the model's probability outputs on both windows, compared per output by PSI
  // (quantile bins of the reference scores, binning.bins of them) and KS. A profile must have
  // been built with the same model (ProfileOptions::model_path).
  std::optional<std::string> model_path;
  ModelOptions model_options;

  // MMD on up to mmd_rows finite rows of each window, chosen by mmd_options.seed. A raw
  // reference is sampled as `driftguard profile` samples it; a profile brings the sample it was
  // built with (its size set then), so a scan against it equals the scan against the raw table
  // when both used the same mmd_rows and seed.
  bool mmd = false;
  MmdOptions mmd_options;
  std::size_t mmd_rows = 2000;
};

struct FeatureDrift {
  std::string name;
  FeatureKind kind = FeatureKind::Numeric;
  std::vector<double> points;  // bin edges (numeric) or codes (categorical)
  // Histogram slots, HistogramCounts layout: [underflow | bins... | overflow | missing].
  std::vector<std::uint64_t> reference_slots;
  std::vector<std::uint64_t> current_slots;
  double psi = 0;  // NaN when a window has no counted value
  PsiBand band = PsiBand::Stable;
  std::optional<KsResult> ks;
  double ks_pvalue_adjusted = 0;  // after the correction; NaN without a test
  // With ScanOptions::distances (NaN where a window has no value):
  std::optional<double> wasserstein, wasserstein_normed;
  std::optional<double> jensen_shannon;         // over the histogram slots except missing
  std::optional<ChiSquaredResult> chi_squared;  // categorical features
  std::optional<CvmResult> cramer_von_mises;    // numeric features
  bool drifted = false;                         // by the scan's DriftRule
  std::array<std::uint64_t, kCellFlagCount> reference_flags{};  // counts per CellFlag
  std::array<std::uint64_t, kCellFlagCount> current_flags{};
};

// Drift of one model output ("probability", or "probability[k]" for class k).
struct ScoreDrift {
  std::string name;
  std::vector<double> edges;
  std::vector<std::uint64_t> reference_slots, current_slots;
  double psi = 0;
  PsiBand band = PsiBand::Stable;
  KsResult ks;
  bool drifted = false;  // PSI band >= ScanOptions::drift_band
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
  std::string score_model;         // the model's path, with ScanOptions::model_path
  std::vector<ScoreDrift> scores;  // one per model output
  std::optional<MmdResult> mmd;
  std::uint64_t mmd_current_finite_rows = 0;  // current rows without NaN/Inf, the MMD pool
  double seconds = 0;                         // wall time of the whole scan
  double current_seconds = 0;  // wall time of the current window's pass (read + kernels)

  std::size_t drifted_features() const;
  // Any feature or model score drifted, or the MMD test rejected at alpha.
  bool dataset_drift() const;
  std::string decision_rule() const;  // the rules above in words, for people and the report
  std::string to_json() const;        // docs/report.md
};

// Runs the scan; IoError / InvalidInput / BackendUnavailable / CudaError on failure.
ScanReport scan(Context& ctx, const ScanOptions& options);

}  // namespace driftguard
