#pragma once
// Two-sample Kolmogorov–Smirnov test per feature, reproducing scipy.stats.ks_2samp (SciPy 1.17)
// for the statistic, its location and sign, and the p-value under every method and alternative.
//
// Definitions, per feature, with R the reference sample (n1 values) and C the current sample
// (n2 values), NaN removed from both (and counted):
//   F_R(v) = #{r in R : r <= v} / n1,  F_C(v) = #{c in C : c <= v} / n2, each evaluated as one
//   double division and the difference F_R(v) - F_C(v) as one double subtraction, exactly as
//   SciPy evaluates them, at every value v of the pooled sample (ties need no special care:
//   equal values are one step of both ECDFs). -0.0 equals +0.0; +-Inf are ordinary values.
//   D+ = max_v (F_R(v) - F_C(v)) >= 0 ("greater"),
//   D- = max_v (F_C(v) - F_R(v)) >= 0 ("less"),
//   D  = max(D+, D-) ("two-sided"; D+ when they are equal).
// The result equals ks_2samp(reference, current, alternative=..., method=...): the reference is
// SciPy's data1. statistic_location is SciPy's: the first pooled value, in the order
// [sorted reference, sorted current], where the extreme difference is reached; so a reference
// value wins over a current one, then the smaller value. statistic_sign is +1 when F_R is above
// F_C there (D+ chosen), -1 otherwise.
//
// P-values (ks_pvalue) follow ks_2samp's rules exactly:
//   Auto  -> Exact when max(n1, n2) <= 10000, else Asymp.
//   Exact -> with g = gcd(n1, n2) and lcm = n1 / g * n2, the statistic is put on the lattice
//            h = round_half_even(d * lcm), d = h / lcm (this d is the statistic SciPy reports);
//            h == 0 gives p = 1. Two-sided: n1 == n2 by the closed form (Hodges), else by the
//            lattice-path recursion of Viehmann (2021); one-sided: n1 == n2 by a product, else by
//            counting paths outside the boundary (Hodges) over binom(n1 + n2, n1). When that
//            computation overflows or gives a value outside [0, 1], Asymp is used instead (SciPy
//            warns and does the same). An explicit Exact with n1/g >= (2^31 - 1) / (n2/g) uses
//            Asymp directly.
//   Asymp -> two-sided: the one-sample two-sided distribution kstwo.sf(d, round_half_even(en)),
//            en = n1 * n2 / (n1 + n2), evaluated like SciPy's kolmogn (Simard & L'Ecuyer's
//            choice among Ruben–Gambino, Durbin/Marsaglia–Tsang–Wang, Pomeranz, Pelz–Good and
//            2 * smirnov). SciPy's quirk is kept: n1 = n2 = 1 rounds en = 0.5 to 0 and gives NaN.
//            One-sided: Hodges' approximation exp(-2 z^2 - 2 z (m + 2n) / sqrt(m n (m + n)) / 3),
//            m >= n the two sizes, z = sqrt(en) d.
//   The p-value is clipped to [0, 1].
//
// A feature with no non-NaN value in either sample has statistic, p-value and location NaN,
// sign 0 and method_used Auto (SciPy raises on empty input).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "driftguard/batch.hpp"

namespace driftguard {

class Context;

enum class KsMethod { Auto, Exact, Asymp };
enum class KsAlternative { TwoSided, Less, Greater };

// "auto" | "exact" | "asymp" and "two-sided" | "less" | "greater" (SciPy's names,
// case-sensitive); anything else throws InvalidInput.
KsMethod parse_ks_method(std::string_view name);
KsAlternative parse_ks_alternative(std::string_view name);
std::string_view to_string(KsMethod method);
std::string_view to_string(KsAlternative alternative);

struct KsOptions {
  KsMethod method = KsMethod::Auto;
  KsAlternative alternative = KsAlternative::TwoSided;
};

struct KsResult {
  double statistic = 0;  // see the definitions above; NaN when a sample is empty
  double pvalue = 0;     // in [0, 1], or NaN (empty sample; Asymp two-sided with n1 = n2 = 1)
  // Exact or Asymp: what computed the p-value after SciPy's switch rules; Auto when a sample is
  // empty and no test was run.
  KsMethod method_used = KsMethod::Auto;
  double statistic_location = 0;  // the value where the statistic is reached (SciPy's rule)
  int statistic_sign = 0;         // +1: F_R above F_C there, -1: below; 0 when a sample is empty
  std::uint64_t n_reference = 0, n_current = 0;      // non-NaN values used
  std::uint64_t nan_reference = 0, nan_current = 0;  // NaN values excluded
};

// The p-value of statistic `d` in [0, 1] for sample sizes n1, n2 >= 1 (reference and current),
// as ks_2samp computes it (rules above). `used` receives Exact or Asymp; `statistic` receives the
// statistic ks_2samp reports with it: d on the 1 / lcm(n1, n2) lattice when the exact method was
// attempted (even when it then fell back to Asymp), d itself otherwise. InvalidInput when d is
// NaN or outside [0, 1], or a size is 0 or above 2^32. Cost: O(1) to O(n) for the asymptotic
// laws, but SciPy's exact method for two different sizes is O(n1 * n2) (about 0.5 s at
// n1 = n2 - 1 = 10^4, the largest sizes Auto sends there).
double ks_pvalue(double d, std::uint64_t n1, std::uint64_t n2, const KsOptions& options = {},
                 KsMethod* used = nullptr, double* statistic = nullptr);

// The reference side of KS, sorted once and reused across scans: per feature the non-NaN values
// in ascending order (-0.0 and +0.0 may both appear, in either order), concatenated.
struct SortedColumns {
  std::size_t features = 0;
  std::vector<float> values;              // offsets.back() values
  std::vector<std::uint64_t> offsets;     // features + 1, offsets[0] == 0, non-decreasing
  std::vector<std::uint64_t> nan_counts;  // features; NaN values left out of each column

