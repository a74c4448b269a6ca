// End to end: the user's commands on generated data with a known injected drift.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/report.hpp"
#include "golden.hpp"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using driftguard::testing::close;
using driftguard::testing::CommandResult;

// The checkout, where the bundled data sets and golden files are (set by CTest).
fs::path source_dir() {
  const char* root = std::getenv("DRIFTGUARD_SOURCE_DIR");
  if (root == nullptr) throw std::runtime_error("DRIFTGUARD_SOURCE_DIR is not set");
  return root;
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

class Cli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = driftguard::testing::process_temp_dir("driftguard_cli");
    synth("reference.h5", "none", 1, "");
  }
  // Writes dir_/NAME with the generator; 20k rows are enough for PSI noise far below 0.1.
  static void synth(const std::string& name, const std::string& scenario, int seed,
                    const std::string& drift_features) {
    std::string command = std::string(DRIFTGUARD_DATA_BIN) +
                          " synth --rows 20000 --features 16 --seed " + std::to_string(seed) +
                          " --scenario " + scenario + " --output " + (dir_ / name).string();
    if (!drift_features.empty()) command += " --drift-features " + drift_features;
    const CommandResult r = run(command);
    ASSERT_EQ(r.exit_code, 0) << command << "\n" << r.err;
  }
  static CommandResult scan(const std::string& current, const std::string& extra = "") {
    return run(std::string(DRIFTGUARD_BIN) + " scan --backend cpu --reference " +
               (dir_ / "reference.h5").string() + " --current " + (dir_ / current).string() +
               " --report " + (dir_ / (current + ".json")).string() + " " + extra);
  }
  static std::set<std::string> drifted(const json& report) {
    std::set<std::string> names;
    for (const json& f : report["features"]) {
      if (f["drifted"].get<bool>()) names.insert(f["name"].get<std::string>());
    }
    return names;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }
  static CommandResult run(const std::string& command) {
    return driftguard::testing::run_command(command, dir_);
  }
  static inline fs::path dir_;
};

TEST_F(Cli, NoDriftFlagsNothing) {
  synth("same.h5", "none", 2, "");
  const CommandResult r = scan("same.h5", "--fail-on-drift");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = read_json(dir_ / "same.h5.json");
  EXPECT_TRUE(drifted(report).empty()) << report["features"].dump();
  EXPECT_EQ(report["current_rows"], 20000);
  EXPECT_EQ(report["reference_rows"], 20000);
  EXPECT_EQ(report["backend"], "cpu");
  const json& v = report["validation"];
  EXPECT_EQ(v["rows_ok"].get<std::uint64_t>() + v["rows_invalid"].get<std::uint64_t>(),
            v["rows"].get<std::uint64_t>());
}

