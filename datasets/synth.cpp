// Synthetic credit data: the feature definitions, the drift scenarios and the block loop that
// generates rows in parallel and streams them through Hdf5Writer.
#include "synth.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <unordered_map>

#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"

namespace driftguard::data {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr std::size_t kTargetBlockBytes = std::size_t{32} << 20;
constexpr std::int64_t kFirstTimestamp = 1'704'067'200;  // 2024-01-01T00:00:00Z, one row a second

// Drift sizes at strength 1 (see datasets/README.md).
constexpr double kMeanShiftSds = 0.5;
constexpr double kSpreadGrowth = 0.5;      // standard deviation x (1 + 0.5)
constexpr double kMixFraction = 0.3;       // share of rows whose category is redrawn
constexpr double kExtraMissing = 0.2;      // share of values set missing
constexpr double kOutOfRangeShare = 0.05;  // share of values moved outside the valid range

// ---- counter-based random numbers ---------------------------------------------------------------

constexpr std::uint64_t kGolden = 0x9E3779B97F4A7C15ull;

// SplitMix64's finaliser: a bijection with full avalanche.
constexpr std::uint64_t mix64(std::uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Separate streams per purpose keep the clean values of a row identical across scenarios, so a
// scenario changes its drift features and nothing else.
enum class Stream : std::uint64_t { Clean = 1, Drift = 2, Label = 3 };

// SplitMix64 started at a hash of (seed, row, stream): each row is generated on its own.
class RowRng {
 public:
  RowRng(std::uint64_t seed, std::uint64_t row, Stream stream)
      : state_(mix64(mix64(mix64(seed) ^ row) + static_cast<std::uint64_t>(stream))) {}

  std::uint64_t next() { return mix64(state_ += kGolden); }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1p-53; }  // [0, 1)

  double normal() {  // Marsaglia's polar method, both values used; cheaper than sin and cos
    if (has_spare_) {
      has_spare_ = false;
      return spare_;
    }
    double x = 0.0;
    double y = 0.0;
    double r2 = 0.0;
    do {
      x = 2.0 * uniform() - 1.0;
      y = 2.0 * uniform() - 1.0;
      r2 = x * x + y * y;
    } while (r2 >= 1.0 || r2 == 0.0);
    const double factor = std::sqrt(-2.0 * std::log(r2) / r2);
    spare_ = y * factor;
    has_spare_ = true;
    return x * factor;
  }

  // Marsaglia & Tsang (2000); every shape used here is >= 1.
  double gamma(double shape, double scale) {
    const double d = shape - 1.0 / 3.0;
    const double c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x = 0.0;
      double v = 0.0;
      do {
        x = normal();
        v = 1.0 + c * x;
      } while (v <= 0.0);
      v = v * v * v;
      const double u = uniform();
      if (u < 1.0 - 0.0331 * x * x * x * x ||
          std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) {
        return d * v * scale;
      }
    }
  }

  int poisson(double mean) {  // Knuth's product method: fine for the small means used here
    const double limit = std::exp(-mean);
    int k = 0;
    for (double p = uniform(); p > limit; p *= uniform()) ++k;
    return k;
  }

  std::size_t categorical(const std::vector<double>& probs) {
    double u = uniform();
    for (std::size_t k = 0; k + 1 < probs.size(); ++k) {
      if (u < probs[k]) return k;
      u -= probs[k];
    }
    return probs.size() - 1;
  }

 private:
  std::uint64_t state_;
  double spare_ = 0.0;
  bool has_spare_ = false;
};

// ---- features -----------------------------------------------------------------------------------

enum class Kind { Continuous, Integer, Categorical };

struct FeatureSpec {
  std::string name;
  Kind kind = Kind::Continuous;
  double lo = -kInf;  // valid range; categorical codes are 0..hi
  double hi = kInf;
  double center = 0.0;        // typical value: the mean, or the median for log_scale features
  double scale = 1.0;         // standard deviation
  bool log_scale = false;     // positive and right-skewed: its spread grows multiplicatively
  std::vector<double> probs;  // categorical only
};

