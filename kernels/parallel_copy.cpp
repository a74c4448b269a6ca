#include "kernels/parallel_copy.hpp"

#include <algorithm>
#include <cstring>

namespace driftguard::detail {

void parallel_copy(int threads, void* dst, const void* src, std::size_t bytes) {
  if (bytes == 0) return;  // memcpy's pointers may not be null, even for no bytes
  constexpr std::size_t kMinPiece = std::size_t{1} << 20;
  const std::size_t pieces =
      std::clamp<std::size_t>(bytes / kMinPiece, 1, static_cast<std::size_t>(std::max(threads, 1)));
  if (pieces == 1) {
    std::memcpy(dst, src, bytes);
    return;
  }
  // Pieces of whole cache lines, the last one taking the rest.
  const std::size_t piece = (bytes / pieces + 63) / 64 * 64;
  auto* out = static_cast<unsigned char*>(dst);
  const auto* in = static_cast<const unsigned char*>(src);
#pragma omp parallel for num_threads(static_cast <int>(pieces)) schedule(static, 1)
  for (std::size_t p = 0; p < pieces; ++p) {
    const std::size_t begin = std::min(bytes, p * piece);
    const std::size_t end = p + 1 == pieces ? bytes : std::min(bytes, begin + piece);
    std::memcpy(out + begin, in + begin, end - begin);
  }
}

}  // namespace driftguard::detail
