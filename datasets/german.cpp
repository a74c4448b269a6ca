// German credit CSV -> codes, a labelled schema, and an age split.
#include "german.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <map>
#include <string_view>
#include <vector>

#include "csv.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"
#include "driftguard/schema.hpp"

namespace driftguard::data {
namespace {

struct Column {
  std::string_view name;
  bool categorical;
};

// The attributes in file order; creditability (good / bad) follows them.
constexpr std::array<Column, 20> kAttributes = {{
    {"status_of_existing_checking_account", true},
    {"duration_in_month", false},
    {"credit_history", true},
    {"purpose", true},
    {"credit_amount", false},
    {"savings_account_and_bonds", true},
    {"present_employment_since", true},
    {"installment_rate_in_percentage_of_disposable_income", false},
    {"personal_status_and_sex", true},
    {"other_debtors_or_guarantors", true},
    {"present_residence_since", false},
    {"property", true},
    {"age_in_years", false},
    {"other_installment_plans", true},
    {"housing", true},
    {"number_of_existing_credits_at_this_bank", false},
    {"job", true},
    {"number_of_people_being_liable_to_provide_maintenance_for", false},
    {"telephone", true},
    {"foreign_worker", true},
}};
constexpr std::size_t kFeatures = kAttributes.size();
constexpr std::string_view kLabelColumn = "creditability";
constexpr std::size_t kAgeFeature = 12;

struct Applicants {
  std::vector<std::vector<std::string>> rows;  // the text of every field, label included
};

Applicants read_applicants(const std::string& path) {
  LineReader lines(path);
  std::string line;
  if (!lines.next(line)) throw IoError(path + ": empty file, expected the German credit CSV");
  const std::string at_header = path + ": line 1: ";
  const std::vector<std::string> header = split_fields(without_bom(line), at_header);
  bool expected = header.size() == kFeatures + 1 && header.back() == kLabelColumn;
  for (std::size_t c = 0; expected && c < kFeatures; ++c)
    expected = header[c] == kAttributes[c].name;
  if (!expected) {
    throw IoError(at_header + "header is not the German credit CSV's (" +
                  std::string(kAttributes.front().name) + ", ..., " +
                  std::string(kAttributes.back().name) + ", " + std::string(kLabelColumn) + ")");
  }
  Applicants applicants;
  while (lines.next(line)) {
    if (line.empty()) continue;
    const std::string where = path + ": line " + std::to_string(lines.number()) + ": ";
    std::vector<std::string> fields = split_fields(line, where);
    if (fields.size() != kFeatures + 1) {
      throw IoError(where + "expected " + std::to_string(kFeatures + 1) + " fields, got " +
                    std::to_string(fields.size()));
    }
    for (std::size_t c = 0; c < kFeatures; ++c) {
      double value = 0;
      if (!kAttributes[c].categorical && !parse_finite(fields[c], value)) {
        throw IoError(where + std::string(kAttributes[c].name) + " is not a number: '" + fields[c] +
                      "'");
      }
      if (!kAttributes[c].categorical && !fits_float32(value)) {
        throw IoError(where + std::string(kAttributes[c].name) + " = " + fields[c] +
                      " does not fit float32 exactly");
      }
      if (kAttributes[c].categorical && fields[c].empty()) {
        throw IoError(where + std::string(kAttributes[c].name) + " is empty");
      }
    }
    if (fields.back() != "good" && fields.back() != "bad") {
      throw IoError(where + "creditability must be good or bad, got '" + fields.back() + "'");
    }
    applicants.rows.push_back(std::move(fields));
  }
  if (applicants.rows.empty()) throw IoError(path + ": no data rows after the header");
  return applicants;
}

}  // namespace

GermanSummary convert_german(const std::string& input, const std::string& output_dir) {
  const Applicants applicants = read_applicants(input);
  const std::size_t rows = applicants.rows.size();

  // Each categorical feature's texts in byte order; a text's code is its position.
  Schema schema;
  std::vector<std::map<std::string, std::int64_t>> codes(kFeatures);
  for (std::size_t c = 0; c < kFeatures; ++c) {
    FeatureSpec spec;
    spec.name = kAttributes[c].name;
    spec.missing_allowed = false;
    if (kAttributes[c].categorical) {
      spec.kind = FeatureKind::Categorical;
      for (const std::vector<std::string>& row : applicants.rows) codes[c].emplace(row[c], 0);
      std::int64_t next = 0;
      for (auto& [text, code] : codes[c]) {
        code = next++;
        spec.categories.push_back(code);
        spec.labels.push_back(text);
      }
    }
    schema.features.push_back(std::move(spec));
  }

  std::vector<float> features[2];
  std::vector<float> bad[2];
  std::vector<std::int64_t> row_id[2];
  for (std::size_t r = 0; r < rows; ++r) {
    const std::vector<std::string>& row = applicants.rows[r];
    double age = 0;
    parse_finite(row[kAgeFeature], age);
    const int side = static_cast<float>(age) < kGermanAgeSplit ? 0 : 1;  // split as stored
    for (std::size_t c = 0; c < kFeatures; ++c) {
      double value = 0;
      if (kAttributes[c].categorical) {
        value = static_cast<double>(codes[c].at(row[c]));
      } else {
        parse_finite(row[c], value);
      }
      features[side].push_back(static_cast<float>(value));
    }
    bad[side].push_back(row.back() == "bad" ? 1.0f : 0.0f);
    row_id[side].push_back(static_cast<std::int64_t>(r + 1));
  }

  const std::filesystem::path dir = output_directory(output_dir);
  const std::string age = std::to_string(kGermanAgeSplit);
  const std::array<std::string, 2> files = {"german_age_reference.h5", "german_age_current.h5"};
  const std::array<std::string, 2> rules = {"age_in_years < " + age, "age_in_years >= " + age};
  for (int side = 0; side < 2; ++side) {
    if (row_id[side].empty()) {
      throw IoError(input + ": no rows with " + rules[side] + ", so " + files[side] +
                    " would be empty");
    }
  }
  for (int side = 0; side < 2; ++side) {
    Hdf5Writer writer((dir / files[side]).string(), schema.names(),
                      {0, 0, /*with_label=*/true, /*with_timestamp=*/false, /*with_row_id=*/true});
    writer.append(features[side].data(), row_id[side].size(), bad[side].data(), nullptr,
                  row_id[side].data());
    writer.close();
  }
  schema.save((dir / "german.schema.json").string());
  return {rows, row_id[0].size(), row_id[1].size(),
          static_cast<std::size_t>(std::count_if(kAttributes.begin(), kAttributes.end(),
                                                 [](const Column& c) { return c.categorical; }))};
}

}  // namespace driftguard::data
