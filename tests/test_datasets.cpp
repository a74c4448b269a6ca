// driftguard-data, run as users run it: synth determinism and scenarios, the UCI and weather
// converters and their errors. The binary's path comes from CMake as DRIFTGUARD_DATA_EXE.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <numeric>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "command.hpp"
#include "driftguard/hdf5_io.hpp"

namespace {

namespace fs = std::filesystem;

using driftguard::testing::read_text;
using RunResult = driftguard::testing::CommandResult;

struct Table {
  std::size_t rows = 0;
  std::size_t features = 0;
  std::vector<std::string> names;
  std::vector<float> values;
  std::vector<float> label;
  std::vector<std::int64_t> timestamp;
  std::vector<std::int64_t> row_id;

  std::vector<double> column(const std::string& name) const {
    const auto j =
        static_cast<std::size_t>(std::find(names.begin(), names.end(), name) - names.begin());
    EXPECT_LT(j, features) << name;
    std::vector<double> out;
    for (std::size_t r = 0; r < rows && j < features; ++r) out.push_back(values[r * features + j]);
    return out;
  }
};

Table load(const fs::path& path) {
  driftguard::Hdf5BatchReader reader(path.string());
  Table t;
  t.rows = reader.rows();
  t.features = reader.features();
  t.names = reader.feature_names();
  t.values.resize(t.rows * t.features);
  reader.read(0, t.rows, t.values.data());
  if (reader.has_label()) {
    t.label.resize(t.rows);
    reader.read_label(0, t.rows, t.label.data());
  }
  if (reader.has_timestamp()) {
    t.timestamp.resize(t.rows);
    reader.read_timestamp(0, t.rows, t.timestamp.data());
  }
  if (reader.has_row_id()) {
    t.row_id.resize(t.rows);
    reader.read_row_id(0, t.rows, t.row_id.data());
  }
  return t;
}

double nan_rate(const std::vector<double>& x) {
  return static_cast<double>(
             std::count_if(x.begin(), x.end(), [](double v) { return std::isnan(v); })) /
         static_cast<double>(x.size());
}

double share(const std::vector<double>& x, bool (*pred)(double)) {
  return static_cast<double>(std::count_if(x.begin(), x.end(), pred)) /
         static_cast<double>(x.size());
}

struct Moments {
  double mean = 0.0;
  double sd = 0.0;
};

// Over the non-missing values, optionally of log(x).
Moments moments(const std::vector<double>& x, bool log_scale = false) {
  double sum = 0.0, sum2 = 0.0;
  std::size_t n = 0;
  for (double v : x) {
    if (std::isnan(v)) continue;
    const double y = log_scale ? std::log(v) : v;
    sum += y;
    sum2 += y * y;
    ++n;
  }
  const double mean = sum / static_cast<double>(n);
  return {mean, std::sqrt(sum2 / static_cast<double>(n) - mean * mean)};
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

class DatasetsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = driftguard::testing::process_temp_dir("driftguard_datasets");
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static RunResult run(const std::string& args) {
    return driftguard::testing::run_command(std::string("'") + DRIFTGUARD_DATA_EXE + "' " + args,
                                            dir_);
  }

  // Runs and expects success with exactly one summary line and a quiet stderr.
  static void run_ok(const std::string& args) {
    const RunResult r = run(args);
    ASSERT_EQ(r.exit_code, 0) << args << "\n" << r.err;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }

  static void expect_error(const std::string& args, int exit_code, const std::string& phrase) {
    const RunResult r = run(args);
    EXPECT_EQ(r.exit_code, exit_code) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(phrase), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_EQ(r.out, "");
  }

  static fs::path path(const std::string& name) { return dir_ / name; }

  static fs::path dir_;
};
fs::path DatasetsTest::dir_;

// ---- synth --------------------------------------------------------------------------------------

constexpr const char* kSynthBase = "synth --rows 60000 --features 16 --seed 5";

class SynthScenarioTest : public DatasetsTest {
 protected:
  static void SetUpTestSuite() {
    DatasetsTest::SetUpTestSuite();
    run_ok(std::string(kSynthBase) + " --scenario none --output '" + path("none.h5").string() +
           "'");
    none_ = new Table(load(path("none.h5")));
  }
  static void TearDownTestSuite() {
    delete none_;
    none_ = nullptr;
    DatasetsTest::TearDownTestSuite();
  }