// Outputs are written under temporary names of their own: a report at PATH never replaces an
// input named PATH.tmp; a report through a symbolic link replaces the file the link names, and
// the link stays; a directory as the report is refused, leaving nothing behind.
TEST_F(Cli, OutputsNeverReplaceOtherFiles) {
  fs::copy_file(dir_ / "reference.h5", dir_ / "day.tmp", fs::copy_options::overwrite_existing);
  const std::string input = driftguard::testing::read_text(dir_ / "day.tmp");
  const std::string common = std::string(DRIFTGUARD_BIN) + " scan --backend cpu --no-ks " +
                             "--reference " + (dir_ / "reference.h5").string() + " --current ";
  CommandResult r =
      run(common + (dir_ / "day.tmp").string() + " --report " + (dir_ / "day").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(driftguard::testing::read_text(dir_ / "day.tmp"), input);
  EXPECT_EQ(read_json(dir_ / "day")["current_rows"], 20000);

  fs::remove(dir_ / "link.json");
  fs::create_symlink(dir_ / "linked_report.json", dir_ / "link.json");
  r = run(common + (dir_ / "day.tmp").string() + " --report " + (dir_ / "link.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(fs::is_symlink(dir_ / "link.json"));
  EXPECT_EQ(read_json(dir_ / "linked_report.json")["current_rows"], 20000);

  // A private report stays private; temporaries of killed runs (no such process) are removed.
  fs::permissions(dir_ / "day", fs::perms::owner_read | fs::perms::owner_write);
  std::ofstream(dir_ / ".day.999999999.0.tmp") << "left by a killed run";
  r = run(common + (dir_ / "day.tmp").string() + " --report " + (dir_ / "day").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(fs::status(dir_ / "day").permissions() & fs::perms::all,
            fs::perms::owner_read | fs::perms::owner_write);
  EXPECT_FALSE(fs::exists(dir_ / ".day.999999999.0.tmp"));

  // The report to /dev/stdout goes where the shell sends stdout, after what is there already.
  const fs::path log = dir_ / "stdout_log.txt";
  ASSERT_EQ(std::system(("echo EARLIER > '" + log.string() + "'; " + common + "'" +
                         (dir_ / "day.tmp").string() + "' -q --report /dev/stdout >> '" +
                         log.string() + "'")
                            .c_str()),
            0);
  const std::string logged = driftguard::testing::read_text(log);
  ASSERT_EQ(logged.rfind("EARLIER\n", 0), 0u) << logged.substr(0, 100);
  EXPECT_EQ(json::parse(logged.substr(8))["current_rows"], 20000);

  // A loop of symbolic links is refused, not replaced.
  fs::remove(dir_ / "loop_a");
  fs::remove(dir_ / "loop_b");
  fs::create_symlink(dir_ / "loop_b", dir_ / "loop_a");
  fs::create_symlink(dir_ / "loop_a", dir_ / "loop_b");
  r = run(common + (dir_ / "day.tmp").string() + " --report " + (dir_ / "loop_a").string());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(fs::is_symlink(dir_ / "loop_a"));

  fs::create_directories(dir_ / "a_directory");
  r = run(common + (dir_ / "day.tmp").string() + " --report " + (dir_ / "a_directory").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("not a regular file"), std::string::npos) << r.err;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir_)) {
    EXPECT_EQ(entry.path().filename().string().find(".a_directory"), std::string::npos)
        << "left behind: " << entry.path();
  }
}

TEST_F(Cli, FlagsExactlyTheShiftedFeatures) {
  struct Scenario {
    std::string scenario, features;
  };
  for (const Scenario& s :
       {Scenario{"mean_shift", "income,utilization"}, Scenario{"variance_change", "debt_to_income"},
        Scenario{"category_mix", "region"}, Scenario{"missingness", "employment_years"}}) {
    SCOPED_TRACE(s.scenario);
    const std::string name = s.scenario + ".h5";
    synth(name, s.scenario, 3, s.features);
    const CommandResult r = scan(name, "--fail-on-drift");
    EXPECT_EQ(r.exit_code, 3) << r.err;
    std::set<std::string> expected;
    std::stringstream list(s.features);
    for (std::string f; std::getline(list, f, ',');) expected.insert(f);
    EXPECT_EQ(drifted(read_json(dir_ / (name + ".json"))), expected);
  }
}

TEST_F(Cli, KsAndMmdSeeTheShiftAndOnlyTheShift) {
  synth("ks_same.h5", "none", 6, "");
  synth("ks_shift.h5", "mean_shift", 7, "income,utilization");
  const std::string flags = "--drift-rule ks --mmd --mmd-rows 1000 --seed 1";
  ASSERT_EQ(scan("ks_same.h5", flags + " --fail-on-drift").exit_code, 0);
  const json same = read_json(dir_ / "ks_same.h5.json");
  EXPECT_TRUE(drifted(same).empty()) << same["features"].dump();
  EXPECT_GE(same["mmd"]["pvalue"].get<double>(), 0.05);
  EXPECT_FALSE(same["drift"]["dataset_drift"].get<bool>());

  EXPECT_EQ(scan("ks_shift.h5", flags + " --fail-on-drift").exit_code, 3);
  const json shift = read_json(dir_ / "ks_shift.h5.json");
  EXPECT_EQ(drifted(shift), (std::set<std::string>{"income", "utilization"}));
  EXPECT_LT(shift["mmd"]["pvalue"].get<double>(), 0.05);
  for (const json& f : shift["features"]) {
    const double p = f["ks"]["pvalue_adjusted"].get<double>();
    EXPECT_EQ(f["ks"]["drift"].get<bool>(), p < 0.05);
    EXPECT_GE(p, f["ks"]["pvalue"].get<double>());  // the correction never lowers a p-value
  }
}

TEST_F(Cli, ProfileScanEqualsRawScan) {
  const fs::path profile = dir_ / "reference.profile.h5";
  const CommandResult built =
      run(std::string(DRIFTGUARD_BIN) + " profile --backend cpu -q --mmd-rows 500 " +
          (dir_ / "reference.h5").string() + " -o " + profile.string());  // --reference optional
  ASSERT_EQ(built.exit_code, 0) << built.err;
  synth("current.h5", "mean_shift", 8, "income");
  const std::string common = " scan --backend cpu --mmd --mmd-rows 500 -q --current " +
                             (dir_ / "current.h5").string() + " --report ";
  ASSERT_EQ(run(std::string(DRIFTGUARD_BIN) + common + (dir_ / "raw.json").string() +
                " --reference " + (dir_ / "reference.h5").string())
                .exit_code,
            0);
  ASSERT_EQ(run(std::string(DRIFTGUARD_BIN) + common + (dir_ / "profile.json").string() +
                " --reference " + profile.string())
                .exit_code,
            0);
  json raw = read_json(dir_ / "raw.json"), from_profile = read_json(dir_ / "profile.json");
  EXPECT_TRUE(from_profile["reference"]["profile"].get<bool>());
  EXPECT_EQ(from_profile["reference"]["path"], profile.string());
  for (json* report : {&raw, &from_profile}) {
    report->erase("timing");
    report->erase("reference");
  }
  for (const auto& [key, value] : raw.items()) EXPECT_EQ(value, from_profile[key]) << key;

  // A profile is not a table, and a table is not a profile with a schema of its own.
  const CommandResult with_schema =
      run(std::string(DRIFTGUARD_BIN) + " scan --backend cpu --reference " + profile.string() +
          " --current " + (dir_ / "current.h5").string() + " --schema " +
          (dir_ / "schema.json").string());
  EXPECT_EQ(with_schema.exit_code, 1);
  // Nor do the inference options apply to a profile's schema: refused, not ignored.
  for (const char* option : {" --range-margin 0", " --max-categories 5"}) {
    const CommandResult inference =
        run(std::string(DRIFTGUARD_BIN) + " scan --backend cpu --reference " + profile.string() +
            " --current " + (dir_ / "current.h5").string() + option);
    EXPECT_EQ(inference.exit_code, 1) << option;
    EXPECT_NE(inference.err.find("apply to raw reference tables only"), std::string::npos)
        << inference.err;
  }
}

TEST_F(Cli, ModelScoreDriftFollowsItsInputs) {
  // A scorecard on income and utilization: its score drifts when income shifts, not otherwise.
  const fs::path model = dir_ / "scorecard.json";
  std::ofstream(model) << R"({"format": "driftguard-linear", "version": 1,
      "feature_names": ["income", "utilization"], "link": "logistic",
      "coefficients": [-1.2, 2.0], "intercepts": [-1.0],
      "standardize": {"mean": [50000, 0.3], "scale": [25000, 0.2]},
      "impute": [50000, 0.3]})";
  synth("score_same.h5", "none", 9, "");
  synth("score_shift.h5", "mean_shift", 10, "income");
  const std::string flags = "--no-distances --model " + model.string();
  ASSERT_EQ(scan("score_same.h5", flags).exit_code, 0);
  const json same = read_json(dir_ / "score_same.h5.json");
  ASSERT_EQ(same["score"]["outputs"].size(), 1u);
  EXPECT_FALSE(same["score"]["outputs"][0]["drifted"].get<bool>());
  EXPECT_LT(same["score"]["outputs"][0]["psi"].get<double>(), 0.1);

  ASSERT_EQ(scan("score_shift.h5", flags).exit_code, 0);
  const json shift = read_json(dir_ / "score_shift.h5.json");
  EXPECT_TRUE(shift["score"]["outputs"][0]["drifted"].get<bool>());
  EXPECT_LT(shift["score"]["outputs"][0]["ks"]["pvalue"].get<double>(), 1e-6);

  // Through a profile: it must have been built with the model.
  const fs::path without = dir_ / "no_scores.profile.h5", with = dir_ / "scores.profile.h5";
  const std::string profile = std::string(DRIFTGUARD_BIN) +
                              " profile -q --backend cpu --reference " +
                              (dir_ / "reference.h5").string();
  ASSERT_EQ(run(profile + " -o " + without.string()).exit_code, 0);
  ASSERT_EQ(run(profile + " -o " + with.string() + " --model " + model.string()).exit_code, 0);
  const CommandResult refused =
      run(std::string(DRIFTGUARD_BIN) + " scan --backend cpu --reference " + without.string() +
          " --current " + (dir_ / "score_shift.h5").string() + " " + flags);
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_NE(refused.err.find("no reference scores"), std::string::npos) << refused.err;
  const CommandResult from_profile =
      run(std::string(DRIFTGUARD_BIN) + " scan --backend cpu --reference " + with.string() +
          " --current " + (dir_ / "score_shift.h5").string() + " --report " +
          (dir_ / "from_profile.json").string() + " " + flags);
  ASSERT_EQ(from_profile.exit_code, 0) << from_profile.err;
  EXPECT_EQ(read_json(dir_ / "from_profile.json")["score"]["outputs"], shift["score"]["outputs"]);
}

