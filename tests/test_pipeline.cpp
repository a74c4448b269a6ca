// The streaming scan end to end (`driftguard scan` with windows, checkpoints, bad blocks, failover)
// and the Monitor API it is built on. Oracles: each window's report equals a plain scan of a file
// holding exactly that window's rows; an interrupted (SIGKILL) and resumed run equals an
// uninterrupted one; a failed-over run equals a CPU run; a Monitor fed from several threads equals
// one fed in order.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <hdf5.h>

#include <nlohmann/json.hpp>

#include "command.hpp"
#include "driftguard/context.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/monitor.hpp"
#include "driftguard/profile.hpp"
#include "hdf5_damage.hpp"
#include "host/checkpoint.hpp"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using driftguard::testing::CommandResult;
using driftguard::testing::corrupt_chunk;
using nlohmann::json;

constexpr std::size_t kFeatures = 8;

// The tools under test; DRIFTGUARD_CLI / DRIFTGUARD_DATA move them (bench/device_check.sh).
std::string cli() { return driftguard::testing::tool_path("DRIFTGUARD_CLI", DRIFTGUARD_BIN); }
std::string data_tool() {
  return driftguard::testing::tool_path("DRIFTGUARD_DATA", DRIFTGUARD_DATA_BIN);
}

json read_json(const fs::path& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  if (!in) return json();
  return json::parse(in);
}

std::vector<json> read_jsonl(const fs::path& path) {
  std::ifstream in(path);
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) {
    EXPECT_FALSE(line.empty()) << path << ": empty line";
    if (!line.empty()) lines.push_back(json::parse(line));
  }
  return lines;
}

