// Batch scoring against the peers' own outputs (tests/golden/score_xgboost.json, made by
// tests/golden/make_score_golden.py with xgboost and scikit-learn;
// tests/golden/score_lightgbm.json, made by tests/golden/make_lightgbm_golden.py with lightgbm),
// CPU = CUDA on every case, and the malformed-model corpus (tests/models/malformed).
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "backend_param.hpp"
#include "command.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/model.hpp"
#include "hdf5_damage.hpp"
#include "kernels/parallel_copy.hpp"

namespace driftguard {
namespace {

using nlohmann::json;
namespace fs = std::filesystem;

// Tolerances of the issue: probabilities to 1e-6 absolute (predictions above 1, the means of
// exp-link objectives, to 1e-6 relative), margins to 1e-5; scorecard points are stored as float
// (about 600, so 6e-5 per ulp).
constexpr double kProbabilityTolerance = 1e-6;
constexpr double kMarginTolerance = 1e-5;
constexpr double kPointsTolerance = 2e-4;
// CUDA against CPU: margins are the same float sums in the same order; only expf may differ.
constexpr double kBackendTolerance = 1e-6;

fs::path source_dir() {
  const char* dir = std::getenv("DRIFTGUARD_SOURCE_DIR");
  return dir != nullptr ? fs::path(dir) : fs::path(".");
}

// The cases of both golden files, {"cases": [...]}.
const json& golden() {
  static const json data = [] {
    json all = {{"cases", json::array()}};
    for (const char* file : {"score_xgboost.json", "score_lightgbm.json"}) {
      std::ifstream in(source_dir() / "tests/golden" / file);
      json one = json::parse(in);
      for (json& c : one["cases"]) {
        c["golden_file"] = file;
        all["cases"].push_back(std::move(c));
      }
    }
    return all;
  }();
  return data;
}

float golden_value(const json& v) {
  if (v.is_null()) return std::numeric_limits<float>::quiet_NaN();
  if (v.is_string()) {
    const float inf = std::numeric_limits<float>::infinity();
    if (v == "inf") return inf;
    if (v == "-inf") return -inf;
    throw std::runtime_error("golden value " + v.dump() + " is not a number");
  }
  return v.get<float>();
}

std::vector<float> flat(const json& rows) {
  std::vector<float> out;
  for (const json& row : rows) {
    for (const json& v : row) out.push_back(golden_value(v));
  }
  return out;
}

struct Scored {
  std::vector<float> margin, probability, points;
};

struct Case {
  std::string name;
  json data;
  Model model;
  std::vector<float> features;
  std::size_t rows = 0;
  std::vector<std::string> names;
};

Case load_case(const json& c) {
  ModelOptions options;
  const json& o = c["options"];
  options.iteration_begin = o.value("iteration_begin", std::size_t{0});
  options.iteration_end = o.value("iteration_end", std::size_t{0});
  options.use_best_iteration = o.value("use_best_iteration", false);
  Case out{c["name"],
           c,
           Model::load((source_dir() / c["model"].get<std::string>()).string(), options),
           flat(c["features"]),
           c["features"].size(),
           c["feature_names"]};
  return out;
}

const json& find_case(const std::string& name) {
  for (const json& c : golden()["cases"]) {
    if (c["name"] == name) return c;
  }
  throw std::runtime_error("no golden case " + name);
}

Scored run_score(Context& ctx, const Case& c) {
  const BoundModel bound(c.model, c.names);
  const std::size_t k = c.model.outputs();
  // Poisoned outputs: a value left unwritten shows up.
  Scored s{
      std::vector<float>(c.rows * k, -12345.0f), std::vector<float>(c.rows * k, -12345.0f), {}};
  ScoreOutputs out{s.margin.data(), s.probability.data(), nullptr};
  if (c.model.has_points()) {
    s.points.assign(c.rows, -12345.0f);
    out.points = s.points.data();
  }
  score(ctx, bound, {c.features.data(), c.rows, c.names.size()}, out);
  return s;
}

// Largest |a - b|, divided by max(1, |b|) when `relative_above_one` (predictions of exp-link
// objectives are means, not probabilities, and reach tens); NaN only matches NaN (reported as
// infinity otherwise).
double max_error(const std::vector<float>& ours, const std::vector<float>& theirs,
                 bool relative_above_one = false) {
  EXPECT_EQ(ours.size(), theirs.size());
  double worst = 0.0;
  for (std::size_t i = 0; i < std::min(ours.size(), theirs.size()); ++i) {
    if (std::isnan(ours[i]) || std::isnan(theirs[i])) {
      if (std::isnan(ours[i]) != std::isnan(theirs[i])) worst = INFINITY;
      continue;
    }
    const double scale = relative_above_one ? std::max(1.0, std::abs(double{theirs[i]})) : 1.0;
    worst = std::max(worst, std::abs(double{ours[i]} - double{theirs[i]}) / scale);
  }
  return worst;
}

// Many rows (several blocks and threads, a partial last block) give the same scores as the same
// rows one at a time.
void large_batch_equals_row_by_row(Context& ctx, const Case& input) {
  const std::size_t f = input.names.size(), k = input.model.outputs(), rows = 5000 + 37;
  std::vector<float> big(rows * f);
  for (std::size_t r = 0; r < rows; ++r) {
    std::copy_n(input.features.begin() + (r * 7919 % input.rows) * f, f, big.begin() + r * f);
  }
  const BoundModel bound(input.model, input.names);
  std::vector<float> margin(rows * k, -1.0f), one(k);
  score(ctx, bound, {big.data(), rows, f}, {.margin = margin.data()});
  Context cpu(ContextOptions{.backend = Backend::Cpu, .cpu_threads = 1});
  for (std::size_t r = 0; r < rows; r += 97) {
    score(cpu, bound, {big.data() + r * f, 1, f}, {.margin = one.data()});
    for (std::size_t c = 0; c < k; ++c) ASSERT_EQ(margin[r * k + c], one[c]) << "row " << r;
  }
}

class ScoreGolden : public testing::BackendTest {};

TEST_P(ScoreGolden, MatchesPeerOnEveryRow) {
  const json& cases = golden()["cases"];
  ASSERT_GE(cases.size(), 24u);
  for (const json& c : cases) {
    const Case input = load_case(c);
    SCOPED_TRACE(input.name);
    const Scored s = run_score(ctx(), input);
    const std::size_t k = input.model.outputs();
    const double margin_error = max_error(s.margin, flat(c["margin"]));
    // Beyond the issue's 1e-5: margins take no libm call (tree ensembles add their leaves as their
    // library does, XGBoost in float, LightGBM in double from the file's double leaves; linear
    // models sum in double and round once), so they are the peer's floats on every row, bit for
    // bit, on both backends.
    EXPECT_EQ(margin_error, 0.0);
    double prediction_error = 0.0;
    if (c.value("objective", "") == "multi:softmax") {
      // Booster.predict gives the class: the first largest margin.
      const std::vector<float> expected = flat(c["prediction"]);
      for (std::size_t r = 0; r < input.rows; ++r) {
        const auto first = s.margin.begin() + r * k;
        EXPECT_EQ(std::max_element(first, first + k) - first, expected[r]) << "row " << r;
      }
    } else {
      prediction_error = max_error(s.probability, flat(c["prediction"]), true);
      EXPECT_LE(prediction_error, kProbabilityTolerance);
      // LightGBM's link in double, rounded once: its output's float32 rounding, on the CPU (the
      // GPU's exp may differ in the last bits).
      if (c["golden_file"] == "score_lightgbm.json" && GetParam() == Backend::Cpu) {
        EXPECT_EQ(prediction_error, 0.0);
      }
    }
    if (c.contains("points")) {
      EXPECT_LE(max_error(s.points, flat(c["points"])), kPointsTolerance);
    }
    std::printf("  %-28s margin max |err| %.3g, prediction max |err| %.3g\n", input.name.c_str(),
                margin_error, prediction_error);
  }
}

TEST_P(ScoreGolden, CudaMatchesCpu) {
  if (GetParam() == Backend::Cpu) GTEST_SKIP() << "compares the CUDA backend with the CPU";
  Context cpu(ContextOptions{.backend = Backend::Cpu});
  for (const json& c : golden()["cases"]) {
    const Case input = load_case(c);
    SCOPED_TRACE(input.name);
    const Scored ours = run_score(ctx(), input), reference = run_score(cpu, input);
    EXPECT_LE(max_error(ours.margin, reference.margin), kBackendTolerance);
    EXPECT_LE(max_error(ours.probability, reference.probability, true), kBackendTolerance);
    EXPECT_LE(max_error(ours.points, reference.points), kPointsTolerance);
  }
}

// A host batch of several staging chunks (16 MiB of input each, two in flight), pageable and
// page-locked, with every output: the same numbers as the CPU on every row, every value written.
void host_batch_of_many_chunks_matches_cpu(Context& ctx, const Case& input) {
  const std::size_t f = input.names.size(), k = input.model.outputs();
  const std::size_t rows = 5 * ((std::size_t{16} << 20) / (f * 4)) + 321;
  HostBuffer pinned(ctx, rows * f * sizeof(float));
  ASSERT_TRUE(pinned.pinned());
  auto* big = static_cast<float*>(pinned.data());
  for (std::size_t r = 0; r < rows; ++r) {
    std::copy_n(input.features.begin() + (r * 7919 % input.rows) * f, f, big + r * f);
  }
  const std::vector<float> pageable(big, big + rows * f);
  const BoundModel bound(input.model, input.names);
  const bool points = input.model.has_points();
  Context cpu(ContextOptions{.backend = Backend::Cpu});
  Scored expected{std::vector<float>(rows * k), std::vector<float>(rows * k),
                  std::vector<float>(points ? rows : 0)};
  score(cpu, bound, {pageable.data(), rows, f},
        {expected.margin.data(), expected.probability.data(),
         points ? expected.points.data() : nullptr});
  for (const float* data : {pageable.data(), static_cast<const float*>(big)}) {
    SCOPED_TRACE(data == big ? "page-locked" : "pageable");
    Scored ours{std::vector<float>(rows * k, -12345.0f), std::vector<float>(rows * k, -12345.0f),
                std::vector<float>(points ? rows : 0, -12345.0f)};
    score(ctx, bound, {data, rows, f},
          {ours.margin.data(), ours.probability.data(), points ? ours.points.data() : nullptr});
    EXPECT_LE(max_error(ours.margin, expected.margin), kBackendTolerance);
    EXPECT_LE(max_error(ours.probability, expected.probability, true), kBackendTolerance);
    EXPECT_LE(max_error(ours.points, expected.points), kPointsTolerance);
  }
}

TEST_P(ScoreGolden, CudaHostBatchOfManyChunksMatchesCpu) {
  if (GetParam() == Backend::Cpu) GTEST_SKIP() << "compares the CUDA backend with the CPU";
  // Trees (float sums, several outputs) and a scorecard (points).
  for (const char* name : {"syn_multi_softprob", "uci_scorecard"}) {
    SCOPED_TRACE(name);
    host_batch_of_many_chunks_matches_cpu(ctx(), load_case(find_case(name)));
  }
}

// The staging copy of the test above: every byte lands where it belongs, for sizes around its
// 1 MiB pieces and for more threads than pieces.
TEST(ParallelCopy, CopiesEveryByte) {
  std::mt19937 rng(5);
  for (const std::size_t bytes :
       {std::size_t{0}, std::size_t{1}, std::size_t{1} << 20, (std::size_t{2} << 20) - 1,
        (std::size_t{5} << 20) + 3, (std::size_t{16} << 20) + 65}) {
    std::vector<unsigned char> src(bytes);
    for (unsigned char& b : src) b = static_cast<unsigned char>(rng());
    for (const int threads : {1, 3, 16}) {
      std::vector<unsigned char> dst(bytes + 64, 0xA5);
      driftguard::detail::parallel_copy(threads, dst.data(), src.data(), bytes);
      EXPECT_TRUE(std::equal(src.begin(), src.end(), dst.begin())) << bytes << " bytes";
      EXPECT_TRUE(std::all_of(dst.begin() + static_cast<std::ptrdiff_t>(bytes), dst.end(),
                              [](unsigned char b) { return b == 0xA5; }))
          << "written past " << bytes << " bytes";
    }
  }
}

TEST_P(ScoreGolden, LargeBatchEqualsRowByRow) {
  // Float sums (XGBoost) and double sums (LightGBM).
  for (const char* name : {"syn_multi_softprob", "syn_multiclass"}) {
    SCOPED_TRACE(name);
    large_batch_equals_row_by_row(ctx(), load_case(find_case(name)));
  }
}

TEST_P(ScoreGolden, EmptyBatchWritesNothing) {
  const Case input = load_case(find_case("uci_binary_logistic"));
  const BoundModel bound(input.model, input.names);
  float margin = 7.0f;
  score(ctx(), bound, {nullptr, 0, input.names.size()}, {.margin = &margin});
  EXPECT_EQ(margin, 7.0f);
}

DG_INSTANTIATE_BACKENDS(ScoreGolden);

TEST(ScoreModel, BindingChecksNamesAndColumns) {
  const Model model =
      Model::load((source_dir() / "tests/models/xgb_uci_binary_logistic.json").string());
  EXPECT_EQ(model.kind(), ModelKind::TreeEnsemble);
  EXPECT_EQ(model.objective(), "binary:logistic");
  EXPECT_EQ(model.feature_names().size(), 23u);
  EXPECT_EQ(model.trees(), 30u);
  std::vector<std::string> names = model.feature_names();
  names.erase(names.begin() + 4);
  try {
    BoundModel bound(model, names);
    FAIL() << "a missing feature was accepted";
  } catch (const InvalidInput& e) {
    EXPECT_NE(std::string(e.what()).find("\"AGE\""), std::string::npos) << e.what();
  }
  std::vector<std::size_t> columns(23);
  for (std::size_t i = 0; i < 23; ++i) columns[i] = i;
  EXPECT_THROW(BoundModel(model, columns, 22), InvalidInput);
  const BoundModel bound(model, columns, 30);
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  std::vector<float> row(30, 1.0f), points(1);
  EXPECT_THROW(score(ctx, bound, {row.data(), 1, 23}, {.margin = row.data()}), InvalidInput);
  EXPECT_THROW(score(ctx, bound, {row.data(), 1, 30}, {.points = points.data()}), InvalidInput);
  EXPECT_THROW(score(ctx, bound, {row.data(), 1, 30}, {}), InvalidInput);
}

TEST(ScoreModel, IterationRangeOutsideModelIsModelError) {
  const std::string path = (source_dir() / "tests/models/xgb_uci_reg_logistic.json").string();
  EXPECT_EQ(Model::load(path, {.iteration_begin = 2, .iteration_end = 5}).trees(), 3u);
  EXPECT_THROW(Model::load(path, {.iteration_end = 21}), ModelError);
  EXPECT_THROW(Model::load(path, {.iteration_begin = 4, .iteration_end = 3}), ModelError);
}

// A profile recognises its model by the fingerprint: the same text and rounds give the same one,
// another model or other rounds of a tree ensemble another; a linear model has no rounds.
TEST(ScoreModel, FingerprintFollowsTheTextAndTheRounds) {
  const std::string path = (source_dir() / "tests/models/xgb_uci_reg_logistic.json").string();
  const std::string all = Model::load(path).fingerprint();
  EXPECT_EQ(all.size(), 16u);
  EXPECT_EQ(all.find_first_not_of("0123456789abcdef"), std::string::npos) << all;
  EXPECT_EQ(Model::load(path).fingerprint(), all);
  EXPECT_NE(Model::load(path, {.iteration_end = 5}).fingerprint(), all);
  EXPECT_NE(Model::load(path, {.iteration_begin = 2, .iteration_end = 5}).fingerprint(),
            Model::load(path, {.iteration_end = 5}).fingerprint());
  EXPECT_NE(Model::load((source_dir() / "tests/models/xgb_uci_binary_logistic.json").string())
                .fingerprint(),
            all);
  const std::string linear = R"({"format": "driftguard-linear", "version": 1,
      "feature_names": ["a"], "link": "identity", "coefficients": [1.0], "intercepts": [0.0]})";
  EXPECT_EQ(Model::parse(linear).fingerprint(),
            Model::parse(linear, {.iteration_end = 3}).fingerprint());
  EXPECT_NE(Model::parse(linear).fingerprint(),
            Model::parse(R"({"format": "driftguard-linear", "version": 1,
      "feature_names": ["a"], "link": "identity", "coefficients": [2.0], "intercepts": [0.0]})")
                .fingerprint());
}