TEST_F(Cli, HtmlReportShowsWhatTheJsonSays) {
  synth("html_shift.h5", "mean_shift", 14, "income");
  const std::string html = (dir_ / "html_shift.html").string();
  ASSERT_EQ(scan("html_shift.h5", "--mmd --html " + html).exit_code, 0);
  const json report = read_json(dir_ / "html_shift.h5.json");
  const std::string page = driftguard::testing::read_text(html);
  EXPECT_EQ(page.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(page.find("<script"), std::string::npos);
  const bool drift = report["drift"]["dataset_drift"].get<bool>();
  EXPECT_NE(page.find(std::string("dataset drift: <b>") + (drift ? "yes" : "no")),
            std::string::npos);
  EXPECT_NE(page.find("MMD permutation test"), std::string::npos);
  std::size_t drifted_rows = 0;
  for (std::size_t at = 0; (at = page.find("<tr class=\"drifted\">", at)) != std::string::npos;
       ++at) {
    ++drifted_rows;
  }
  EXPECT_EQ(drifted_rows, report["drift"]["features_drifted"].get<std::size_t>());
  for (const json& f : report["features"]) {
    EXPECT_NE(page.find("<td>" + f["name"].get<std::string>() + "</td>"), std::string::npos)
        << f["name"];
  }
  // Each bar pair says what it counts: a numeric bin's edges (the last closed) and both shares.
  const json& income = report["features"][0]["histogram"];
  ASSERT_EQ(report["features"][0]["name"], "income");
  const auto share = [](const json& slots, std::size_t i) {
    double total = 0;
    for (const json& s : slots) total += s.get<double>();
    char text[16];
    std::snprintf(text, sizeof text, "%.1f%%", 100 * slots[i].get<double>() / total);
    return std::string(text);
  };
  char edges[64];
  std::snprintf(edges, sizeof edges, "[%.6g, %.6g)", income["edges"][0].get<double>(),
                income["edges"][1].get<double>());
  EXPECT_NE(
      page.find("<g><title>" + std::string(edges) + ": reference " + share(income["reference"], 1) +
                ", current " + share(income["current"], 1) + "</title>"),
      std::string::npos)
      << edges;
  EXPECT_NE(page.find("<title>missing: reference "), std::string::npos);  // income has NaN
}

TEST_F(Cli, HtmlCommandRendersASavedReportAsScanDid) {
  synth("html_saved.h5", "mean_shift", 15, "income");
  const fs::path scan_page = dir_ / "html_saved.scan.html", page = dir_ / "html_saved.html";
  ASSERT_EQ(scan("html_saved.h5", "--mmd --html " + scan_page.string()).exit_code, 0);
  const CommandResult r = run(std::string(DRIFTGUARD_BIN) + " html " +
                              (dir_ / "html_saved.h5.json").string() + " -o " + page.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(driftguard::testing::read_text(page), driftguard::testing::read_text(scan_page));
  // A whole-run report has no windows to choose from.
  const CommandResult windowed =
      run(std::string(DRIFTGUARD_BIN) + " html " + (dir_ / "html_saved.h5.json").string() +
          " --window 0 -o " + (dir_ / "html_saved_window.html").string());
  EXPECT_EQ(windowed.exit_code, 1);
  EXPECT_NE(windowed.err.find("--window needs a --windows-jsonl file"), std::string::npos)
      << windowed.err;
}

TEST_F(Cli, HtmlCommandRendersOneWindowRecord) {
  synth("html_windows.h5", "mean_shift", 16, "income");
  const fs::path jsonl = dir_ / "html_windows.jsonl", page = dir_ / "html_window.html";
  ASSERT_EQ(
      scan("html_windows.h5", "--no-distances --window-rows 5000 --windows-jsonl " + jsonl.string())
          .exit_code,
      0);
  const std::string html =
      std::string(DRIFTGUARD_BIN) + " html " + jsonl.string() + " -o " + page.string();
  const CommandResult r = run(html + " --window 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream records(driftguard::testing::read_text(jsonl));
  json record;
  for (std::string line; std::getline(records, line);) {
    if (json::parse(line)["window"]["index"] == 2) record = json::parse(line);
  }
  ASSERT_TRUE(record.is_object());
  const std::string text = driftguard::testing::read_text(page);
  EXPECT_NE(text.find("<p>window 2: file rows 10000 to 15000 (end excluded)</p>"),
            std::string::npos);
  std::size_t drifted_rows = 0;
  for (std::size_t at = 0; (at = text.find("<tr class=\"drifted\">", at)) != std::string::npos;
       ++at) {
    ++drifted_rows;
  }
  EXPECT_EQ(drifted_rows, record["drift"]["features_drifted"].get<std::size_t>());
  EXPECT_GT(drifted_rows, 0u);

  for (const std::string& bad : {std::string(""), std::string(" --window 9")}) {
    fs::remove(page);
    const CommandResult refused = run(html + bad);
    EXPECT_EQ(refused.exit_code, 1) << bad;
    EXPECT_EQ(std::count(refused.err.begin(), refused.err.end(), '\n'), 1) << refused.err;
    EXPECT_NE(refused.err.find(bad.empty() ? "choose one with --window" : "no record of window 9"),
              std::string::npos)
        << refused.err;
    EXPECT_FALSE(fs::exists(page)) << bad;
  }
}

TEST_F(Cli, HtmlCommandRefusesWhatIsNotAReport) {
  const fs::path page = dir_ / "not_a_report.html";
  const std::vector<std::pair<std::string, std::string>> inputs = {
      {"garbage", "not JSON"},
      {R"({"features": []})", "not a driftguard scan report"},
      {R"([{"report_version": 1}])", "not a driftguard scan report"},
      // Without its verdict a page would say "no drift" about a report that does not say so.
      {R"({"report_version": 1})", "not a complete scan report"},
      {R"({"report_version": 1, "drift": {"dataset_drift": "true"}, "features": []})",
       "not a complete scan report"},
      {R"({"report_version": 1, "current_rows": 1e400})", "not JSON"},
  };
  for (const auto& [text, message] : inputs) {
    const fs::path input = dir_ / "not_a_report.json";
    std::ofstream(input) << text;
    const CommandResult r =
        run(std::string(DRIFTGUARD_BIN) + " html " + input.string() + " -o " + page.string());
    EXPECT_EQ(r.exit_code, 1) << text;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(page)) << text;
  }
  const CommandResult missing =
      run(std::string(DRIFTGUARD_BIN) + " html " + (dir_ / "no_such_report.json").string() +
          " -o " + page.string());
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("cannot read the report"), std::string::npos) << missing.err;
}

TEST(HtmlReport, RendersMalformedFieldsAsDashes) {
  // A hand-edited report: wrong types where numbers and histograms belong still give a page.
  // Text fields holding arrays nested thousands deep are dashes too (writing them out recursed
  // once per level).
  const std::string deep = std::string(5000, '[') + std::string(5000, ']');
  const std::string page = driftguard::report_html(
      R"({"report_version": 1, "drift": {"dataset_drift": false}, "current_rows": "many",
          "backend": )" +
      deep + R"(, "features": [{"name": "x", "psi": "high", "kind": )" + deep +
      R"(, "histogram": {"reference": [1, "a", 3], "current": [1, 2, 3]}}]})");
  EXPECT_NE(page.find("<td>x</td>"), std::string::npos);
  EXPECT_EQ(page.find("<svg"), std::string::npos);
  EXPECT_EQ(page.find("[["), std::string::npos);
  EXPECT_NE(page.find("(&#8212; rows)"), std::string::npos) << page;
}

TEST(HtmlReport, EscapesEveryStringFromTheData) {
  driftguard::ScanReport report;
  report.current_path = "cur<rent>.h5";
  report.reference_path = "a&b.h5";
  driftguard::FeatureDrift feature;
  feature.name = "<img src=x onerror=\"alert('x')\">";
  feature.reference_slots = feature.current_slots = {0, 5, 0, 0};
  feature.points = {0.0, 1.0};
  report.features.push_back(feature);
  const std::string page = report.to_html();
  EXPECT_EQ(page.find("<img"), std::string::npos);
  EXPECT_EQ(page.find("cur<rent>"), std::string::npos);
  EXPECT_NE(page.find("&lt;img src=x onerror=&quot;alert(&#39;x&#39;)&quot;&gt;"),
            std::string::npos);
  EXPECT_NE(page.find("cur&lt;rent&gt;.h5"), std::string::npos);
  EXPECT_NE(page.find("a&amp;b.h5"), std::string::npos);
}

TEST(HtmlReport, ThousandsOfValueBinsDrawTheLargest) {
  driftguard::ScanReport report;
  driftguard::FeatureDrift feature;
  feature.name = "code";
  feature.kind = driftguard::FeatureKind::Categorical;
  // [underflow, 1000 codes, other, missing]: one current share of a half at code 700, the rest
  // spread evenly.
  feature.reference_slots.assign(1003, 1);
  feature.current_slots.assign(1003, 1);
  feature.reference_slots[0] = feature.current_slots[0] = 0;
  feature.reference_slots[1002] = feature.current_slots[1002] = 0;
  feature.current_slots[701] = 1001;
  for (int code = 0; code < 1000; ++code) feature.points.push_back(code);
  report.features.push_back(feature);
  const std::string page = report.to_html();
  std::size_t bars = 0;
  for (std::size_t at = page.find("<g><title>"); at != std::string::npos;
       at = page.find("<g><title>", at + 1)) {
    ++bars;
  }
  EXPECT_EQ(bars, 128u);
  EXPECT_NE(page.find("<g><title>code 700: reference 0.1%, current 50.0%"), std::string::npos);
  EXPECT_NE(page.find("128 of 1001 slots: those with the largest shares"), std::string::npos);
}

