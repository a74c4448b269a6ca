#include "host/block_ring.hpp"

#include <algorithm>
#include <chrono>

#include "driftguard/errors.hpp"

namespace driftguard::detail {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

BlockRing::BlockRing(Context& ctx, Hdf5BatchReader& reader, std::uint64_t first_row,
                     std::size_t block_rows, std::size_t buffers, bool timestamps, bool skip_bad)
    : reader_(reader),
      position_(first_row),
      block_rows_(block_rows),
      timestamps_(timestamps),
      skip_bad_(skip_bad),
      slots_(std::max<std::size_t>(buffers, 2)) {
  for (Slot& slot : slots_) {
    slot.features = HostBuffer(ctx, block_rows * reader.features() * sizeof(float));
    if (timestamps) slot.timestamps.resize(block_rows);
    free_.push_back(&slot);
  }
  reader.set_decode_threads(ctx.cpu_threads());
  thread_ = std::thread([this] { run(); });
}

BlockRing::~BlockRing() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

const Block* BlockRing::next() {
  std::unique_lock lock(mutex_);
  changed_.wait(lock, [this] { return !filled_.empty() || done_; });
  if (filled_.empty()) return nullptr;
  Slot* slot = filled_.front();
  filled_.pop_front();
  return &slot->block;
}

void BlockRing::release(const Block* block) {
  {
    const std::lock_guard lock(mutex_);
    for (Slot& slot : slots_) {
      if (&slot.block == block) free_.push_back(&slot);
    }
  }
  changed_.notify_all();
}

void BlockRing::run() {
  const std::uint64_t rows = reader_.rows();
  while (true) {
    Slot* slot = nullptr;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [this] { return !free_.empty() || stopping_; });
      if (stopping_) return;
      if (position_ >= rows) {
        done_ = true;
        break;
      }
      slot = free_.front();
      free_.pop_front();
    }
    const std::uint64_t end =
        std::min<std::uint64_t>(rows, (position_ / block_rows_ + 1) * block_rows_);
    try {
      fill(*slot, position_, end);
    } catch (...) {  // e.g. bad_alloc: the consumer rethrows it
      slot->block.error = std::current_exception();
    }
    const bool failed = slot->block.error != nullptr;
    position_ = end;
    {
      const std::lock_guard lock(mutex_);
      filled_.push_back(slot);
      if (failed) done_ = true;  // the consumer rethrows; nothing after it is read
    }
    changed_.notify_all();
    if (failed) return;
  }
  changed_.notify_all();
}

void BlockRing::fill(Slot& slot, std::uint64_t first, std::uint64_t end) {
  Block& block = slot.block;
  block = Block{};
  block.first_row = first;
  block.end_row = end;
  block.read_begin = steady_seconds();
  float* data = static_cast<float*>(slot.features.data());
  block.data = data;
  block.timestamps = timestamps_ ? slot.timestamps.data() : nullptr;
  const std::size_t features = reader_.features();
  const auto read_range = [&](std::uint64_t from, std::uint64_t to, std::size_t offset) {
    reader_.read(from, to - from, data + offset * features);
    if (timestamps_) reader_.read_timestamp(from, to - from, slot.timestamps.data() + offset);
  };
  try {
    read_range(first, end, 0);
    block.pieces.push_back({first, static_cast<std::size_t>(end - first), 0, false, {}});
  } catch (const IoError& e) {
    if (!skip_bad_) {
      block.error = std::current_exception();
    } else {
      // Chunk by chunk: the readable chunks go on (compacted), the others are quarantined.
      const std::uint64_t chunk = std::max<std::size_t>(1, reader_.chunk_rows());
      std::size_t offset = 0;
      for (std::uint64_t from = first; from < end;) {
        const std::uint64_t to = std::min(end, (from / chunk + 1) * chunk);
        try {
          read_range(from, to, offset);
          if (!block.pieces.empty() && !block.pieces.back().quarantined) {
            block.pieces.back().rows += to - from;
          } else {
            block.pieces.push_back({from, static_cast<std::size_t>(to - from), offset, false, {}});
          }
          offset += to - from;
        } catch (const IoError& bad) {
          block.pieces.push_back({from, static_cast<std::size_t>(to - from), 0, true, bad.what()});
        }
        from = to;
      }
    }
  }
  block.read_seconds = steady_seconds() - block.read_begin;
}

}  // namespace driftguard::detail