TEST(ScoreModel, MissingFileIsModelError) {
  EXPECT_THROW(Model::load("/nonexistent/model.json"), ModelError);
  EXPECT_THROW(Model::load(source_dir().string()), ModelError);  // a directory
}

TEST(ScoreModel, LinearModelOfTooManyClassesIsModelError) {
  // Each output costs a float per scored row and a histogram per scan: 65536 classes at most, as
  // for the tree ensembles.
  const auto softmax = [](std::size_t classes) {
    std::string rows, intercepts;
    for (std::size_t k = 0; k < classes; ++k) {
      rows += (k > 0 ? ",[0.5]" : "[0.5]");
      intercepts += (k > 0 ? ",0" : "0");
    }
    return R"({"format": "driftguard-linear", "version": 1, "feature_names": ["a"],
               "link": "softmax", "coefficients": [)" +
           rows + R"(], "intercepts": [)" + intercepts + "]}";
  };
  EXPECT_EQ(Model::parse(softmax(65536), {}, "at_limit").outputs(), 65536u);
  try {
    (void)Model::parse(softmax(65537), {}, "beyond");
    ADD_FAILURE() << "accepted";
  } catch (const ModelError& e) {
    EXPECT_NE(std::string(e.what()).find("at most 65536 classes"), std::string::npos) << e.what();
  }
}