std::size_t count_lines(const fs::path& path) {
  const std::string text = driftguard::testing::read_text(path);
  return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

// A report without what may differ between runs with equal results.
json without(json doc, std::initializer_list<const char*> keys) {
  for (const char* key : keys) doc.erase(key);
  return doc;
}
json untimed(const json& doc) { return without(doc, {"timing"}); }

// Numbers equal to a relative 1e-9 (CPU vs CUDA float reductions), everything else exactly.
void expect_near_json(const json& a, const json& b, const std::string& where) {
  if (a.is_number_float() || b.is_number_float()) {
    ASSERT_TRUE(a.is_number() && b.is_number()) << where << ": " << a << " vs " << b;
    const double x = a.get<double>(), y = b.get<double>();
    EXPECT_LE(std::abs(x - y), 1e-9 * std::max({1.0, std::abs(x), std::abs(y)}))
        << where << ": " << x << " vs " << y;
  } else if (a.is_object()) {
    ASSERT_TRUE(b.is_object()) << where;
    EXPECT_EQ(a.size(), b.size()) << where;
    for (const auto& [key, value] : a.items()) {
      ASSERT_TRUE(b.contains(key)) << where << "." << key;
      expect_near_json(value, b[key], where + "." + key);
    }
  } else if (a.is_array()) {
    ASSERT_TRUE(b.is_array()) << where;
    ASSERT_EQ(a.size(), b.size()) << where;
    for (std::size_t i = 0; i < a.size(); ++i) {
      expect_near_json(a[i], b[i], where + "[" + std::to_string(i) + "]");
    }
  } else {
    EXPECT_EQ(a, b) << where;
  }
}

struct Table {
  std::vector<std::string> names;
  std::vector<float> values;  // rows x names.size()
  std::vector<std::int64_t> timestamps;
  std::size_t rows() const { return names.empty() ? 0 : values.size() / names.size(); }
};

Table read_table(const fs::path& path) {
  driftguard::Hdf5BatchReader reader(path.string());
  Table t;
  t.names = reader.feature_names();
  t.values.resize(reader.rows() * reader.features());
  EXPECT_EQ(reader.read(0, reader.rows(), t.values.data()), reader.rows());
  if (reader.has_timestamp()) {
    t.timestamps.resize(reader.rows());
    reader.read_timestamp(0, reader.rows(), t.timestamps.data());
  }
  return t;
}

// Rows [first, end) of `t` minus the rows in `skip` ([first, end) pairs), written with the given
// chunking. Timestamps are written when `timestamps` is set (then it must hold one per row).
void write_table(const fs::path& path, const Table& t, std::size_t first, std::size_t end,
                 std::size_t chunk_rows = 0, int gzip = 0,
                 const std::vector<std::int64_t>* timestamps = nullptr,
                 std::vector<std::pair<std::size_t, std::size_t>> skip = {}) {
  driftguard::Hdf5Writer writer(path.string(), t.names,
                                {chunk_rows, gzip, false, timestamps != nullptr, false});
  const std::size_t f = t.names.size();
  std::size_t row = first;
  while (row < end) {
    std::size_t stop = end;
    bool skipped = false;
    for (const auto& [a, b] : skip) {
      if (row >= a && row < b) {
        row = b;
        skipped = true;
        break;
      }
      if (a > row) stop = std::min(stop, a);
    }
    if (skipped) continue;
    writer.append(t.values.data() + row * f, stop - row, nullptr,
                  timestamps ? timestamps->data() + row : nullptr);
    row = stop;
  }
  writer.close();
}

// A child process of the CLI, started without a shell so it can be killed precisely.
struct Child {
  pid_t pid = -1;
};

Child spawn(const std::vector<std::string>& args, const fs::path& err,
            const std::vector<std::string>& extra_env = {}) {
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<std::string> env_text(extra_env);
  for (char** e = environ; *e != nullptr; ++e) env_text.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& e : env_text) envp.push_back(e.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  Child child;
  const int rc = posix_spawn(&child.pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "posix_spawn " << args[0];
  return child;
}

int wait_status(const Child& child) {
  int status = 0;
  while (::waitpid(child.pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

// A path as one shell word (the test folders hold no quotes).
std::string quote(const fs::path& path) {
  std::string word(1, '\'');
  word.append(path.string()).push_back('\'');
  return word;
}

class Pipeline : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = driftguard::testing::process_temp_dir("driftguard_pipeline");
    synth("reference.h5", 20000, "none", 1);
    const CommandResult built =
        run(cli() + " profile --backend cpu -q --mmd-rows 400 --seed 5 " + "--reference " +
            quote(dir_ / "reference.h5") + " -o " + quote(profile()));
    ASSERT_EQ(built.exit_code, 0) << built.err;
  }
  static void TearDownTestSuite() { fs::remove_all(dir_); }

  static fs::path profile() { return dir_ / "reference.profile.h5"; }

  static void synth(const std::string& name, std::size_t rows, const std::string& scenario,
                    int seed) {
    std::string command = data_tool() + " synth --rows " + std::to_string(rows) + " --features " +
                          std::to_string(kFeatures) + " --seed " + std::to_string(seed) +
                          " --scenario " + scenario + " --output " + quote(dir_ / name);
    if (scenario == "mean_shift") command += " --drift-features income";
    const CommandResult r = run(command);
    ASSERT_EQ(r.exit_code, 0) << command << "\n" << r.err;
  }

  static CommandResult run(const std::string& command) {
    return driftguard::testing::run_command(command, dir_);
  }

  // `driftguard scan --backend cpu` of `current` against `reference` (the raw table by default).
  static CommandResult scan(const fs::path& current, const fs::path& report,
                            const std::string& extra, const fs::path& reference = {}) {
    return run(cli() + " scan --backend cpu -q --progress off --reference " +
               quote(reference.empty() ? dir_ / "reference.h5" : reference) + " --current " +
               quote(current) + " --report " + quote(report) + " " + extra);
  }

  static std::uint64_t u64(const json& j) { return j.get<std::uint64_t>(); }

  // The windows of a JSON Lines file tile [0, rows) in order, one line per window, and the final
  // report lists the same windows; rows + quarantined rows fill each window.
  static void expect_windows_tile(const std::vector<json>& lines, const json& report,
                                  std::uint64_t rows) {
    ASSERT_FALSE(lines.empty());
    ASSERT_EQ(report["windows"].size(), lines.size());
    std::uint64_t next = 0, validated = 0, quarantined = 0;
    for (std::size_t i = 0; i < lines.size(); ++i) {
      SCOPED_TRACE("window " + std::to_string(i));
      const json& w = lines[i]["window"];
      EXPECT_EQ(u64(w["index"]), i);
      EXPECT_EQ(u64(w["first_row"]), next);
      EXPECT_GT(u64(w["end_row"]), u64(w["first_row"]));
      EXPECT_EQ(u64(lines[i]["validation"]["rows"]) + u64(w["quarantined_rows"]),
                u64(w["end_row"]) - u64(w["first_row"]));
      EXPECT_EQ(u64(lines[i]["current_rows"]), u64(lines[i]["validation"]["rows"]));
      EXPECT_EQ(u64(lines[i]["quarantine"]["rows"]), u64(w["quarantined_rows"]));
      const json& summary = report["windows"][i];
      for (const char* key : {"index", "first_row", "end_row", "quarantined_rows"}) {
        EXPECT_EQ(summary[key], w[key]) << key;
      }
      EXPECT_EQ(summary.value("time", json()), w.value("time", json()));
      EXPECT_EQ(summary["rows"], lines[i]["validation"]["rows"]);
      EXPECT_EQ(summary["rows_ok"], lines[i]["validation"]["rows_ok"]);
      EXPECT_EQ(summary["dataset_drift"], lines[i]["drift"]["dataset_drift"]);
      validated += u64(lines[i]["validation"]["rows"]);
      quarantined += u64(w["quarantined_rows"]);
      next = u64(w["end_row"]);
    }
    EXPECT_EQ(next, rows);
    EXPECT_EQ(u64(report["validation"]["rows"]), validated);
    EXPECT_EQ(u64(report["quarantine"]["rows"]), quarantined);
    EXPECT_EQ(validated + quarantined, rows);
  }

  // Each window's record equals a plain (non-windowed) scan with the same flags of a file that
  // holds exactly the window's readable rows.
  static void expect_windows_equal_plain_scans(
      const std::vector<json>& lines, const Table& table, const std::string& flags,
      std::vector<std::pair<std::size_t, std::size_t>> quarantined = {}) {
    for (const json& line : lines) {
      const json& w = line["window"];
      const std::size_t first = u64(w["first_row"]), end = u64(w["end_row"]);
      SCOPED_TRACE("window rows [" + std::to_string(first) + ", " + std::to_string(end) + ")");
      const fs::path slice = dir_ / "slice.h5", slice_report = dir_ / "slice.json";
      fs::remove(slice_report);
      write_table(slice, table, first, end, 0, 0, nullptr, quarantined);
      const CommandResult r = scan(slice, slice_report, flags);
      ASSERT_EQ(r.exit_code, 0) << r.err;
      const json plain = read_json(slice_report);
      EXPECT_EQ(plain["current_rows"], line["current_rows"]);
      EXPECT_EQ(plain["validation"], line["validation"]);
      ASSERT_EQ(plain["features"].size(), line["features"].size());
      for (std::size_t f = 0; f < plain["features"].size(); ++f) {
        const json &p = plain["features"][f], &l = line["features"][f];
        SCOPED_TRACE(p["name"].get<std::string>());
        // The named quantities first (clear messages), then the whole feature.
        EXPECT_EQ(p["psi"], l["psi"]);
        EXPECT_EQ(p["validation"], l["validation"]);
        EXPECT_EQ(p["histogram"]["current"], l["histogram"]["current"]);
        if (p.contains("ks")) {
          EXPECT_EQ(p["ks"]["statistic"], l["ks"]["statistic"]);
          EXPECT_EQ(p["ks"]["pvalue"], l["ks"]["pvalue"]);
        }
        EXPECT_EQ(p, l);
      }
      EXPECT_EQ(plain.value("mmd", json()), line.value("mmd", json()));
      EXPECT_EQ(plain.value("score", json()), line.value("score", json()));
      EXPECT_EQ(plain["drift"], line["drift"]);
    }
  }

  static inline fs::path dir_;
};

// ---- 1. Windows by rows ----

TEST_F(Pipeline, RowWindowsEqualPlainScansOfTheirRows) {
  synth("rows_current.h5", 50000, "mean_shift", 11);
  const fs::path current = dir_ / "rows_current.h5";
  const Table table = read_table(current);
  ASSERT_EQ(table.rows(), 50000u);
  // A scorecard on income and utilization: score drift per window, scored batch by batch.
  const fs::path model = dir_ / "scorecard.json";
  std::ofstream(model) << R"({"format": "driftguard-linear", "version": 1,
      "feature_names": ["income", "utilization"], "link": "logistic",
      "coefficients": [-1.2, 2.0], "intercepts": [-1.0],
      "standardize": {"mean": [50000, 0.3], "scale": [25000, 0.2]}, "impute": [50000, 0.3]})";
  const std::string stats =
      "--mmd --mmd-rows 300 --mmd-permutations 40 --seed 5 --model " + quote(model);
  const fs::path jsonl = dir_ / "rows.jsonl", report_path = dir_ / "rows.json";
  // 12000 does not divide 50000 (a short last window) nor the batches of 7000 rows.
  const CommandResult r =
      scan(current, report_path,
           stats + " --window-rows 12000 --batch-rows 7000 --windows-jsonl " + quote(jsonl));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = read_json(report_path);
  const std::vector<json> lines = read_jsonl(jsonl);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_EQ(count_lines(jsonl), 5u);
  expect_windows_tile(lines, report, 50000);
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(u64(lines[i]["window"]["first_row"]), 12000 * i);
    EXPECT_EQ(u64(lines[i]["window"]["end_row"]), std::min<std::uint64_t>(12000 * (i + 1), 50000));
    EXPECT_FALSE(lines[i]["window"].contains("time"));
    EXPECT_TRUE(lines[i].contains("mmd"));
    ASSERT_TRUE(lines[i].contains("score"));
    EXPECT_TRUE(lines[i]["score"]["outputs"][0]["drifted"].get<bool>());  // income shifted
    EXPECT_FALSE(lines[i].contains("windows"));
  }
  // The injected shift is seen in every window.
  for (const json& line : lines) {
    for (const json& f : line["features"]) {
      if (f["name"] == "income") {
        EXPECT_TRUE(f["drifted"].get<bool>()) << line["window"];
      }
    }
  }
  expect_windows_equal_plain_scans(lines, table, stats);

  // The final report: whole-file validation and histograms equal a streaming plain scan's.
  const fs::path whole_path = dir_ / "rows_whole.json";
  ASSERT_EQ(scan(current, whole_path, "--no-ks --no-distances").exit_code, 0);
  const json whole = read_json(whole_path);
  EXPECT_EQ(report["validation"], whole["validation"]);
  EXPECT_EQ(report["current_rows"], whole["current_rows"]);
  ASSERT_EQ(report["features"].size(), whole["features"].size());
  for (std::size_t f = 0; f < whole["features"].size(); ++f) {
    const json &a = report["features"][f], &b = whole["features"][f];
    SCOPED_TRACE(b["name"].get<std::string>());
    EXPECT_EQ(a["histogram"], b["histogram"]);
    EXPECT_EQ(a["validation"], b["validation"]);
    EXPECT_EQ(a["psi"], b["psi"]);
    EXPECT_EQ(a["band"], b["band"]);
    EXPECT_FALSE(a.contains("ks"));  // per window only
    std::uint64_t drifted = 0;
    for (const json& line : lines) drifted += line["features"][f]["drifted"].get<bool>() ? 1 : 0;
    EXPECT_EQ(u64(a["windows_drifted"]), drifted);
    EXPECT_EQ(a["drifted"].get<bool>(), b["drifted"].get<bool>() || drifted > 0);
  }
  EXPECT_TRUE(report["drift"]["dataset_drift"].get<bool>());
  EXPECT_EQ(u64(report["quarantine"]["rows"]), 0u);
  EXPECT_TRUE(report["failovers"].empty());
}

