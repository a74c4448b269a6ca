#pragma once
// Internal: the scan's reader thread. It reads the current table block by block into a ring of
// host buffers (HostBuffer: page-locked under CUDA) ahead of the compute thread, which takes
// the blocks in file order and gives each back when done with it.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "driftguard/context.hpp"
#include "driftguard/hdf5_io.hpp"

namespace driftguard::detail {

// A run of file rows inside a block: readable rows (at `offset` rows into the block's data) or
// rows that could not be read.
struct BlockPiece {
  std::uint64_t first_row = 0;
  std::size_t rows = 0;
  std::size_t offset = 0;
  bool quarantined = false;
  std::string reason;  // why the rows could not be read
};

struct Block {
  std::uint64_t first_row = 0;  // the block covers file rows [first_row, end_row)
  std::uint64_t end_row = 0;
  std::vector<BlockPiece> pieces;            // in file order, covering the block
  const float* data = nullptr;               // readable rows, compacted, row-major
  const std::int64_t* timestamps = nullptr;  // per readable row, when asked for
  double read_begin = 0;                     // steady-clock seconds when its read started
  double read_seconds = 0;                   // time spent in HDF5
  std::exception_ptr error;  // a read failure under the stop policy: the block carries nothing else
};

class BlockRing {
 public:
  // Reads rows [first_row, reader.rows()) in blocks of up to `block_rows` rows aligned to
  // multiples of block_rows, which must be a multiple of the file's chunk rows; `skip_bad`
  // quarantines unreadable chunks instead of failing. Starts the thread.
  BlockRing(Context& ctx, Hdf5BatchReader& reader, std::uint64_t first_row, std::size_t block_rows,
            std::size_t buffers, bool timestamps, bool skip_bad);
  ~BlockRing();  // stops and joins the thread
  BlockRing(const BlockRing&) = delete;
  BlockRing& operator=(const BlockRing&) = delete;

  // The next block in file order, or null after the last one. The block stays valid until
  // release().
  const Block* next();
  void release(const Block* block);

 private:
  struct Slot {
    HostBuffer features;
    std::vector<std::int64_t> timestamps;
    Block block;
  };
  void run();
  void fill(Slot& slot, std::uint64_t first, std::uint64_t end);

  Hdf5BatchReader& reader_;
  std::uint64_t position_;
  std::size_t block_rows_;
  bool timestamps_;
  bool skip_bad_;
  std::vector<Slot> slots_;
  std::deque<Slot*> free_, filled_;
  bool done_ = false;      // the reader has queued its last block
  bool stopping_ = false;  // the consumer has gone
  std::mutex mutex_;
  std::condition_variable changed_;
  std::thread thread_;
};

double steady_seconds();

}  // namespace driftguard::detail