// Every file of the corpus is refused with a ModelError that names the file and the defect.
TEST(ScoreMalformed, EveryModelIsRefusedClearly) {
  const fs::path dir = source_dir() / "tests/models/malformed";
  std::ifstream in(dir / "expected.json");
  const json expected = json::parse(in);
  ASSERT_GE(expected.size(), 30u);
  std::size_t files = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const std::string extension = entry.path().extension().string();
    if ((extension != ".json" && extension != ".txt" && extension != ".ubj") ||
        name == "expected.json" || name == "base_xgb.json" || name == "base_xgb.ubj" ||
        name == "base_lgb.txt") {
      continue;
    }
    ++files;
    SCOPED_TRACE(name);
    ASSERT_TRUE(expected.contains(name)) << "no expected message for " << name;
    try {
      (void)Model::load(entry.path().string());
      ADD_FAILURE() << "accepted";
    } catch (const ModelError& e) {
      const std::string what = e.what();
      EXPECT_NE(what.find(name), std::string::npos) << what;
      EXPECT_NE(what.find(expected[name].get<std::string>()), std::string::npos) << what;
    }
  }
  EXPECT_EQ(files, expected.size());
  // The corpus's base models themselves are valid: the defects are what is refused.
  EXPECT_NO_THROW((void)Model::load((dir / "base_xgb.json").string()));
  EXPECT_NO_THROW((void)Model::load((dir / "base_xgb.ubj").string()));
  EXPECT_NO_THROW((void)Model::load((dir / "base_lgb.txt").string()));
}