// ---- 2. Windows by time ----

// Timestamps at both ends of int64: a window's [begin, end) stays in range and ordered.
TEST_F(Pipeline, TimeWindowsAtTheEndsOfInt64StayInRange) {
  synth("time_extremes_source.h5", 1000, "none", 14);
  const Table table = read_table(dir_ / "time_extremes_source.h5");
  std::vector<std::int64_t> ts(table.rows(), std::numeric_limits<std::int64_t>::min());
  std::fill(ts.begin() + 500, ts.end(), std::numeric_limits<std::int64_t>::max());
  const fs::path current = dir_ / "time_extremes.h5", jsonl = dir_ / "time_extremes.jsonl";
  write_table(current, table, 0, table.rows(), 0, 0, &ts);
  const CommandResult r = scan(current, dir_ / "time_extremes.json",
                               "--no-distances --window-time 3 --windows-jsonl " + quote(jsonl));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::vector<json> lines = read_jsonl(jsonl);
  ASSERT_EQ(lines.size(), 2u);
  for (const json& line : lines) {
    const json& time = line["window"]["time"];
    EXPECT_LE(time["begin"].get<std::int64_t>(), time["end"].get<std::int64_t>()) << time;
  }
  EXPECT_EQ(lines[0]["window"]["time"]["begin"].get<std::int64_t>(),
            std::numeric_limits<std::int64_t>::min());
  EXPECT_EQ(lines[1]["window"]["time"]["end"].get<std::int64_t>(),
            std::numeric_limits<std::int64_t>::max());
}

TEST_F(Pipeline, TimeWindowsFollowTimestamps) {
  synth("time_source.h5", 6000, "none", 12);
  const Table table = read_table(dir_ / "time_source.h5");
  // Runs of timestamps with repeats, negative values, and gaps of several empty windows.
  std::vector<std::int64_t> ts(table.rows());
  std::mt19937_64 rng(42);
  std::int64_t t = -2537;
  for (std::size_t i = 0; i < ts.size(); ++i) {
    ts[i] = t;
    const std::uint64_t u = rng() % 1000;
    t += u < 5 ? 1000 + static_cast<std::int64_t>(rng() % 3000) : static_cast<std::int64_t>(u % 3);
  }
  const fs::path current = dir_ / "time_current.h5";
  write_table(current, table, 0, table.rows(), 500, 0, &ts);
  const std::int64_t width = 250;
  const auto floor_div = [](std::int64_t a, std::int64_t b) {
    return static_cast<std::int64_t>(std::floor(static_cast<double>(a) / static_cast<double>(b)));
  };
  // The expected windows: maximal runs of rows with the same floor(t / W).
  struct Expected {
    std::size_t first, end;
    std::int64_t key;
  };
  std::vector<Expected> expected;
  for (std::size_t i = 0; i < ts.size(); ++i) {
    const std::int64_t key = floor_div(ts[i], width);
    if (expected.empty() || expected.back().key != key) expected.push_back({i, i, key});
    expected.back().end = i + 1;
  }
  ASSERT_GE(expected.size(), 8u);
  ASSERT_LT(expected.front().key, 0);
  std::size_t gaps = 0;
  for (std::size_t i = 1; i < expected.size(); ++i) {
    gaps += expected[i].key > expected[i - 1].key + 1 ? 1 : 0;
  }
  ASSERT_GE(gaps, 2u);  // some empty windows must be skipped

  const fs::path jsonl = dir_ / "time.jsonl", report_path = dir_ / "time.json",
                 checkpoint = dir_ / "time.ckpt";
  const std::string stats = "--mmd --mmd-rows 200 --mmd-permutations 30";
  const std::string flags = stats + " --window-time " + std::to_string(width) +
                            " --batch-rows 700 --windows-jsonl " + quote(jsonl) + " --checkpoint " +
                            quote(checkpoint);
  const CommandResult r = scan(current, report_path, flags);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json report = read_json(report_path);
  // The checkpoint's window log keeps the window summaries as the report writes them, one line
  // each, and the resumed run reads them back.
  EXPECT_EQ(json(read_jsonl(driftguard::detail::window_log_path(checkpoint.string()))),
            report["windows"]);
  const CommandResult resumed = scan(current, dir_ / "time_resumed.json", flags + " --resume");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(untimed(read_json(dir_ / "time_resumed.json")), untimed(report));
  const std::vector<json> lines = read_jsonl(jsonl);
  ASSERT_EQ(lines.size(), expected.size());
  expect_windows_tile(lines, report, table.rows());
  for (std::size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE("window " + std::to_string(i));
    const json& w = lines[i]["window"];
    EXPECT_EQ(u64(w["first_row"]), expected[i].first);
    EXPECT_EQ(u64(w["end_row"]), expected[i].end);
    ASSERT_TRUE(w.contains("time"));
    EXPECT_EQ(w["time"]["begin"].get<std::int64_t>(), expected[i].key * width);
    EXPECT_EQ(w["time"]["end"].get<std::int64_t>(), (expected[i].key + 1) * width);
  }
  // A few windows against plain scans of their rows (the first holds negative timestamps).
  expect_windows_equal_plain_scans({lines.front(), lines[lines.size() / 2], lines.back()}, table,
                                   stats);

  // Timestamps that go back: one line naming the row.
  std::vector<std::int64_t> back(ts);
  const std::size_t bad_row = 3217;
  back[bad_row] = back[bad_row - 1] - 1;
  for (std::size_t i = bad_row + 1; i < back.size(); ++i) back[i] = back[bad_row] + 1;
  const fs::path decreasing = dir_ / "time_decreasing.h5";
  write_table(decreasing, table, 0, table.rows(), 500, 0, &back);
  CommandResult bad =
      scan(decreasing, dir_ / "decreasing.json", "--no-ks --no-distances --window-time 250");
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  EXPECT_NE(bad.err.find("row " + std::to_string(bad_row)), std::string::npos) << bad.err;
  EXPECT_FALSE(fs::exists(dir_ / "decreasing.json"));

  // Back into an earlier window across a batch boundary (row 1400 starts a batch of 700).
  back = ts;
  back[1400] = back[0];
  write_table(decreasing, table, 0, table.rows(), 500, 0, &back);
  bad = scan(decreasing, dir_ / "decreasing.json",
             "--no-ks --no-distances --window-time 250 --batch-rows 700");
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_NE(bad.err.find("row 1400"), std::string::npos) << bad.err;

  // No /timestamp: refused.
  const fs::path untimed_file = dir_ / "time_none.h5";
  write_table(untimed_file, table, 0, 1000);
  bad = scan(untimed_file, dir_ / "untimed.json", "--window-time 100");
  EXPECT_EQ(bad.exit_code, 1) << bad.err;
  EXPECT_EQ(std::count(bad.err.begin(), bad.err.end(), '\n'), 1) << bad.err;
  EXPECT_NE(bad.err.find("timestamp"), std::string::npos) << bad.err;
}

