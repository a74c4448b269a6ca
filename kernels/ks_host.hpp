#pragma once
// Internal: the host side of KS shared by the dispatch and the backends.
#include <cstdint>
#include <span>
#include <vector>

#include "driftguard/ks.hpp"
#include "kernels/backend.hpp"

namespace driftguard::detail {

// InvalidInput (prefixed with `what`) unless sizes and offsets of `columns` agree; O(features).
void check_sorted_layout(const SortedColumns& columns, const char* what);

// SciPy's result for one feature from a backend's extremes and the reference column's counts.
KsResult ks_result(const KsExtremes& extremes, std::uint64_t n_reference,
                   std::uint64_t nan_reference, const KsOptions& options);

// ks_result for every feature, spread over `threads` (the exact p-values cost up to
// O(n1 * n2) each).
std::vector<KsResult> ks_results(int threads, const SortedColumns& reference,
                                 std::span<const KsExtremes> extremes, const KsOptions& options);

}  // namespace driftguard::detail
