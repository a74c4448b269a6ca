#pragma once
// Synthetic credit-scoring data with injected drift, streamed to driftguard's HDF5 layout.
// Every value of row r comes from counter-based random streams keyed by (seed, r), so the data
// do not depend on the block size, the thread count or the order in which blocks are made.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace driftguard::data {

enum class Scenario { None, MeanShift, VarianceChange, CategoryMix, Missingness, OutOfRange };
inline constexpr Scenario kScenarios[] = {Scenario::None,           Scenario::MeanShift,
                                          Scenario::VarianceChange, Scenario::CategoryMix,
                                          Scenario::Missingness,    Scenario::OutOfRange};

// The command-line name: none, mean_shift, variance_change, category_mix, missingness,
// out_of_range.
std::string scenario_name(Scenario scenario);

struct SynthOptions {
  std::uint64_t rows = 0;
  std::size_t features = 0;
  std::uint64_t seed = 0;
  Scenario scenario = Scenario::None;
  std::vector<std::string> drift_features;  // empty: the scenario's default set
  double drift_strength = 1.0;              // >= 0; 0 leaves the data as under `none`
  std::size_t block_rows = 0;               // 0: about 32 MiB of features per block
  int gzip_level = 0;
  std::string output;
};

struct SynthSummary {
  std::vector<std::string> drift_features;  // as resolved from the defaults
  double seconds = 0.0;
};

// Names of the first `features` columns: the twelve named credit features, then x_NNN.
std::vector<std::string> synth_feature_names(std::size_t features);

// The drift features a scenario uses when none are given.
std::vector<std::string> default_drift_features(Scenario scenario);

// Writes options.output. InvalidInput for options that do not fit together (a drift feature that
// is not generated or does not suit the scenario); IoError when the file cannot be written.
SynthSummary synth(const SynthOptions& options);

}  // namespace driftguard::data