// ---- 3. A corrupt block ----

TEST_F(Pipeline, BadBlockStopsResumablyOrIsQuarantined) {
  synth("bad_source.h5", 20000, "none", 13);
  const Table table = read_table(dir_ / "bad_source.h5");
  const fs::path current = dir_ / "bad_current.h5";
  write_table(current, table, 0, table.rows(), /*chunk_rows=*/1000, /*gzip=*/4);
  const std::size_t bad_first = corrupt_chunk(current, 10);
  ASSERT_EQ(bad_first, 10000u);
  const std::size_t bad_end = bad_first + 1000;
  const fs::path checkpoint = dir_ / "bad.ckpt", jsonl = dir_ / "bad.jsonl";
  const std::string windows = "--no-distances --window-rows 3000 --batch-rows 2000 --checkpoint " +
                              quote(checkpoint) + " --windows-jsonl " + quote(jsonl);

  // Default (stop): exit 1, one line naming the rows of the unreadable block.
  const CommandResult stopped = scan(current, dir_ / "bad_stop.json", windows);
  EXPECT_EQ(stopped.exit_code, 1) << stopped.err;
  EXPECT_EQ(std::count(stopped.err.begin(), stopped.err.end(), '\n'), 1) << stopped.err;
  std::smatch m;
  ASSERT_TRUE(std::regex_search(stopped.err, m, std::regex(R"(rows (\d+)\.\.(\d+))")))
      << stopped.err;
  const std::size_t named_first = std::stoul(m[1]), named_last = std::stoul(m[2]);
  EXPECT_LE(named_first, bad_first) << stopped.err;
  EXPECT_GE(named_last, bad_end - 1) << stopped.err;
  EXPECT_LE(named_last - named_first + 1, 2000u) << "names one batch at most: " << stopped.err;
  EXPECT_FALSE(fs::exists(dir_ / "bad_stop.json"));
  // The checkpoint stands at the last window boundary before the bad chunk (9000).
  ASSERT_TRUE(fs::exists(checkpoint));
  const json saved = read_json(checkpoint);
  EXPECT_EQ(u64(saved["next_row"]), 9000u);
  EXPECT_EQ(u64(saved["windows_closed"]), 3u);
  EXPECT_EQ(count_lines(jsonl), 3u);

  // Resume with skip: finishes, equal to a fresh skip run.
  const CommandResult resumed =
      scan(current, dir_ / "bad_resumed.json", windows + " --resume --on-bad-block skip");
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  const json resumed_report = read_json(dir_ / "bad_resumed.json");
  const std::vector<json> resumed_lines = read_jsonl(jsonl);

  const fs::path fresh_jsonl = dir_ / "bad_fresh.jsonl";
  const CommandResult fresh =
      scan(current, dir_ / "bad_fresh.json",
           "--no-distances --window-rows 3000 --batch-rows 2000 --on-bad-block skip "
           "--windows-jsonl " +
               quote(fresh_jsonl));
  ASSERT_EQ(fresh.exit_code, 0) << fresh.err;
  const json report = read_json(dir_ / "bad_fresh.json");
  const std::vector<json> lines = read_jsonl(fresh_jsonl);
  EXPECT_EQ(untimed(resumed_report), untimed(report));
  ASSERT_EQ(resumed_lines.size(), lines.size());
  for (std::size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(resumed_lines[i], lines[i]) << i;

  // The quarantine: exactly the chunk, named, and every row accounted for.
  EXPECT_EQ(u64(report["quarantine"]["rows"]), 1000u);
  ASSERT_EQ(report["quarantine"]["blocks"].size(), 1u);
  const json& block = report["quarantine"]["blocks"][0];
  EXPECT_EQ(u64(block["first_row"]), bad_first);
  EXPECT_EQ(u64(block["rows"]), 1000u);
  EXPECT_NE(block["reason"].get<std::string>().find("rows 10000..10999"), std::string::npos)
      << block["reason"];
  EXPECT_EQ(u64(report["validation"]["rows"]) + u64(report["quarantine"]["rows"]), 20000u);
  EXPECT_EQ(u64(report["current_rows"]), 19000u);
  ASSERT_EQ(lines.size(), 7u);
  expect_windows_tile(lines, report, 20000);
  for (const json& line : lines) {
    const json& w = line["window"];
    const bool holds = u64(w["first_row"]) <= bad_first && bad_first < u64(w["end_row"]);
    EXPECT_EQ(u64(w["quarantined_rows"]), holds ? 1000u : 0u) << w;
  }
  // The windows around the chunk equal plain scans of their readable rows.
  expect_windows_equal_plain_scans({lines[2], lines[3], lines[4]}, table, "--no-distances",
                                   {{bad_first, bad_end}});

  // A window of nothing but the unreadable chunk has no rows to test: nothing in it drifts (its
  // columns did not empty, there were none).
  const fs::path chunk_jsonl = dir_ / "bad_chunk_windows.jsonl";
  const CommandResult chunk_windows =
      scan(current, dir_ / "bad_chunk_windows.json",
           "--no-distances --window-rows 1000 --batch-rows 1000 --on-bad-block skip "
           "--drift-rule psi_or_ks --windows-jsonl " +
               quote(chunk_jsonl));
  ASSERT_EQ(chunk_windows.exit_code, 0) << chunk_windows.err;
  const json empty = read_jsonl(chunk_jsonl).at(10);
  EXPECT_EQ(u64(empty["current_rows"]), 0u);
  EXPECT_EQ(u64(empty["window"]["quarantined_rows"]), 1000u);
  EXPECT_EQ(u64(empty["drift"]["features_drifted"]), 0u) << empty["drift"];
  EXPECT_FALSE(empty["drift"]["dataset_drift"].get<bool>());
  for (const json& feature : empty["features"]) {
    EXPECT_FALSE(feature["drifted"].get<bool>()) << feature["name"];
  }
}

// ---- 4. Crash safety ----

TEST_F(Pipeline, KilledRunsResumeToTheUninterruptedResult) {
  constexpr std::size_t kRows = 200000;
  synth("crash_current.h5", kRows, "mean_shift", 14);
  const fs::path current = dir_ / "crash_current.h5";
  const auto command = [&](const fs::path& report, const fs::path& jsonl,
                           const fs::path& checkpoint, bool resume) {
    std::vector<std::string> args = {cli(),
                                     "scan",
                                     "--backend",
                                     "cpu",
                                     "-q",
                                     "--progress",
                                     "off",
                                     "--threads",
                                     "1",
                                     "--reference",
                                     profile().string(),
                                     "--current",
                                     current.string(),
                                     "--window-rows",
                                     "5000",
                                     "--batch-rows",
                                     "3000",
                                     "--no-distances",
                                     "--mmd",
                                     "--mmd-rows",
                                     "200",
                                     "--mmd-permutations",
                                     "20",
                                     "--windows-jsonl",
                                     jsonl.string(),
                                     "--checkpoint",
                                     checkpoint.string(),
                                     "--report",
                                     report.string()};
    if (resume) args.push_back("--resume");
    return args;
  };
  const fs::path err = dir_ / "crash_stderr.txt";
  // Three uninterrupted runs: equal results, and the median time spreads the kills.
  std::vector<double> durations;
  for (int i = 0; i < 3; ++i) {
    const fs::path report = dir_ / ("crash_base" + std::to_string(i) + ".json");
    const fs::path jsonl = dir_ / ("crash_base" + std::to_string(i) + ".jsonl");
    const auto start = std::chrono::steady_clock::now();
    const int status =
        wait_status(spawn(command(report, jsonl, dir_ / "crash_base.ckpt", false), err));
    durations.push_back(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << driftguard::testing::read_text(err);
    if (i > 0) {
      EXPECT_EQ(untimed(read_json(report)), untimed(read_json(dir_ / "crash_base0.json")));
      EXPECT_EQ(driftguard::testing::read_text(jsonl),
                driftguard::testing::read_text(dir_ / "crash_base0.jsonl"));
    }
  }
  std::sort(durations.begin(), durations.end());
  const double duration = durations[1];
  const fs::path base_report = dir_ / "crash_base0.json", base_jsonl = dir_ / "crash_base0.jsonl";
  const json base = untimed(read_json(base_report));
  const std::string base_lines = driftguard::testing::read_text(base_jsonl);
  ASSERT_EQ(count_lines(base_jsonl), 40u);

  const fs::path report = dir_ / "crash.json", jsonl = dir_ / "crash.jsonl",
                 checkpoint = dir_ / "crash.ckpt";
  // Kill delays spread over the time the run has left: the whole run at first, what the
  // checkpoint leaves after a kill (a resumed run skips the closed windows).
  std::mt19937_64 rng(20240607);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  int kills = 0, mid_run = 0, resumes = 0;
  std::set<std::uint64_t> resumed_from;  // checkpoint rows the kills left behind
  const int trials = 22;
  for (int trial = 0; trial < trials; ++trial) {
    SCOPED_TRACE("trial " + std::to_string(trial));
    fs::remove(report);
    fs::remove(jsonl);
    fs::remove(checkpoint);
    bool resume = false, done = false;
    double left = 1.0;  // the share of the run still to do
    // One kill, then a second one (of the resumed run) in a third of the trials.
    const int kills_this_trial = trial % 3 == 0 ? 2 : 1;
    for (int k = 0; k < kills_this_trial && !done; ++k) {
      const Child child = spawn(command(report, jsonl, checkpoint, resume), err);
      std::this_thread::sleep_for(
          std::chrono::duration<double>(unit(rng) * duration * (0.1 + 0.85 * left)));
      ::kill(child.pid, SIGKILL);
      const int status = wait_status(child);
      ++kills;
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
        ++mid_run;
      } else {
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << driftguard::testing::read_text(err);
        done = true;
      }
      if (!done && fs::exists(checkpoint)) {
        const std::uint64_t next_row = u64(read_json(checkpoint)["next_row"]);
        resumed_from.insert(next_row);
        left = 1.0 - static_cast<double>(next_row) / kRows;
      }
      resume = true;
    }
    if (!done) {
      ++resumes;
      const int status = wait_status(spawn(command(report, jsonl, checkpoint, true), err));
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << driftguard::testing::read_text(err);
    }
    EXPECT_EQ(untimed(read_json(report)), base);
    EXPECT_EQ(driftguard::testing::read_text(jsonl), base_lines);
  }
  std::printf(
      "[ crash    ] uninterrupted run %.3f s; %d kills, %d mid-run, %d resumed runs; "
      "checkpoints at %zu different rows\n",
      duration, kills, mid_run, resumes, resumed_from.size());
  RecordProperty("kills", kills);
  RecordProperty("kills_mid_run", mid_run);
  EXPECT_GE(mid_run, 20);
  EXPECT_GE(resumed_from.size(), 5u) << "kills should land in different windows";
}

// ---- 5. Failover ----

class PipelineFailover : public Pipeline {
 protected:
  // 40000 rows in chunks of 1000: batches of 5000 and windows of 10000, so each window makes four
  // kernel calls: two batches, then sorting its columns (KS, distances) and the MMD test.
  static void SetUpTestSuite() {
    Pipeline::SetUpTestSuite();
    synth("failover_source.h5", 40000, "mean_shift", 15);
    write_table(dir_ / "failover.h5", read_table(dir_ / "failover_source.h5"), 0, 40000, 1000);
  }
  static std::string command(const std::string& backend, const std::string& fault,
                             const fs::path& report, const fs::path& jsonl) {
    return (fault.empty() ? "" : "DRIFTGUARD_INJECT_CUDA_FAULT=" + fault + " ") + cli() +
           " scan -q --progress off --backend " + backend + " --reference " + quote(profile()) +
           " --current " + quote(dir_ / "failover.h5") +
           " --window-rows 10000 --batch-rows 5000 --mmd --mmd-rows 300 --mmd-permutations 40 " +
           "--seed 9 --report " + quote(report) + " --windows-jsonl " + quote(jsonl);
  }
  struct Case {
    int k;
    std::string stage;
    std::uint64_t row;   // the first row of the batch or window that failed
    std::size_t window;  // the window whose report first lists it
  };
  static std::vector<Case> cases() {
    return {{1, "batch", 0, 0},
            {6, "batch", 15000, 1},
            {7, "window", 10000, 1},
            {12, "window", 20000, 2}};
  }
  static void check_failover(const std::string& backend, bool exact) {
    const fs::path base_report = dir_ / "fo_base.json", base_jsonl = dir_ / "fo_base.jsonl";
    const CommandResult base = run(command("cpu", "", base_report, base_jsonl));
    ASSERT_EQ(base.exit_code, 0) << base.err;
    const json expected = read_json(base_report);
    const std::vector<json> expected_lines = read_jsonl(base_jsonl);
    ASSERT_EQ(expected_lines.size(), 4u);
    EXPECT_TRUE(expected["failovers"].empty());
    // MMD is per window: each record has its test, the whole-file report none (not "skipped").
    for (const json& line : expected_lines) EXPECT_TRUE(line["mmd"].contains("pvalue"));
    EXPECT_FALSE(expected.contains("mmd")) << expected["mmd"].dump();
    for (const Case& c : cases()) {
      SCOPED_TRACE("launch:" + std::to_string(c.k));
      const fs::path report = dir_ / "fo.json", jsonl = dir_ / "fo.jsonl";
      fs::remove(report);
      const CommandResult r = run(command(backend, "launch:" + std::to_string(c.k), report, jsonl));
      ASSERT_EQ(r.exit_code, 0) << r.err;
      const json got = read_json(report);
      ASSERT_EQ(got["failovers"].size(), 1u) << got["failovers"];
      const json& event = got["failovers"][0];
      EXPECT_EQ(event["stage"], c.stage);
      EXPECT_EQ(u64(event["row"]), c.row) << "a failover names the first row of its batch/window";
      EXPECT_EQ(event["from"], backend);
      EXPECT_EQ(event["to"], "cpu");
      EXPECT_NE(event["reason"].get<std::string>().find("injected"), std::string::npos);
      EXPECT_EQ(got["backend"], "cpu");
      const std::vector<json> lines = read_jsonl(jsonl);
      ASSERT_EQ(lines.size(), expected_lines.size());
      for (std::size_t i = 0; i < lines.size(); ++i) {
        // The window whose own KS/MMD stage failed over must list the event in its record.
        EXPECT_EQ(lines[i]["failovers"].size(), i >= c.window ? 1u : 0u)
            << "window " << i << ": " << lines[i]["failovers"];
        EXPECT_EQ(lines[i]["backend"], i >= c.window ? "cpu" : backend) << "window " << i;
        const json a = without(lines[i], {"timing", "failovers", "backend", "device"});
        const json b = without(expected_lines[i], {"timing", "failovers", "backend", "device"});
        if (exact) {
          EXPECT_EQ(a, b) << "window " << i;
        } else {
          expect_near_json(a, b, "window " + std::to_string(i));
        }
      }
      const json a = without(got, {"timing", "failovers", "backend", "device"});
      const json b = without(expected, {"timing", "failovers", "backend", "device"});
      if (exact) {
        EXPECT_EQ(a, b);
      } else {
        expect_near_json(a, b, "report");
      }
    }
  }
};

TEST_F(PipelineFailover, InjectedFaultsFailOverToEqualCpuResults) { check_failover("cpu", true); }

TEST_F(PipelineFailover, CudaFaultsFailOverToTheCpu) {
  if (driftguard::cuda_device_count() == 0) {
    GTEST_SKIP() << "no CUDA device: the failover path is covered on the CPU backend above";
  }
  check_failover("cuda", false);
}

// A CUDA failure while the scan profiles a raw reference (the context's first kernel call) moves
// the whole run to the CPU: same results as a CPU run, one "profile" event at row 0, listed by
// every window record, with and without windows.
TEST_F(PipelineFailover, ProfileFailureMovesTheRunToTheCpu) {
  for (const bool windowed : {true, false}) {
    SCOPED_TRACE(windowed ? "windows" : "one window");
    const auto scan_command = [&](const std::string& fault, const fs::path& report,
                                  const fs::path& jsonl) {
      return (fault.empty() ? "" : "DRIFTGUARD_INJECT_CUDA_FAULT=" + fault + " ") + cli() +
             " scan -q --progress off --backend cpu --reference " + quote(dir_ / "reference.h5") +
             " --current " + quote(dir_ / "failover.h5") +
             " --batch-rows 5000 --mmd --mmd-rows 300 --mmd-permutations 40 --seed 9 --report " +
             quote(report) +
             (windowed ? " --window-rows 10000 --windows-jsonl " + quote(jsonl) : std::string());
    };
    const fs::path base_report = dir_ / "fo_profile_base.json", report = dir_ / "fo_profile.json";
    const fs::path base_jsonl = dir_ / "fo_profile_base.jsonl", jsonl = dir_ / "fo_profile.jsonl";
    const CommandResult base = run(scan_command("", base_report, base_jsonl));
    ASSERT_EQ(base.exit_code, 0) << base.err;
    const CommandResult r = run(scan_command("launch:1", report, jsonl));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const json got = read_json(report);
    ASSERT_EQ(got["failovers"].size(), 1u) << got["failovers"];
    EXPECT_EQ(got["failovers"][0]["stage"], "profile");
    EXPECT_EQ(u64(got["failovers"][0]["row"]), 0u);
    EXPECT_EQ(got["failovers"][0]["from"], "cpu");
    const auto stable = [](const json& doc) {
      return without(doc, {"timing", "failovers", "backend", "device"});
    };
    EXPECT_EQ(stable(got), stable(read_json(base_report)));
    if (!windowed) continue;
    const std::vector<json> lines = read_jsonl(jsonl), expected = read_jsonl(base_jsonl);
    ASSERT_EQ(lines.size(), 4u);
    ASSERT_EQ(lines.size(), expected.size());
    for (std::size_t i = 0; i < lines.size(); ++i) {
      EXPECT_EQ(lines[i]["failovers"].size(), 1u) << "window " << i;
      EXPECT_EQ(stable(lines[i]), stable(expected[i])) << "window " << i;
    }
  }
}

TEST_F(PipelineFailover, MalformedFaultSettingIsOneLineError) {
  for (const char* value : {"launch:x", "boom:3", "launch:0", "alloc:", "launch"}) {
    SCOPED_TRACE(value);
    const CommandResult r = run(command("cpu", value, dir_ / "fo_bad.json", dir_ / "fo_bad.jsonl"));
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("DRIFTGUARD_INJECT_CUDA_FAULT"), std::string::npos) << r.err;
  }
}