enum Core : std::size_t {
  kIncome,
  kAge,
  kLoanAmount,
  kCreditLimit,
  kUtilization,
  kNumAccounts,
  kDelinquencies,
  kEmploymentYears,
  kDebtToIncome,
  kRegion,
  kProduct,
  kChannel,
  kCoreCount
};

// Centres and standard deviations measured on 2M rows of the generator below.
const std::vector<FeatureSpec>& core_specs() {
  static const std::vector<FeatureSpec> specs = {
      {"income", Kind::Continuous, 0, kInf, 49000, 33900, true, {}},
      {"age", Kind::Integer, 18, 90, 41, 11.7, false, {}},
      {"loan_amount", Kind::Continuous, 0, kInf, 17150, 23200, true, {}},
      {"credit_limit", Kind::Continuous, 0, kInf, 12500, 11800, true, {}},
      {"utilization", Kind::Continuous, 0, 1, 0.31, 0.20, false, {}},
      {"num_accounts", Kind::Integer, 1, kInf, 4.5, 1.87, false, {}},
      {"delinquencies_12m", Kind::Integer, 0, kInf, 0.26, 0.52, false, {}},
      {"employment_years", Kind::Continuous, 0, kInf, 5.6, 4.6, true, {}},
      {"debt_to_income", Kind::Continuous, 0, kInf, 0.30, 0.124, true, {}},
      {"region",
       Kind::Categorical,
       0,
       9,
       0,
       0,
       false,
       {0.20, 0.15, 0.13, 0.11, 0.10, 0.09, 0.08, 0.06, 0.05, 0.03}},
      {"product", Kind::Categorical, 0, 3, 0, 0, false, {0.45, 0.30, 0.17, 0.08}},
      {"channel", Kind::Categorical, 0, 2, 0, 0, false, {0.55, 0.35, 0.10}},
  };
  return specs;
}

double round_to(double x, double step) { return std::round(x / step) * step; }

void generate_core(RowRng& rng, double* v) {
  const std::vector<FeatureSpec>& spec = core_specs();
  const double income = round_to(std::exp(10.8 + 0.55 * rng.normal()), 100);
  const double age = std::clamp(std::round(41 + 12 * rng.normal()), 18.0, 90.0);
  const double loan = std::max(500.0, round_to(0.35 * income * std::exp(0.6 * rng.normal()), 50));
  const double limit = std::max(500.0, round_to(0.25 * income * std::exp(0.4 * rng.normal()), 500));
  const double utilization = 1.0 / (1.0 + std::exp(1.0 - 1.1 * rng.normal()));
  const double employment = round_to(std::min(rng.gamma(2.0, 3.5), age - 16.0), 0.1);
  const double monthly_debt =
      loan / 48 + 0.03 * utilization * limit + income / 12 * std::exp(-1.8 + 0.5 * rng.normal());
  v[kAge] = age;
  v[kLoanAmount] = loan;
  v[kUtilization] = utilization;
  v[kNumAccounts] = 1 + rng.poisson(3.5);
  v[kDelinquencies] = rng.poisson(0.15 + 0.8 * utilization * utilization);
  v[kRegion] = static_cast<double>(rng.categorical(spec[kRegion].probs));
  v[kProduct] = static_cast<double>(rng.categorical(spec[kProduct].probs));
  v[kChannel] = static_cast<double>(rng.categorical(spec[kChannel].probs));
  // Application data miss a few values; debt_to_income cannot be computed without income.
  const bool no_income = rng.uniform() < 0.01;
  v[kIncome] = no_income ? kNan : income;
  v[kDebtToIncome] = no_income ? kNan : 12 * monthly_debt / income;
  v[kEmploymentYears] = rng.uniform() < 0.03 ? kNan : employment;
  v[kCreditLimit] = rng.uniform() < 0.005 ? kNan : limit;
}

