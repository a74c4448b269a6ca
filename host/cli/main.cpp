// The driftguard command-line tool. Exit codes: 0 done, 1 failed run, 2 usage error,
// 3 drift found under --fail-on-drift.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <CLI/CLI.hpp>

#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/scan.hpp"
#include "driftguard/schema.hpp"

namespace {

using namespace driftguard;

constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;
constexpr int kExitDrift = 3;

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
      ->check(CLI::NonNegativeNumber);
  app.add_flag("-q,--quiet", common.quiet, "print nothing but errors");
}

Context make_context(const CommonOptions& common) {
  return Context(ContextOptions{.backend = parse_backend(common.backend),
                                .cpu_threads = common.threads,
                                .quiet = common.quiet});
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out.flush()) throw IoError(path + ": cannot write");
}

std::string fixed(double value, int digits) {
  if (std::isnan(value)) return "n/a";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*f", digits, value);
  return buffer;
}

void print_table(const ScanReport& report, std::ostream& out) {
  char line[256];
  std::snprintf(line, sizeof line, "%-24s %-12s %9s  %-12s %9s %9s\n", "feature", "kind", "PSI",
                "band", "missing", "invalid");
  out << line;
  for (const FeatureDrift& f : report.features) {
    const std::uint64_t invalid =
        f.current_flags[flag_index(kNonFinite)] + f.current_flags[flag_index(kBelowMin)] +
        f.current_flags[flag_index(kAboveMax)] + f.current_flags[flag_index(kUnknownCategory)];
    std::snprintf(line, sizeof line, "%-24s %-12s %9s  %-12s %9llu %9llu%s\n", f.name.c_str(),
                  f.kind == FeatureKind::Categorical ? "categorical" : "numeric",
                  fixed(f.psi, 4).c_str(), std::string(to_string(f.band)).c_str(),
                  static_cast<unsigned long long>(f.current_flags[flag_index(kMissing)]),
                  static_cast<unsigned long long>(invalid), f.drifted ? "  <- drift" : "");
    out << line;
  }
  const ValidationCounts& v = report.current_validation;
  out << "\ncurrent: " << report.current_rows << " rows (" << v.rows_ok << " ok, "
      << v.rows_invalid() << " invalid); reference: " << report.reference_rows << " rows\n"
      << "binning: " << to_string(report.binning.policy) << ", backend: " << report.backend << " ("
      << report.device << "), " << fixed(report.seconds, 3) << " s\n"
      << "drift: " << report.drifted_features() << " of " << report.features.size()
      << " features (psi band >= " << to_string(report.drift_band) << ")\n";
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"driftguard: data validation and drift statistics for tabular ML, on GPU or CPU"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "driftguard 0.1.0");

  CommonOptions common;
  ScanOptions scan_options;
  std::string schema_path, report_path, policy = "quantile", drift_band = "moderate";
  bool fail_on_drift = false;
  CLI::App* scan_cmd =
      app.add_subcommand("scan", "validate a current window and measure its drift");
  scan_cmd->add_option("--reference", scan_options.reference_path, "reference window (HDF5)")
      ->required();
  scan_cmd->add_option("--current", scan_options.current_path, "current window (HDF5)")->required();
  scan_cmd->add_option("--schema", schema_path,
                       "schema JSON (default: inferred from the reference)");
  scan_cmd->add_option("--report", report_path, "write the JSON report here");
  scan_cmd->add_option("--binning", policy, "quantile | equal_width | fixed | evidently")
      ->check(CLI::IsMember({"quantile", "equal_width", "fixed", "evidently"}));
  scan_cmd->add_option("--bins", scan_options.binning.bins, "bins for quantile / equal_width")
      ->check(CLI::Range(1, 100000));
  scan_cmd
      ->add_option("--psi-moderate", scan_options.bands.moderate,
                   "PSI from which a shift is moderate")
      ->check(CLI::PositiveNumber);
  scan_cmd
      ->add_option("--psi-significant", scan_options.bands.significant,
                   "PSI from which a shift is significant")
      ->check(CLI::PositiveNumber);
  scan_cmd
      ->add_option("--drift-band", drift_band, "band that counts as drift: moderate | significant")
      ->check(CLI::IsMember({"moderate", "significant"}));
  scan_cmd->add_flag("--fail-on-drift", fail_on_drift, "exit with code 3 when a feature drifted");
  scan_cmd
      ->add_option("--batch-rows", scan_options.batch_rows,
                   "rows per batch (default: about 16 MiB)")
      ->check(CLI::PositiveNumber);
  scan_cmd->add_option(
      "--max-categories", scan_options.max_categories,
      "schema inference: integer features with at most this many values are categorical");
  scan_cmd
      ->add_option("--range-margin", scan_options.range_margin,
                   "schema inference: widen observed numeric ranges by this fraction per side")
      ->check(CLI::NonNegativeNumber);
  add_common(*scan_cmd, common);

  std::string infer_reference, infer_output;
  std::size_t infer_max_categories = 20;
  double infer_range_margin = 0.1;
  CLI::App* schema_cmd = app.add_subcommand("schema", "infer a schema (JSON) from reference data");
  schema_cmd->add_option("--reference", infer_reference, "reference window (HDF5)")->required();
  schema_cmd->add_option("-o,--output", infer_output, "write here (default: stdout)");
  schema_cmd->add_option("--max-categories", infer_max_categories,
                         "integer features with at most this many values are categorical");

  schema_cmd
      ->add_option("--range-margin", infer_range_margin,
                   "widen observed numeric ranges by this fraction of their width per side")
      ->check(CLI::NonNegativeNumber);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }

  try {
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
      if (!(scan_options.bands.moderate < scan_options.bands.significant)) {
        std::cerr << "driftguard: --psi-moderate must be below --psi-significant\n";
        return kExitUsage;
      }
      if (!schema_path.empty()) scan_options.schema = Schema::load(schema_path);
      Context ctx = make_context(common);
      const ScanReport report = scan(ctx, scan_options);
      if (!report_path.empty()) write_text(report_path, report.to_json());
      if (!common.quiet) print_table(report, std::cout);
      return fail_on_drift && report.drifted_features() > 0 ? kExitDrift : 0;
    }
  } catch (const driftguard::Error& e) {
    std::cerr << "driftguard: " << e.what() << "\n";
    return kExitFailed;
  } catch (const std::exception& e) {
    std::cerr << "driftguard: unexpected error: " << e.what() << "\n";
    return kExitFailed;
  }
  return 0;
}
