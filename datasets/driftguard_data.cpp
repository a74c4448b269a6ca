// driftguard-data: makes the data sets the tests, demos and benchmarks use.
//   synth    synthetic credit-scoring data with an injected drift scenario
//   uci      the UCI credit card CSV split into reference/current windows
//   weather  the NOAA daily weather CSV as a reference decade and a time-stamped stream
//   german   the German credit CSV: text categories as labelled codes, split by age
// Exit codes: 0 success, 1 failure (I/O, malformed input file), 2 usage error.
#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "driftguard/errors.hpp"
#include "german.hpp"
#include "synth.hpp"
#include "uci.hpp"
#include "weather.hpp"

namespace {

constexpr int kFailure = 1;
constexpr int kUsageError = 2;

// An integer as written, within uint64: CLI11 saturates one beyond it to 2^64 - 1 without a word
// (a --rows of 10^23 then ran until the disk was full).
bool whole_uint64(const std::string& value, std::uint64_t& number) {
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), number);
  return !value.empty() && error == std::errc() && end == value.data() + value.size();
}

// CLI11's own number validators print their range as 1.797...e308 in full.
const CLI::Validator kPositive(
    [](const std::string& value) {
      std::uint64_t number = 0;
      return whole_uint64(value, number) && number > 0
                 ? std::string()
                 : "must be a positive integer below 2^64, got '" + value + "'";
    },
    "POSITIVE");
const CLI::Validator kUnsigned(
    [](const std::string& value) {
      std::uint64_t number = 0;
      return whole_uint64(value, number) ? std::string()
                                         : "must be an integer in [0, 2^64), got '" + value + "'";
    },
    "UINT64");
// Readers take at most 2^24 features (hdf5_io.hpp).
const CLI::Validator kFeatureCount(
    [](const std::string& value) {
      std::uint64_t number = 0;
      return whole_uint64(value, number) && number > 0 && number <= (std::uint64_t{1} << 24)
                 ? std::string()
                 : "must be an integer in [1, 2^24], got '" + value + "'";
    },
    "FEATURES");
// A drift a thousand times the scenario's default is far past any test; beyond it values overflow
// float32 (a strength of 1e308 wrote +inf features).
const CLI::Validator kDriftStrength(
    [](const std::string& value) {
      double number = -1.0;
      return CLI::detail::lexical_cast(value, number) && number >= 0.0 && number <= 1000.0
                 ? std::string()
                 : "must be a number in [0, 1000], got '" + value + "'";
    },
    "STRENGTH");

std::string join(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

void print_synth_summary(const driftguard::data::SynthOptions& options,
                         const driftguard::data::SynthSummary& summary) {
  const double megabytes =
      static_cast<double>(options.rows) * static_cast<double>(options.features) * 4.0 / 1e6;
  char strength[32];
  std::snprintf(strength, sizeof strength, "%g", options.drift_strength);
  const std::string drift = options.scenario == driftguard::data::Scenario::None
                                ? "no drift"
                                : driftguard::data::scenario_name(options.scenario) + " on " +
                                      join(summary.drift_features) + ", strength " + strength;
  std::printf(
      "synth: %llu rows x %zu features (%s, seed %llu) -> %s: %.1f MB of features in %.2f s "
      "(%.0f MB/s)\n",
      static_cast<unsigned long long>(options.rows), options.features, drift.c_str(),
      static_cast<unsigned long long>(options.seed), options.output.c_str(), megabytes,
      summary.seconds, megabytes / summary.seconds);
}

}  // namespace