// The default probability is logistic in the features, as in a credit scorecard; missing values
// count as typical ones.
float draw_label(const double* core, RowRng rng) {
  const std::vector<FeatureSpec>& spec = core_specs();
  const auto value = [&](std::size_t i) { return std::isnan(core[i]) ? spec[i].center : core[i]; };
  // Drift can move income towards zero; the floor keeps the log finite.
  const double log_income = std::log(std::max(value(kIncome), 1000.0));
  const double logit = -1.9 + 2.0 * (value(kUtilization) - 0.3) + 0.55 * value(kDelinquencies) +
                       1.5 * (value(kDebtToIncome) - 0.3) - 0.6 * (log_income - 10.8) -
                       0.015 * (value(kAge) - 41) + (value(kProduct) == 3 ? 0.4 : 0.0) +
                       (value(kChannel) == 2 ? 0.3 : 0.0);
  return rng.uniform() < 1.0 / (1.0 + std::exp(-logit)) ? 1.0f : 0.0f;
}

// Features beyond the named ones cycle through three families with index-dependent parameters
// (never seed-dependent, so windows made with different seeds share one population).
enum class Family { Normal, Gamma, Uniform };

struct ExtraSpec {
  Family family;
  double a;  // normal: mean; gamma: shape; uniform: low
  double b;  // normal: standard deviation; gamma: scale; uniform: high
};

ExtraSpec extra_distribution(std::size_t column) {
  const auto j = static_cast<double>(column);
  switch (column % 3) {
    case 0:
      return {Family::Normal, std::fmod(j, 7) - 3, 1 + 0.5 * std::fmod(j, 5)};
    case 1:
      return {Family::Gamma, 1 + std::fmod(j, 4), 1 + std::fmod(j, 3)};
    default:
      return {Family::Uniform, -std::fmod(j, 5), 10 + std::fmod(j, 11)};
  }
}

FeatureSpec extra_spec(std::size_t column) {
  char name[32];
  std::snprintf(name, sizeof name, "x_%03zu", column);
  const ExtraSpec e = extra_distribution(column);
  switch (e.family) {
    case Family::Normal:
      return {name, Kind::Continuous, -kInf, kInf, e.a, e.b, false, {}};
    case Family::Gamma: {
      const double median = e.a * e.b * std::pow(1 - 1 / (9 * e.a), 3);  // Wilson-Hilferty
      return {name, Kind::Continuous, 0, kInf, median, std::sqrt(e.a) * e.b, true, {}};
    }
    case Family::Uniform: {
      const double sd = (e.b - e.a) / std::sqrt(12.0);
      return {name, Kind::Continuous, e.a, e.b, (e.a + e.b) / 2, sd, false, {}};
    }
  }
  return {};
}

double draw_extra(const ExtraSpec& e, RowRng& rng) {
  switch (e.family) {
    case Family::Normal:
      return e.a + e.b * rng.normal();
    case Family::Gamma:
      return rng.gamma(e.a, e.b);
    case Family::Uniform:
      return e.a + (e.b - e.a) * rng.uniform();
  }
  return kNan;
}

std::vector<FeatureSpec> feature_specs(std::size_t features) {
  const std::vector<FeatureSpec>& core = core_specs();
  std::vector<FeatureSpec> specs(core.begin(), core.begin() + std::min(features, core.size()));
  for (std::size_t j = core.size(); j < features; ++j) specs.push_back(extra_spec(j));
  return specs;
}

// ---- drift --------------------------------------------------------------------------------------

bool shifts_population(Scenario s) {
  return s == Scenario::MeanShift || s == Scenario::VarianceChange || s == Scenario::CategoryMix;
}

// Rounds integer kinds and keeps the value in the valid range (NaN stays NaN).
double constrain(const FeatureSpec& spec, double x) {
  if (spec.kind != Kind::Continuous) x = std::round(x);
  return std::clamp(x, spec.lo, spec.hi);
}

// A value a validator must flag: unknown category codes, or beyond a bound by half to all of the
// valid span (age 126..162, utilization 1.5..2, negative income).
double out_of_range_value(const FeatureSpec& spec, double u) {
  if (spec.kind == Kind::Categorical) return spec.hi + 1 + std::floor(u * (spec.hi + 1));
  const bool bounded = std::isfinite(spec.lo) && std::isfinite(spec.hi);
  double away = (bounded ? spec.hi - spec.lo : spec.scale) * (0.5 + 0.5 * u);
  if (spec.kind == Kind::Integer) away = std::max(1.0, std::round(away));
  if (std::isfinite(spec.hi)) return spec.hi + away;
  if (std::isfinite(spec.lo)) return spec.lo - away;
  return spec.center + (u < 0.5 ? -16 : 16) * away;  // 8..16 standard deviations out
}