TEST_F(Cli, EvidentlyValueBinsAreReportedAsValues) {
  // evidently bins a numeric feature with few distinct values by value: its histogram lists those
  // values (as for a categorical feature), not B + 1 edges.
  for (const std::string name : {"halves_ref.h5", "halves_cur.h5"}) {
    driftguard::Hdf5Writer writer((dir_ / name).string(), {"half", "x"});
    std::vector<float> rows;
    for (int r = 0; r < 3000; ++r) {
      rows.push_back(0.5f + static_cast<float>(r % (name == "halves_ref.h5" ? 3 : 2)));
      rows.push_back(static_cast<float>(r) * 0.37f);
    }
    writer.append(rows.data(), 3000);
    writer.close();
  }
  const fs::path report = dir_ / "halves.json";
  const CommandResult r =
      run(std::string(DRIFTGUARD_BIN) + " scan --backend cpu --reference " +
          (dir_ / "halves_ref.h5").string() + " --current " + (dir_ / "halves_cur.h5").string() +
          " --binning evidently --no-distances --report " + report.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json features = read_json(report)["features"];
  const json& half = features[0]["histogram"];
  EXPECT_EQ(half["values"], json::parse("[0.5, 1.5, 2.5]")) << half.dump();
  EXPECT_FALSE(half.contains("edges"));
  EXPECT_EQ(half["reference"].size(), 6u);  // [underflow, 3 values, other, missing]
  EXPECT_TRUE(features[1]["histogram"].contains("edges"));
}

TEST_F(Cli, MmdThatCannotRunSaysWhy) {
  // Every current row has a NaN (one sparse column is enough): MMD has no row to sample, and the
  // report says so instead of leaving the test out.
  for (const std::string name : {"sparse_ref.h5", "sparse_cur.h5"}) {
    driftguard::Hdf5Writer writer((dir_ / name).string(), {"sparse", "x"});
    std::vector<float> rows;
    for (int r = 0; r < 400; ++r) {
      rows.push_back(name == "sparse_cur.h5" ? std::numeric_limits<float>::quiet_NaN() : 1.0f);
      rows.push_back(static_cast<float>(r % 37));
    }
    writer.append(rows.data(), 400);
    writer.close();
  }
  const fs::path report = dir_ / "sparse.json", page = dir_ / "sparse.html";
  const CommandResult r =
      run(std::string(DRIFTGUARD_BIN) + " scan --backend cpu --reference " +
          (dir_ / "sparse_ref.h5").string() + " --current " + (dir_ / "sparse_cur.h5").string() +
          " --mmd --report " + report.string() + " --html " + page.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json mmd = read_json(report)["mmd"];
  EXPECT_EQ(mmd["current_finite_rows"], 0) << mmd.dump();
  EXPECT_NE(mmd["skipped"].get<std::string>().find("0 rows without NaN or Inf"), std::string::npos);
  EXPECT_FALSE(mmd.contains("pvalue"));
  EXPECT_NE(r.out.find("MMD: not run: the current window has 0 rows"), std::string::npos) << r.out;
  EXPECT_NE(driftguard::testing::read_text(page).find("MMD permutation test</h2><p>not run:"),
            std::string::npos);
}

TEST_F(Cli, ScoresWithoutAFiniteReferenceValueAreRefusedClearly) {
  // float32(1e300) is infinite: every reference score is, and no bin edge can be drawn.
  const fs::path model = dir_ / "infinite_scores.json";
  std::ofstream(model) << R"({"format": "driftguard-linear", "version": 1,
      "feature_names": ["income"], "link": "identity", "coefficients": [1.0],
      "intercepts": [1e300]})";
  const CommandResult r = scan("reference.h5", "--no-distances --model " + model.string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("output 0 has no finite score on the reference window"), std::string::npos)
      << r.err;
}

TEST_F(Cli, ErrorsQuotingNamesWithNewlinesStayOneLine) {
  const fs::path model = dir_ / "newline_name.json";
  std::ofstream(model) << R"({"format": "driftguard-linear", "version": 1,
      "feature_names": ["no\nsuch"], "link": "identity", "coefficients": [1.0],
      "intercepts": [0.0]})";
  const CommandResult r = run(std::string(DRIFTGUARD_BIN) + " score --backend cpu --model " +
                              model.string() + " --input " + (dir_ / "reference.h5").string() +
                              " --output " + (dir_ / "newline_scores.h5").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("\"no\\nsuch\" is not among"), std::string::npos) << r.err;
}

TEST_F(Cli, FewValuedScoresAreBinnedByValue) {
  // A score with 4 values (the product code): merged deciles would put codes 2 and 3 in one bin;
  // binned by value each code has its own, and a changed product mix shows in the score's PSI.
  const fs::path model = dir_ / "product_code.json";
  std::ofstream(model) << R"({"format": "driftguard-linear", "version": 1,
      "feature_names": ["product"], "link": "identity", "coefficients": [1.0],
      "intercepts": [0.0]})";
  synth("product_same.h5", "none", 12, "");
  synth("product_mix.h5", "category_mix", 13, "product");
  const std::string flags = "--no-distances --no-ks --model " + model.string();
  ASSERT_EQ(scan("product_same.h5", flags).exit_code, 0);
  const json same = read_json(dir_ / "product_same.h5.json")["score"]["outputs"][0];
  EXPECT_EQ(same["histogram"]["values"], json::parse("[0.0, 1.0, 2.0, 3.0]")) << same.dump();
  EXPECT_FALSE(same["histogram"].contains("edges"));
  EXPECT_LT(same["psi"].get<double>(), 0.01);
  EXPECT_FALSE(same["drifted"].get<bool>());

  ASSERT_EQ(scan("product_mix.h5", flags).exit_code, 0);
  const json mix = read_json(dir_ / "product_mix.h5.json")["score"]["outputs"][0];
  EXPECT_EQ(mix["histogram"]["values"], same["histogram"]["values"]);
  EXPECT_TRUE(mix["drifted"].get<bool>()) << mix.dump();
  // Every current row is in a value's bin: none in the "other" slot, none missing.
  const auto slots = mix["histogram"]["current"].get<std::vector<std::uint64_t>>();
  ASSERT_EQ(slots.size(), 4u + 3u);
  EXPECT_EQ(slots[0] + slots[5] + slots[6], 0u);

  // A score no reference row had counts in "other", and PSI takes that slot as a bin of its own
  // (folded into the last value's bin, 30 % new scores read as PSI 0.23 instead of 2.5).
  for (const auto& [name, new_share] :
       {std::pair{"codes_ref.h5", 0}, std::pair{"codes_new.h5", 3}}) {
    driftguard::Hdf5Writer writer((dir_ / name).string(), {"product"});
    std::vector<float> rows;
    for (int r = 0; r < 4000; ++r) rows.push_back(r % 10 < new_share ? 9.0f : float(r % 4));
    writer.append(rows.data(), rows.size());
    writer.close();
  }
  const fs::path report = dir_ / "codes.json";
  const CommandResult r =
      run(std::string(DRIFTGUARD_BIN) + " scan --backend cpu --reference " +
          (dir_ / "codes_ref.h5").string() + " --current " + (dir_ / "codes_new.h5").string() +
          " " + flags + " --report " + report.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json score = read_json(report)["score"]["outputs"][0];
  const auto current = score["histogram"]["current"].get<std::vector<std::uint64_t>>();
  ASSERT_EQ(current.size(), 7u) << score.dump();
  EXPECT_EQ(current[5], 1200u);  // the "other" slot
  double expected = 0;
  for (int value = 0; value < 4; ++value) {
    const double c = static_cast<double>(current[1 + value]) / 4000, ref = 0.25;
    expected += (c - ref) * std::log(c / ref);
  }
  expected += (0.3 - 1e-4) * std::log(0.3 / 1e-4);
  EXPECT_NEAR(score["psi"].get<double>(), expected, 1e-12);
}

