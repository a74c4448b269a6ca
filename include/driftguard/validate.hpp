#pragma once
// Cell validation: per-cell bit flags, a per-row ok flag and per-feature flag counts.
//
// Rules per feature (built from a Schema, see schema.hpp):
//   Missing          the value is NaN
//   NonFinite        the value is +Inf or -Inf (range and category checks are not applied to it)
//   BelowMin         finite and  (double)x <  min
//   AboveMax         finite and  (double)x >  max
//   UnknownCategory  categorical feature, finite, and x is not exactly one of the listed codes
// A row is ok when none of its cells has NonFinite, BelowMin, AboveMax or UnknownCategory, and no
// cell is Missing in a feature whose schema forbids missing values.
// The CPU and CUDA backends give bit-identical flags and counts.
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "driftguard/batch.hpp"

namespace driftguard {

class Context;
struct Schema;

enum CellFlag : std::uint8_t {
  kMissing = 1u << 0,
  kNonFinite = 1u << 1,
  kBelowMin = 1u << 2,
  kAboveMax = 1u << 3,
  kUnknownCategory = 1u << 4,
};
inline constexpr std::size_t kCellFlagCount = 5;
// Index of a flag in the per-feature count arrays: kMissing -> 0, ..., kUnknownCategory -> 4.
constexpr std::size_t flag_index(CellFlag flag) noexcept {
  return static_cast<std::size_t>(__builtin_ctz(static_cast<unsigned>(flag)));
}
const char* flag_name(CellFlag flag) noexcept;  // "missing", "non_finite", ...
inline constexpr std::array<CellFlag, kCellFlagCount> kAllCellFlags = {
    kMissing, kNonFinite, kBelowMin, kAboveMax, kUnknownCategory};

// Flat, backend-friendly form of the schema's checks. Build with from_schema(); `features()`
// must equal the batch's feature count.
struct ValidationRules {
  std::vector<double> min;                      // per feature; -inf when unbounded
  std::vector<double> max;                      // per feature; +inf when unbounded
  std::vector<std::uint8_t> categorical;        // per feature; 1 = categorical
  std::vector<std::uint8_t> missing_allowed;    // per feature; 1 = NaN does not spoil the row
  std::vector<std::uint32_t> category_offsets;  // features + 1 entries into category_codes
  std::vector<float> category_codes;            // per feature, strictly increasing integer codes

  static ValidationRules from_schema(const Schema& schema);
  // Rules that flag only Missing/NonFinite (no ranges, nothing categorical, missing allowed).
  static ValidationRules permissive(std::size_t features);
  std::size_t features() const noexcept { return min.size(); }
  // Throws InvalidInput when the arrays disagree in length or codes are not increasing.
  void check() const;
};

// Accumulated over batches.
struct ValidationCounts {
  std::size_t features = 0;
  std::vector<std::uint64_t> flag_counts;  // [features][kCellFlagCount]
  std::uint64_t rows = 0;                  // rows seen
  std::uint64_t rows_ok = 0;               // rows that passed

  ValidationCounts() = default;
  explicit ValidationCounts(std::size_t n_features)
      : features(n_features), flag_counts(n_features * kCellFlagCount, 0) {}
  // feature < features, unchecked, as std::vector's operator[].
  std::uint64_t count(std::size_t feature, CellFlag flag) const {
    return flag_counts[feature * kCellFlagCount + flag_index(flag)];
  }
  std::uint64_t rows_invalid() const noexcept { return rows - rows_ok; }
  ValidationCounts& operator+=(const ValidationCounts& other);  // InvalidInput on shape mismatch
  bool operator==(const ValidationCounts&) const = default;
};

// Optional per-cell outputs, in the batch's memory space. Null pointers are not written.
struct ValidationMasks {
  std::uint8_t* cell_flags = nullptr;  // rows * features CellFlag bits, row-major
  std::uint8_t* row_ok = nullptr;      // rows entries, 1 = ok
};

// Validates `batch` and adds its counts into `counts` (which must have the batch's feature count).
void validate(Context& ctx, BatchView batch, const ValidationRules& rules, ValidationCounts& counts,
              ValidationMasks masks = {});

}  // namespace driftguard