struct DriftTarget {
  std::size_t column;
  std::vector<double> mix_probs;  // category_mix: the category distribution reversed
};

class Generator {
 public:
  explicit Generator(const SynthOptions& options)
      : seed_(options.seed),
        features_(options.features),
        scenario_(options.scenario),
        strength_(options.drift_strength),
        specs_(feature_specs(options.features)) {
    if (options.rows == 0 || options.features == 0) {
      throw InvalidInput("synth needs at least one row and one feature");
    }
    if (!std::isfinite(strength_) || strength_ < 0) {
      throw InvalidInput("drift strength must be a finite number >= 0");
    }
    for (std::size_t j = kCoreCount; j < features_; ++j) extras_.push_back(extra_distribution(j));
    resolve_drift(options);
  }

  std::vector<std::string> drift_names() const {
    std::vector<std::string> names;
    for (const DriftTarget& target : drift_) names.push_back(specs_[target.column].name);
    return names;
  }

  // Fills one row of `features_` values and its label.
  void row(std::uint64_t r, float* out, float* label) const {
    RowRng clean(seed_, r, Stream::Clean);
    double core[kCoreCount];
    generate_core(clean, core);
    const std::size_t named = std::min<std::size_t>(features_, kCoreCount);
    for (std::size_t i = 0; i < named; ++i) out[i] = static_cast<float>(core[i]);
    for (std::size_t j = kCoreCount; j < features_; ++j) {
      out[j] = static_cast<float>(draw_extra(extras_[j - kCoreCount], clean));
    }
    RowRng drift(seed_, r, Stream::Drift);
    // A population shift happens before the outcome, so defaults follow the shifted features;
    // data-quality faults (missingness, out of range) corrupt the record after the fact.
    if (shifts_population(scenario_)) apply_drift(drift, out);
    for (std::size_t i = 0; i < named; ++i) core[i] = out[i];
    *label = draw_label(core, RowRng(seed_, r, Stream::Label));
    if (!shifts_population(scenario_)) apply_drift(drift, out);
  }

 private:
  void resolve_drift(const SynthOptions& options) {
    const std::string scenario = scenario_name(scenario_);
    if (scenario_ == Scenario::None) {
      if (!options.drift_features.empty()) {
        throw InvalidInput("drift features were given but the scenario is none");
      }
      return;
    }
    const bool defaults = options.drift_features.empty();
    const std::vector<std::string> names =
        defaults ? default_drift_features(scenario_) : options.drift_features;
    std::unordered_map<std::string, std::size_t> column_of;
    for (std::size_t j = 0; j < specs_.size(); ++j) column_of.emplace(specs_[j].name, j);
    for (const std::string& name : names) {
      const auto found = column_of.find(name);
      if (found == column_of.end()) {
        throw InvalidInput("drift feature '" + name + "'" + (defaults ? " (a default of " : " (") +
                           scenario + ") is not one of the " + std::to_string(features_) +
                           " generated features");
      }
      const FeatureSpec& spec = specs_[found->second];
      const bool categorical = spec.kind == Kind::Categorical;
      if (scenario_ == Scenario::CategoryMix && !categorical) {
        throw InvalidInput(
            "category_mix needs categorical features (region, product, channel), but '" + name +
            "' is numeric");
      }
      if ((scenario_ == Scenario::MeanShift || scenario_ == Scenario::VarianceChange) &&
          categorical) {
        throw InvalidInput(scenario + " needs numeric features, but '" + name +
                           "' is categorical (use category_mix)");
      }
      if (std::any_of(drift_.begin(), drift_.end(),
                      [&](const DriftTarget& t) { return t.column == found->second; })) {
        throw InvalidInput("drift feature '" + name + "' is listed twice");
      }
      drift_.push_back({found->second, {spec.probs.rbegin(), spec.probs.rend()}});
    }
  }