// ---- 6. Resume guards ----

TEST_F(Pipeline, ResumeRefusesAnotherRunsCheckpoint) {
  synth("guard_current.h5", 20000, "none", 16);
  const fs::path current = dir_ / "guard_current.h5", checkpoint = dir_ / "guard.ckpt",
                 jsonl = dir_ / "guard.jsonl";
  const std::string windows = "--no-distances --window-rows 5000 --checkpoint " +
                              quote(checkpoint) + " --windows-jsonl " + quote(jsonl);
  // --resume without a checkpoint file starts over and equals a run without it.
  fs::remove(checkpoint);
  CommandResult r = scan(current, dir_ / "guard_a.json", windows + " --resume");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_TRUE(fs::exists(checkpoint));
  EXPECT_EQ(count_lines(jsonl), 4u);
  r = scan(current, dir_ / "guard_b.json", windows);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(untimed(read_json(dir_ / "guard_a.json")), untimed(read_json(dir_ / "guard_b.json")));
  // Resuming a finished run gives its report again.
  r = scan(current, dir_ / "guard_c.json", windows + " --resume");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(untimed(read_json(dir_ / "guard_c.json")), untimed(read_json(dir_ / "guard_b.json")));
  EXPECT_EQ(count_lines(jsonl), 4u);

  // Other options: refused, one line, and the checkpoint is kept.
  for (const std::string other : {"--bins 20", "--no-ks", "--window-rows 4000", "--alpha 0.01"}) {
    SCOPED_TRACE(other);
    const std::string flags = other == "--window-rows 4000"
                                  ? "--no-distances --window-rows 4000 --checkpoint " +
                                        quote(checkpoint) + " --windows-jsonl " + quote(jsonl)
                                  : windows + " " + other;
    r = scan(current, dir_ / "guard_other.json", flags + " --resume");
    EXPECT_EQ(r.exit_code, 1) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("belongs to another run"), std::string::npos) << r.err;
    EXPECT_TRUE(fs::exists(checkpoint));
  }
  // The windows going to another JSON Lines file (the first windows would be missing there):
  // refused.
  r = scan(current, dir_ / "guard_other.json",
           "--no-distances --window-rows 5000 --checkpoint " + quote(checkpoint) +
               " --windows-jsonl " + quote(dir_ / "guard_elsewhere.jsonl") + " --resume");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("belongs to another run"), std::string::npos) << r.err;
  // Another current file: refused as well.
  synth("guard_other.h5", 20000, "none", 17);
  r = scan(dir_ / "guard_other.h5", dir_ / "guard_other.json", windows + " --resume");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("belongs to another run"), std::string::npos) << r.err;
  // The current file rewritten in place (same path, rows and names, other values): refused.
  fs::copy_file(current, dir_ / "guard_inplace.h5", fs::copy_options::overwrite_existing);
  r = scan(dir_ / "guard_inplace.h5", dir_ / "guard_inplace.json", windows);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  synth("guard_inplace.h5", 20000, "none", 18);
  r = scan(dir_ / "guard_inplace.h5", dir_ / "guard_inplace.json", windows + " --resume");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("belongs to another run"), std::string::npos) << r.err;
  r = scan(current, dir_ / "guard_b.json", windows);  // the checkpoint of `current` again
  ASSERT_EQ(r.exit_code, 0) << r.err;

  // A JSON Lines file shorter than the checkpoint says: refused.
  fs::resize_file(jsonl, 10);
  r = scan(current, dir_ / "guard_short.json", windows + " --resume");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;

  // Usage that cannot work: usage errors.
  for (const std::string& bad : std::vector<std::string>{
           "--checkpoint " + quote(checkpoint), "--checkpoint " + quote(checkpoint) + " --resume",
           "--window-rows 5000 --resume", "--window-rows 5000 --window-time 100",
           "--windows-jsonl " + quote(dir_ / "guard_bad.jsonl")}) {
    SCOPED_TRACE(bad);
    r = scan(current, dir_ / "guard_bad.json", "--no-distances " + bad);
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(dir_ / "guard_bad.json"));
  }

  // Window records to a stream (/dev/null; /dev/stdout, redirected to a file by the shell, which
  // must hold them all): written as they come. A checkpointed run, which may have to cut them
  // back on --resume, refuses a stream up front.
  const std::string to_null = "--no-distances --window-rows 5000 --windows-jsonl /dev/null";
  r = scan(current, dir_ / "guard_null.json", to_null);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = scan(current, dir_ / "guard_stdout.json",
           "--no-distances --window-rows 5000 --windows-jsonl /dev/stdout");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::istringstream records(r.out);
  std::size_t records_read = 0;
  for (std::string line; std::getline(records, line); ++records_read) {
    EXPECT_EQ(json::parse(line)["window"]["index"], records_read);
  }
  EXPECT_EQ(records_read, 4u);
  r = scan(current, dir_ / "guard_null.json",
           to_null + " --checkpoint " + quote(dir_ / "guard_null.ckpt"));
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("not to a stream"), std::string::npos) << r.err;

  // The reference rewritten in place (same path, same size, other values): refused.
  fs::copy_file(dir_ / "reference.h5", dir_ / "guard_reference.h5",
                fs::copy_options::overwrite_existing);
  r = scan(current, dir_ / "guard_ref.json", windows, dir_ / "guard_reference.h5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  synth("guard_reference.h5", 20000, "none", 23);
  r = scan(current, dir_ / "guard_ref.json", windows + " --resume", dir_ / "guard_reference.h5");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("belongs to another run"), std::string::npos) << r.err;
}

