// The driftguard command-line tool. Exit codes: 0 done, 1 failed run, 2 usage error,
// 3 drift found under --fail-on-drift, 4 too many invalid rows under --fail-on-invalid.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <new>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

#include <CLI/CLI.hpp>

#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/model.hpp"
#include "driftguard/profile.hpp"
#include "driftguard/report.hpp"
#include "driftguard/scan.hpp"
#include "driftguard/schema.hpp"
#include "host/atomic_file.hpp"
#include "host/checkpoint.hpp"

namespace {

using namespace driftguard;

// Bytes in the well-formed UTF-8 character starting at message[i] (RFC 3629: no overlong forms,
// surrogates or code points past U+10FFFF), 0 when none starts there.
std::size_t utf8_character(std::string_view message, std::size_t i) {
  const auto byte = [&](std::size_t k) {
    return i + k < message.size() ? static_cast<unsigned char>(message[i + k]) : 0u;
  };
  const unsigned lead = byte(0);
  std::size_t length = 0;
  unsigned low = 0x80, high = 0xbf;  // the second byte's range
  if (lead >= 0xc2 && lead <= 0xdf) {
    length = 2;
  } else if (lead >= 0xe0 && lead <= 0xef) {
    length = 3;
    if (lead == 0xe0) low = 0xa0;
    if (lead == 0xed) high = 0x9f;
  } else if (lead >= 0xf0 && lead <= 0xf4) {
    length = 4;
    if (lead == 0xf0) low = 0x90;
    if (lead == 0xf4) high = 0x8f;
  } else {
    return 0;
  }
  if (byte(1) < low || byte(1) > high) return 0;
  for (std::size_t k = 2; k < length; ++k) {
    if (byte(k) < 0x80 || byte(k) > 0xbf) return 0;
  }
  return length;
}

// An error is one line of UTF-8 text whatever it quotes: names and values from the data (or the
// bytes of a file that is not what it should be) may hold newlines, other control characters or
// bytes that are not UTF-8, which are written as escapes.
std::string one_line(std::string_view message) {
  std::string out;
  const auto escape = [&out](unsigned char c) {
    char escaped[8];
    std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
    out += escaped;
  };
  for (std::size_t i = 0; i < message.size(); ++i) {
    const char c = message[i];
    const auto byte = static_cast<unsigned char>(c);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (byte < 0x20 || byte == 0x7f) {
      escape(byte);
    } else if (byte < 0x80) {
      out += c;
    } else if (const std::size_t length = utf8_character(message, i); length > 0) {
      out.append(message.substr(i, length));
      i += length - 1;
    } else {
      escape(byte);
    }
  }
  return out;
}

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitDrift = 3;
constexpr int kExitInvalid = 4;

// CLI11's PositiveNumber and NonNegativeNumber quote their upper end, DBL_MAX, in 300 digits.
CLI::Validator greater_than_zero(bool or_equal) {
  return CLI::Validator(
      [or_equal](std::string& input) -> std::string {
        double value = 0;
        if (CLI::detail::lexical_cast(input, value) && std::isfinite(value) &&
            (or_equal ? value >= 0 : value > 0)) {
          return {};
        }
        return std::string("must be a finite number ") + (or_equal ? ">= 0" : "> 0") + ", got " +
               input;
      },
      or_equal ? "NONNEGATIVE" : "POSITIVE");
}
const CLI::Validator kPositive = greater_than_zero(false);
const CLI::Validator kNonNegative = greater_than_zero(true);

// CLI::Range lets NaN through (every comparison with it is false, so none fails): the bounds are
// tested so that NaN fails them. `open`: 0 and 1 themselves are refused too.
CLI::Validator fraction(bool open) {
  return CLI::Validator(
      [open](std::string& input) -> std::string {
        double value = 0;
        if (CLI::detail::lexical_cast(input, value) &&
            (open ? value > 0 && value < 1 : value >= 0 && value <= 1)) {
          return {};
        }
        return std::string("must be a number in ") + (open ? "(0, 1)" : "[0, 1]") + ", got " +
               input;
      },
      open ? "in (0, 1)" : "in [0, 1]");
}

// CLI11 2.1 reads integers with strtoull / strtoll in base 0 and checks neither sign nor range:
// "-1" wraps to 2^64 - 1, numbers past the type saturate at its maximum, "010" is octal. Counts,
// sizes, seeds and indices take decimal digits only, within [min, max] (and 0, where `zero` says
// what 0 means). Used as a transform, it rewrites the text in canonical form, so that CLI11's own
// conversion afterwards reads the number checked here.
CLI::Validator whole_number(std::uint64_t min, std::uint64_t max, const char* zero = nullptr) {
  const std::string range = "from " + std::to_string(min) + " to " + std::to_string(max);
  const std::string expected =
      zero ? "0 (" + std::string(zero) + ") or a whole number " + range : "a whole number " + range;
  std::string description =
      max >= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
          ? ">= " + std::to_string(min)
          : "in [" + std::to_string(min) + " - " + std::to_string(max) + "]";
  if (zero) description = "0 or " + description;
  return CLI::Validator(
      [min, max, zero, expected](std::string& input) -> std::string {
        std::uint64_t value = 0;
        const char* end = input.data() + input.size();
        const auto [stop, error] = std::from_chars(input.data(), end, value);
        if (error == std::errc() && stop == end &&
            ((value >= min && value <= max) || (zero && value == 0))) {
          input = std::to_string(value);
          return {};
        }
        return "must be " + expected + ", got " + input;
      },
      description);
}
constexpr std::uint64_t kMaxSize = std::numeric_limits<std::size_t>::max();
constexpr std::uint64_t kMaxInt64 = std::numeric_limits<std::int64_t>::max();
constexpr std::uint64_t kMaxSeed = std::numeric_limits<std::uint64_t>::max();
// scan's bound, which profile shares: a profile's sample is the reference side of a scan's MMD.
constexpr std::uint64_t kMaxMmdRows = std::uint64_t{1} << 30;

// The kernel's 1 / (2 sigma^2) must be finite too (the library refuses such a sigma only once the
// MMD runs, as a failed run).
CLI::Validator rbf_bandwidth() {
  return CLI::Validator(
      [](std::string& input) -> std::string {
        double sigma = 0;
        if (CLI::detail::lexical_cast(input, sigma) && sigma > 0 && std::isfinite(sigma) &&
            std::isfinite(1.0 / (2.0 * sigma * sigma))) {
          return {};
        }
        return "must be a finite number of at least 1e-154, got " + input;
      },
      ">= 1e-154");
}

struct CommonOptions {
  std::string backend = "auto";
  int threads = 0;
  bool quiet = false;
};

void add_common(CLI::App& app, CommonOptions& common) {
  app.add_option("--backend", common.backend,
                 "auto | cpu | cuda (default: DRIFTGUARD_BACKEND, else CUDA when a device exists)")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--threads", common.threads, "CPU threads (default: all cores)")
      ->transform(whole_number(0, kMaxCpuThreads));
  app.add_flag("-q,--quiet", common.quiet, "print nothing but errors");
}

Context make_context(const CommonOptions& common) {
  return Context(
      ContextOptions{.backend = parse_backend(common.backend), .cpu_threads = common.threads});
}

std::string fixed(double value, int digits) {
  if (std::isnan(value)) return "n/a";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

// p-values span hundreds of decades: scientific notation keeps them readable.
std::string pvalue_text(double value) {
  if (std::isnan(value)) return "n/a";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, value < 1e-3 ? "%.1e" : "%.4f", value);
  return buffer;
}

// "CPU (2 threads); auto: no CUDA device found": what ran, and why auto did not pick CUDA.
std::string device_text(std::string_view device, const Context& ctx) {
  std::string text(device);
  if (!ctx.auto_cpu_reason().empty()) text += "; auto: " + std::string(ctx.auto_cpu_reason());
  return text;
}

// A feature name for the table: at most kNameWidth bytes, cut at a UTF-8 character boundary
// and marked with '~' when longer (the report keeps the whole name).
constexpr std::size_t kNameWidth = 40;
std::string table_name(const std::string& name) {
  if (name.size() <= kNameWidth) return name;
  std::size_t cut = kNameWidth - 1;
  while (cut > 0 && (static_cast<unsigned char>(name[cut]) & 0xC0) == 0x80) --cut;
  return name.substr(0, cut) + "~";
}

void print_table(const ScanReport& report, const Context& ctx, std::ostream& out) {
  int width = 24;
  for (const FeatureDrift& f : report.features) {
    width = std::max(width, static_cast<int>(table_name(f.name).size()));
  }
  char line[256];
  // The adjusted p-value of each feature's test: KS, or chi-squared for categorical features
  // under the test rules.
  const bool by_chi_squared = tests_categories_by_chi_squared(report.drift_rule);
  std::snprintf(line, sizeof line, "%-*s %-12s %9s  %-12s %8s %10s %9s %9s\n", width, "feature",
                "kind", "PSI", "band", "KS D", by_chi_squared ? "test p adj" : "KS p adj",
                "missing", "invalid");
  out << line;
  for (const FeatureDrift& f : report.features) {
    const std::uint64_t invalid =
        f.current_flags[flag_index(kNonFinite)] + f.current_flags[flag_index(kBelowMin)] +
        f.current_flags[flag_index(kAboveMax)] + f.current_flags[flag_index(kUnknownCategory)];
    const double adjusted =
        by_chi_squared && f.chi_squared ? f.chi_squared_pvalue_adjusted : f.ks_pvalue_adjusted;
    std::snprintf(
        line, sizeof line, "%-*s %-12s %9s  %-12s %8s %10s %9llu %9llu%s\n", width,
        table_name(f.name).c_str(), f.kind == FeatureKind::Categorical ? "categorical" : "numeric",
        fixed(f.psi, 4).c_str(), std::isnan(f.psi) ? "-" : std::string(to_string(f.band)).c_str(),
        f.ks ? fixed(f.ks->statistic, 4).c_str() : "-", f.ks ? pvalue_text(adjusted).c_str() : "-",
        static_cast<unsigned long long>(f.current_flags[flag_index(kMissing)]),
        static_cast<unsigned long long>(invalid), f.drifted ? "  <- drift" : "");
    out << line;
  }
  const ValidationCounts& v = report.current_validation;
  out << "\ncurrent: " << report.current_rows << " rows (" << v.rows_ok << " ok, "
      << v.rows_invalid() << " invalid); reference: " << report.reference_rows << " rows"
      << (report.reference_is_profile ? " (profile)" : "") << "\n"
      << "binning: " << to_string(report.binning.policy) << ", backend: " << report.backend << " ("
      << device_text(report.device, ctx) << "), " << fixed(report.seconds, 3) << " s\n";
  if (!report.windows.empty()) {
    std::size_t drifted = 0;
    for (const WindowSummary& w : report.windows) drifted += w.dataset_drift ? 1 : 0;
    out << "windows: " << report.windows.size() << " (" << drifted << " with drift)";
    for (const WindowSummary& w : report.windows) {
      if (!w.dataset_drift) continue;
      out << "\n  window " << w.window.index << ", rows [" << w.window.first_row << ", "
          << w.window.end_row << "): " << w.drifted_features.size() << " features drifted";
      if (w.mmd_pvalue) out << ", MMD p " << pvalue_text(*w.mmd_pvalue);
    }
    out << "\n";
  }
  if (report.quarantined_rows > 0) {
    out << "quarantined: " << report.quarantined_rows << " unreadable rows in "
        << report.quarantined.size() << " blocks (first at row "
        << report.quarantined.front().first_row << ")\n";
  }
  for (const FailoverEvent& e : report.failovers) {
    out << "failover: " << e.from << " -> cpu at row " << e.row << " (" << e.stage
        << "): " << e.reason << "\n";
  }
  for (const ScoreDrift& d : report.scores) {
    out << "score " << d.name << ": PSI " << fixed(d.psi, 4) << " ("
        << (std::isnan(d.psi) ? "-" : to_string(d.band)) << "), KS D " << fixed(d.ks.statistic, 4)
        << ", p " << pvalue_text(d.ks.pvalue) << (d.drifted ? "  <- drift" : "") << "\n";
  }
  if (report.mmd) {
    out << "MMD: mmd2 " << report.mmd->mmd2 << ", p " << pvalue_text(report.mmd->pvalue) << " ("
        << report.mmd->permutations << " permutations, sigma " << report.mmd->sigma << ", "
        << report.mmd->n_reference << " vs " << report.mmd->n_current << " rows)\n";
  }
  if (!report.mmd_skipped.empty()) out << "MMD: not run: " << report.mmd_skipped << "\n";
  out << "drift: " << report.drifted_features() << " of " << report.features.size()
      << " features; dataset drift: " << (report.dataset_drift() ? "yes" : "no") << "\n"
      << "rule: " << report.decision_rule() << "\n";
}

// The --fail-on-invalid gate: rows that fail validation and rows quarantined unread, over every
// row of the current file. Says so on stdout unless quiet.
bool too_many_invalid_rows(const ScanReport& report, double fraction, bool quiet) {
  const std::uint64_t bad = report.current_validation.rows_invalid() + report.quarantined_rows;
  const std::uint64_t rows = report.current_rows + report.quarantined_rows;
  const bool tripped = static_cast<double>(bad) > fraction * static_cast<double>(rows);
  if (tripped && !quiet) {
    std::cout << "validation: " << bad << " of " << rows
              << " current rows are invalid or unreadable, more than --fail-on-invalid " << fraction
              << " allows\n";
  }
  return tripped;
}

// An option naming a file, for the check below; an empty path is an option not given.
struct PathOption {
  const char* option;
  std::string path;
};

// Whether two paths name one file: the same inode (hard links), or the same place once symbolic
// links and ".." are resolved (a file not yet written has no inode).
bool same_file(const std::string& a, const std::string& b) {
  std::error_code error;
  if (std::filesystem::equivalent(a, b, error)) return true;
  const std::filesystem::path place_a = std::filesystem::weakly_canonical(a, error);
  if (error) return false;
  const std::filesystem::path place_b = std::filesystem::weakly_canonical(b, error);
  return !error && place_a == place_b;
}

// An output written over an input replaced the data with the report, exit 0 (the run reads its
// inputs before it writes); an output over another output loses the first. Both are refused
// before anything is read.
void refuse_overwriting(const std::vector<PathOption>& outputs,
                        const std::vector<PathOption>& inputs) {
  for (std::size_t o = 0; o < outputs.size(); ++o) {
    const PathOption& out = outputs[o];
    if (out.path.empty()) continue;
    for (const PathOption& in : inputs) {
      if (!in.path.empty() && same_file(out.path, in.path)) {
        throw CLI::ValidationError(std::string(out.option) + " " + out.path + " is the " +
                                   in.option + " file: writing it would destroy the input");
      }
    }
    for (std::size_t other = 0; other < o; ++other) {
      if (!outputs[other].path.empty() && same_file(out.path, outputs[other].path)) {
        throw CLI::ValidationError(std::string(out.option) + " " + out.path + " is the " +
                                   outputs[other].option +
                                   " file too: one output would replace the other");
      }
    }
  }
}

// ---- score: a model's margins, probabilities (and scorecard points) for every row ----

struct ScoreCommand {
  std::string model, input, output;
  ModelOptions options;
  std::size_t batch_rows = 0;
};

// The boosting rounds a tree ensemble scores with; `model` (scan, profile) is the option they
// need.
void add_rounds(CLI::App& app, ModelOptions& rounds, CLI::Option* model = nullptr) {
  const auto needs_model = [model](CLI::Option* option) {
    return model != nullptr ? option->needs(model) : option;
  };
  needs_model(
      app.add_option("--iteration-begin", rounds.iteration_begin, "first boosting round used")
          ->transform(whole_number(0, kMaxSize)));
  needs_model(app.add_option("--iteration-end", rounds.iteration_end,
                             "end of the boosting rounds used (default: all)")
                  ->transform(whole_number(0, kMaxSize)));
  needs_model(app.add_flag("--best-iteration", rounds.use_best_iteration,
                           "use rounds [0, best_iteration] of an early-stopped model"));
}

// A begin past a given end selects no round.
void check_rounds(const ModelOptions& rounds) {
  if (rounds.iteration_end > 0 && rounds.iteration_begin > rounds.iteration_end) {
    throw CLI::ValidationError("--iteration-begin " + std::to_string(rounds.iteration_begin) +
                               " is past --iteration-end " + std::to_string(rounds.iteration_end));
  }
}

CLI::App* add_score_command(CLI::App& app, ScoreCommand& cmd, CommonOptions& common) {
  CLI::App* sub =
      app.add_subcommand("score",
                         "score every row with an XGBoost (JSON or UBJSON), LightGBM text or "
                         "driftguard linear "
                         "model; writes "
                         "/margin, /probability, /points (scorecards) and /row_id (when present)");
  sub->add_option("--model", cmd.model,
                  "model (XGBoost JSON or UBJSON, LightGBM text or driftguard-linear JSON)")
      ->required();
  sub->add_option("--input", cmd.input, "rows to score (HDF5)")->required();
  sub->add_option("--output", cmd.output, "scores (HDF5)")->required();
  add_rounds(*sub, cmd.options);
  sub->add_option("--batch-rows", cmd.batch_rows, "rows per batch (default: about 16 MiB)")
      ->transform(whole_number(1, kMaxSize));
  add_common(*sub, common);
  return sub;
}

int run_score(const ScoreCommand& cmd, const CommonOptions& common) {
  const auto start = std::chrono::steady_clock::now();
  const Model model = Model::load(cmd.model, cmd.options);
  Hdf5BatchReader reader(cmd.input);
  const BoundModel bound(model, reader.feature_names());
  Context ctx = make_context(common);
  reader.set_decode_threads(ctx.cpu_threads());
  const std::size_t k = model.outputs(), width = k > 1 ? k : 0;
  std::vector<Hdf5ColumnWriter::Column> columns = {{"/margin", width}, {"/probability", width}};
  if (model.has_points()) columns.push_back({"/points", 0});
  Hdf5ColumnWriter writer(cmd.output, columns, reader.has_row_id());

  // A 1000-class model's margins and probabilities outweigh its features: they count too.
  const std::size_t rows_per_batch =
      reader.batch_rows(cmd.batch_rows, 2 * k + (model.has_points() ? 1 : 0));
  std::vector<float> batch(rows_per_batch * reader.features()), margin(rows_per_batch * k),
      probability(rows_per_batch * k), points(model.has_points() ? rows_per_batch : 0);
  std::vector<std::int64_t> row_id(reader.has_row_id() ? rows_per_batch : 0);
  for (std::size_t first = 0; first < reader.rows(); first += rows_per_batch) {
    const std::size_t n = reader.read(first, rows_per_batch, batch.data());
    score(ctx, bound, {batch.data(), n, reader.features()},
          {margin.data(), probability.data(), points.empty() ? nullptr : points.data()});
    std::vector<const float*> values = {margin.data(), probability.data()};
    if (!points.empty()) values.push_back(points.data());
    if (!row_id.empty()) reader.read_row_id(first, n, row_id.data());
    writer.append(n, values, row_id.empty() ? nullptr : row_id.data());
  }
  writer.close();
  if (!common.quiet) {
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "scored " << reader.rows() << " rows with " << model.objective() << " ("
              << (model.kind() == ModelKind::TreeEnsemble ? std::to_string(model.trees()) + " trees"
                                                          : std::string("linear"))
              << ") on " << device_text(ctx.device_name(), ctx) << " in " << fixed(seconds, 3)
              << " s -> " << cmd.output << "\n";
  }
  return 0;
}

// Idle OpenMP workers that spin take the cores from the scan's reader thread and from the serial
// steps between kernels: a third of a streaming scan's throughput on 2 cores. libgomp reads
// OMP_WAIT_POLICY once, when it loads, so unless the user chose a policy the tool restarts itself
// once with passive waiting (and runs on with the default if that fails).
void prefer_passive_openmp_waiting(char** argv) {
  if (std::getenv("OMP_WAIT_POLICY") != nullptr) return;
  ::setenv("OMP_WAIT_POLICY", "passive", 1);
  ::execv("/proc/self/exe", argv);
}

}  // namespace