// An error quoting the model's text stays a readable line when that text is huge.
TEST(ScoreMalformed, ErrorsQuotingHugeModelTextAreCut) {
  const fs::path path = source_dir() / "tests/models/malformed/base_xgb.json";
  nlohmann::json model = nlohmann::json::parse(driftguard::testing::read_text(path));
  model["learner"]["objective"]["name"] = std::string(1 << 20, 'x');
  try {
    Model::parse(model.dump(), {}, "huge");
    ADD_FAILURE() << "accepted";
  } catch (const ModelError& e) {
    const std::string what = e.what();
    EXPECT_LT(what.size(), 600u);
    EXPECT_EQ(what.rfind("huge: objective \"xxx", 0), 0u) << what.substr(0, 100);
    EXPECT_NE(what.find("... (cut)"), std::string::npos);
  }
}

// default_left may be written as JSON booleans (older XGBoost did); no other integer may.
TEST(ScoreModel, DefaultLeftAsBooleansScoresAlike) {
  const fs::path path = source_dir() / "tests/models/malformed/base_xgb.json";
  nlohmann::json model = nlohmann::json::parse(driftguard::testing::read_text(path));
  for (nlohmann::json& tree : model["learner"]["gradient_booster"]["model"]["trees"]) {
    for (nlohmann::json& flag : tree["default_left"]) flag = flag.get<int>() == 1;
  }
  const Model ints = Model::load(path.string());
  const Model booleans = Model::parse(model.dump(), {}, "booleans");
  const std::vector<std::string> names = ints.feature_names();
  // Every split's NaN direction matters on an all-NaN row; a row of zeros takes the thresholds.
  std::vector<float> rows(2 * names.size(), 0.0f);
  std::fill(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(names.size()),
            std::numeric_limits<float>::quiet_NaN());
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  std::vector<float> a(2), b(2);
  score(ctx, BoundModel(ints, names), {rows.data(), 2, names.size()}, {.margin = a.data()});
  score(ctx, BoundModel(booleans, names), {rows.data(), 2, names.size()}, {.margin = b.data()});
  EXPECT_EQ(a, b);
}