TEST_F(Cli, OutOfRangeValuesAreCountedInvalid) {
  synth("out_of_range.h5", "out_of_range", 4, "age");
  ASSERT_EQ(scan("out_of_range.h5").exit_code, 0);
  const json report = read_json(dir_ / "out_of_range.h5.json");
  for (const json& f : report["features"]) {
    const auto out = f["validation"]["below_min"].get<std::uint64_t>() +
                     f["validation"]["above_max"].get<std::uint64_t>();
    if (f["name"] == "age") {
      EXPECT_GT(out, 200u);
    }
  }
  EXPECT_GT(report["validation"]["rows_invalid"].get<std::uint64_t>(), 200u);

  // --fail-on-invalid gates on the invalid fraction, before --fail-on-drift (KS sees the shift of
  // age); 0 fails on any invalid row.
  const auto invalid = report["validation"]["rows_invalid"].get<double>();
  const auto rows = report["validation"]["rows"].get<double>();
  const double fraction = invalid / rows;
  for (const auto& [gate, code] :
       {std::pair{fraction * 0.9, 4}, std::pair{0.0, 4}, std::pair{fraction * 1.1, 3}}) {
    const CommandResult r =
        scan("out_of_range.h5",
             "--drift-rule ks --fail-on-drift --fail-on-invalid " + std::to_string(gate));
    EXPECT_EQ(r.exit_code, code) << gate << "\n" << r.out << r.err;
    EXPECT_EQ(r.out.find("more than --fail-on-invalid") != std::string::npos, code == 4) << r.out;
  }
  EXPECT_EQ(scan("reference.h5", "--fail-on-invalid 0").exit_code, 0);
  EXPECT_EQ(scan("reference.h5", "--fail-on-invalid 1.5").exit_code, 2);
  // NaN passed CLI::Range and turned the gate off (no count is more than NaN rows).
  for (const std::string gate : {"nan", "-nan", "inf"}) {
    const CommandResult r = scan("out_of_range.h5", "--fail-on-invalid " + gate);
    EXPECT_EQ(r.exit_code, 2) << gate << "\n" << r.err;
    EXPECT_EQ(r.err,
              "driftguard: --fail-on-invalid: must be a number in [0, 1], got " + gate + "\n");
  }
}

TEST_F(Cli, SchemaCommandRoundTripsIntoScan) {
  const fs::path schema = dir_ / "schema.json";
  const CommandResult inferred = run(std::string(DRIFTGUARD_BIN) + " schema --reference " +
                                     (dir_ / "reference.h5").string() + " -o " + schema.string());
  ASSERT_EQ(inferred.exit_code, 0) << inferred.err;
  synth("same2.h5", "none", 5, "");
  const CommandResult r = scan("same2.h5", "--schema " + schema.string());
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_FALSE(read_json(dir_ / "same2.h5.json")["schema_inferred"].get<bool>());

  // Labels given to a categorical feature's codes name its histogram's bins; a code the schema
  // does not list (its last one, dropped here: the reference still has it) has none.
  json labelled = read_json(schema);
  json* feature = nullptr;
  for (json& f : labelled["features"]) {
    if (f["kind"] == "categorical" && f["categories"].size() >= 2) feature = &f;
  }
  ASSERT_NE(feature, nullptr);
  json& codes = (*feature)["categories"];
  codes.erase(codes.size() - 1);
  json labels = json::array();
  for (const json& code : codes) labels.push_back("code " + code.dump());
  (*feature)["labels"] = labels;
  std::ofstream(dir_ / "labelled.json") << labelled.dump();
  ASSERT_EQ(scan("same2.h5", "--schema " + (dir_ / "labelled.json").string()).exit_code, 0);
  for (const json& f : read_json(dir_ / "same2.h5.json")["features"]) {
    if (f["name"] != (*feature)["name"]) {
      EXPECT_FALSE(f["histogram"].contains("labels")) << f["name"];
      continue;
    }
    const json& bins = f["histogram"]["categories"];
    json expected = labels;
    expected.push_back(nullptr);
    ASSERT_EQ(bins.size(), expected.size());
    EXPECT_EQ(f["histogram"]["labels"], expected);
  }
}

TEST_F(Cli, BadInputGivesOneLineAndNonZeroExit) {
  const fs::path text = dir_ / "not_hdf5.h5";
  std::ofstream(text) << "hello\n";
  CommandResult r = scan("not_hdf5.h5");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("not an HDF5 file"), std::string::npos) << r.err;

  r = run(std::string(DRIFTGUARD_BIN) + " scan --reference x.h5");  // --current missing
  EXPECT_EQ(r.exit_code, 2) << r.err;
  r = scan("same.h5", "--backend gpu");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  // libgomp crashed creating a team of 100000 threads: a usage error, and refused by the library.
  r = scan("reference.h5", "--threads 100000");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("must be a whole number from 0 to 1024"), std::string::npos) << r.err;
  EXPECT_THROW(driftguard::Context(driftguard::ContextOptions{.cpu_threads = 100000}),
               driftguard::InvalidInput);
  // A profile written over its own reference would destroy the data.
  const std::string reference = (dir_ / "reference.h5").string();
  r = run(std::string(DRIFTGUARD_BIN) + " profile --reference " + reference + " -o " + reference);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("is the --reference file"), std::string::npos) << r.err;
  EXPECT_EQ(scan("reference.h5").exit_code, 0);  // still the data table
  // A report that is not text: the parser's message quotes its bytes, which reach the terminal
  // as escapes (one line of UTF-8), not raw.
  const fs::path binary = dir_ / "binary_report.json";
  std::ofstream(binary, std::ios::binary) << "\x89PNG\r\n\x1a\n\xff\xfe\xc3(\xed\xa0\x80";
  r = run(std::string(DRIFTGUARD_BIN) + " html " + binary.string() + " -o " +
          (dir_ / "binary_report.html").string());
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("\\x89"), std::string::npos) << r.err;
  EXPECT_NO_THROW((void)json(r.err).dump()) << "stderr is not UTF-8";
  r = run("DRIFTGUARD_BACKEND=cuda " + std::string(DRIFTGUARD_BIN) + " scan --reference " +
          (dir_ / "reference.h5").string() + " --current " + (dir_ / "reference.h5").string());
  if (driftguard::cuda_device_count() == 0) {
    EXPECT_EQ(r.exit_code, 1) << r.err;  // no device here: an error, never a silent fallback
    EXPECT_NE(r.err.find("CUDA"), std::string::npos) << r.err;
  }
}