int main(int argc, char** argv) {
  prefer_passive_openmp_waiting(argv);
  CLI::App app{"driftguard: data validation and drift statistics for tabular ML, on GPU or CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "driftguard 0.1.0");
  // A usage error is one line, as every other error, and names no next step.
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "driftguard: " + one_line(e.what()) + "\n";
  });

  CommonOptions common;
  ScanOptions scan_options;
  std::string schema_path, report_path, html_path, policy = "quantile", drift_band = "moderate";
  std::string ks_method = "auto", ks_alternative = "two-sided", correction = "bh",
              drift_rule = "psi", mmd_pvalue = "conservative";
  std::optional<double> mmd_sigma;
  std::optional<std::int64_t> window_time;
  std::optional<double> fail_on_invalid;
  bool fail_on_drift = false, no_ks = false, no_distances = false;
  std::string on_bad_block = "stop", progress = "auto";
  CLI::App* scan_cmd =
      app.add_subcommand("scan", "validate a current window and measure its drift");
  scan_cmd->add_option("--reference", scan_options.reference_path, "reference window (HDF5)")
      ->required();
  scan_cmd->add_option("--current", scan_options.current_path, "current window (HDF5)")->required();
  scan_cmd->add_flag("--no-ks", no_ks, "skip KS");
  scan_cmd->add_flag("--no-distances", no_distances,
                     "skip Wasserstein, Jensen-Shannon, chi-squared and Cramer-von Mises (with "
                     "--no-ks and no --mmd the current window streams instead of being held)");
  scan_cmd->add_option("--ks-method", ks_method, "KS p-values: auto | exact | asymp (SciPy's)")
      ->check(CLI::IsMember({"auto", "exact", "asymp"}));
  scan_cmd->add_option("--ks-alternative", ks_alternative, "two-sided | less | greater")
      ->check(CLI::IsMember({"two-sided", "less", "greater"}));
  scan_cmd->add_option("--correction", correction, "KS over features: none | bonferroni | bh")
      ->check(CLI::IsMember({"none", "bonferroni", "bh"}));
  scan_cmd->add_option("--alpha", scan_options.alpha, "significance level of KS and MMD")
      ->check(fraction(true));
  scan_cmd
      ->add_option("--drift-rule", drift_rule,
                   "what flags a feature: psi | ks | psi_or_ks | test (KS, chi-squared for "
                   "categorical features) | psi_or_test")
      ->check(CLI::IsMember({"psi", "ks", "psi_or_ks", "test", "psi_or_test"}));
  add_rounds(*scan_cmd, scan_options.model_options,
             scan_cmd->add_option("--model", scan_options.model_path,
                                  "score drift of this model (XGBoost JSON or UBJSON, LightGBM "
                                  "text or driftguard-linear)"));
  // The MMD's settings without --mmd would be ignored: a user who gives one means to run it.
  CLI::Option* mmd_flag =
      scan_cmd->add_flag("--mmd", scan_options.mmd, "multivariate MMD permutation test");
  scan_cmd->add_option("--mmd-rows", scan_options.mmd_rows, "rows per window for MMD (sampled)")
      ->transform(whole_number(2, kMaxMmdRows))
      ->needs(mmd_flag);
  scan_cmd
      ->add_option("--mmd-permutations", scan_options.mmd_options.permutations, "MMD permutations")
      ->transform(whole_number(1, 1000000))
      ->needs(mmd_flag);
  scan_cmd->add_option("--mmd-sigma", mmd_sigma, "RBF bandwidth (default: median heuristic)")
      ->check(rbf_bandwidth())
      ->needs(mmd_flag);
  scan_cmd->add_option("--mmd-pvalue", mmd_pvalue, "conservative | alibi")
      ->check(CLI::IsMember({"conservative", "alibi"}))
      ->needs(mmd_flag);
  scan_cmd
      ->add_option("--seed", scan_options.mmd_options.seed,
                   "seed of the MMD samples and permutations")
      ->transform(whole_number(0, kMaxSeed));
  scan_cmd->add_option("--schema", schema_path,
                       "schema JSON (default: inferred from the reference)");
  scan_cmd->add_option("--report", report_path, "write the JSON report here");
  scan_cmd->add_option("--html", html_path, "write the report as an HTML page for people here");
  scan_cmd->add_option("--binning", policy, "quantile | equal_width | fixed | evidently")
      ->check(CLI::IsMember({"quantile", "equal_width", "fixed", "evidently"}));
  scan_cmd->add_option("--bins", scan_options.binning.bins, "bins for quantile / equal_width")
      ->transform(whole_number(1, 100000));
  scan_cmd
      ->add_option("--psi-moderate", scan_options.bands.moderate,
                   "PSI from which a shift is moderate")
      ->check(kPositive);
  scan_cmd
      ->add_option("--psi-significant", scan_options.bands.significant,
                   "PSI from which a shift is significant")
      ->check(kPositive);
  scan_cmd
      ->add_option("--drift-band", drift_band, "band that counts as drift: moderate | significant")
      ->check(CLI::IsMember({"moderate", "significant"}));
  scan_cmd->add_flag("--fail-on-drift", fail_on_drift, "exit with code 3 when a feature drifted");
  scan_cmd
      ->add_option("--fail-on-invalid", fail_on_invalid,
                   "exit with code 4 when more than this fraction of the current rows is invalid "
                   "or unreadable (0: any such row); checked before --fail-on-drift")
      ->check(fraction(false));
  scan_cmd
      ->add_option("--batch-rows", scan_options.batch_rows,
                   "rows per batch (default: about 16 MiB)")
      ->transform(whole_number(1, kMaxSize));
  CLI::Option* window_rows_opt =
      scan_cmd
          ->add_option("--window-rows", scan_options.window_rows,
                       "tumbling windows of this many rows, each with its own statistics")
          ->transform(whole_number(1, kMaxSize));
  CLI::Option* window_time_opt =
      scan_cmd
          ->add_option("--window-time", window_time,
                       "tumbling windows of this width in /timestamp units ([k*W, (k+1)*W))")
          ->transform(whole_number(1, kMaxInt64))
          ->excludes(window_rows_opt);
  scan_cmd->add_option("--windows-jsonl", scan_options.windows_jsonl,
                       "write each window's report here, one JSON line per window");
  CLI::Option* checkpoint_opt = scan_cmd->add_option(
      "--checkpoint", scan_options.checkpoint_path,
      "save progress here after each window (atomic, fsync'ed); needs windows");
  scan_cmd
      ->add_flag("--resume", scan_options.resume,
                 "continue from --checkpoint (start over when it does not exist)")
      ->needs(checkpoint_opt);
  scan_cmd
      ->add_option("--on-bad-block", on_bad_block,
                   "an unreadable block: stop (error, resumable) | skip (quarantine and report)")
      ->check(CLI::IsMember({"stop", "skip"}));
  scan_cmd
      ->add_option("--progress", progress, "progress line on stderr: auto (terminals) | on | off")
      ->check(CLI::IsMember({"auto", "on", "off"}));
  scan_cmd
      ->add_option("--ring-buffers", scan_options.ring_buffers,
                   "host buffers between the reader thread and the compute thread")
      ->transform(whole_number(2, 64));
  scan_cmd
      ->add_option(
          "--max-categories", scan_options.max_categories,
          "schema inference (raw reference; default 20): integer features with at most this many "
          "values are categorical")
      ->transform(whole_number(0, kMaxSize));
  scan_cmd
      ->add_option("--range-margin", scan_options.range_margin,
                   "schema inference (raw reference; default 0.1): widen observed numeric ranges "
                   "by this fraction per side")
      ->check(kNonNegative);
  add_common(*scan_cmd, common);

  std::string infer_reference, infer_output;
  std::size_t infer_max_categories = 20;
  double infer_range_margin = 0.1;
  CLI::App* schema_cmd = app.add_subcommand("schema", "infer a schema (JSON) from reference data");
  schema_cmd->add_option("--reference", infer_reference, "reference window (HDF5)")->required();
  schema_cmd->add_option("-o,--output", infer_output, "write here (default: stdout)");
  schema_cmd
      ->add_option("--max-categories", infer_max_categories,
                   "integer features with at most this many values are categorical")
      ->transform(whole_number(0, kMaxSize));
  schema_cmd
      ->add_option("--range-margin", infer_range_margin,
                   "widen observed numeric ranges by this fraction of their width per side")
      ->check(kNonNegative);

  std::string profile_reference, profile_output, profile_schema;
  ProfileOptions profile_options;
  CLI::App* profile_cmd = app.add_subcommand(
      "profile", "build a reference profile (schema, sorted columns, MMD sample) for fast scans");
  profile_cmd->add_option("reference,--reference", profile_reference, "reference window (HDF5)")
      ->required();
  profile_cmd->add_option("-o,--output", profile_output, "the profile to write (HDF5)")->required();
  profile_cmd->add_option("--schema", profile_schema,
                          "schema JSON (default: inferred from the reference)");
  profile_cmd
      ->add_option("--max-categories", profile_options.max_categories,
                   "schema inference: integer features with at most this many values are "
                   "categorical")
      ->transform(whole_number(0, kMaxSize));
  profile_cmd
      ->add_option("--range-margin", profile_options.range_margin,
                   "schema inference: widen observed numeric ranges by this fraction")
      ->check(kNonNegative);
  // 0 keeps no sample: a smaller profile for scans without --mmd (a scan with --mmd refuses it),
  // as a scan without --mmd profiles its raw reference. One row is never enough for MMD.
  profile_cmd
      ->add_option("--mmd-rows", profile_options.mmd_rows,
                   "reference rows kept for MMD (0: none, for scans without --mmd)")
      ->transform(whole_number(2, kMaxMmdRows, "no MMD sample"));
  profile_cmd->add_option("--seed", profile_options.seed, "seed of the MMD sample")
      ->transform(whole_number(0, kMaxSeed));
  add_rounds(*profile_cmd, profile_options.model_options,
             profile_cmd->add_option("--model", profile_options.model_path,
                                     "keep this model's reference scores, for scan --model"));
  CommonOptions profile_common;
  add_common(*profile_cmd, profile_common);

  ScoreCommand score_command;
  CLI::App* score_cmd = add_score_command(app, score_command, common);

  std::string html_report, html_output;
  std::optional<std::int64_t> html_window;
  CLI::App* html_cmd = app.add_subcommand(
      "html",
      "render a JSON report written by scan (--report, or a --windows-jsonl record) as HTML");
  html_cmd->add_option("report", html_report, "the JSON report")->required();
  html_cmd->add_option("-o,--output", html_output, "the page to write")->required();
  html_cmd
      ->add_option("--window", html_window,
                   "the record of this window index, in a --windows-jsonl file")
      ->transform(whole_number(0, kMaxInt64));

  try {
    // CLI11 answers a word that is no command with "A subcommand is required"; name it.
    if (argc > 1 && argv[1][0] != '-') {
      std::string commands;
      bool known = false;
      for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
        known = known || sub->get_name() == argv[1];
        commands += (commands.empty() ? "" : ", ") + sub->get_name();
      }
      if (!known) {
        throw CLI::ValidationError(std::string("'") + argv[1] + "' is not a command (" + commands +
                                   ")");
      }
    }
    app.parse(argc, argv);
    // Mistakes that CLI11's needs and excludes cannot express. Some of them the library refuses
    // too, but only as a failed run, after reading the data.
    if (scan_cmd->parsed()) {
      if (!(scan_options.bands.moderate < scan_options.bands.significant)) {
        throw CLI::ValidationError("--psi-moderate must be below --psi-significant");
      }
      if (checkpoint_opt->count() > 0 && window_rows_opt->count() == 0 &&
          window_time_opt->count() == 0) {
        throw CLI::ValidationError(
            "--checkpoint needs windows (--window-rows or --window-time): without windows the "
            "one window is the whole run");
      }
      if (!scan_options.windows_jsonl.empty() && window_rows_opt->count() == 0 &&
          window_time_opt->count() == 0) {
        throw CLI::ValidationError(
            "--windows-jsonl needs windows (--window-rows or --window-time): without windows "
            "the one window is the whole run, in --report");
      }
      if (no_ks && uses_test(parse_drift_rule(drift_rule))) {
        throw CLI::ValidationError("--drift-rule " + drift_rule +
                                   " needs KS, which --no-ks switches off");
      }
      const std::string window_log = scan_options.checkpoint_path.empty()
                                         ? ""
                                         : detail::window_log_path(scan_options.checkpoint_path);
      refuse_overwriting({{"--report", report_path},
                          {"--html", html_path},
                          {"--windows-jsonl", scan_options.windows_jsonl},
                          {"--checkpoint", scan_options.checkpoint_path},
                          {"--checkpoint's window log", window_log}},
                         {{"--reference", scan_options.reference_path},
                          {"--current", scan_options.current_path},
                          {"--schema", schema_path},
                          {"--model", scan_options.model_path.value_or("")}});
    }
    if (profile_cmd->parsed()) {
      refuse_overwriting({{"--output", profile_output}},
                         {{"--reference", profile_reference},
                          {"--schema", profile_schema},
                          {"--model", profile_options.model_path.value_or("")}});
    }
    if (schema_cmd->parsed()) {
      refuse_overwriting({{"--output", infer_output}}, {{"--reference", infer_reference}});
    }
    if (score_cmd->parsed()) {
      refuse_overwriting({{"--output", score_command.output}},
                         {{"--input", score_command.input}, {"--model", score_command.model}});
    }
    if (html_cmd->parsed()) {
      refuse_overwriting({{"--output", html_output}}, {{"report", html_report}});
    }
    if (score_cmd->parsed()) check_rounds(score_command.options);
    if (scan_cmd->parsed()) check_rounds(scan_options.model_options);
    if (profile_cmd->parsed()) check_rounds(profile_options.model_options);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : kExitUsage;
  }

  try {
    if (score_cmd->parsed()) return run_score(score_command, common);
    if (html_cmd->parsed()) {
      std::ifstream in(html_report, std::ios::binary);
      std::ostringstream text;
      if (!in || std::filesystem::is_directory(html_report)) {
        throw IoError(html_report + ": cannot read the report");
      }
      text << in.rdbuf();
      try {
        const std::optional<std::uint64_t> window =
            html_window ? std::optional<std::uint64_t>(*html_window) : std::nullopt;
        detail::write_file_atomically(html_output, report_html(text.str(), window));
      } catch (const InvalidInput& e) {
        throw InvalidInput(html_report + ": " + e.what());
      }
      return 0;
    }
    if (profile_cmd->parsed()) {
      if (!profile_schema.empty()) profile_options.schema = Schema::load(profile_schema);
      Context ctx = make_context(profile_common);
      const ReferenceProfile profile =
          ReferenceProfile::build(ctx, profile_reference, profile_options);
      profile.save(profile_output);
      if (!profile_common.quiet) {
        std::cout << "profile: " << profile.rows << " rows, " << profile.features() << " features, "
                  << profile.mmd_rows << " MMD rows -> " << profile_output << "\n";
      }
      return 0;
    }
    if (schema_cmd->parsed()) {
      Hdf5BatchReader reader(infer_reference);
      SchemaInferrer inferrer(reader.feature_names(), infer_max_categories, infer_range_margin);
      std::vector<float> buffer(std::max<std::size_t>(1, reader.chunk_rows()) * reader.features());
      const std::size_t step = buffer.size() / reader.features();
      for (std::size_t first = 0; first < reader.rows(); first += step) {
        const std::size_t n = reader.read(first, step, buffer.data());
        inferrer.observe({buffer.data(), n, reader.features()});
      }
      const Schema schema = inferrer.finish();
      if (infer_output.empty()) {
        std::cout << schema.to_json();
      } else {
        schema.save(infer_output);
      }
      return 0;
    }

    if (scan_cmd->parsed()) {
      scan_options.binning.policy = parse_binning_policy(policy);
      scan_options.drift_band = parse_psi_band(drift_band);
      if (!schema_path.empty()) scan_options.schema = Schema::load(schema_path);
      scan_options.ks = !no_ks;
      scan_options.distances = !no_distances;
      scan_options.ks_options = {parse_ks_method(ks_method), parse_ks_alternative(ks_alternative)};
      scan_options.correction = parse_correction(correction);
      scan_options.drift_rule = parse_drift_rule(drift_rule);
      scan_options.mmd_options.sigma = mmd_sigma;
      scan_options.mmd_options.pvalue =
          mmd_pvalue == "alibi" ? MmdOptions::PValue::Alibi : MmdOptions::PValue::Conservative;
      scan_options.window_time = window_time;
      scan_options.on_bad_block = parse_bad_block_policy(on_bad_block);
      scan_options.progress =
          progress == "on" || (progress == "auto" && !common.quiet && ::isatty(STDERR_FILENO));
      Context ctx = make_context(common);
      const ScanReport report = scan(ctx, scan_options);
      if (!report_path.empty()) detail::write_file_atomically(report_path, report.to_json());
      if (!html_path.empty()) detail::write_file_atomically(html_path, report.to_html());
      if (!common.quiet) print_table(report, ctx, std::cout);
      if (fail_on_invalid && too_many_invalid_rows(report, *fail_on_invalid, common.quiet)) {
        return kExitInvalid;
      }
      return fail_on_drift && report.dataset_drift() ? kExitDrift : 0;
    }
  } catch (const driftguard::Error& e) {
    std::cerr << "driftguard: " << one_line(e.what()) << "\n";
    return kExitFailed;
  } catch (const std::bad_alloc&) {
    std::cerr << "driftguard: out of memory (fewer --batch-rows, --mmd-rows or a smaller window "
                 "may fit)\n";
    return kExitFailed;
  } catch (const std::exception& e) {
    std::cerr << "driftguard: unexpected error: " << one_line(e.what()) << "\n";
    return kExitFailed;
  }
  return 0;
}