  // Generates `scenario` with `extra` options; every feature not in `drifted` must equal `none`.
  static Table drifted(const std::string& scenario,
                       const std::vector<std::string>& drifted_features,
                       const std::string& extra = "") {
    const fs::path out = path(scenario + ".h5");
    run_ok(std::string(kSynthBase) + " --scenario " + scenario + " " + extra + " --output '" +
           out.string() + "'");
    Table t = load(out);
    EXPECT_EQ(t.names, none_->names);
    for (const std::string& name : t.names) {
      const bool expect_change = std::find(drifted_features.begin(), drifted_features.end(),
                                           name) != drifted_features.end();
      EXPECT_EQ(same_bits(t.column(name), none_->column(name)), !expect_change)
          << scenario << ": " << name;
    }
    return t;
  }

  static Table* none_;
};
Table* SynthScenarioTest::none_ = nullptr;

TEST_F(DatasetsTest, SynthIsDeterministicAndIndependentOfBlockSize) {
  const std::string base = "synth --rows 20000 --features 20 --seed 11 --scenario out_of_range";
  run_ok(base + " --output '" + path("a.h5").string() + "'");
  run_ok(base + " --block-rows 777 --output '" + path("b.h5").string() + "'");
  run_ok(base + " --block-rows 20000 --gzip 3 --output '" + path("c.h5").string() + "'");
  run_ok(base + " --output '" + path("a_again.h5").string() + "'");
  run_ok("synth --rows 20000 --features 20 --seed 12 --scenario out_of_range --output '" +
         path("other_seed.h5").string() + "'");

  const Table a = load(path("a.h5"));
  for (const char* name : {"b.h5", "c.h5"}) {
    const Table b = load(path(name));
    EXPECT_EQ(std::memcmp(a.values.data(), b.values.data(), a.values.size() * sizeof(float)), 0)
        << name;
    EXPECT_EQ(a.label, b.label) << name;
    EXPECT_EQ(a.timestamp, b.timestamp) << name;
    EXPECT_EQ(a.row_id, b.row_id) << name;
  }
  EXPECT_TRUE(read_text(path("a.h5")) == read_text(path("a_again.h5"))) << "files differ";
  EXPECT_NE(load(path("other_seed.h5")).values, a.values);
}

TEST_F(SynthScenarioTest, NoneHasTheDocumentedShape) {
  const Table& t = *none_;
  ASSERT_EQ(t.names.size(), 16u);
  EXPECT_EQ(t.names.front(), "income");
  EXPECT_EQ(t.names[11], "channel");
  EXPECT_EQ(t.names[12], "x_012");
  EXPECT_EQ(t.names.back(), "x_015");

  const auto income = t.column("income");
  EXPECT_NEAR(nan_rate(income), 0.01, 0.003);
  EXPECT_EQ(share(income, [](double v) { return v < 0; }), 0.0);
  for (double age : t.column("age")) {
    ASSERT_TRUE(age >= 18 && age <= 90 && age == std::round(age)) << age;
  }
  for (double u : t.column("utilization")) ASSERT_TRUE(u >= 0 && u <= 1) << u;
  for (double region : t.column("region")) {
    ASSERT_TRUE(region >= 0 && region <= 9 && region == std::round(region)) << region;
  }
  const double default_rate =
      std::accumulate(t.label.begin(), t.label.end(), 0.0) / static_cast<double>(t.rows);
  EXPECT_GT(default_rate, 0.1);
  EXPECT_LT(default_rate, 0.3);
  for (std::size_t r = 0; r < t.rows; ++r) {
    ASSERT_TRUE(t.label[r] == 0.0f || t.label[r] == 1.0f);
    ASSERT_EQ(t.row_id[r], static_cast<std::int64_t>(r));
    ASSERT_EQ(t.timestamp[r], 1'704'067'200 + static_cast<std::int64_t>(r));
  }
}

TEST_F(SynthScenarioTest, MeanShiftMovesMeansByHalfAStandardDeviation) {
  const Table t = drifted("mean_shift", {"income", "utilization"});
  for (const char* name : {"income", "utilization"}) {
    const Moments before = moments(none_->column(name));
    const Moments after = moments(t.column(name));
    EXPECT_NEAR((after.mean - before.mean) / before.sd, 0.5, 0.08) << name;
  }
  EXPECT_EQ(share(t.column("utilization"), [](double v) { return v > 1; }), 0.0);
}

TEST_F(SynthScenarioTest, MeanShiftOfAChosenExtraFeature) {
  const Table t = drifted("mean_shift", {"x_012"}, "--drift-features x_012 --drift-strength 2");
  const Moments before = moments(none_->column("x_012"));
  const Moments after = moments(t.column("x_012"));
  EXPECT_NEAR((after.mean - before.mean) / before.sd, 1.0, 0.03);
  EXPECT_NEAR(after.sd / before.sd, 1.0, 0.01);
}

TEST_F(SynthScenarioTest, ZeroStrengthChangesNothing) {
  drifted("mean_shift", {}, "--drift-strength 0");
  drifted("missingness", {}, "--drift-strength 0");
}

TEST_F(SynthScenarioTest, VarianceChangeWidensTheSpread) {
  const Table t = drifted("variance_change", {"loan_amount", "credit_limit"});
  for (const char* name : {"loan_amount", "credit_limit"}) {
    const Moments before = moments(none_->column(name), /*log_scale=*/true);
    const Moments after = moments(t.column(name), /*log_scale=*/true);
    EXPECT_NEAR(after.sd / before.sd, 1.5, 0.1) << name;
    EXPECT_NEAR(after.mean, before.mean, 0.1 * before.sd) << name;
  }
}

TEST_F(SynthScenarioTest, CategoryMixMovesWeightToRareRegions) {
  const Table t = drifted("category_mix", {"region"});
  const auto frequency = [](const std::vector<double>& codes, double code) {
    return static_cast<double>(std::count(codes.begin(), codes.end(), code)) /
           static_cast<double>(codes.size());
  };
  const auto before = none_->column("region");
  const auto after = t.column("region");
  EXPECT_NEAR(frequency(before, 0), 0.20, 0.01);
  EXPECT_NEAR(frequency(after, 0), 0.7 * 0.20 + 0.3 * 0.03, 0.01);
  EXPECT_NEAR(frequency(before, 9), 0.03, 0.005);
  EXPECT_NEAR(frequency(after, 9), 0.7 * 0.03 + 0.3 * 0.20, 0.01);
  for (double code : after) ASSERT_TRUE(code >= 0 && code <= 9 && code == std::round(code));
}

TEST_F(SynthScenarioTest, MissingnessRaisesMissingRatesToAboutTwentyPercent) {
  const Table t = drifted("missingness", {"income", "employment_years"});
  EXPECT_NEAR(nan_rate(none_->column("income")), 0.01, 0.003);
  EXPECT_NEAR(nan_rate(t.column("income")), 0.01 + 0.99 * 0.2, 0.01);
  EXPECT_NEAR(nan_rate(none_->column("employment_years")), 0.03, 0.005);
  EXPECT_NEAR(nan_rate(t.column("employment_years")), 0.03 + 0.97 * 0.2, 0.01);
  EXPECT_EQ(t.label, none_->label);  // a data-quality fault, not a different population
}

TEST_F(SynthScenarioTest, OutOfRangePutsFivePercentBeyondTheValidRange) {
  const Table t = drifted("out_of_range", {"income", "age", "utilization"});
  const auto negative = [](double v) { return v < 0; };
  EXPECT_EQ(share(none_->column("income"), negative), 0.0);
  EXPECT_NEAR(share(t.column("income"), negative), 0.05 * 0.99, 0.005);
  const auto old = [](double v) { return v > 90; };
  EXPECT_EQ(share(none_->column("age"), old), 0.0);
  EXPECT_NEAR(share(t.column("age"), old), 0.05, 0.005);
  for (double age : t.column("age")) ASSERT_TRUE(age <= 90 || (age >= 126 && age <= 162)) << age;
  EXPECT_NEAR(share(t.column("utilization"), [](double v) { return v > 1; }), 0.05, 0.005);
  EXPECT_EQ(t.label, none_->label);
}

TEST_F(DatasetsTest, SynthUsageErrorsExitWithTwo) {
  const std::string out = " --output '" + path("bad.h5").string() + "'";
  expect_error("synth --rows 10 --features 4 --seed 1 --scenario sideways" + out, 2, "sideways");
  expect_error("synth --rows 10 --features 4 --seed 1 --scenario none", 2, "--output is required");
  expect_error("synth --rows 0 --features 4 --seed 1 --scenario none" + out, 2, "--rows");
  expect_error("synth --rows 10 --features 5 --seed 1 --scenario category_mix" + out, 2,
               "'region'");
  expect_error(
      "synth --rows 10 --features 16 --seed 1 --scenario category_mix "
      "--drift-features income" +
          out,
      2, "'income' is numeric");
  expect_error("synth --rows 10 --features 16 --seed 1 --scenario none --drift-features age" + out,
               2, "scenario is none");
  expect_error(
      "synth --rows 10 --features 16 --seed 1 --scenario mean_shift "
      "--drift-features nope" +
          out,
      2, "'nope'");
  expect_error("", 2, "subcommand");
  // Beyond uint64 (CLI11 would saturate to 2^64 - 1 and generate until the disk is full), a
  // negative seed, more features than readers take.
  expect_error("synth --rows 99999999999999999999999 --features 4 --seed 1 --scenario none" + out,
               2, "below 2^64");
  expect_error("synth --rows 10 --features 4 --seed -1 --scenario none" + out, 2, "--seed");
  expect_error("synth --rows 10 --features 16777217 --seed 1 --scenario none" + out, 2,
               "[1, 2^24]");
  expect_error(
      "synth --rows 10 --features 16 --seed 1 --scenario mean_shift --drift-strength 1e308" + out,
      2, "[0, 1000]");
}

TEST_F(DatasetsTest, SynthIntoAMissingDirectoryFailsWithOne) {
  const std::string out = (dir_ / "no" / "such" / "x.h5").string();
  expect_error("synth --rows 10 --features 4 --seed 1 --scenario none --output '" + out + "'", 1,
               out + ": cannot create");
}

// ---- uci ----------------------------------------------------------------------------------------

constexpr const char* kUciHeader =
    "ID,LIMIT_BAL,SEX,EDUCATION,MARRIAGE,AGE,PAY_0,PAY_2,PAY_3,PAY_4,PAY_5,PAY_6,BILL_AMT1,"
    "BILL_AMT2,BILL_AMT3,BILL_AMT4,BILL_AMT5,BILL_AMT6,PAY_AMT1,PAY_AMT2,PAY_AMT3,PAY_AMT4,"
    "PAY_AMT5,PAY_AMT6,default.payment.next.month";

// A UCI row whose values are derived from `id` and `age`, in Kaggle's "20000.0" style.
std::string uci_row(int id, int age, int label) {
  std::ostringstream row;
  row << id << "," << id * 10000 << ".0,2,1,1," << age;
  for (int k = 0; k < 6; ++k) row << "," << (k - 2);
  for (int k = 0; k < 12; ++k) row << "," << id * 100 + k;
  row << "," << label;
  return row.str();
}

fs::path write_csv(const fs::path& path, const std::vector<std::string>& lines,
                   const char* ending = "\n") {
  std::ofstream out(path, std::ios::binary);
  for (const std::string& line : lines) out << line << ending;
  return path;
}

const std::vector<int> kAges = {24, 39, 40, 41, 58, 30, 22, 65, 35, 40, 29, 52};

std::vector<std::string> small_uci_csv() {
  std::vector<std::string> lines = {kUciHeader};
  for (std::size_t i = 0; i < kAges.size(); ++i) {
    lines.push_back(uci_row(static_cast<int>(i) + 1, kAges[i], static_cast<int>(i % 3 == 0)));
  }
  return lines;
}

TEST_F(DatasetsTest, UciSplitsByAgeAndAtRandom) {
  const fs::path csv = write_csv(path("small.csv"), small_uci_csv(), "\r\n");
  const fs::path out = path("uci_small");
  run_ok("uci --input '" + csv.string() + "' --output-dir '" + out.string() + "' --seed 7");

  const Table young = load(out / "uci_age_reference.h5");
  const Table old = load(out / "uci_age_current.h5");
  ASSERT_EQ(young.features, 23u);
  EXPECT_EQ(young.names.front(), "LIMIT_BAL");
  EXPECT_EQ(young.names[4], "AGE");
  EXPECT_EQ(young.names.back(), "PAY_AMT6");
  EXPECT_TRUE(young.timestamp.empty());
  std::vector<std::int64_t> expected_young, expected_old;
  for (std::size_t i = 0; i < kAges.size(); ++i) {
    (kAges[i] < 40 ? expected_young : expected_old).push_back(static_cast<std::int64_t>(i) + 1);
  }
  EXPECT_EQ(young.row_id, expected_young);  // input order kept
  EXPECT_EQ(old.row_id, expected_old);
  for (const Table* t : {&young, &old}) {
    for (std::size_t r = 0; r < t->rows; ++r) {
      const std::int64_t id = t->row_id[r];
      const float* row = &t->values[r * 23];
      EXPECT_EQ(row[0], 10000.0f * static_cast<float>(id));
      EXPECT_EQ(row[4], static_cast<float>(kAges[id - 1]));
      EXPECT_EQ(row[5], -2.0f);
      EXPECT_EQ(row[22], static_cast<float>(id * 100 + 11));
      EXPECT_EQ(t->label[r], (id - 1) % 3 == 0 ? 1.0f : 0.0f);
    }
  }

  const Table reference = load(out / "uci_random_reference.h5");
  const Table current = load(out / "uci_random_current.h5");
  EXPECT_EQ(reference.rows, 6u);
  EXPECT_EQ(current.rows, 6u);
  std::set<std::int64_t> ids(reference.row_id.begin(), reference.row_id.end());
  ids.insert(current.row_id.begin(), current.row_id.end());
  EXPECT_EQ(ids.size(), kAges.size());  // every row in exactly one half

  const fs::path again = path("uci_small_again");
  run_ok("uci --input '" + csv.string() + "' --output-dir '" + again.string() + "' --seed 7");
  EXPECT_EQ(load(again / "uci_random_reference.h5").row_id, reference.row_id);
}

TEST_F(DatasetsTest, UciBundledCopyGivesTheKnownSplits) {
  const char* source = std::getenv("DRIFTGUARD_SOURCE_DIR");
  if (source == nullptr) GTEST_SKIP() << "DRIFTGUARD_SOURCE_DIR is not set";
  const fs::path csv = fs::path(source) / "datasets" / "uci_credit_card.csv.gz";
  if (!fs::exists(csv)) GTEST_SKIP() << csv << " is absent";
  const fs::path out = path("uci_full");
  run_ok("uci --input '" + csv.string() + "' --output-dir '" + out.string() + "'");

  for (const auto& [first, second, first_rows] :
       {std::tuple{"uci_age_reference.h5", "uci_age_current.h5", std::size_t{20856}},
        std::tuple{"uci_random_reference.h5", "uci_random_current.h5", std::size_t{15000}}}) {
    const Table a = load(out / first);
    const Table b = load(out / second);
    EXPECT_EQ(a.rows, first_rows) << first;
    EXPECT_EQ(a.rows + b.rows, 30000u);
    std::vector<std::int64_t> ids = a.row_id;
    ids.insert(ids.end(), b.row_id.begin(), b.row_id.end());
    std::sort(ids.begin(), ids.end());
    std::vector<std::int64_t> all(30000);
    std::iota(all.begin(), all.end(), 1);
    EXPECT_EQ(ids, all) << first;
  }
}

TEST_F(DatasetsTest, UciMalformedInputNamesTheLine) {
  const std::string out = " --output-dir '" + path("uci_bad").string() + "'";
  std::vector<std::string> lines = small_uci_csv();
  lines[3].erase(lines[3].rfind(','));  // 24 fields
  expect_error("uci --input '" + write_csv(path("short.csv"), lines).string() + "'" + out, 1,
               "short.csv: line 4: expected 25 fields, got 24");

  lines = small_uci_csv();
  lines[2].replace(lines[2].find(",39,"), 4, ",3x9,");
  expect_error("uci --input '" + write_csv(path("nan.csv"), lines).string() + "'" + out, 1,
               "nan.csv: line 3: AGE is not a number: '3x9'");

  lines = small_uci_csv();
  lines[5].replace(lines[5].size() - 1, 1, "2");
  expect_error("uci --input '" + write_csv(path("label.csv"), lines).string() + "'" + out, 1,
               "label.csv: line 6: default flag must be 0 or 1, got '2'");

  lines = small_uci_csv();
  lines[0].replace(lines[0].find("PAY_0"), 5, "PAY_1");
  expect_error("uci --input '" + write_csv(path("header.csv"), lines).string() + "'" + out, 1,
               "header.csv: line 1: header column 7 is 'PAY_1', expected 'PAY_0'");

  expect_error("uci --input '" + write_csv(path("empty.csv"), {kUciHeader}).string() + "'" + out, 1,
               "no data rows");
  expect_error("uci --input '" + path("absent.csv").string() + "'" + out, 1,
               "absent.csv: no such file");
  expect_error("uci --output-dir x", 2, "--input is required");

  // A NUL byte ends a C string: line 3 was merged with line 4 (an ID lost, another changed).
  lines = small_uci_csv();
  lines[2].insert(lines[2].find(','), std::string(1, '\0'));
  expect_error("uci --input '" + write_csv(path("nul.csv"), lines).string() + "'" + out, 1,
               "nul.csv: line 3 holds a NUL byte");

  // IDs are integers as written: through a double, 2^53 + 1 became 2^53 and collided with it.
  lines = small_uci_csv();
  lines[1].replace(0, lines[1].find(','), "9007199254740993");
  lines[2].replace(0, lines[2].find(','), "9007199254740992");
  const fs::path big_ids = path("uci_big_ids");
  run_ok("uci --input '" + write_csv(path("big_ids.csv"), lines).string() + "' --output-dir '" +
         big_ids.string() + "'");
  const Table reference = load(big_ids / "uci_age_reference.h5");  // ages 24 and 39 first
  ASSERT_GE(reference.row_id.size(), 2u);
  EXPECT_EQ(reference.row_id[0], 9007199254740993);
  EXPECT_EQ(reference.row_id[1], 9007199254740992);

  // No row of 40 or over: refused before any file is written, so nothing old is mixed in.
  lines = {kUciHeader};
  for (int id = 1; id <= 4; ++id) lines.push_back(uci_row(id, 30, 0));
  const fs::path young = path("uci_young");
  expect_error("uci --input '" + write_csv(path("young.csv"), lines).string() + "' --output-dir '" +
                   young.string() + "'",
               1, "AGE >= 40");
  EXPECT_TRUE(fs::is_empty(young));
}

TEST_F(DatasetsTest, WeatherSplitsTheFirstDecadeFromTheStampedStream) {
  // 3650 reference days and 3 stream days; the values make each row's day recoverable.
  std::vector<std::string> lines = {
      "feat_1,feat_2,feat_3,feat_4,feat_5,feat_6,feat_7,feat_8,target"};
  for (int day = 0; day < 3653; ++day) {
    std::string line = std::to_string(day) + ".5";
    for (int f = 1; f < 8; ++f) line.append(",").append(std::to_string(f));
    lines.push_back(line + (day % 3 == 0 ? ",1" : ",0"));
  }
  const fs::path out = path("weather");
  run_ok("weather --input '" + write_csv(path("weather.csv"), lines).string() + "' --output-dir '" +
         out.string() + "'");
  const Table reference = load(out / "weather_reference.h5");
  const Table stream = load(out / "weather_stream.h5");
  ASSERT_EQ(reference.rows, 3650u);
  ASSERT_EQ(stream.rows, 3u);
  EXPECT_TRUE(reference.timestamp.empty());
  EXPECT_EQ(stream.timestamp, (std::vector<std::int64_t>{3650, 3651, 3652}));
  EXPECT_EQ(stream.row_id, stream.timestamp);
  EXPECT_EQ(reference.row_id.back(), 3649);
  EXPECT_EQ(stream.column("feat_1"), (std::vector<double>{3650.5, 3651.5, 3652.5}));
  EXPECT_EQ(stream.label, (std::vector<float>{0, 1, 0}));  // days 3650, 3651, 3652
  EXPECT_EQ(reference.names.size(), 8u);

  const std::string to = " --output-dir '" + path("weather_bad").string() + "'";
  std::vector<std::string> bad = lines;
  bad[10] += ",0";
  expect_error("weather --input '" + write_csv(path("w_fields.csv"), bad).string() + "'" + to, 1,
               "w_fields.csv: line 11: expected 9 fields, got 10");
  bad = lines;
  bad[3].replace(bad[3].size() - 1, 1, "7");
  expect_error("weather --input '" + write_csv(path("w_target.csv"), bad).string() + "'" + to, 1,
               "w_target.csv: line 4: target must be 0 or 1, got '7'");
  bad = lines;
  bad[0] = "a,b";
  expect_error("weather --input '" + write_csv(path("w_header.csv"), bad).string() + "'" + to, 1,
               "header is not feat_1,...,feat_8,target");
  bad.assign(lines.begin(), lines.begin() + 3651);
  expect_error("weather --input '" + write_csv(path("w_short.csv"), bad).string() + "'" + to, 1,
               "3650 days; the reference takes 3650");
}

TEST_F(DatasetsTest, GermanCodesTextCategoriesWithLabelsAndSplitsByAge) {
  const std::string header =
      "status_of_existing_checking_account,duration_in_month,credit_history,purpose,"
      "credit_amount,savings_account_and_bonds,present_employment_since,"
      "installment_rate_in_percentage_of_disposable_income,personal_status_and_sex,"
      "other_debtors_or_guarantors,present_residence_since,property,age_in_years,"
      "other_installment_plans,housing,number_of_existing_credits_at_this_bank,job,"
      "number_of_people_being_liable_to_provide_maintenance_for,telephone,foreign_worker,"
      "creditability";
  // Quoted texts hold commas and doubled quotes; ages 22 and 34 go to the reference, 35 and 67
  // to the current window.
  const auto row = [](const std::string& housing, int age, const std::string& telephone,
                      const std::string& credit) {
    return "A,6,h,p,1169,s,e,4,m,none,4,r," + std::to_string(age) + ",none," + housing + ",2,j,1," +
           telephone + ",yes," + credit;
  };
  const std::vector<std::string> lines = {
      header, row("own", 67, "none", "good"), row("rent", 22, "\"yes, \"\"registered\"\"\"", "bad"),
      row("for free", 35, "none", "good"), row("own", 34, "none", "bad")};
  const fs::path out = path("german");
  run_ok("german --input '" + write_csv(path("german.csv"), lines).string() + "' --output-dir '" +
         out.string() + "'");
  const Table reference = load(out / "german_age_reference.h5");
  const Table current = load(out / "german_age_current.h5");
  EXPECT_EQ(reference.row_id, (std::vector<std::int64_t>{2, 4}));
  EXPECT_EQ(current.row_id, (std::vector<std::int64_t>{1, 3}));
  EXPECT_EQ(reference.label, (std::vector<float>{1, 1}));  // bad credits
  EXPECT_EQ(current.label, (std::vector<float>{0, 0}));
  // housing: "for free" 0, "own" 1, "rent" 2 (byte order); telephone: "none" 0, the quoted 1.
  EXPECT_EQ(reference.column("housing"), (std::vector<double>{2, 1}));
  EXPECT_EQ(current.column("housing"), (std::vector<double>{1, 0}));
  EXPECT_EQ(reference.column("telephone"), (std::vector<double>{1, 0}));
  EXPECT_EQ(current.column("age_in_years"), (std::vector<double>{67, 35}));
  const std::string schema = read_text(out / "german.schema.json");
  EXPECT_NE(schema.find(R"("yes, \"registered\"")"), std::string::npos) << schema;
  EXPECT_NE(schema.find("\"for free\",\n        \"own\",\n        \"rent\""), std::string::npos)
      << schema;

  const std::string to = " --output-dir '" + path("german_bad").string() + "'";
  std::vector<std::string> bad = lines;
  bad[2] = row("rent", 22, "\"yes, unclosed", "bad");
  expect_error("german --input '" + write_csv(path("g_quote.csv"), bad).string() + "'" + to, 1,
               "g_quote.csv: line 3: a quoted field is not closed");
  bad = lines;
  bad[1] = row("own", 67, "none", "fine");
  expect_error("german --input '" + write_csv(path("g_credit.csv"), bad).string() + "'" + to, 1,
               "g_credit.csv: line 2: creditability must be good or bad, got 'fine'");
  bad = lines;
  bad[3] = row("own", 67, "none", "good").replace(2, 1, "six");
  expect_error("german --input '" + write_csv(path("g_number.csv"), bad).string() + "'" + to, 1,
               "g_number.csv: line 4: duration_in_month is not a number: 'six'");
  bad = {header, row("own", 40, "none", "good")};
  expect_error("german --input '" + write_csv(path("g_old.csv"), bad).string() + "'" + to, 1,
               "no rows with age_in_years < 35");
}

}  // namespace