// Bad command lines, found by fuzzing: each is refused before any work with one line and exit 2
// (CLI11 wrapped "-1" into unsigned options, saturated numbers past their type, let NaN through
// its Range, and printed two lines without the prefix; some combinations failed later as runs).
TEST_F(Cli, UsageErrorsAreOneLineAndExitTwo) {
  const std::string ref = (dir_ / "reference.h5").string(), out = (dir_ / "usage_out").string();
  const std::string scan_args = "scan --backend cpu --reference " + ref + " --current " + ref;
  const std::string profile_args = "profile --backend cpu --reference " + ref + " -o " + out;
  const std::string score_args =
      "score --backend cpu --model " + ref + ".json --input " + ref + " --output " + out;
  const std::string u64_max = "18446744073709551615", i64_max = "9223372036854775807";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"", "A subcommand is required"},
      {"scna --reference " + ref, "'scna' is not a command (scan, schema, profile, score, html)"},
      {scan_args + " --mmd-rows 500", "--mmd-rows requires --mmd"},
      {scan_args + " --mmd-pvalue alibi", "--mmd-pvalue requires --mmd"},
      {scan_args + " --best-iteration", "--best-iteration requires --model"},
      {profile_args + " --iteration-end 3", "--iteration-end requires --model"},
      {scan_args + " --model m.json --iteration-begin 4 --iteration-end 3",
       "--iteration-begin 4 is past --iteration-end 3"},
      {scan_args + " --no-such-option", "not expected: --no-such-option"},
      {scan_args + " --bins 0", "--bins: must be a whole number from 1 to 100000, got 0"},
      {scan_args + " --alpha 0", "--alpha: must be a number in (0, 1), got 0"},
      {scan_args + " --alpha 1", "--alpha: must be a number in (0, 1), got 1"},
      {scan_args + " --alpha nan", "--alpha: must be a number in (0, 1), got nan"},
      {scan_args + " --max-categories -1",
       "--max-categories: must be a whole number from 0 to " + u64_max + ", got -1"},
      {scan_args + " --seed 18446744073709551616", "--seed: must be a whole number from 0 to"},
      {scan_args + " --seed -1", "--seed: must be a whole number from 0 to"},
      {scan_args + " --mmd-rows 1", "--mmd-rows: must be a whole number from 2 to 1073741824"},
      {scan_args + " --mmd-permutations 0", "--mmd-permutations: must be a whole number from 1"},
      {scan_args + " --mmd-permutations 4294967297", "--mmd-permutations: must be"},
      {scan_args + " --mmd --mmd-sigma 1e-200", "--mmd-sigma: must be a finite number of at least"},
      {scan_args + " --batch-rows 1.5", "--batch-rows: must be a whole number from 1 to"},
      {scan_args + " --window-rows -1", "--window-rows: must be a whole number from 1 to"},
      {scan_args + " --window-time 99999999999999999999",
       "--window-time: must be a whole number from 1 to " + i64_max},
      {scan_args + " --ring-buffers 65", "--ring-buffers: must be a whole number from 2 to 64"},
      {scan_args + " --threads -1", "--threads: must be a whole number from 0 to 1024"},
      {scan_args + " --range-margin nan", "--range-margin: must be a finite number >= 0"},
      {scan_args + " --psi-moderate 0.3", "--psi-moderate must be below --psi-significant"},
      {scan_args + " --window-rows 10 --window-time 10", "--window-rows excludes --window-time"},
      {scan_args + " --checkpoint " + out, "--checkpoint needs windows"},
      {scan_args + " --checkpoint " + out + " --resume", "--checkpoint needs windows"},
      {scan_args + " --window-rows 10 --resume", "--resume requires --checkpoint"},
      {scan_args + " --no-ks --drift-rule test", "--drift-rule test needs KS"},
      {profile_args + " --mmd-rows 1", "--mmd-rows: must be 0 (no MMD sample) or a whole number"},
      {profile_args + " --mmd-rows -1", "--mmd-rows: must be 0"},
      {profile_args + " --mmd-rows " + u64_max, "--mmd-rows: must be 0"},
      {profile_args + " --max-categories -1", "--max-categories: must be a whole number"},
      {profile_args + " --seed 18446744073709551616", "--seed: must be a whole number"},
      {"schema --reference " + ref + " --max-categories -1", "--max-categories: must be"},
      {score_args + " --iteration-begin 5 --iteration-end 3",
       "--iteration-begin 5 is past --iteration-end 3"},
      {score_args + " --iteration-end -1", "--iteration-end: must be a whole number"},
      {score_args + " --batch-rows 0", "--batch-rows: must be a whole number from 1"},
      {"html " + ref + " -o " + out + " --window -1", "--window: must be a whole number from 0"},
  };
  for (const auto& [args, message] : cases) {
    const CommandResult r = run(std::string(DRIFTGUARD_BIN) + " " + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("driftguard: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(message), std::string::npos) << args << "\n" << r.err;
    EXPECT_EQ(r.out, "") << args;
    EXPECT_FALSE(fs::exists(out)) << args;
  }

  // Help is not an error.
  const CommandResult help = run(std::string(DRIFTGUARD_BIN) + " scan --help");
  EXPECT_EQ(help.exit_code, 0) << help.err;
  EXPECT_EQ(help.err, "");
  EXPECT_NE(help.out.find("--fail-on-invalid"), std::string::npos);
  // CLI11 reads integers in base 0: "010" was 8 bins.
  ASSERT_EQ(scan("reference.h5", "--bins 010").exit_code, 0);
  EXPECT_EQ(read_json(dir_ / "reference.h5.json")["binning"]["bins"], 10);
  // profile --mmd-rows 0 keeps no MMD sample: fine for scans without --mmd, refused by --mmd.
  const std::string scan_profile = std::string(DRIFTGUARD_BIN) + " scan --backend cpu -q " +
                                   "--current " + ref + " --reference " + out;
  ASSERT_EQ(run(std::string(DRIFTGUARD_BIN) + " " + profile_args + " -q --mmd-rows 0").exit_code,
            0);
  EXPECT_EQ(run(scan_profile).exit_code, 0);
  const CommandResult mmd = run(scan_profile + " --mmd");
  EXPECT_EQ(mmd.exit_code, 1);
  EXPECT_NE(mmd.err.find("MMD needs at least 2 reference rows"), std::string::npos) << mmd.err;
  fs::remove(out);

  // An output over an input replaced the data with the report, exit 0.
  const fs::path victim = dir_ / "victim.h5", link = dir_ / "victim_link.h5";
  fs::copy_file(ref, victim, fs::copy_options::overwrite_existing);
  fs::remove(link);
  fs::create_symlink(victim, link);
  const std::string data = driftguard::testing::read_text(victim), v = victim.string();
  for (const std::string& args : std::vector<std::string>{
           "scan --reference " + ref + " --current " + v + " --report " + v,
           "scan --reference " + ref + " --current " + v + " --window-rows 5000 --windows-jsonl " +
               link.string(),
           "scan --reference " + v + " --current " + ref + " --html " + v,
           "scan --reference " + ref + " --current " + ref + " --report " + out + " --html " + out,
           "profile --reference " + v + " -o " + link.string(),
           "schema --reference " + v + " -o " + v,
           "score --model " + out + " --input " + v + " --output " + v}) {
    const CommandResult r = run(std::string(DRIFTGUARD_BIN) + " " + args);
    EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
    EXPECT_EQ(r.err.rfind("driftguard: ", 0), 0u) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(" file"), std::string::npos) << r.err;
    EXPECT_EQ(driftguard::testing::read_text(victim), data) << args;
    EXPECT_FALSE(fs::exists(out)) << args;
  }
  EXPECT_EQ(driftguard::testing::read_text(ref), driftguard::testing::read_text(victim));
}