int main(int argc, char** argv) {
  namespace data = driftguard::data;
  CLI::App app{
      "Makes driftguard's data sets: synthetic credit data with injected drift, and the "
      "UCI credit card windows."};
  app.require_subcommand(1);

  data::SynthOptions synth;
  CLI::App* synth_command =
      app.add_subcommand("synth", "Generate synthetic credit-scoring data with injected drift.");
  std::map<std::string, data::Scenario> scenarios;
  for (const data::Scenario s : data::kScenarios) scenarios.emplace(data::scenario_name(s), s);
  std::string scenario;
  synth_command->add_option("--rows", synth.rows, "Rows to generate")->required()->check(kPositive);
  synth_command->add_option("--features", synth.features, "Columns: 12 named ones, then x_NNN")
      ->required()
      ->check(kFeatureCount);
  synth_command->add_option("--seed", synth.seed, "Random seed")->required()->check(kUnsigned);
  synth_command->add_option("--scenario", scenario, "Drift to inject")
      ->required()
      ->check(CLI::IsMember(scenarios));
  synth_command
      ->add_option("--drift-features", synth.drift_features,
                   "Comma-separated features to drift (default: the scenario's set)")
      ->delimiter(',');
  synth_command
      ->add_option("--drift-strength", synth.drift_strength,
                   "Multiplier of the scenario's default drift size")
      ->capture_default_str()
      ->check(kDriftStrength);
  synth_command
      ->add_option("--block-rows", synth.block_rows,
                   "Rows generated and written per block (default: about 32 MiB)")
      ->check(kPositive);
  synth_command->add_option("--gzip", synth.gzip_level, "Deflate level 1..9 (default: none)")
      ->check(CLI::Range(0, 9));
  synth_command->add_option("--output", synth.output, "HDF5 file to write")->required();

  std::string uci_input;
  std::string uci_output_dir;
  std::uint64_t uci_seed = 42;
  CLI::App* uci_command = app.add_subcommand(
      "uci", "Split the UCI credit card CSV into age and random reference/current windows.");
  uci_command->add_option("--input", uci_input, "uci_credit_card.csv or .csv.gz")->required();
  uci_command->add_option("--output-dir", uci_output_dir, "Directory for the four .h5 files")
      ->required();
  uci_command->add_option("--seed", uci_seed, "Seed of the random split")
      ->capture_default_str()
      ->check(kUnsigned);

  std::string weather_input;
  std::string weather_output_dir;
  CLI::App* weather_command = app.add_subcommand(
      "weather",
      "Split the NOAA daily weather CSV into a reference decade and the stream after it.");
  weather_command->add_option("--input", weather_input, "noaa_weather.csv or .csv.gz")->required();
  weather_command
      ->add_option("--output-dir", weather_output_dir,
                   "Directory for weather_reference.h5 and weather_stream.h5")
      ->required();

  std::string german_input;
  std::string german_output_dir;
  CLI::App* german_command = app.add_subcommand(
      "german", "Split the German credit CSV by age, its text categories as labelled codes.");
  german_command->add_option("--input", german_input, "german_credit.csv or .csv.gz")->required();
  german_command
      ->add_option("--output-dir", german_output_dir,
                   "Directory for german_age_reference.h5, german_age_current.h5 and "
                   "german.schema.json")
      ->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help
    std::fprintf(stderr, "driftguard-data: %s\n", e.what());
    return kUsageError;
  }

  try {
    if (*synth_command) {
      synth.scenario = scenarios.at(scenario);
      print_synth_summary(synth, data::synth(synth));
    } else if (*german_command) {
      const data::GermanSummary s = data::convert_german(german_input, german_output_dir);
      std::printf(
          "german: %zu rows from %s -> %s: age split %zu/%zu (age_in_years < %d / >= %d), %zu "
          "categorical features as labelled codes\n",
          s.rows, german_input.c_str(), german_output_dir.c_str(), s.reference, s.current,
          data::kGermanAgeSplit, data::kGermanAgeSplit, s.categorical);
    } else if (*weather_command) {
      const data::WeatherSummary s = data::convert_weather(weather_input, weather_output_dir);
      std::printf(
          "weather: %zu days from %s -> %s: reference days [0, %zu), stream days [%zu, %zu)\n",
          s.rows, weather_input.c_str(), weather_output_dir.c_str(), s.reference, s.reference,
          s.rows);
    } else {
      const data::UciSummary s = data::convert_uci(uci_input, uci_output_dir, uci_seed);
      std::printf(
          "uci: %zu rows from %s -> %s: age split %zu/%zu (AGE < %d / >= %d), random split "
          "%zu/%zu (seed %llu)\n",
          s.rows, uci_input.c_str(), uci_output_dir.c_str(), s.age_reference, s.age_current,
          data::kUciAgeSplit, data::kUciAgeSplit, s.random_reference, s.random_current,
          static_cast<unsigned long long>(uci_seed));
    }
  } catch (const driftguard::InvalidInput& e) {
    std::fprintf(stderr, "driftguard-data: %s\n", e.what());
    return kUsageError;
  } catch (const std::exception& e) {  // driftguard::Error, or std::bad_alloc for a huge block
    std::fprintf(stderr, "driftguard-data: %s\n", e.what());
    return kFailure;
  }
  return 0;
}