// ---- 7. The Monitor API ----

TEST_F(Pipeline, MonitorFedFromThreadsEqualsSequential) {
  using namespace driftguard;
  synth("monitor_current.h5", 40000, "mean_shift", 18);
  Context ctx(ContextOptions{.backend = Backend::Cpu});
  const ReferenceProfile ref = ReferenceProfile::build(ctx, (dir_ / "reference.h5").string());
  const Table table = read_table(dir_ / "monitor_current.h5");
  ASSERT_EQ(table.names.size(), ref.features());
  const std::size_t f = ref.features(), batch_rows = 1700;
  std::vector<BatchView> batches;
  for (std::size_t first = 0; first < table.rows(); first += batch_rows) {
    batches.push_back(
        {table.values.data() + first * f, std::min(batch_rows, table.rows() - first), f});
  }
  DriftOptions options;  // KS and the distances on: the window is held
  ASSERT_TRUE(options.holds_window());
  // MMD options that could never run are refused up front, not when the first window closes.
  for (const auto& [rows, permutations] :
       {std::pair<std::size_t, std::uint32_t>{1, 100}, {2000, 0}}) {
    DriftOptions mmd = options;
    mmd.mmd = true;
    mmd.mmd_rows = rows;
    mmd.mmd_options.permutations = permutations;
    EXPECT_THROW(Monitor(ctx, ref, mmd), InvalidInput) << rows << " " << permutations;
    mmd.mmd_rows = 2000;
    mmd.mmd_options.permutations = 100;
    EXPECT_NO_THROW(Monitor(ctx, ref, mmd));  // the profile serves MMD: the options were the fault
  }

  Monitor sequential(ctx, ref, options);
  for (std::size_t b = 0; b < batches.size(); ++b) sequential.observe(batches[b], b * batch_rows);
  EXPECT_EQ(sequential.window_rows(), table.rows());
  const ScanReport snapshot = sequential.snapshot();
  EXPECT_EQ(sequential.window_rows(), table.rows()) << "snapshot() must not end the window";
  const ScanReport expected = sequential.close_window();
  EXPECT_EQ(sequential.window_rows(), 0u) << "close_window() starts the next window";
  EXPECT_EQ(snapshot.to_json(), expected.to_json());
  EXPECT_EQ(expected.current_rows, table.rows());
  ASSERT_TRUE(expected.window.has_value());
  EXPECT_EQ(expected.window->index, 0u);
  EXPECT_EQ(expected.window->first_row, 0u);
  EXPECT_EQ(expected.window->end_row, table.rows());
  const ScanReport empty = sequential.snapshot();
  ASSERT_TRUE(empty.window.has_value());
  EXPECT_EQ(empty.window->index, 1u);  // the next window, after the one closed
  EXPECT_EQ(empty.window->first_row, table.rows());
  EXPECT_EQ(empty.current_rows, 0u);
  EXPECT_EQ(empty.current_validation.rows, 0u);
  EXPECT_TRUE(std::isnan(empty.features[0].psi));

  Monitor shared(ctx, ref, options);
  std::vector<std::thread> threads;
  std::vector<std::uint64_t> snapshot_rows;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (std::size_t b = t; b < batches.size(); b += 4)
        shared.observe(batches[b], b * batch_rows);
    });
  }
  std::thread watcher([&] {  // snapshots while the others observe
    for (int i = 0; i < 5; ++i) snapshot_rows.push_back(shared.snapshot().current_rows);
  });
  for (std::thread& thread : threads) thread.join();
  watcher.join();
  for (std::uint64_t rows : snapshot_rows) EXPECT_LE(rows, table.rows());
  EXPECT_EQ(shared.window_rows(), table.rows());
  const ScanReport got = shared.close_window();
  EXPECT_EQ(got.current_validation, expected.current_validation);
  ASSERT_EQ(got.features.size(), expected.features.size());
  for (std::size_t i = 0; i < f; ++i) {
    SCOPED_TRACE(expected.features[i].name);
    EXPECT_EQ(got.features[i].current_slots, expected.features[i].current_slots);
    EXPECT_EQ(got.features[i].current_flags, expected.features[i].current_flags);
    ASSERT_TRUE(got.features[i].ks && expected.features[i].ks);
    EXPECT_EQ(got.features[i].ks->statistic, expected.features[i].ks->statistic);
    EXPECT_EQ(got.features[i].ks->pvalue, expected.features[i].ks->pvalue);
    EXPECT_EQ(got.features[i].psi, expected.features[i].psi);
  }
  // Everything else too: the held rows are the same multiset, the statistics sort them.
  EXPECT_EQ(got.to_json(), expected.to_json());
  EXPECT_TRUE(got.dataset_drift());

  // A batch of another width is refused and changes nothing.
  const std::vector<float> wide(10 * (f + 1), 1.0f);
  EXPECT_THROW(shared.observe({wide.data(), 10, f + 1}), InvalidInput);
  EXPECT_EQ(shared.window_rows(), 0u);
  shared.observe(batches[0]);
  EXPECT_EQ(shared.window_rows(), batches[0].rows);
}

}  // namespace

