// Reference profiles: built from a table, saved, loaded back unchanged; histograms counted from
// the sorted columns equal the kernel's over the raw rows; corrupt profiles are refused.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <vector>

#include "command.hpp"
#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/histogram.hpp"
#include "driftguard/model.hpp"
#include "driftguard/monitor.hpp"
#include "driftguard/profile.hpp"

namespace driftguard {
namespace {

namespace fs = std::filesystem;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

class Profile : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::process_temp_dir("driftguard_profile");
    std::mt19937_64 rng(11);
    std::normal_distribution<float> normal;
    std::uniform_int_distribution<int> code(0, 4);
    for (std::size_t r = 0; r < kRows; ++r) {
      const int u = static_cast<int>(rng() % 100);
      values_.push_back(u < 3    ? kNaN
                        : u < 5  ? (u == 3 ? kInf : -kInf)
                        : u < 10 ? 0.5f
                                 : normal(rng));
      values_.push_back(static_cast<float>(code(rng)));
      values_.push_back(u < 7 ? kNaN : std::round(normal(rng) * 4.0f) / 4.0f);  // ties
    }
    Hdf5Writer writer((dir_ / "reference.h5").string(), {"x", "code", "ties"});
    writer.append(values_.data(), kRows);
    writer.close();
  }
  void TearDown() override { fs::remove_all(dir_); }

  static constexpr std::size_t kRows = 3000;
  fs::path dir_;
  std::vector<float> values_;
  Context ctx_{ContextOptions{.backend = Backend::Cpu}};
};

TEST_F(Profile, SaveLoadRoundTrip) {
  ProfileOptions options;
  options.mmd_rows = 500;
  options.seed = 3;
  const ReferenceProfile built =
      ReferenceProfile::build(ctx_, (dir_ / "reference.h5").string(), options);
  EXPECT_EQ(built.rows, kRows);
  EXPECT_EQ(built.mmd_rows, 500u);
  EXPECT_LT(built.finite_rows, kRows);  // rows with NaN or Inf are not eligible
  EXPECT_TRUE(built.schema_inferred);
  EXPECT_EQ(built.schema.features[1].kind, FeatureKind::Categorical);
  for (float x : built.mmd_sample) EXPECT_TRUE(std::isfinite(x));

  const std::string path = (dir_ / "reference.profile.h5").string();
  built.save(path);
  EXPECT_TRUE(ReferenceProfile::is_profile(path));
  EXPECT_FALSE(ReferenceProfile::is_profile((dir_ / "reference.h5").string()));
  const ReferenceProfile loaded = ReferenceProfile::load(path);
  EXPECT_EQ(loaded.schema, built.schema);
  EXPECT_EQ(loaded.validation, built.validation);
  EXPECT_EQ(loaded.sorted.values, built.sorted.values);
  EXPECT_EQ(loaded.sorted.offsets, built.sorted.offsets);
  EXPECT_EQ(loaded.sorted.nan_counts, built.sorted.nan_counts);
  EXPECT_EQ(loaded.mmd_sample, built.mmd_sample);
  EXPECT_EQ(loaded.rows, built.rows);
  EXPECT_EQ(loaded.source, built.source);
}

TEST_F(Profile, HistogramFromSortedColumnsEqualsTheKernel) {
  const ReferenceProfile profile = ReferenceProfile::build(ctx_, (dir_ / "reference.h5").string());
  HistogramSpec spec;
  // Edges that are not floats (0.1 steps), an edge exactly on a frequent value (0.5), codes with
  // one never seen (9).
  const std::vector<double> edges = {-1.05, -0.1, 0.1, 0.5, 0.7, 1.3};
  const std::vector<double> codes = {0, 1, 2, 9};
  const std::vector<double> tie_edges = {-1.0, -0.25, 0.0, 0.25, 1.0};
  spec.add_numeric(edges);
  spec.add_categorical(codes);
  spec.add_numeric(tie_edges);
  HistogramCounts expected(spec);
  histogram(ctx_, {values_.data(), kRows, 3}, spec, expected);
  EXPECT_EQ(profile.histogram(spec), expected);
}