  void apply_drift(RowRng& rng, float* out) const {
    for (const DriftTarget& target : drift_) {
      const FeatureSpec& spec = specs_[target.column];
      double x = out[target.column];
      switch (scenario_) {
        case Scenario::MeanShift:
          x = constrain(spec, x + kMeanShiftSds * strength_ * spec.scale);
          break;
        case Scenario::VarianceChange: {
          const double factor = 1 + kSpreadGrowth * strength_;
          x = constrain(spec, spec.log_scale ? spec.center * std::pow(x / spec.center, factor)
                                             : spec.center + (x - spec.center) * factor);
          break;
        }
        case Scenario::CategoryMix:
          if (rng.uniform() < kMixFraction * strength_) {
            x = static_cast<double>(rng.categorical(target.mix_probs));
          }
          break;
        case Scenario::Missingness:
          if (rng.uniform() < kExtraMissing * strength_) x = kNan;
          break;
        case Scenario::OutOfRange: {
          const double pick = rng.uniform();
          const double where = rng.uniform();
          if (pick < kOutOfRangeShare * strength_ && !std::isnan(x)) {
            x = out_of_range_value(spec, where);
          }
          break;
        }
        case Scenario::None:
          break;
      }
      out[target.column] = static_cast<float>(x);
    }
  }

  std::uint64_t seed_;
  std::size_t features_;
  Scenario scenario_;
  double strength_;
  std::vector<FeatureSpec> specs_;
  std::vector<ExtraSpec> extras_;  // for columns kCoreCount.. features_
  std::vector<DriftTarget> drift_;
};

}  // namespace

std::string scenario_name(Scenario scenario) {
  switch (scenario) {
    case Scenario::None:
      return "none";
    case Scenario::MeanShift:
      return "mean_shift";
    case Scenario::VarianceChange:
      return "variance_change";
    case Scenario::CategoryMix:
      return "category_mix";
    case Scenario::Missingness:
      return "missingness";
    case Scenario::OutOfRange:
      return "out_of_range";
  }
  return "unknown";
}

std::vector<std::string> synth_feature_names(std::size_t features) {
  std::vector<std::string> names;
  for (const FeatureSpec& spec : feature_specs(features)) names.push_back(spec.name);
  return names;
}

std::vector<std::string> default_drift_features(Scenario scenario) {
  switch (scenario) {
    case Scenario::None:
      return {};
    case Scenario::MeanShift:
      return {"income", "utilization"};
    case Scenario::VarianceChange:
      return {"loan_amount", "credit_limit"};
    case Scenario::CategoryMix:
      return {"region"};
    case Scenario::Missingness:
      return {"income", "employment_years"};
    case Scenario::OutOfRange:
      return {"income", "age", "utilization"};
  }
  return {};
}

SynthSummary synth(const SynthOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  const Generator generator(options);
  const std::size_t features = options.features;
  const std::size_t block_rows = static_cast<std::size_t>(std::min<std::uint64_t>(
      options.rows,
      options.block_rows != 0
          ? options.block_rows
          : std::max<std::size_t>(1, kTargetBlockBytes / (features * sizeof(float)))));

  Hdf5Writer writer(options.output, synth_feature_names(features),
                    {0, options.gzip_level, /*with_label=*/true, /*with_timestamp=*/true,
                     /*with_row_id=*/true});
  std::vector<float> values(block_rows * features);
  std::vector<float> label(block_rows);
  std::vector<std::int64_t> timestamp(block_rows);
  std::vector<std::int64_t> row_id(block_rows);
  for (std::uint64_t first = 0; first < options.rows; first += block_rows) {
    const auto rows =
        static_cast<std::int64_t>(std::min<std::uint64_t>(block_rows, options.rows - first));
#pragma omp parallel for schedule(static)
    for (std::int64_t i = 0; i < rows; ++i) {
      const std::uint64_t r = first + static_cast<std::uint64_t>(i);
      generator.row(r, values.data() + i * features, label.data() + i);
      timestamp[i] = kFirstTimestamp + static_cast<std::int64_t>(r);
      row_id[i] = static_cast<std::int64_t>(r);
    }
    writer.append(values.data(), static_cast<std::size_t>(rows), label.data(), timestamp.data(),
                  row_id.data());
  }
  writer.close();
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  return {generator.drift_names(), elapsed.count()};
}

}  // namespace driftguard::data