// ---- 8. The progress line ----
namespace {

TEST_F(Pipeline, ProgressLineOnRequestSilentOtherwise) {
  synth("progress.h5", 30000, "none", 17);
  const auto command = [](const std::string& progress) {
    return cli() + " scan --backend cpu -q --no-ks --no-distances --window-rows 10000 " +
           "--batch-rows 5000 --reference " + quote(dir_ / "reference.h5") + " --current " +
           quote(dir_ / "progress.h5") + " " + progress;
  };
  const CommandResult on = run(command("--progress on"));
  ASSERT_EQ(on.exit_code, 0) << on.err;
  EXPECT_NE(on.err.find("30000 / 30000 rows (100%)"), std::string::npos) << on.err;
  EXPECT_NE(on.err.find("3 windows"), std::string::npos) << on.err;
  EXPECT_NE(on.err.find("rows/s"), std::string::npos) << on.err;
  EXPECT_NE(on.err.find("ETA"), std::string::npos) << on.err;
  EXPECT_EQ(on.err.back(), '\n');
  // stderr is a file here, not a terminal: auto stays silent.
  const CommandResult automatic = run(command("--progress auto"));
  ASSERT_EQ(automatic.exit_code, 0) << automatic.err;
  EXPECT_EQ(automatic.err, "");
}

}  // namespace