TEST_F(Profile, ColumnStatsEqualObservingTheRows) {
  const ReferenceProfile profile = ReferenceProfile::build(ctx_, (dir_ / "reference.h5").string());
  std::vector<ColumnStats> expected(3);
  observe_columns({values_.data(), kRows, 3}, expected);
  const std::vector<ColumnStats> stats = profile.column_stats();
  ASSERT_EQ(stats.size(), 3u);
  for (std::size_t f = 0; f < 3; ++f) {
    SCOPED_TRACE(f);
    // As values: the "ties" column holds -0.0 and +0.0, and which of the two equal zeros is kept
    // depends on the reading order (rows here, sorted there).
    EXPECT_EQ(stats[f].count, expected[f].count);
    EXPECT_EQ(stats[f].min, expected[f].min);
    EXPECT_EQ(stats[f].max, expected[f].max);
    EXPECT_EQ(stats[f].too_many_distinct, expected[f].too_many_distinct);
    EXPECT_EQ(stats[f].distinct, expected[f].distinct);
  }
  EXPECT_EQ(stats[1].distinct_count(), 5u);
  EXPECT_GT(stats[0].distinct_count(), 2000u);
}

TEST_F(Profile, CorruptOrForeignFilesAreRefused) {
  const ReferenceProfile profile = ReferenceProfile::build(ctx_, (dir_ / "reference.h5").string());
  const std::string path = (dir_ / "bad.profile.h5").string();
  {
    Hdf5Store store = Hdf5Store::create(path);
    store.set_attribute("format", std::string("driftguard-profile"));
    store.set_attribute("profile_version", std::int64_t{99});
    store.close();
  }
  try {
    ReferenceProfile::load(path);
    ADD_FAILURE() << "accepted a profile of version 99";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("version 99"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ReferenceProfile::load((dir_ / "reference.h5").string()), InvalidInput);
  EXPECT_THROW(ReferenceProfile::load((dir_ / "missing.h5").string()), IoError);

  // A profile whose sorted column is out of order.
  ReferenceProfile broken = profile;
  std::swap(broken.sorted.values.front(), broken.sorted.values[broken.sorted.offsets[1] - 1]);
  broken.save(path);
  EXPECT_THROW(ReferenceProfile::load(path), InvalidInput);
  // One whose counts disagree with the rows.
  broken = profile;
  broken.rows += 1;
  broken.save(path);
  EXPECT_THROW(ReferenceProfile::load(path), InvalidInput);
  // One whose NaN counts wrap around: 3000 values + (2^64 - 2900) NaN "are" 100 rows modulo 2^64,
  // which would put a PSI of 1e19 in the report.
  broken = profile;
  broken.rows = broken.validation.rows = 100;
  broken.validation.rows_ok = broken.finite_rows = broken.mmd_rows = 0;
  broken.mmd_sample.clear();
  std::fill(broken.validation.flag_counts.begin(), broken.validation.flag_counts.end(), 0);
  for (std::size_t f = 0; f < broken.features(); ++f) {
    broken.sorted.nan_counts[f] = std::uint64_t{100} - broken.sorted.column(f).size();
  }
  broken.save(path);
  const auto refused_for = [&](const std::string& phrase) {
    try {
      ReferenceProfile::load(path);
      ADD_FAILURE() << "accepted; expected '" << phrase << "'";
    } catch (const InvalidInput& e) {
      EXPECT_NE(std::string(e.what()).find(phrase), std::string::npos) << e.what();
    }
  };
  refused_for("does not hold every row");
  // One that counts more missing cells than rows.
  broken = profile;
  broken.validation.flag_counts.front() = broken.rows + 1;
  broken.save(path);
  refused_for("a validation count exceeds the profile's rows");
  // One that counts NaN its column does not have, or fewer invalid rows than invalid cells.
  broken = profile;
  broken.validation.flag_counts[flag_index(kMissing)] += 1;
  broken.save(path);
  refused_for("the validation counts of 'x' disagree with its column");
  broken = profile;
  broken.validation.rows_ok = broken.rows;
  broken.save(path);
  refused_for("invalid cells but the profile 0 invalid rows");
  // One of no rows at all, consistent in every count: a reference of zero rows is refused.
  broken = profile;
  broken.rows = broken.validation.rows = broken.validation.rows_ok = 0;
  broken.finite_rows = broken.mmd_rows = 0;
  broken.mmd_sample.clear();
  std::fill(broken.validation.flag_counts.begin(), broken.validation.flag_counts.end(), 0);
  broken.sorted.values.clear();
  std::fill(broken.sorted.offsets.begin(), broken.sorted.offsets.end(), 0);
  std::fill(broken.sorted.nan_counts.begin(), broken.sorted.nan_counts.end(), 0);
  broken.save(path);
  refused_for("the profile has no rows");
}

// The profile records which model made its reference scores; a monitor scoring with another
// model would compare its scores with the wrong reference and report drift that is not there.
TEST_F(Profile, ScoringWithAnotherModelIsRefused) {
  const auto linear_model = [&](const std::string& name, double coefficient) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << R"({"format": "driftguard-linear", "version": 1,
        "feature_names": ["x", "code", "ties"], "link": "logistic",
        "coefficients": [)"
                        << coefficient << R"(, -0.5, 0.25], "intercepts": [0.1]})";
    return path;
  };
  const std::string model_a = linear_model("a.json", 1.0), model_b = linear_model("b.json", 2.0);
  ASSERT_NE(Model::load(model_a).fingerprint(), Model::load(model_b).fingerprint());
  EXPECT_EQ(Model::load(model_a).fingerprint(), Model::load(model_a).fingerprint());

  ProfileOptions options;
  options.model_path = model_a;
  const std::string path = (dir_ / "scored.profile.h5").string();
  ReferenceProfile::build(ctx_, (dir_ / "reference.h5").string(), options).save(path);
  const ReferenceProfile loaded = ReferenceProfile::load(path);
  EXPECT_EQ(loaded.score_model_fingerprint, Model::load(model_a).fingerprint());

  DriftOptions drift;
  drift.model_path = model_a;
  {
    // Reports and errors name the profile file the user passed, not the table behind it.
    Monitor monitor(ctx_, loaded, drift);
    EXPECT_EQ(monitor.snapshot().reference_path, path);
    EXPECT_TRUE(monitor.snapshot().reference_is_profile);
  }
  drift.model_path = model_b;
  try {
    Monitor monitor(ctx_, loaded, drift);
    ADD_FAILURE() << "scored with another model than the profile's";
  } catch (const InvalidInput& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
    EXPECT_NE(std::string(e.what()).find("not with " + model_b), std::string::npos) << e.what();
  }
}

TEST(SampleFiniteRows, KeepsOrderAndOnlyFiniteRows) {
  std::vector<float> data;
  for (int r = 0; r < 100; ++r) {
    data.push_back(static_cast<float>(r));
    data.push_back(r % 10 == 0 ? kNaN : 1.0f);
  }
  std::uint64_t finite = 0;
  const auto sample = sample_finite_rows({data.data(), 100, 2}, 20, 5, &finite);
  EXPECT_EQ(finite, 90u);
  ASSERT_EQ(sample.size(), 40u);
  for (std::size_t i = 0; i < 20; ++i) {
    EXPECT_NE(static_cast<int>(sample[2 * i]) % 10, 0);
    if (i > 0) {
      EXPECT_LT(sample[2 * (i - 1)], sample[2 * i]);
    }
  }
  EXPECT_EQ(sample, sample_finite_rows({data.data(), 100, 2}, 20, 5));
  EXPECT_NE(sample, sample_finite_rows({data.data(), 100, 2}, 20, 6));
  EXPECT_THROW(sample_finite_rows({nullptr, 100, 2}, 20, 5), InvalidInput);
}

}  // namespace
}  // namespace driftguard
