#include "driftguard/scan.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include <nlohmann/json.hpp>

#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/profile.hpp"
#include "host/atomic_file.hpp"
#include "host/block_ring.hpp"
#include "host/checkpoint.hpp"
#include "host/fnv1a.hpp"
#include "host/report_json.hpp"
#include "kernels/context_impl.hpp"

namespace driftguard {
namespace {

using detail::Block;
using detail::CheckpointState;
using detail::steady_seconds;

ReferenceProfile reference_profile(Context& ctx, const ScanOptions& options) {
  if (!ReferenceProfile::is_profile(options.reference_path)) {
    const ProfileOptions defaults;
    return ReferenceProfile::build(
        ctx, options.reference_path,
        {.schema = options.schema,
         .max_categories = options.max_categories.value_or(defaults.max_categories),
         .range_margin = options.range_margin.value_or(defaults.range_margin),
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
  if (options.max_categories || options.range_margin) {
    throw InvalidInput(options.reference_path +
                       ": a profile carries the schema inferred when it was built; "
                       "--max-categories and --range-margin apply to raw reference tables only "
                       "(driftguard profile takes them)");
  }
  return ReferenceProfile::load(options.reference_path);
}

// FNV-1a over the reference's sorted values and NaN counts: a reference rewritten between a kill
// and --resume changes it.
std::uint64_t reference_digest(const ReferenceProfile& reference) {
  detail::Fnv1a digest;
  const std::vector<float>& values = reference.sorted.values;
  for (std::size_t i = 0; i < values.size(); i += 2) {
    std::uint32_t low = 0, high = 0;
    std::memcpy(&low, &values[i], sizeof low);
    if (i + 1 < values.size()) std::memcpy(&high, &values[i + 1], sizeof high);
    digest.add(std::uint64_t{high} << 32 | low);
  }
  for (std::uint64_t nan_count : reference.sorted.nan_counts) digest.add(nan_count);
  return digest.value();
}

// The inputs, every option that changes a result and the JSON Lines file the windows go to: a
// checkpoint resumes only the run that wrote it. The current file is named by its size and
// modification time besides its shape (its content is read only as windows go by); the model by
// its fingerprint. Batch size, buffers and the bad-block policy change no result (a run stopped by
// a bad block resumes with `--on-bad-block skip`).
std::string fingerprint(const ScanOptions& o, const Hdf5BatchReader& current,
                        const ReferenceProfile& reference) {
  const auto optional = [](const auto& value) {
    return value ? nlohmann::json(*value) : nlohmann::json(nullptr);
  };
  std::error_code size_error, time_error;
  const auto bytes = std::filesystem::file_size(o.current_path, size_error);
  const auto modified = std::filesystem::last_write_time(o.current_path, time_error);
  const nlohmann::json doc = {
      {"reference",
       {{"path", o.reference_path},
        {"rows", reference.rows},
        {"digest", reference_digest(reference)}}},
      {"current",
       {{"path", o.current_path},
        {"rows", current.rows()},
        {"names", current.feature_names()},
        {"bytes", size_error ? 0 : bytes},
        {"modified", time_error ? 0 : modified.time_since_epoch().count()}}},
      {"schema", o.schema ? o.schema->to_json() : ""},
      {"max_categories", optional(o.max_categories)},
      {"range_margin", optional(o.range_margin)},
      {"binning", {to_string(o.binning.policy), o.binning.bins}},
      {"psi",
       {o.psi.merge_outer, o.psi.include_missing, to_string(o.psi.empty_bins), o.psi.epsilon}},
      {"bands", {o.bands.moderate, o.bands.significant, to_string(o.drift_band)}},
      {"ks", {o.ks, to_string(o.ks_options.method), to_string(o.ks_options.alternative)}},
      {"decision", {to_string(o.correction), o.alpha, to_string(o.drift_rule)}},
      {"distances", o.distances},
      {"model",
       {optional(o.model_path), reference.score_model_fingerprint, o.model_options.iteration_begin,
        o.model_options.iteration_end, o.model_options.use_best_iteration}},
      {"mmd",
       {o.mmd, o.mmd_rows, o.mmd_options.permutations, optional(o.mmd_options.sigma),
        o.mmd_options.pvalue == MmdOptions::PValue::Alibi, o.mmd_options.seed}},
      {"windows", {o.window_rows, optional(o.window_time), o.windows_jsonl}},
  };
  return doc.dump();
}

std::int64_t floor_div(std::int64_t a, std::int64_t b) {
  const std::int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double position = q * static_cast<double>(values.size() - 1);
  const std::size_t below = static_cast<std::size_t>(position);
  const std::size_t above = std::min(below + 1, values.size() - 1);
  return values[below] + (position - below) * (values[above] - values[below]);
}

// The JSON Lines file of the window reports (or the checkpoint's window log), cut back to the
// checkpoint's length on resume. A stream (a pipe, a terminal, /dev/stdout, /dev/null:
// detail::open_stream_output) takes the lines as they come; a checkpointed run, which may have to
// cut them back, needs a regular file.
class JsonLines {
 public:
  JsonLines(const std::string& path, std::uint64_t keep_bytes, bool checkpointed) : path_(path) {
    if (path.empty()) return;
    fd_ = detail::open_stream_output(path);
    if (fd_ >= 0) {
      regular_ = false;
      if (!checkpointed) return;
      ::close(fd_);
      fd_ = -1;
      throw InvalidInput(path +
                         ": a checkpointed run writes its window records to a regular file (to "
                         "cut them back on --resume), not to a stream");
    }
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd_ < 0) throw IoError(path + ": cannot open: " + std::strerror(errno));
    const off_t size = ::lseek(fd_, 0, SEEK_END);
    if (size < static_cast<off_t>(keep_bytes)) {
      ::close(fd_);
      throw InvalidInput(path + ": shorter than the checkpoint records (" +
                         std::to_string(keep_bytes) + " bytes); it was changed since");
    }
    if (::ftruncate(fd_, static_cast<off_t>(keep_bytes)) != 0 || ::lseek(fd_, 0, SEEK_END) < 0) {
      ::close(fd_);
      throw IoError(path + ": cannot truncate: " + std::strerror(errno));
    }
  }
  ~JsonLines() {
    if (fd_ >= 0) ::close(fd_);
  }
  JsonLines(const JsonLines&) = delete;
  JsonLines& operator=(const JsonLines&) = delete;

  // Appends one line and syncs it; returns the bytes written.
  std::uint64_t append(const std::string& line) {
    if (fd_ < 0) return 0;
    detail::write_all(fd_, line, path_);
    if (regular_ && ::fdatasync(fd_) != 0) {
      throw IoError(path_ + ": fsync failed: " + std::strerror(errno));
    }
    return line.size();
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool regular_ = true;
};

class ProgressLine {
 public:
  ProgressLine(bool enabled, std::uint64_t total_rows, std::uint64_t start_row)
      : enabled_(enabled), total_(total_rows), start_row_(start_row), start_(steady_seconds()) {}
  void update(std::uint64_t row, std::uint64_t windows, bool last = false) {
    if (!enabled_) return;
    const double now = steady_seconds();
    if (!last && now - printed_ < 0.25) return;
    printed_ = now;
    const double elapsed = now - start_, rate = elapsed > 0 ? (row - start_row_) / elapsed : 0;
    const double eta = rate > 0 ? (total_ - row) / rate : 0;
    std::fprintf(
        stderr,
        "\rdriftguard: %llu / %llu rows (%.0f%%), %.2f M rows/s, %llu windows, ETA %.0f s   %s",
        static_cast<unsigned long long>(row), static_cast<unsigned long long>(total_),
        total_ > 0 ? 100.0 * row / total_ : 100.0, rate / 1e6,
        static_cast<unsigned long long>(windows), eta, last ? "\n" : "");
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  std::uint64_t total_, start_row_;
  double start_, printed_ = 0;
};

enum class WindowMode { Whole, Rows, Time };

// The compute side of the stream: splits blocks into windows, feeds the monitor, and on each
// window's end writes its JSON line, adds it to the whole-file totals and saves the checkpoint.
class WindowedStream {
 public:
  // `window_log` takes each window's summary for the checkpoint (detail::window_log_path).
  WindowedStream(const ScanOptions& options, Monitor& monitor, CheckpointState& state,
                 JsonLines& jsonl, JsonLines& window_log)
      : options_(options),
        monitor_(monitor),
        state_(state),
        jsonl_(jsonl),
        window_log_(window_log),
        features_(monitor.profile().features()),
        prior_failovers_(state.failovers) {
    mode_ = options.window_rows > 0 ? WindowMode::Rows
            : options.window_time   ? WindowMode::Time
                                    : WindowMode::Whole;
  }

  void feed(const Block& block) {
    if (block.error) std::rethrow_exception(block.error);
    for (const detail::BlockPiece& piece : block.pieces) {
      if (piece.quarantined) {
        state_.quarantined.push_back({piece.first_row, piece.rows, piece.reason});
        process(piece.first_row, piece.rows, nullptr, nullptr);
      } else {
        process(piece.first_row, piece.rows, block.data + piece.offset * features_,
                block.timestamps ? block.timestamps + piece.offset : nullptr);
      }
    }
  }

  // Ends the stream at `end_row`; the last window in whole-file mode is returned, not recorded.
  std::optional<ScanReport> finish(std::uint64_t end_row) {
    if (!open_) return std::nullopt;
    if (mode_ == WindowMode::Whole) return window_report(end_row);
    close(end_row);
    return std::nullopt;
  }

  std::uint64_t windows() const { return state_.windows_closed; }

 private:
  // Rows [first, first + n): readable (data set) or quarantined (data null).
  void process(std::uint64_t first, std::size_t n, const float* data, const std::int64_t* ts) {
    std::size_t i = 0;
    while (i < n) {
      const std::uint64_t row = first + i;
      std::size_t run = n - i;
      std::optional<std::int64_t> key;
      if (mode_ == WindowMode::Whole) {
        key = 0;
      } else if (mode_ == WindowMode::Rows) {
        const std::uint64_t k = row / options_.window_rows;
        key = static_cast<std::int64_t>(k);
        run = std::min<std::uint64_t>(run, (k + 1) * options_.window_rows - row);
      } else if (data != nullptr) {
        const std::int64_t width = *options_.window_time;
        check_time_order(row, ts[i]);
        key = floor_div(ts[i], width);
        run = 1;
        while (i + run < n && floor_div(ts[i + run], width) == *key) {
          check_time_order(row + run, ts[i + run]);
          ++run;
        }
      }  // else: quarantined rows without a readable timestamp join the open window
      if (key) {
        if (open_ && open_key_ && *key != *open_key_) close(row);
        if (!open_) {
          open(row);
          open_key_ = key;
        } else if (!open_key_) {
          open_key_ = key;
        }
      } else if (!open_) {
        open(row);
      }
      if (data == nullptr) {
        open_quarantined_ += run;
      } else {
        monitor_.observe({data + i * features_, run, features_}, row);
      }
      i += run;
      // A window by rows is complete at its last row: close it (and checkpoint) now rather
      // than when the next row arrives, which may be never (a bad block, a kill).
      if (mode_ == WindowMode::Rows && (row + run) % options_.window_rows == 0) close(row + run);
    }
  }

  void check_time_order(std::uint64_t row, std::int64_t t) {
    const bool before_last_window =
        state_.last_key && floor_div(t, *options_.window_time) <= *state_.last_key;
    if ((last_time_ && t < *last_time_) || before_last_window) {
      throw InvalidInput(options_.current_path + ": /timestamp decreases at row " +
                         std::to_string(row) + " (" + std::to_string(t) +
                         "); windows by time need rows in time order");
    }
    last_time_ = t;
  }

  void open(std::uint64_t row) {
    open_ = true;
    open_first_ = row;
    open_key_.reset();
    open_quarantined_ = 0;
  }

  ScanReport window_report(std::uint64_t end_row) {
    ScanReport report = monitor_.close_window();
    // Every failover so far: this run's monitor's, after those of the profile and of the run a
    // --resume continues.
    report.failovers.insert(report.failovers.begin(), prior_failovers_.begin(),
                            prior_failovers_.end());
    report.current_path = options_.current_path;
    WindowInfo info;
    info.index = state_.windows_closed;
    info.first_row = open_first_;
    info.end_row = end_row;
    info.quarantined_rows = open_quarantined_;
    if (mode_ == WindowMode::Time && open_key_) {
      // The first window's k * W may lie below INT64_MIN, where the timestamps begin.
      const __int128 begin = static_cast<__int128>(*open_key_) * *options_.window_time;
      info.time_begin = static_cast<std::int64_t>(std::max<__int128>(begin, INT64_MIN));
      info.time_end =
          static_cast<std::int64_t>(std::min<__int128>(begin + *options_.window_time, INT64_MAX));
    }
    report.quarantined_rows = open_quarantined_;
    report.window = info;
    open_ = false;
    return report;
  }

  void close(std::uint64_t end_row) {
    const std::optional<std::int64_t> key = open_key_;
    ScanReport report = window_report(end_row);
    state_.jsonl_bytes += jsonl_.append(report.to_json(-1) + "\n");
    state_.validation += report.current_validation;
    if (state_.windows_drifted.empty()) state_.windows_drifted.assign(features_, 0);
    WindowSummary summary;
    summary.window = *report.window;
    summary.rows = report.current_rows;
    summary.rows_ok = report.current_validation.rows_ok;
    summary.dataset_drift = report.dataset_drift();
    const bool fixed_bins = options_.binning.policy != BinningPolicy::Evidently;
    std::size_t slot = 0;
    for (std::size_t f = 0; f < features_; ++f) {
      const FeatureDrift& feature = report.features[f];
      if (feature.drifted) {
        ++state_.windows_drifted[f];
        summary.drifted_features.push_back(feature.name);
      }
      if (!fixed_bins) continue;
      if (state_.current_slots.size() < slot + feature.current_slots.size()) {
        state_.current_slots.resize(slot + feature.current_slots.size(), 0);
      }
      for (std::uint64_t count : feature.current_slots) state_.current_slots[slot++] += count;
    }
    for (const ScoreDrift& score : report.scores) {
      if (score.drifted) summary.drifted_scores.push_back(score.name);
    }
    if (report.mmd) summary.mmd_pvalue = report.mmd->pvalue;
    if (!options_.checkpoint_path.empty()) {
      const std::string logged = detail::window_summary_json(summary).dump() + "\n";
      state_.windows_bytes += window_log_.append(logged);
      detail::Fnv1a digest(state_.windows_digest);
      digest.add_bytes(logged);
      state_.windows_digest = digest.value();
    }
    state_.windows.push_back(std::move(summary));
    state_.failovers = report.failovers;
    state_.next_row = end_row;
    state_.last_key = key;
    ++state_.windows_closed;
    if (!options_.checkpoint_path.empty())
      detail::save_checkpoint(options_.checkpoint_path, state_);
  }

  const ScanOptions& options_;
  Monitor& monitor_;
  CheckpointState& state_;
  JsonLines& jsonl_;
  JsonLines& window_log_;
  std::size_t features_;
  std::vector<FailoverEvent> prior_failovers_;
  WindowMode mode_;
  bool open_ = false;
  std::uint64_t open_first_ = 0, open_quarantined_ = 0;
  std::optional<std::int64_t> open_key_;
  std::optional<std::int64_t> last_time_;
};

// A windowed scan's final report: the whole file's validation and histograms (PSI over them),
// and the windows, on the skeleton of an empty window's report.
ScanReport aggregate_report(Monitor& monitor, const CheckpointState& state) {
  ScanReport report = monitor.snapshot();
  const DriftOptions& options = monitor.options();
  const bool fixed_bins = options.binning.policy != BinningPolicy::Evidently;
  report.current_validation = state.validation;
  report.current_rows = state.validation.rows;
  report.scores.clear();
  report.mmd.reset();
  report.mmd_skipped.clear();  // MMD is per window: the whole file is never tested
  report.mmd_current_finite_rows = 0;
  std::size_t slot = 0;
  for (std::size_t f = 0; f < report.features.size(); ++f) {
    FeatureDrift& d = report.features[f];
    d.ks.reset();
    d.ks_pvalue_adjusted = std::nan("");
    d.wasserstein.reset();
    d.wasserstein_normed.reset();
    d.jensen_shannon.reset();
    d.chi_squared.reset();
    d.cramer_von_mises.reset();
    d.windows_drifted = state.windows_drifted.empty() ? 0 : state.windows_drifted[f];
    bool psi_drift = false;
    if (fixed_bins && !state.current_slots.empty()) {
      if (state.current_slots.size() < slot + d.current_slots.size()) {
        throw InvalidInput("the checkpoint's histograms do not fit the bins (edited or damaged)");
      }
      std::copy_n(state.current_slots.begin() + slot, d.current_slots.size(),
                  d.current_slots.begin());
      slot += d.current_slots.size();
      d.psi = psi(d.reference_slots, d.current_slots, report.psi,
                  d.by_value ? FeatureKind::Categorical : d.kind);
      d.band = psi_band(d.psi, options.bands);
      psi_drift =
          uses_psi(options.drift_rule) && !std::isnan(d.psi) && d.band >= options.drift_band;
    } else {
      d.points.clear();
      d.labels.clear();
      d.reference_slots.clear();
      d.current_slots.clear();
      d.psi = std::nan("");
      d.band = PsiBand::Stable;
    }
    d.drifted = psi_drift || d.windows_drifted > 0;
    for (CellFlag flag : kAllCellFlags) {
      d.current_flags[flag_index(flag)] = state.validation.count(f, flag);
    }
  }
  report.windows = state.windows;
  return report;
}

}  // namespace

DriftRule parse_drift_rule(std::string_view name) {
  if (name == "psi") return DriftRule::Psi;
  if (name == "ks") return DriftRule::Ks;
  if (name == "psi_or_ks") return DriftRule::PsiOrKs;
  if (name == "test") return DriftRule::Test;
  if (name == "psi_or_test") return DriftRule::PsiOrTest;
  throw InvalidInput("unknown drift rule '" + std::string(name) +
                     "' (expected psi, ks, psi_or_ks, test or psi_or_test)");
}

std::string_view to_string(DriftRule rule) {
  switch (rule) {
    case DriftRule::Psi:
      return "psi";
    case DriftRule::Ks:
      return "ks";
    case DriftRule::PsiOrKs:
      return "psi_or_ks";
    case DriftRule::Test:
      return "test";
    case DriftRule::PsiOrTest:
      return "psi_or_test";
  }
  return "unknown";
}

bool uses_psi(DriftRule rule) {
  return rule == DriftRule::Psi || rule == DriftRule::PsiOrKs || rule == DriftRule::PsiOrTest;
}

bool uses_test(DriftRule rule) { return rule != DriftRule::Psi; }

bool tests_categories_by_chi_squared(DriftRule rule) {
  return rule == DriftRule::Test || rule == DriftRule::PsiOrTest;
}

BadBlockPolicy parse_bad_block_policy(std::string_view name) {
  if (name == "stop") return BadBlockPolicy::Stop;
  if (name == "skip") return BadBlockPolicy::Skip;
  throw InvalidInput("unknown bad-block policy '" + std::string(name) +
                     "' (expected stop or skip)");
}

std::size_t ScanReport::drifted_features() const {
  return static_cast<std::size_t>(std::count_if(features.begin(), features.end(),
                                                [](const FeatureDrift& f) { return f.drifted; }));
}

bool ScanReport::dataset_drift() const {
  const bool score_drift =
      std::any_of(scores.begin(), scores.end(), [](const ScoreDrift& s) { return s.drifted; });
  const bool window_drift = std::any_of(windows.begin(), windows.end(),
                                        [](const WindowSummary& w) { return w.dataset_drift; });
  return drifted_features() > 0 || score_drift || (mmd && mmd->pvalue < alpha) || window_drift;
}

std::string ScanReport::decision_rule() const {
  char alpha_text[32];
  std::snprintf(alpha_text, sizeof alpha_text, "%g", alpha);
  const std::string psi_rule = "PSI band >= " + std::string(to_string(drift_band));
  const bool by_chi_squared = tests_categories_by_chi_squared(drift_rule);
  const std::string test_rule =
      std::string(by_chi_squared ? "test's (KS if numeric, chi-squared if categorical)" : "KS") +
      " p-value (" + std::string(to_string(correction)) + "-adjusted over features) < " +
      alpha_text + " (or the " + (by_chi_squared ? "test" : "KS") + " has values on one side only)";
  std::string rule = "a feature drifts when its ";
  rule += !uses_test(drift_rule) ? psi_rule
          : uses_psi(drift_rule) ? psi_rule + " or its " + test_rule
                                 : test_rule;
  if (!windows.empty()) rule += " in a window, or by whole-file PSI where the rule has PSI";
  rule += "; the dataset drifts when a feature drifts";
  if (!scores.empty()) rule += ", when a model score's " + psi_rule;
  if (mmd) rule += std::string(" or the MMD permutation p-value < ") + alpha_text;
  if (!windows.empty()) rule += ", or when any window's dataset drifts";
  return rule;
}

ScanReport scan(Context& ctx, const ScanOptions& options) {
  options.check();
  if (options.window_rows > 0 && options.window_time) {
    throw InvalidInput("windows by rows and by time exclude each other");
  }
  if (options.window_time && *options.window_time <= 0) {
    throw InvalidInput("the window time must be positive");
  }
  const bool windowed = options.window_rows > 0 || options.window_time.has_value();
  if (!windowed &&
      (!options.checkpoint_path.empty() || options.resume || !options.windows_jsonl.empty())) {
    throw InvalidInput(
        "checkpoints, --resume and window records need windows (--window-rows or "
        "--window-time): without windows the one window is the whole run");
  }
  if (options.resume && options.checkpoint_path.empty()) {
    throw InvalidInput("--resume needs --checkpoint");
  }
  const double start = steady_seconds();

  // A CUDA failure while profiling a raw reference moves the whole run to the CPU, as a failure
  // in the stream moves the rest of it.
  std::unique_ptr<Context> cpu_run;
  std::optional<FailoverEvent> profile_failover;
  ReferenceProfile ref;
  try {
    ref = reference_profile(ctx, options);
  } catch (const CudaError& e) {
    profile_failover = FailoverEvent{0, "profile", std::string(to_string(ctx.backend())), e.what()};
    cpu_run = cpu_fallback_context(ctx);
    ref = reference_profile(*cpu_run, options);
  }
  Context& run_ctx = cpu_run ? *cpu_run : ctx;
  Hdf5BatchReader current(options.current_path);
  try {
    ref.schema.check_names(current.feature_names());
  } catch (const InvalidInput& e) {
    throw InvalidInput(options.current_path + ": " + e.what());
  }
  if (options.window_time && !current.has_timestamp()) {
    throw InvalidInput(options.current_path + ": windows by time need a /timestamp column");
  }
  const std::size_t features = current.features();
  const std::size_t expected_window_rows =
      options.window_rows > 0 ? std::min<std::size_t>(options.window_rows, current.rows())
      : windowed              ? 0
                              : current.rows();
  Monitor monitor(run_ctx, std::move(ref), options, expected_window_rows);

  CheckpointState state;
  if (!options.checkpoint_path.empty()) {
    state.fingerprint = fingerprint(options, current, monitor.profile());
  }
  state.validation = ValidationCounts(features);
  if (options.resume) {
    if (std::optional<CheckpointState> saved = detail::load_checkpoint(options.checkpoint_path)) {
      if (saved->fingerprint != state.fingerprint) {
        throw InvalidInput(options.checkpoint_path +
                           ": the checkpoint belongs to another run (other inputs or options); "
                           "delete it or run without --resume");
      }
      const bool consistent =
          saved->next_row <= current.rows() && saved->validation.features == features &&
          (saved->windows_drifted.empty() || saved->windows_drifted.size() == features) &&
          saved->validation.rows <= saved->next_row &&
          saved->validation.rows_ok <= saved->validation.rows &&
          saved->windows.size() == saved->windows_closed;
      if (!consistent) {
        throw InvalidInput(options.checkpoint_path +
                           ": the checkpoint's counts do not fit the current table (edited or "
                           "damaged); delete it or run without --resume");
      }
      state = std::move(*saved);
    }
  } else if (!options.checkpoint_path.empty()) {
    // A stale one must not be resumed later.
    std::filesystem::remove(options.checkpoint_path);
    std::filesystem::remove(detail::window_log_path(options.checkpoint_path));
  }
  // A resumed run that fails over in the profile again keeps the first run's event only.
  const auto is_profile_event = [](const FailoverEvent& e) { return e.stage == "profile"; };
  if (profile_failover &&
      std::none_of(state.failovers.begin(), state.failovers.end(), is_profile_event)) {
    state.failovers.insert(state.failovers.begin(), *profile_failover);
  }
  const bool checkpointed = !options.checkpoint_path.empty();
  JsonLines jsonl(options.windows_jsonl, state.jsonl_bytes, checkpointed);
  JsonLines window_log(checkpointed ? detail::window_log_path(options.checkpoint_path) : "",
                       state.windows_bytes, checkpointed);

  const double current_start = steady_seconds();
  WindowedStream stream(options, monitor, state, jsonl, window_log);
  ProgressLine progress(options.progress, current.rows(), state.next_row);
  PipelineStats stats;
  std::vector<double> latencies;
  double compute_seconds = 0;
  std::optional<ScanReport> whole;
  {
    const std::size_t block_rows = current.batch_rows(
        options.batch_rows, options.model_path ? monitor.profile().scores.features : 0);
    detail::BlockRing ring(run_ctx, current, state.next_row, block_rows, options.ring_buffers,
                           options.window_time.has_value(),
                           options.on_bad_block == BadBlockPolicy::Skip);
    while (const Block* block = ring.next()) {
      const double begin = steady_seconds();
      stream.feed(*block);
      const double end = steady_seconds();
      compute_seconds += end - begin;
      latencies.push_back(end - block->read_begin);
      stats.read_seconds += block->read_seconds;
      ++stats.batches;
      stats.bytes += (block->end_row - block->first_row) * features * sizeof(float);
      progress.update(block->end_row, stream.windows());
      ring.release(block);
    }
    const double begin = steady_seconds();
    whole = stream.finish(current.rows());
    compute_seconds += steady_seconds() - begin;
    progress.update(current.rows(), stream.windows(), true);
  }

  ScanReport report = whole ? std::move(*whole) : aggregate_report(monitor, state);
  report.window.reset();
  report.current_path = options.current_path;
  report.quarantined = state.quarantined;
  report.quarantined_rows = 0;
  for (const QuarantinedBlock& q : state.quarantined) report.quarantined_rows += q.rows;
  report.failovers = windowed ? state.failovers : monitor.failovers();
  if (!windowed && profile_failover)
    report.failovers.insert(report.failovers.begin(), *profile_failover);
  stats.compute_seconds = compute_seconds;
  stats.latency_p50 = percentile(latencies, 0.50);
  stats.latency_p95 = percentile(latencies, 0.95);
  stats.latency_p99 = percentile(latencies, 0.99);
  report.pipeline = stats;
  report.current_seconds = steady_seconds() - current_start;
  report.seconds = steady_seconds() - start;
  const std::uint64_t accounted = report.current_validation.rows + report.quarantined_rows;
  if (accounted != current.rows()) {
    throw Error(options.current_path + ": internal accounting error: " + std::to_string(accounted) +
                " rows accounted of " + std::to_string(current.rows()));
  }
  return report;
}

}  // namespace driftguard
