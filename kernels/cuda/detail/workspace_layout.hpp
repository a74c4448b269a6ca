#pragma once
// Carving one call's buffers out of the DeviceState workspace / pinned staging: offsets are laid
// out first, the buffer is requested once at the total size, then pointers are taken at the
// offsets.
#include <cstddef>

namespace driftguard::cuda {

class Layout {
 public:
  // Offset of `count` T's, 256-byte aligned (what cudaMalloc and CUB's temporaries expect).
  template <class T>
  std::size_t add(std::size_t count) {
    bytes_ = (bytes_ + 255) / 256 * 256;
    const std::size_t at = bytes_;
    bytes_ += count * sizeof(T);
    return at;
  }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  std::size_t bytes_ = 0;
};

template <class T>
T* at(std::byte* base, std::size_t offset) {
  return reinterpret_cast<T*>(base + offset);
}

}  // namespace driftguard::cuda
