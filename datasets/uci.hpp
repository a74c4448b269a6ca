#pragma once
// Converts the UCI "default of credit card clients" CSV (Yeh & Lien, 2009) into two
// reference/current pairs in driftguard's HDF5 layout: a split by age (a real population shift)
// and a seeded random half split (the no-drift control).
#include <cstddef>
#include <cstdint>
#include <string>

namespace driftguard::data {

// Rows with AGE below this go to the age reference window, the rest to the current one.
inline constexpr int kUciAgeSplit = 40;

struct UciSummary {
  std::size_t rows = 0;
  std::size_t age_reference = 0;
  std::size_t age_current = 0;
  std::size_t random_reference = 0;
  std::size_t random_current = 0;
};

// Reads `input` (CSV, plain or gzip) and writes uci_age_reference.h5, uci_age_current.h5,
// uci_random_reference.h5 and uci_random_current.h5 into `output_dir` (created if missing).
// IoError for an unreadable file, an unexpected header, or a malformed line (named by number).
UciSummary convert_uci(const std::string& input, const std::string& output_dir, std::uint64_t seed);

}  // namespace driftguard::data