// ---- 9. Damaged checkpoints ----
namespace {

TEST_F(Pipeline, DamagedCheckpointIsOneLineError) {
  synth("damaged.h5", 30000, "none", 19);
  const fs::path checkpoint = dir_ / "damaged.ck", report = dir_ / "damaged.json";
  const std::string flags =
      "--no-ks --no-distances --window-rows 10000 --checkpoint " + quote(checkpoint);
  ASSERT_EQ(scan(dir_ / "damaged.h5", report, flags).exit_code, 0);
  const std::string saved = driftguard::testing::read_text(checkpoint);
  const auto resume_with = [&](const std::string& text) {
    std::ofstream(checkpoint, std::ios::trunc) << text;
    return scan(dir_ / "damaged.h5", report, flags + " --resume");
  };
  // Edits signed as the library signs a checkpoint reach the consistency checks behind the
  // digest (a bug could write such a checkpoint); unsigned edits stop at the digest.
  const auto signed_text = [](json doc) {
    doc.erase("digest");
    doc["digest"] = driftguard::detail::checkpoint_digest(doc.dump());
    return doc.dump();
  };
  json edited = json::parse(saved);
  edited["next_row"] = 30005;
  json more_ok = json::parse(saved);
  more_ok["validation"]["rows_ok"] = 1000000000;
  json old_version = json::parse(saved);  // version 2 had no digest
  old_version["version"] = 2;
  json shrunk = json::parse(saved);
  shrunk["current_slots"].erase(shrunk["current_slots"].begin() + 3, shrunk["current_slots"].end());
  const std::vector<std::pair<std::string, std::string>> cases = {
      {saved.substr(0, saved.size() / 2), "not a valid driftguard checkpoint"},
      {"{\"format\": \"driftguard-checkpoint\", \"version\": 99}", "not a driftguard checkpoint"},
      {old_version.dump(), "not a driftguard checkpoint of version 3"},
      {edited.dump(), "edited or damaged"},
      {more_ok.dump(), "edited or damaged"},
      {signed_text(edited), "do not fit the current table"},
      {signed_text(more_ok), "do not fit the current table"},
      {signed_text(shrunk), "do not fit the bins"}};
  for (const auto& [text, message] : cases) {
    SCOPED_TRACE(message);
    const CommandResult r = resume_with(text);
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  // The window log beside it, edited (same length) or cut short: refused too.
  const fs::path log = driftguard::detail::window_log_path(checkpoint.string());
  std::string logged = driftguard::testing::read_text(log);
  const std::size_t at = logged.find("\"rows\":1");
  ASSERT_NE(at, std::string::npos) << logged.substr(0, 200);
  logged[at + 8] = '9';
  std::ofstream(log, std::ios::trunc | std::ios::binary) << logged;
  CommandResult r = resume_with(saved);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("window log was edited or damaged"), std::string::npos) << r.err;
  fs::resize_file(log, fs::file_size(log) / 2);
  r = resume_with(saved);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("shorter than the checkpoint records"), std::string::npos) << r.err;
}

}  // namespace
