#pragma once
// Drift monitoring of a stream of current batches against a reference profile: the engine of
// `driftguard scan` and the class a scoring service embeds.
//
// Each observed batch is validated, scored (with a model) and counted into histograms; the
// window's rows are held in memory while a statistic needs them (KS, the distances, MMD, score
// drift or the evidently binning policy), so memory grows with the window, never with the stream.
// snapshot() reports the current window without ending it; close_window() reports it and starts
// the next one. Every call is thread-safe (calls are serialised; the kernels inside use all
// cores or the GPU).
//
// GPU failover: when the context runs on CUDA and a CUDA call fails (a CudaError), the monitor
// finishes the failed step and everything after it on the CPU, with identical results, and lists
// the event in failovers() and in every later report.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "driftguard/batch.hpp"
#include "driftguard/model.hpp"
#include "driftguard/profile.hpp"
#include "driftguard/report.hpp"

namespace driftguard {

class Context;

// What to measure per window and how to decide drift.
struct DriftOptions {
  BinningOptions binning;
  // The binning policy's PSI rules: evidently_psi_options() for the evidently policy, else these.
  PsiOptions psi;
  PsiBands bands;
  PsiBand drift_band = PsiBand::Moderate;

  // KS needs every current value: the window is held in memory while it is on.
  bool ks = true;
  KsOptions ks_options;
  Correction correction = Correction::BenjaminiHochberg;
  double alpha = 0.05;  // significance level of the KS and MMD decisions
  DriftRule drift_rule = DriftRule::Psi;

  // Wasserstein-1 (plain and evidently's normed), Jensen-Shannon distance (base 2) over the
  // histogram, chi-squared (categorical features) and Cramer-von Mises (numeric features).
  // Needs the window held and its columns sorted.
  bool distances = true;

  // Score drift: the model's probability outputs on both windows, compared per output by PSI
  // (quantile bins of the reference scores, binning.bins of them) and KS. The profile must have
  // been built with the same model (ProfileOptions::model_path).
  std::optional<std::string> model_path;
  ModelOptions model_options;

  // MMD on up to mmd_rows finite rows of each window, chosen by mmd_options.seed. The reference
  // side is the profile's MMD sample.
  bool mmd = false;
  MmdOptions mmd_options;
  std::size_t mmd_rows = 2000;

  // True when some statistic needs the window's rows in memory.
  bool holds_window() const noexcept;
  // InvalidInput when alpha is outside (0, 1) or the drift rule needs KS while it is off.
  void check() const;
};

class Monitor {
 public:
  // `ctx` must outlive the monitor and stay where it is (not moved from) while the monitor uses it.
  // Batches carry the profile's features in its order. `expected_window_rows` (a hint, 0 = unknown)
  // reserves the held window once. InvalidInput for options the profile cannot serve (MMD without a
  // sample, a model the profile holds no scores for); ModelError / IoError when the model cannot be
  // loaded.
  Monitor(Context& ctx, ReferenceProfile profile, DriftOptions options,
          std::size_t expected_window_rows = 0);
  ~Monitor();
  Monitor(Monitor&&) noexcept;
  Monitor& operator=(Monitor&&) noexcept;

  // Adds a host batch (rows x the profile's features, row-major) to the current window.
  // `first_row` is the batch's position in the stream; it only labels failover events.
  void observe(BatchView batch, std::uint64_t first_row = 0);
  // The current window's report (an empty window reports NaN statistics); the window goes on.
  // Its `window` numbers the window among those closed before (index 0, 1, ...) and places its
  // rows in the stream of rows observed ([first_row, end_row)); run_scan replaces that with file
  // rows and times.
  ScanReport snapshot();
  // The current window's report, as snapshot() gives it; the next window starts empty.
  ScanReport close_window();

  std::uint64_t window_rows() const;
  const ReferenceProfile& profile() const noexcept;
  const DriftOptions& options() const noexcept;
  // The backend running now: the context's, or "cpu" after a failover.
  std::string backend() const;
  std::vector<FailoverEvent> failovers() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace driftguard