// XGBoost before 3.0 wrote NaN as a bare literal at every categorical split's split_conditions
// (xgboost 1.7 and 2.1 do; XGBoost reads those files back): such a model scores as the same model
// with numbers there, and a bare NaN where a value is read is refused as not a number.
TEST(ScoreModel, BareNaNLiteralsOfOlderXGBoostScoreAsXGBoostReadsThem) {
  const fs::path path = source_dir() / "tests/models/xgb_syn_binary_logistic_cat.json";
  nlohmann::json model = nlohmann::json::parse(driftguard::testing::read_text(path));
  std::size_t categorical = 0;
  for (nlohmann::json& tree : model["learner"]["gradient_booster"]["model"]["trees"]) {
    for (std::size_t i = 0; i < tree["split_type"].size(); ++i) {
      if (tree["split_type"][i] == 1) {
        tree["split_conditions"][i] = "bare NaN";
        ++categorical;
      }
    }
  }
  ASSERT_GT(categorical, 100u);
  // A string holding the literal stays a string.
  model["learner"]["attributes"]["note"] = "NaN, \"Infinity\" -Infinity";
  std::string text = model.dump();
  for (std::size_t at = text.find("\"bare NaN\""); at != std::string::npos;
       at = text.find("\"bare NaN\"", at)) {
    text.replace(at, 10, "NaN");
  }
  const Model numbers = Model::load(path.string());
  const Model literals = Model::parse(text, {}, "literals");
  const std::vector<std::string> names = numbers.feature_names();
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<float> value(-3.0f, 12.0f);
  std::vector<float> rows(500 * names.size());
  for (float& v : rows) v = std::round(value(rng));  // categories 0..12, some unseen or negative
  rows[3] = std::numeric_limits<float>::quiet_NaN();
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  std::vector<float> a(500), b(500);
  score(ctx, BoundModel(numbers, names), {rows.data(), 500, names.size()}, {.margin = a.data()});
  score(ctx, BoundModel(literals, names), {rows.data(), 500, names.size()}, {.margin = b.data()});
  EXPECT_EQ(a, b);

  for (const char* literal : {"NaN", "Infinity", "-Infinity"}) {
    nlohmann::json leaf = nlohmann::json::parse(driftguard::testing::read_text(path));
    nlohmann::json& tree = leaf["learner"]["gradient_booster"]["model"]["trees"][0];
    const std::size_t last = tree["split_conditions"].size() - 1;  // a leaf: breadth-first ids
    ASSERT_EQ(tree["left_children"][last], -1);
    tree["split_conditions"][last] = "bare literal";
    std::string bad = leaf.dump();
    bad.replace(bad.find("\"bare literal\""), 14, literal);
    try {
      Model::parse(bad, {}, "leaf");
      ADD_FAILURE() << literal << " as a leaf value was accepted";
    } catch (const ModelError& e) {
      EXPECT_NE(std::string(e.what()).find("leaf value is not a number"), std::string::npos)
          << e.what();
    }
  }
}