  // feature < features, unchecked, as std::vector's operator[].
  std::span<const float> column(std::size_t feature) const {
    return {values.data() + offsets[feature], values.data() + offsets[feature + 1]};
  }
  // Throws InvalidInput unless the layout above holds: sizes and offsets agree, every column is
  // ascending and holds no NaN. from_batch's result always passes; call it on columns built by
  // hand or read from a file (ks_two_sample checks only the sizes and offsets, per call).
  void check() const;

  // Sorts the columns of `batch` (host batch, or device batch on the CUDA backend) on the
  // context's backend. Both backends give the same bits.
  static SortedColumns from_batch(Context& ctx, BatchView batch);
  // The same into this object, in the memory it already holds: a monitor that sorts window after
  // window allocates (and the OS zero-fills) its values once, not once per window. On an
  // exception the contents are unspecified.
  void assign_from_batch(Context& ctx, BatchView batch);
};

// KS of every feature of `current` (the whole current window; row-major, host or device memory)
// against the sorted reference. The statistics are computed on the context's backend (both give
// the same bits), the p-values on the host with ks_pvalue. InvalidInput when the feature counts
// differ or the reference's sizes and offsets are inconsistent, and on the CUDA backend for a
// window (or, in from_batch and the raw-windows call, a reference) of more than 2^31 - 1 rows:
// CUB counts items in int. The CPU backend has no such limit.
std::vector<KsResult> ks_two_sample(Context& ctx, const SortedColumns& reference, BatchView current,
                                    const KsOptions& options = {});

// KS of two raw windows (row-major, host or device memory), the reference sorted in the call on
// the context's backend. On the CUDA backend the sorted reference stays on the device: with both
// windows in device memory only NaN counts and results cross to the host. The results equal
// ks_two_sample(ctx, SortedColumns::from_batch(ctx, reference), current, options).
std::vector<KsResult> ks_two_sample(Context& ctx, BatchView reference, BatchView current,
                                    const KsOptions& options = {});

// A sorted reference kept where `ctx` computes, for repeated KS tests against it: on the CUDA
// backend its values are copied to device memory once, here (CudaError when that fails), instead
// of on every ks_two_sample call (4Mi x 64 values are 1 GiB); on the CPU backend nothing is
// copied. It refers to `columns`, which must stay alive and unchanged while it is used, and it
// serves only the context it was made with, which must outlive it. Move-only.
class ResidentReference {
 public:
  ResidentReference(Context& ctx, const SortedColumns& columns);
  ~ResidentReference();
  ResidentReference(ResidentReference&& other) noexcept;
  ResidentReference& operator=(ResidentReference&& other) noexcept;
  ResidentReference(const ResidentReference&) = delete;
  ResidentReference& operator=(const ResidentReference&) = delete;

  const SortedColumns& columns() const noexcept { return *columns_; }
  const Context& context() const noexcept { return *ctx_; }
  // The values in device memory (columns().values' layout), or null: CPU backend, no values.
  const float* device_values() const noexcept { return d_values_; }

 private:
  Context* ctx_;
  const SortedColumns* columns_;
  float* d_values_ = nullptr;
};

// KS against a resident reference: the same results as
// ks_two_sample(ctx, reference.columns(), current, options). InvalidInput when `ctx` is not the
// context the reference was made with.
std::vector<KsResult> ks_two_sample(Context& ctx, const ResidentReference& reference,
                                    BatchView current, const KsOptions& options = {});

// The same for a current window already sorted (SortedColumns::from_batch), so that a caller who
// needs the sorted columns for other statistics sorts once. Both are host data, so the merge runs
// on the context's CPU threads whatever its backend; results equal the overload above.
// InvalidInput when the feature counts differ or either layout is inconsistent.
std::vector<KsResult> ks_two_sample(Context& ctx, const SortedColumns& reference,
                                    const SortedColumns& current, const KsOptions& options = {});

}  // namespace driftguard
