#pragma once
// Internal: the total of a histogram's counts for the measures over counts (psi.hpp,
// distances.hpp). A total of 2^64 or more would wrap and give proportions above 1 without a word:
// InvalidInput instead.
#include <cstdint>
#include <span>
#include <string>

#include "driftguard/errors.hpp"

namespace driftguard::detail {

inline std::uint64_t count_total(std::span<const std::uint64_t> counts, const char* what) {
  std::uint64_t total = 0;
  for (const std::uint64_t count : counts) {
    if (__builtin_add_overflow(total, count, &total)) {
      throw InvalidInput(std::string(what) + ": the counts add up to 2^64 or more");
    }
  }
  return total;
}

}  // namespace driftguard::detail