// One random edit of a model file: a cut, a byte changed to a JSON character or to any value (the
// binary format's markers and counts), a line dropped or doubled, or a number replaced by an
// extreme one.
std::string mutate(std::string text, std::mt19937_64& rng) {
  const auto pick = [&](std::size_t n) {
    return static_cast<std::size_t>(std::uniform_int_distribution<std::size_t>(0, n - 1)(rng));
  };
  if (text.empty()) return text;
  const std::size_t at = pick(text.size());
  switch (pick(6)) {
    case 0:
      text.resize(at);
      break;
    case 1:
      text[at] = " \n=-.0123456789e[]{},:\"x"[pick(24)];
      break;
    case 4:
      text[at] = static_cast<char>(pick(256));
      break;
    case 2:
    case 3: {
      const std::size_t begin =
          text.rfind('\n', at) == std::string::npos ? 0 : text.rfind('\n', at);
      const std::size_t end = std::min(text.find('\n', at), text.size());
      const std::string line = text.substr(begin, end - begin);
      text.replace(begin, end - begin, pick(2) == 0 ? std::string() : line + line);
      break;
    }
    default: {
      static const char* extremes[] = {"nan", "-1", "1e300",      "99999999999", "",
                                       "inf", "-0", "4294967296", "2147483647",  "0.5"};
      std::size_t begin = at;
      while (begin < text.size() && !std::isdigit(static_cast<unsigned char>(text[begin]))) ++begin;
      std::size_t end = begin;
      while (end < text.size() &&
             (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.')) {
        ++end;
      }
      text.replace(begin, end - begin, extremes[pick(10)]);
    }
  }
  return text;
}

// Nothing in a model file can crash the library: 4000 random edits per base model of the corpus's
// valid models each give a model that scores (checked tables; sanitizer builds watch every access)
// or a ModelError, never another exception.
TEST(ScoreMalformed, RandomEditsAreRefusedOrScored) {
  const fs::path dir = source_dir() / "tests/models/malformed";
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  std::mt19937_64 rng(20261126);
  std::vector<float> rows(64 * 3);
  std::uniform_real_distribution<float> value(-3.0f, 6.0f);
  for (float& v : rows) v = value(rng);
  for (std::size_t i = 0; i < rows.size(); i += 7)
    rows[i] = std::numeric_limits<float>::quiet_NaN();
  for (const char* base : {"base_xgb.json", "base_xgb.ubj", "base_lgb.txt"}) {
    SCOPED_TRACE(base);
    const std::string text = testing::read_text(dir / base);
    std::size_t scored = 0, refused = 0;
    for (int trial = 0; trial < 4000; ++trial) {
      std::string edited = mutate(text, rng);
      if (trial % 3 == 0) edited = mutate(std::move(edited), rng);
      try {
        const Model model = Model::parse(edited, {}, base);
        if (model.feature_names().size() > 3) {
          ++scored;
          continue;
        }
        std::vector<std::size_t> columns(model.feature_names().size());
        for (std::size_t c = 0; c < columns.size(); ++c) columns[c] = c;
        const BoundModel bound(model, columns, 3);
        std::vector<float> margin(64 * model.outputs()), probability(margin.size());
        score(ctx, bound, {rows.data(), 64, 3},
              {.margin = margin.data(), .probability = probability.data()});
        ++scored;
      } catch (const ModelError& e) {
        ++refused;
        EXPECT_EQ(std::string(e.what()).rfind(base, 0), 0u) << e.what();
      }
    }
    std::printf("  %s: %zu edits scored, %zu refused\n", base, scored, refused);
    EXPECT_GT(refused, 800u);
  }
}

template <class T>
std::vector<T> read_dataset(const fs::path& file, const char* name, hid_t type) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
  const hid_t space = H5Dget_space(d);
  std::vector<T> out(static_cast<std::size_t>(H5Sget_simple_extent_npoints(space)));
  const herr_t status = H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data());
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
  EXPECT_GE(status, 0) << name;
  return out;
}

