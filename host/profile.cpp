#include "driftguard/profile.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <span>
#include <string>

#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "kernels/check_batch.hpp"
#include "kernels/prepared_pass.hpp"

namespace driftguard {
namespace {

constexpr const char* kFormat = "driftguard-profile";
constexpr std::int64_t kVersion = 1;

// k of n indices, uniformly by a seeded partial Fisher-Yates with SplitMix64 draws (the same on
// every platform, unlike std::uniform_int_distribution), returned in increasing order.
std::vector<std::size_t> sample_indices(std::vector<std::size_t> indices, std::size_t k,
                                        std::uint64_t seed) {
  std::uint64_t state = seed;
  const auto next = [&state] {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  k = std::min(k, indices.size());
  for (std::size_t i = 0; i < k; ++i) {
    // Modulo bias is below (n / 2^64): negligible for any table that fits in memory.
    std::swap(indices[i], indices[i + next() % (indices.size() - i)]);
  }
  indices.resize(k);
  std::sort(indices.begin(), indices.end());
  return indices;
}

[[noreturn]] void corrupt(const std::string& path, const std::string& what) {
  throw InvalidInput(path + ": not a valid driftguard profile: " + what);
}

}  // namespace

std::vector<float> sample_finite_rows(BatchView batch, std::size_t rows, std::uint64_t seed,
                                      std::uint64_t* finite_rows) {
  detail::check_batch(batch, batch.features, "sample_finite_rows");
  if (batch.space != MemorySpace::Host) throw InvalidInput("sample_finite_rows needs a host batch");
  const std::size_t n = batch.features;
  std::vector<std::size_t> finite;
  for (std::size_t r = 0; r < batch.rows; ++r) {
    const float* row = batch.data + r * n;
    if (std::all_of(row, row + n, [](float x) { return std::isfinite(x); })) finite.push_back(r);
  }
  if (finite_rows != nullptr) *finite_rows = finite.size();
  std::vector<float> sample;
  for (std::size_t r : sample_indices(std::move(finite), rows, seed)) {
    sample.insert(sample.end(), batch.data + r * n, batch.data + (r + 1) * n);
  }
  return sample;
}

ReferenceProfile ReferenceProfile::build(Context& ctx, const std::string& reference_path,
                                         const ProfileOptions& options) {
  Hdf5BatchReader reader(reference_path);
  reader.set_decode_threads(ctx.cpu_threads());
  const std::size_t rows = reader.rows(), features = reader.features();
  std::vector<float> values(rows * features);
  reader.read(0, rows, values.data());
  const BatchView batch{values.data(), rows, features};

  ReferenceProfile profile;
  profile.source = reference_path;
  profile.rows = rows;
  if (options.schema) {
    profile.schema = *options.schema;
  } else {
    SchemaInferrer inferrer(reader.feature_names(), options.max_categories, options.range_margin);
    inferrer.observe(batch);
    profile.schema = inferrer.finish();
    profile.schema_inferred = true;
  }
  try {
    profile.schema.check_names(reader.feature_names());
  } catch (const InvalidInput& e) {
    throw InvalidInput(reference_path + ": " + e.what());
  }
  profile.validation = ValidationCounts(features);
  validate(ctx, batch, ValidationRules::from_schema(profile.schema), profile.validation);
  profile.sorted = SortedColumns::from_batch(ctx, batch);

  profile.mmd_sample =
      sample_finite_rows(batch, options.mmd_rows, options.seed, &profile.finite_rows);
  profile.mmd_rows = profile.mmd_sample.size() / features;
  if (options.model_path) {
    const Model model = Model::load(*options.model_path, options.model_options);
    const std::vector<float> scores = model_scores(ctx, model, reader.feature_names(), batch);
    profile.score_model = *options.model_path;
    profile.score_model_fingerprint = model.fingerprint();
    profile.scores = SortedColumns::from_batch(ctx, {scores.data(), rows, model.outputs()});
  }
  return profile;
}

std::vector<ColumnStats> ReferenceProfile::column_stats() const {
  std::vector<ColumnStats> stats;
  stats.reserve(features());
  for (std::size_t f = 0; f < features(); ++f)
    stats.push_back(ColumnStats::of_sorted(sorted.column(f)));
  return stats;
}

HistogramCounts ReferenceProfile::histogram(const HistogramSpec& spec) const {
  return histogram_of_sorted(sorted, spec);
}

std::vector<float> model_scores(Context& ctx, const Model& model,
                                const std::vector<std::string>& names, BatchView batch) {
  const BoundModel bound(model, names);
  std::vector<float> probability(batch.rows * model.outputs());
  score(ctx, bound, batch,
        {.margin = nullptr, .probability = probability.data(), .points = nullptr});
  return probability;
}

HistogramCounts histogram_of_sorted(const SortedColumns& sorted, const HistogramSpec& spec) {
  if (spec.features() != sorted.features) {
    throw InvalidInput("histogram of sorted columns: the spec has " +
                       std::to_string(spec.features()) + " features, the columns " +
                       std::to_string(sorted.features));
  }
  HistogramCounts counts(spec);
  std::vector<std::uint64_t>& raw = counts.raw();
  for (std::size_t f = 0; f < sorted.features; ++f) {
    const auto column = sorted.column(f);
    const auto below = [&](float bound) {  // #{x < bound}
      return static_cast<std::uint64_t>(std::lower_bound(column.begin(), column.end(), bound) -
                                        column.begin());
    };
    const auto not_above = [&](float bound) {  // #{x <= bound}
      return static_cast<std::uint64_t>(std::upper_bound(column.begin(), column.end(), bound) -
                                        column.begin());
    };
    const auto points = spec.points_of(f);
    std::uint64_t* slot = raw.data() + counts.offsets()[f];
    const std::size_t bins = spec.bins(f);
    if (spec.categorical[f]) {
      std::uint64_t listed = 0;
      for (std::size_t i = 0; i < bins; ++i) {
        const float code = static_cast<float>(points[i]);
        slot[i + 1] = not_above(code) - below(code);
        listed += slot[i + 1];
      }
      slot[bins + 1] = column.size() - listed;
    } else {
      // The float comparisons of histogram.hpp, on the float-rounded edges (prepared_pass.hpp).
      std::uint64_t previous = below(detail::round_up_to_float(points[0]));
      slot[0] = previous;
      for (std::size_t i = 1; i < bins; ++i) {
        const std::uint64_t next = below(detail::round_up_to_float(points[i]));
        slot[i] = next - previous;
        previous = next;
      }
      const std::uint64_t in_range = not_above(detail::round_down_to_float(points[bins]));
      slot[bins] = in_range - previous;
      slot[bins + 1] = column.size() - in_range;
    }
    slot[bins + 2] = sorted.nan_counts[f];
  }
  return counts;
}

bool ReferenceProfile::is_profile(const std::string& path) {
  try {
    return Hdf5Store::open(path).string_attribute("format") == kFormat;
  } catch (const IoError&) {
    return false;
  }
}

void ReferenceProfile::save(const std::string& path) const {
  Hdf5Store store = Hdf5Store::create(path);
  store.set_attribute("format", kFormat);
  store.set_attribute("profile_version", kVersion);
  store.set_attribute("source", source);
  store.set_attribute("rows", static_cast<std::int64_t>(rows));
  store.set_attribute("schema_inferred", schema_inferred ? 1 : 0);
  store.set_attribute("validation_rows", static_cast<std::int64_t>(validation.rows));
  store.set_attribute("validation_rows_ok", static_cast<std::int64_t>(validation.rows_ok));
  store.set_attribute("mmd_rows", static_cast<std::int64_t>(mmd_rows));
  store.set_attribute("finite_rows", static_cast<std::int64_t>(finite_rows));
  store.write_text("schema", schema.to_json());
  store.write("validation_flag_counts", std::span<const std::uint64_t>(validation.flag_counts));
  store.write("sorted_values", std::span<const float>(sorted.values));
  store.write("sorted_offsets", std::span<const std::uint64_t>(sorted.offsets));
  store.write("nan_counts", std::span<const std::uint64_t>(sorted.nan_counts));
  store.write("mmd_sample", std::span<const float>(mmd_sample));
  if (!score_model.empty()) {
    store.set_attribute("score_model", score_model);
    store.set_attribute("score_model_fingerprint", score_model_fingerprint);
    store.set_attribute("score_outputs", static_cast<std::int64_t>(scores.features));
    store.write("score_values", std::span<const float>(scores.values));
    store.write("score_offsets", std::span<const std::uint64_t>(scores.offsets));
    store.write("score_nan_counts", std::span<const std::uint64_t>(scores.nan_counts));
  }
  store.close();
}

ReferenceProfile ReferenceProfile::load(const std::string& path) {
  const Hdf5Store store = Hdf5Store::open(path);
  if (store.string_attribute("format") != kFormat)
    corrupt(path, "no format attribute \"driftguard-profile\"");
  const auto version = store.int_attribute("profile_version");
  if (version != kVersion) {
    throw InvalidInput(path + ": profile version " +
                       (version ? std::to_string(*version) : std::string("(none)")) +
                       " is not supported (expected " + std::to_string(kVersion) +
                       "); rebuild it with `driftguard profile`");
  }
  const auto required = [&](const char* name) {
    const auto value = store.int_attribute(name);
    if (!value || *value < 0)
      corrupt(path, std::string("attribute '") + name + "' is missing or negative");
    return static_cast<std::uint64_t>(*value);
  };
  ReferenceProfile profile;
  profile.source = store.string_attribute("source").value_or("");
  profile.file = path;
  profile.rows = required("rows");
  if (profile.rows == 0) corrupt(path, "the profile has no rows");
  profile.schema_inferred = required("schema_inferred") != 0;
  profile.mmd_rows = required("mmd_rows");
  profile.finite_rows = required("finite_rows");
  try {
    profile.schema = Schema::from_json(store.read_text("schema"));
  } catch (const InvalidInput& e) {
    corrupt(path, e.what());
  }
  const std::size_t features = profile.features();
  profile.validation = ValidationCounts(features);
  profile.validation.rows = required("validation_rows");
  profile.validation.rows_ok = required("validation_rows_ok");
  profile.validation.flag_counts = store.read_uint64s("validation_flag_counts");
  profile.sorted.features = features;
  profile.sorted.values = store.read_floats("sorted_values");
  profile.sorted.offsets = store.read_uint64s("sorted_offsets");
  profile.sorted.nan_counts = store.read_uint64s("nan_counts");
  profile.mmd_sample = store.read_floats("mmd_sample");
  if (profile.validation.flag_counts.size() != features * kCellFlagCount) {
    corrupt(path, "validation counts do not match the schema's " + std::to_string(features) +
                      " features");
  }
  if (profile.validation.rows != profile.rows || profile.validation.rows_ok > profile.rows) {
    corrupt(path, "validation row counts disagree with the profile's rows");
  }
  for (const std::uint64_t cells : profile.validation.flag_counts) {
    if (cells > profile.rows) corrupt(path, "a validation count exceeds the profile's rows");
  }
  // Flags that spoil a row whatever the schema: each such cell lies in an invalid row.
  for (std::size_t f = 0; f < features; ++f) {
    std::uint64_t spoiling = 0;
    for (const CellFlag flag : {kNonFinite, kBelowMin, kAboveMax, kUnknownCategory}) {
      spoiling += profile.validation.count(f, flag);
    }
    if (spoiling > profile.validation.rows_invalid()) {
      corrupt(path, "feature '" + profile.schema.features[f].name + "' has " +
                        std::to_string(spoiling) + " invalid cells but the profile " +
                        std::to_string(profile.validation.rows_invalid()) + " invalid rows");
    }
  }
  try {
    profile.sorted.check();
  } catch (const InvalidInput& e) {
    corrupt(path, e.what());
  }
  // Each column holds its values and NaN count of every row; compared without the sum, which a
  // crafted count could wrap around to the row count.
  const auto covers_every_row = [&](const SortedColumns& columns, std::size_t f) {
    return columns.nan_counts[f] <= profile.rows &&
           columns.column(f).size() == profile.rows - columns.nan_counts[f];
  };
  for (std::size_t f = 0; f < features; ++f) {
    const std::string& name = profile.schema.features[f].name;
    if (!covers_every_row(profile.sorted, f)) {
      corrupt(path, "column '" + name + "' does not hold every row");
    }
    // The counts the sorted column shows by itself: NaN (left out of it) and the infinities at
    // its two ends.
    const std::span<const float> column = profile.sorted.column(f);
    constexpr float kInf = std::numeric_limits<float>::infinity();
    const auto finite_begin =
        std::partition_point(column.begin(), column.end(), [](float x) { return x == -kInf; });
    const auto finite_end =
        std::partition_point(finite_begin, column.end(), [](float x) { return x != kInf; });
    const auto infinite =
        static_cast<std::uint64_t>((finite_begin - column.begin()) + (column.end() - finite_end));
    if (profile.validation.count(f, kMissing) != profile.sorted.nan_counts[f] ||
        profile.validation.count(f, kNonFinite) != infinite) {
      corrupt(path, "the validation counts of '" + name + "' disagree with its column");
    }
  }
  if (const auto model = store.string_attribute("score_model")) {
    profile.score_model = *model;
    const auto fingerprint = store.string_attribute("score_model_fingerprint");
    if (!fingerprint) {
      throw InvalidInput(path +
                         ": the profile's reference scores do not record which model made them "
                         "(a profile from an earlier driftguard); rebuild it with `driftguard "
                         "profile --model`");
    }
    profile.score_model_fingerprint = *fingerprint;
    profile.scores.features = required("score_outputs");
    profile.scores.values = store.read_floats("score_values");
    profile.scores.offsets = store.read_uint64s("score_offsets");
    profile.scores.nan_counts = store.read_uint64s("score_nan_counts");
    try {
      profile.scores.check();
    } catch (const InvalidInput& e) {
      corrupt(path, std::string("reference scores: ") + e.what());
    }
    for (std::size_t k = 0; k < profile.scores.features; ++k) {
      if (!covers_every_row(profile.scores, k)) {
        corrupt(path, "the reference scores do not cover every row");
      }
    }
  }
  if (profile.mmd_sample.size() != profile.mmd_rows * features ||
      profile.mmd_rows > profile.finite_rows || profile.finite_rows > profile.rows) {
    corrupt(path, "the MMD sample's size disagrees with its row count");
  }
  return profile;
}

}  // namespace driftguard
