#pragma once
// A drift scan of a current window against a reference window, both HDF5 tables
// (hdf5_io.hpp): validation of every current cell, per-feature histograms and PSI.
// The report's JSON form is documented in docs/report.md.
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "driftguard/binning.hpp"
#include "driftguard/psi.hpp"
#include "driftguard/schema.hpp"
#include "driftguard/validate.hpp"

namespace driftguard {

class Context;

struct ScanOptions {
  std::string reference_path;
  std::string current_path;
  std::optional<Schema> schema;     // inferred from the reference when absent
  std::size_t max_categories = 20;  // schema inference (SchemaInferrer)
  double range_margin = 0.1;        // schema inference (SchemaInferrer)
  BinningOptions binning;
  // The binning policy's PSI rules: evidently_psi_options() for the evidently policy, else these.
  PsiOptions psi;
  PsiBands bands;
  // A feature counts as drifted when its PSI band is at least this one.
  PsiBand drift_band = PsiBand::Moderate;
  std::size_t batch_rows = 0;  // rows per current batch; 0 = a multiple of the file's chunk
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
  bool drifted = false;
  std::array<std::uint64_t, kCellFlagCount> reference_flags{};  // counts per CellFlag
  std::array<std::uint64_t, kCellFlagCount> current_flags{};
};

struct ScanReport {
  std::string backend;  // "cpu" or "cuda"
  std::string device;
  std::string reference_path, current_path;
  std::uint64_t reference_rows = 0;
  std::uint64_t current_rows = 0;
  ValidationCounts reference_validation;
  ValidationCounts current_validation;
  BinningOptions binning;
  PsiOptions psi;
  PsiBands bands;
  PsiBand drift_band = PsiBand::Moderate;
  bool schema_inferred = false;
  std::vector<FeatureDrift> features;
  double seconds = 0;          // wall time of the whole scan
  double current_seconds = 0;  // wall time of the current window's pass (read + kernels)

  std::size_t drifted_features() const;
  std::string to_json() const;  // docs/report.md
};

// Runs the scan; IoError / InvalidInput / BackendUnavailable / CudaError on failure.
ScanReport scan(Context& ctx, const ScanOptions& options);

}  // namespace driftguard