// `driftguard score` writes the same numbers as the library, plus /row_id from the input.
TEST(ScoreCli, WritesScoresAndRowIds) {
  const fs::path dir = testing::process_temp_dir("score_cli");
  const json& c = find_case("uci_scorecard");
  const std::vector<float> features = flat(c["features"]);
  const std::size_t rows = c["features"].size();
  std::vector<std::int64_t> row_id(rows);
  for (std::size_t r = 0; r < rows; ++r) row_id[r] = 1000 + static_cast<std::int64_t>(r);
  {
    Hdf5Writer writer((dir / "in.h5").string(), c["feature_names"], {.with_row_id = true});
    writer.append(features.data(), rows, nullptr, nullptr, row_id.data());
    writer.close();
  }
  const std::string model = (source_dir() / c["model"].get<std::string>()).string();
  const testing::CommandResult run =
      testing::run_command(std::string(DRIFTGUARD_BIN) + " score --model '" + model +
                               "' --input '" + (dir / "in.h5").string() + "' --output '" +
                               (dir / "out.h5").string() + "' --backend cpu --batch-rows 64",
                           dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("scored 300 rows"), std::string::npos) << run.out;
  EXPECT_LE(max_error(read_dataset<float>(dir / "out.h5", "/probability", H5T_NATIVE_FLOAT),
                      flat(c["prediction"])),
            kProbabilityTolerance);
  EXPECT_LE(max_error(read_dataset<float>(dir / "out.h5", "/points", H5T_NATIVE_FLOAT),
                      flat(c["points"])),
            kPointsTolerance);
  EXPECT_EQ(read_dataset<std::int64_t>(dir / "out.h5", "/row_id", H5T_NATIVE_INT64), row_id);

  // A run that fails half way (a corrupt chunk at rows 128..191) leaves the earlier scores as
  // they were and no temporary file.
  {
    Hdf5Writer writer((dir / "damaged.h5").string(), c["feature_names"],
                      {.chunk_rows = 64, .gzip_level = 4, .with_row_id = true});
    writer.append(features.data(), rows, nullptr, nullptr, row_id.data());
    writer.close();
  }
  ASSERT_EQ(testing::corrupt_chunk(dir / "damaged.h5", 2), 128u);
  const std::string scores_before = testing::read_text(dir / "out.h5");
  const testing::CommandResult failed =
      testing::run_command(std::string(DRIFTGUARD_BIN) + " score --model '" + model +
                               "' --input '" + (dir / "damaged.h5").string() + "' --output '" +
                               (dir / "out.h5").string() + "' --backend cpu --batch-rows 64",
                           dir);
  EXPECT_EQ(failed.exit_code, 1);
  EXPECT_NE(failed.err.find("rows 128..191"), std::string::npos) << failed.err;
  EXPECT_EQ(testing::read_text(dir / "out.h5"), scores_before);
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    EXPECT_NE(entry.path().extension(), ".tmp") << "left behind: " << entry.path();
  }

  const std::string bad = (source_dir() / "tests/models/malformed/cycle_to_root.json").string();
  const testing::CommandResult refused = testing::run_command(
      std::string(DRIFTGUARD_BIN) + " score --model '" + bad + "' --input '" +
          (dir / "in.h5").string() + "' --output '" + (dir / "bad.h5").string() + "'",
      dir);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("reached twice"), std::string::npos) << refused.err;
}

