#pragma once
// Internal: the checks every entry point taking a BatchView makes first (kernels/dispatch.cpp).
#include <cstddef>

#include "driftguard/batch.hpp"

namespace driftguard::detail {

// InvalidInput starting with `what` unless the batch has `features` (> 0) features, a size that
// fits in memory, and data wherever it has rows.
void check_batch(const BatchView& batch, std::size_t features, const char* what);

}  // namespace driftguard::detail