TEST_F(Cli, MismatchedFeaturesAreRefused) {
  const std::string command = std::string(DRIFTGUARD_DATA_BIN) +
                              " synth --rows 100 --features 17 --seed 1 --scenario none --output " +
                              (dir_ / "wide.h5").string();
  ASSERT_EQ(run(command).exit_code, 0);
  const CommandResult r = scan("wide.h5");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("features"), std::string::npos) << r.err;
}

}  // namespace

// The library writes nothing itself: under --backend auto an error stays one line, and the
// summary says why auto ran on the CPU.
TEST_F(Cli, AutoBackendGivesItsReasonInTheSummaryNotOnStderr) {
  const std::string base = "env -u DRIFTGUARD_BACKEND " + std::string(DRIFTGUARD_BIN) +
                           " scan --backend auto --reference " + (dir_ / "reference.h5").string() +
                           " --current ";
  CommandResult r = run(base + (dir_ / "absent.h5").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  r = run(base + (dir_ / "reference.h5").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  const driftguard::Context named(driftguard::ContextOptions{.backend = driftguard::Backend::Cpu});
  EXPECT_EQ(named.auto_cpu_reason(), "");
  if (driftguard::cuda_device_count() == 0) {
    const std::string reason =
        driftguard::cuda_compiled() ? "no CUDA device found" : "built without CUDA";
    EXPECT_NE(r.out.find("(CPU ("), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("; auto: " + reason + ")"), std::string::npos) << r.out;
    EXPECT_EQ(driftguard::Context(driftguard::ContextOptions{.backend = driftguard::Backend::Auto})
                  .auto_cpu_reason(),
              reason);
  }
}

// Broken data must not read as "no drift", nor stop the other features' scan: a column empty in
// the reference gets one bin for every finite value, and a column that empties out in the current
// window drifts under evidently's binning too (PSI was NaN there, which read as stable).
TEST_F(Cli, AColumnWithoutValuesInOneWindowDriftsAndTheOthersAreScanned) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const auto write = [&](const std::string& name, bool empty_column) {
    driftguard::Hdf5Writer writer((dir_ / name).string(), {"emptied", "x"});
    std::vector<float> rows;
    for (int r = 0; r < 600; ++r) {
      rows.push_back(empty_column ? nan : static_cast<float>(r % 50));
      rows.push_back(static_cast<float>((r * 7) % 101));
    }
    writer.append(rows.data(), 600);
    writer.close();
  };
  write("full.h5", false);
  write("emptied.h5", true);
  for (const auto& [reference, current, binning] :
       {std::tuple{"emptied.h5", "full.h5", "quantile"},
        std::tuple{"emptied.h5", "full.h5", "equal_width"},
        std::tuple{"full.h5", "emptied.h5", "evidently"},
        std::tuple{"emptied.h5", "full.h5", "evidently"}}) {
    const fs::path report = dir_ / "emptied.json";
    const CommandResult r =
        run(std::string(DRIFTGUARD_BIN) + " scan --backend cpu --reference " +
            (dir_ / reference).string() + " --current " + (dir_ / current).string() +
            " --binning " + binning + " --report " + report.string());
    const std::string what = std::string(reference) + " vs " + current + ", " + binning;
    ASSERT_EQ(r.exit_code, 0) << what << "\n" << r.err;
    const json features = read_json(report)["features"];
    EXPECT_TRUE(features[0]["drifted"].get<bool>()) << what << "\n" << features[0].dump();
    EXPECT_EQ(features[0]["band"], "significant") << what;
    EXPECT_GT(features[0]["psi"].get<double>(), 1.0) << what;
    EXPECT_TRUE(features[0]["ks"]["statistic"].is_null()) << what;  // no sample on one side
    EXPECT_FALSE(features[1]["drifted"].get<bool>()) << what;
    EXPECT_EQ(features[1]["psi"].get<double>(), 0.0) << what;
  }
  // Under the test rules too: the emptied column has no test, which is drift, not "no drift".
  for (const auto& [reference, current, rule] :
       {std::tuple{"emptied.h5", "full.h5", "ks"}, std::tuple{"full.h5", "emptied.h5", "ks"},
        std::tuple{"full.h5", "emptied.h5", "test"}}) {
    const fs::path report = dir_ / "emptied_ks.json";
    const CommandResult r =
        run(std::string(DRIFTGUARD_BIN) + " scan --backend cpu --fail-on-drift --drift-rule " +
            rule + " --reference " + (dir_ / reference).string() + " --current " +
            (dir_ / current).string() + " --report " + report.string());
    const std::string what = std::string(reference) + " vs " + current + ", " + rule;
    EXPECT_EQ(r.exit_code, 3) << what << "\n" << r.err;
    const json doc = read_json(report);
    EXPECT_TRUE(doc["features"][0]["drifted"].get<bool>()) << what;
    EXPECT_TRUE(doc["features"][0]["ks"]["pvalue"].is_null()) << what;
    EXPECT_FALSE(doc["features"][1]["drifted"].get<bool>()) << what;
    EXPECT_EQ(doc["features"][1]["ks"]["pvalue"].get<double>(), 1.0) << what;
    EXPECT_NE(doc["drift"]["rule"].get<std::string>().find("one side only"), std::string::npos);
  }
  // A windowed scan under evidently's per-window bins has no whole-file PSI: no band either
  // (it read "stable" for a feature significant in every window), and no whole-file histogram.
  const fs::path windowed = dir_ / "emptied_windows.json";
  const CommandResult r = run(std::string(DRIFTGUARD_BIN) +
                              " scan --backend cpu --binning evidently --window-rows 300 " +
                              "--reference " + (dir_ / "full.h5").string() + " --current " +
                              (dir_ / "emptied.h5").string() + " --report " + windowed.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json emptied = read_json(windowed)["features"][0];
  EXPECT_TRUE(emptied["psi"].is_null()) << emptied.dump();
  EXPECT_TRUE(emptied["band"].is_null()) << emptied.dump();
  EXPECT_FALSE(emptied.contains("histogram")) << emptied.dump();
  EXPECT_TRUE(emptied["drifted"].get<bool>());
  EXPECT_EQ(emptied["windows_drifted"], 2);
}

// Real time-ordered data against SciPy and NumPy: the NOAA weather stream in decade windows
// (tests/golden/make_weather_windows_golden.py). Every window's KS (statistic, exact p-value,
// BH-adjusted p-value), Wasserstein, Cramer-von Mises and PSI.
TEST_F(Cli, WeatherDecadeWindowsMatchSciPy) {
  const fs::path root = source_dir();
  const fs::path out = dir_ / "weather";
  CommandResult r =
      run(std::string(DRIFTGUARD_DATA_BIN) + " weather --input " +
          (root / "datasets/noaa_weather.csv.gz").string() + " --output-dir " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path windows = out / "windows.jsonl";
  r = run(std::string(DRIFTGUARD_BIN) + " scan --backend cpu --reference " +
          (out / "weather_reference.h5").string() + " --current " +
          (out / "weather_stream.h5").string() + " --window-time 3650 --windows-jsonl " +
          windows.string() + " --report " + (out / "report.json").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json& golden = driftguard::testing::golden("weather_windows.json");
  std::ifstream lines(windows);
  std::vector<json> records;
  for (std::string line; std::getline(lines, line);) records.push_back(json::parse(line));
  ASSERT_EQ(records.size(), golden["windows"].size());
  for (std::size_t w = 0; w < records.size(); ++w) {
    const json& expected = golden["windows"][w];
    const json& record = records[w];
    EXPECT_EQ(record["current_rows"], expected["rows"]) << w;
    EXPECT_EQ(record["window"]["time"]["begin"].get<std::int64_t>(),
              expected["first_day"].get<std::int64_t>() / 3650 * 3650)
        << w;
    ASSERT_EQ(record["features"].size(), expected["features"].size());
    for (std::size_t f = 0; f < expected["features"].size(); ++f) {
      const json& e = expected["features"][f];
      const json& a = record["features"][f];
      SCOPED_TRACE("window " + std::to_string(w) + ", " + e["name"].get<std::string>());
      EXPECT_EQ(a["name"], e["name"]);
      EXPECT_EQ(a["ks"]["method"], e["ks"]["method"]);
      EXPECT_TRUE(close(a["ks"]["statistic"], e["ks"]["statistic"], 1e-14)) << a["ks"].dump();
      EXPECT_TRUE(close(a["ks"]["pvalue"], e["ks"]["pvalue"], 1e-10)) << a["ks"].dump();
      EXPECT_TRUE(close(a["ks"]["pvalue_adjusted"], e["ks"]["pvalue_bh"], 1e-10)) << a["ks"].dump();
      EXPECT_TRUE(close(a["wasserstein"], e["wasserstein"], 1e-12)) << a["wasserstein"];
      EXPECT_TRUE(close(a["cramer_von_mises"]["statistic"], e["cvm"]["statistic"], 1e-12))
          << a["cramer_von_mises"].dump();
      // SciPy's p is 1 - a series summed until a term is below 1e-7: for the large statistics of
      // the shifted decades it is that series' residue (~1e-9; the true tail is far smaller).
      // driftguard sums the same series, so they agree to rounding: 1e-14 absolute, as
      // test_distances allows.
      EXPECT_TRUE(close(a["cramer_von_mises"]["pvalue"], e["cvm"]["pvalue"], 1e-10, 1e-14))
          << a["cramer_von_mises"].dump();
      EXPECT_TRUE(close(a["psi"], e["psi"], 1e-12)) << a["psi"];
    }
  }
}

// Real categorical data against SciPy and NumPy: the German credit applicants split by age
// (tests/golden/make_german_golden.py), text categories coded and labelled by driftguard-data.
TEST_F(Cli, GermanCreditAgeSplitMatchesSciPy) {
  const fs::path out = dir_ / "german";
  CommandResult r = run(std::string(DRIFTGUARD_DATA_BIN) + " german --input " +
                        (source_dir() / "datasets/german_credit.csv.gz").string() +
                        " --output-dir " + out.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const fs::path report = out / "report.json";
  r = run(std::string(DRIFTGUARD_BIN) + " scan --backend cpu --reference " +
          (out / "german_age_reference.h5").string() + " --current " +
          (out / "german_age_current.h5").string() + " --schema " +
          (out / "german.schema.json").string() + " --report " + report.string() + " --html " +
          (out / "report.html").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // The table cuts names past 40 bytes (they overflowed its 256-byte lines) and aligns the rest.
  EXPECT_NE(r.out.find("\ninstallment_rate_in_percentage_of_dispo~ numeric "), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("\nhousing                                  categorical "),
            std::string::npos);
  // The page names the categories by their labels.
  EXPECT_NE(driftguard::testing::read_text(out / "report.html")
                .find("<g><title>rent (code 2): reference "),
            std::string::npos);
  const json& golden = driftguard::testing::golden("german_age.json");
  const json actual = read_json(report);
  EXPECT_EQ(actual["reference_rows"], golden["reference_rows"]);
  EXPECT_EQ(actual["current_rows"], golden["current_rows"]);
  ASSERT_EQ(actual["features"].size(), golden["features"].size());
  for (std::size_t f = 0; f < golden["features"].size(); ++f) {
    const json& e = golden["features"][f];
    const json& a = actual["features"][f];
    SCOPED_TRACE(e["name"].get<std::string>());
    EXPECT_EQ(a["name"], e["name"]);
    EXPECT_EQ(a["ks"]["method"], e["ks"]["method"]);
    EXPECT_TRUE(close(a["ks"]["statistic"], e["ks"]["statistic"], 1e-14));
    EXPECT_TRUE(close(a["ks"]["pvalue"], e["ks"]["pvalue"], 1e-10));
    EXPECT_TRUE(close(a["ks"]["pvalue_adjusted"], e["ks"]["pvalue_bh"], 1e-10));
    EXPECT_TRUE(close(a["psi"], e["psi"], 1e-12));
    if (e.contains("chi_squared")) {
      EXPECT_EQ(a["kind"], "categorical");
      EXPECT_EQ(a["histogram"]["labels"], e["labels"]);
      EXPECT_EQ(a["chi_squared"]["dof"], e["chi_squared"]["dof"]);
      EXPECT_TRUE(
          close(a["chi_squared"]["statistic"], e["chi_squared"]["statistic"], 1e-12, 1e-14));
      EXPECT_TRUE(close(a["chi_squared"]["pvalue"], e["chi_squared"]["pvalue"], 1e-10));
    } else {
      EXPECT_EQ(a["kind"], "numeric");
      EXPECT_TRUE(close(a["wasserstein"], e["wasserstein"], 1e-12));
      EXPECT_TRUE(close(a["cramer_von_mises"]["statistic"], e["cvm"]["statistic"], 1e-12));
      // The series residue below 1e-7 (see WeatherDecadeWindowsMatchSciPy).
      EXPECT_TRUE(close(a["cramer_von_mises"]["pvalue"], e["cvm"]["pvalue"], 1e-10, 1e-14));
    }
  }

  // The test rules decide as SciPy's p-values do: KS over every feature, or chi-squared for the
  // categorical ones (job: KS of its codes 0.25 after BH, chi-squared 7e-4).
  for (const std::string rule : {"ks", "test"}) {
    SCOPED_TRACE(rule);
    const fs::path decided = out / ("report_" + rule + ".json");
    r = run(std::string(DRIFTGUARD_BIN) + " scan --backend cpu --drift-rule " + rule +
            " --reference " + (out / "german_age_reference.h5").string() + " --current " +
            (out / "german_age_current.h5").string() + " --schema " +
            (out / "german.schema.json").string() + " --report " + decided.string() + " --html " +
            (out / ("report_" + rule + ".html")).string());
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // The page marks the adjusted p-values that are chi-squared's.
    EXPECT_EQ(driftguard::testing::read_text(out / ("report_" + rule + ".html"))
                      .find(" (&#967;&#178;)</td>") != std::string::npos,
              rule == "test");
    const json features = read_json(decided)["features"];
    std::size_t drifted = 0;
    for (std::size_t f = 0; f < golden["features"].size(); ++f) {
      const json& e = golden["features"][f];
      const json& a = features[f];
      SCOPED_TRACE(e["name"].get<std::string>());
      const bool chi_squared = rule == "test" && e.contains("chi_squared");
      const json& expected = rule == "ks" ? e["ks"]["pvalue_bh"] : e["test_pvalue_bh"];
      const json& adjusted =
          chi_squared ? a["chi_squared"]["pvalue_adjusted"] : a["ks"]["pvalue_adjusted"];
      EXPECT_TRUE(close(adjusted, expected, 1e-10));
      if (chi_squared) {
        EXPECT_TRUE(a["ks"]["pvalue_adjusted"].is_null());
      }
      EXPECT_EQ(a["drifted"].get<bool>(), expected.get<double>() < 0.05);
      drifted += a["drifted"].get<bool>() ? 1 : 0;
      if (e["name"] == "job") {
        EXPECT_EQ(a["drifted"].get<bool>(), rule == "test");
      }
    }
    EXPECT_NE(r.out.find(rule == "test" ? "test p adj" : " KS p adj"), std::string::npos);
    EXPECT_NE(r.out.find("drift: " + std::to_string(drifted) + " of 20 features"),
              std::string::npos)
        << r.out;
  }
}
