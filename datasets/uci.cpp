// UCI credit card CSV -> four HDF5 windows. The whole table (30,000 rows) is held in memory: the
// random split needs every row before it can pick half of them.
#include "uci.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <numeric>
#include <random>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "csv.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"

namespace driftguard::data {
namespace {

// ID, the 23 features LIMIT_BAL..PAY_AMT6, then the default flag.
constexpr std::size_t kFeatures = 23;
constexpr std::size_t kColumns = kFeatures + 2;
constexpr std::size_t kAgeColumn = 5;  // counting ID as column 0
constexpr std::array<std::string_view, kFeatures> kFeatureNames = {
    "LIMIT_BAL", "SEX",       "EDUCATION", "MARRIAGE",  "AGE",       "PAY_0",
    "PAY_2",     "PAY_3",     "PAY_4",     "PAY_5",     "PAY_6",     "BILL_AMT1",
    "BILL_AMT2", "BILL_AMT3", "BILL_AMT4", "BILL_AMT5", "BILL_AMT6", "PAY_AMT1",
    "PAY_AMT2",  "PAY_AMT3",  "PAY_AMT4",  "PAY_AMT5",  "PAY_AMT6"};
// UCI's own name for the label, and the one in the copy under ../shared/datasets.
constexpr std::array<std::string_view, 2> kLabelNames = {"default.payment.next.month", "target"};

struct Table {
  std::vector<float> features;  // rows x kFeatures, row-major
  std::vector<float> label;
  std::vector<std::int64_t> id;
  std::vector<double> age;
};

std::string column_name(std::size_t column) {
  if (column == 0) return "ID";
  if (column <= kFeatures) return std::string(kFeatureNames[column - 1]);
  return "default flag";
}

void check_header(const std::string& path, std::string_view line) {
  const std::string where = path + ": line 1: ";
  const std::vector<std::string> fields = split_fields(without_bom(line), where);
  if (fields.size() != kColumns) {
    throw IoError(where + "header has " + std::to_string(fields.size()) + " columns, expected " +
                  std::to_string(kColumns) + " (ID, LIMIT_BAL, ..., PAY_AMT6, " +
                  std::string(kLabelNames[0]) + ")");
  }
  for (std::size_t c = 0; c + 1 < kColumns; ++c) {
    if (fields[c] != column_name(c)) {
      throw IoError(where + "header column " + std::to_string(c + 1) + " is '" +
                    std::string(fields[c]) + "', expected '" + column_name(c) + "'");
    }
  }
  if (std::find(kLabelNames.begin(), kLabelNames.end(), fields.back()) == kLabelNames.end()) {
    throw IoError(where + "last header column is '" + std::string(fields.back()) + "', expected '" +
                  std::string(kLabelNames[0]) + "' or '" + std::string(kLabelNames[1]) + "'");
  }
}

Table read_table(const std::string& path) {
  LineReader lines(path);
  std::string line;
  if (!lines.next(line)) throw IoError(path + ": empty file, expected the UCI credit card CSV");
  check_header(path, line);

  Table table;
  std::unordered_set<std::int64_t> ids;
  while (lines.next(line)) {
    if (line.empty()) continue;  // blank lines hold no row
    const std::string where = path + ": line " + std::to_string(lines.number()) + ": ";
    const std::vector<std::string> fields = split_fields(line, where);
    if (fields.size() != kColumns) {
      throw IoError(where + "expected " + std::to_string(kColumns) + " fields, got " +
                    std::to_string(fields.size()));
    }
    std::array<double, kColumns> values{};
    for (std::size_t c = 0; c < kColumns; ++c) {
      const std::string_view field = fields[c];
      if (!parse_finite(field, values[c])) {
        throw IoError(where + column_name(c) + " is not a number: '" + std::string(field) + "'");
      }
      if (c > 0 && c <= kFeatures && !fits_float32(values[c])) {
        throw IoError(where + column_name(c) + " = " + std::string(field) +
                      " does not fit float32 exactly");
      }
    }
    // The ID as the integer it is written as: through a double, IDs beyond 2^53 would round (and
    // two of them collide).
    std::int64_t id = 0;
    const std::string& id_text = fields.front();
    const auto [id_end, id_error] =
        std::from_chars(id_text.data(), id_text.data() + id_text.size(), id);
    if (id_error != std::errc() || id_end != id_text.data() + id_text.size()) {
      throw IoError(where + "ID must be an integer, got '" + id_text + "'");
    }
    const double label = values.back();
    if (label != 0 && label != 1) {
      throw IoError(where + "default flag must be 0 or 1, got '" + std::string(fields.back()) +
                    "'");
    }
    if (!ids.insert(id).second) {
      throw IoError(where + "duplicate ID " + std::string(fields.front()));
    }
    for (std::size_t c = 1; c <= kFeatures; ++c) {
      table.features.push_back(static_cast<float>(values[c]));
    }
    table.label.push_back(static_cast<float>(label));
    table.id.push_back(id);
    table.age.push_back(static_cast<float>(values[kAgeColumn]));  // split as stored
  }
  if (table.id.empty()) throw IoError(path + ": no data rows after the header");
  return table;
}

// Writes the rows whose `side` equals `wanted`; returns how many.
std::size_t write_side(const std::filesystem::path& file, const Table& table,
                       const std::vector<bool>& side, bool wanted) {
  std::vector<float> features;
  std::vector<float> label;
  std::vector<std::int64_t> id;
  for (std::size_t r = 0; r < table.id.size(); ++r) {
    if (side[r] != wanted) continue;
    features.insert(features.end(), table.features.begin() + r * kFeatures,
                    table.features.begin() + (r + 1) * kFeatures);
    label.push_back(table.label[r]);
    id.push_back(table.id[r]);
  }
  Hdf5Writer writer(file.string(), {kFeatureNames.begin(), kFeatureNames.end()},
                    {0, 0, /*with_label=*/true, /*with_timestamp=*/false, /*with_row_id=*/true});
  writer.append(features.data(), id.size(), label.data(), nullptr, id.data());
  writer.close();
  return id.size();
}

}  // namespace

UciSummary convert_uci(const std::string& input, const std::string& output_dir,
                       std::uint64_t seed) {
  const Table table = read_table(input);
  const std::size_t rows = table.id.size();
  const std::filesystem::path dir = output_directory(output_dir);

  std::vector<bool> older(rows);
  for (std::size_t r = 0; r < rows; ++r) older[r] = table.age[r] >= kUciAgeSplit;

  // mt19937_64's output is fixed by the standard (unlike std::shuffle's algorithm), so sorting by
  // its draws gives the same split everywhere: exactly half, rounded up, in the reference.
  std::mt19937_64 engine(seed);
  std::vector<std::uint64_t> keys(rows);
  for (std::uint64_t& key : keys) key = engine();
  std::vector<std::size_t> order(rows);
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    return keys[a] != keys[b] ? keys[a] < keys[b] : a < b;
  });
  std::vector<bool> in_current(rows);
  for (std::size_t k = (rows + 1) / 2; k < rows; ++k) in_current[order[k]] = true;

  const std::string age = std::to_string(kUciAgeSplit);
  // Every file's rows are checked before any file is written: a failed run leaves no mix of new
  // and old files.
  const auto require = [&](const std::vector<bool>& side, bool wanted, const char* file,
                           const std::string& rule) {
    if (std::find(side.begin(), side.end(), wanted) == side.end()) {
      throw IoError(input + ": no rows with " + rule + ", so " + file + " would be empty");
    }
  };
  require(older, false, "uci_age_reference.h5", "AGE < " + age);
  require(older, true, "uci_age_current.h5", "AGE >= " + age);
  require(in_current, false, "uci_random_reference.h5", "the random reference half");
  require(in_current, true, "uci_random_current.h5", "the random current half");
  UciSummary summary;
  summary.rows = rows;
  summary.age_reference = write_side(dir / "uci_age_reference.h5", table, older, false);
  summary.age_current = write_side(dir / "uci_age_current.h5", table, older, true);
  summary.random_reference = write_side(dir / "uci_random_reference.h5", table, in_current, false);
  summary.random_current = write_side(dir / "uci_random_current.h5", table, in_current, true);
  return summary;
}

}  // namespace driftguard::data