// The command-line tool detects a LightGBM text model and scores it as the library does: the
// golden rows of a categorical model, edge rows (NaN, +-inf, the zero band) included.
TEST(ScoreCli, ScoresLightGbmTextModels) {
  const fs::path dir = testing::process_temp_dir("score_cli_lightgbm");
  const json& c = find_case("uci_categorical");
  const std::vector<float> features = flat(c["features"]);
  {
    Hdf5Writer writer((dir / "in.h5").string(), c["feature_names"]);
    writer.append(features.data(), c["features"].size());
    writer.close();
  }
  const std::string model = (source_dir() / c["model"].get<std::string>()).string();
  const testing::CommandResult run =
      testing::run_command(std::string(DRIFTGUARD_BIN) + " score --model '" + model +
                               "' --input '" + (dir / "in.h5").string() + "' --output '" +
                               (dir / "out.h5").string() + "' --backend cpu --batch-rows 100",
                           dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("scored 340 rows with binary"), std::string::npos) << run.out;
  EXPECT_LE(max_error(read_dataset<float>(dir / "out.h5", "/margin", H5T_NATIVE_FLOAT),
                      flat(c["margin"])),
            kMarginTolerance);
  EXPECT_LE(max_error(read_dataset<float>(dir / "out.h5", "/probability", H5T_NATIVE_FLOAT),
                      flat(c["prediction"])),
            kProbabilityTolerance);
}

}  // namespace
}  // namespace driftguard
