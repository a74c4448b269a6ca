#pragma once
// A drift scan of a current HDF5 table against a reference, streamed: one reader thread fills a
// ring of host buffers (page-locked when the context runs on CUDA) while the compute thread runs
// each batch through a Monitor (monitor.hpp): validation, scores, histograms, and the window's
// statistics when a window closes. The reference is a raw HDF5 table (hdf5_io.hpp) or a reference
// profile built from one (profile.hpp). The report's JSON form is documented in docs/report.md.
//
// Without windows the whole current table is one window and the report is that window's.
// With windows (by row count or by /timestamp) every window gets its own report, written as one
// JSON Lines record, and the final report aggregates them (report.hpp).
//
// Nothing is lost: every row of the current table is counted valid, counted invalid, or listed
// as quarantined. A checkpoint after each window (written to a temporary file, fsync'ed, renamed)
// lets `resume` finish an interrupted run with the report an uninterrupted run gives.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "driftguard/monitor.hpp"
#include "driftguard/report.hpp"
#include "driftguard/schema.hpp"

namespace driftguard {

class Context;

enum class BadBlockPolicy {
  Stop,  // an unreadable block ends the run with an IoError naming its rows (resumable)
  Skip   // unreadable HDF5 chunks are quarantined, counted and reported; the run goes on
};
BadBlockPolicy parse_bad_block_policy(std::string_view name);  // "stop" | "skip"

struct ScanOptions : DriftOptions {
  // A raw reference table, or a profile (ReferenceProfile::is_profile) that carries its schema.
  // A raw reference is profiled first; its MMD sample is drawn as `driftguard profile` draws it,
  // so a scan against the table equals the scan against its profile (same mmd_rows and seed).
  std::string reference_path;
  std::string current_path;
  std::optional<Schema> schema;  // raw reference only; inferred when absent
  // Schema inference from a raw reference (SchemaInferrer; unset: ProfileOptions' defaults, 20
  // and 0.1). A profile carries the schema inferred when it was built: either one set with a
  // profile is InvalidInput, not ignored.
  std::optional<std::size_t> max_categories;
  std::optional<double> range_margin;
  std::size_t batch_rows = 0;    // rows per batch; 0 = about 16 MiB, whole HDF5 chunks
  std::size_t ring_buffers = 3;  // host buffers between the reader and the compute thread

  // Tumbling windows: by row count, or by /timestamp in its own units (windows
  // [k*W, (k+1)*W); timestamps must not decrease). At most one of the two; neither = one window.
  std::size_t window_rows = 0;
  std::optional<std::int64_t> window_time;

  std::string windows_jsonl;  // one JSON line per closed window (the window's report); "" = none
  // Written after each window; with `resume`, a run continues from it (a missing checkpoint
  // starts from the beginning). It records the inputs and options and refuses another run's.
  std::string checkpoint_path;
  bool resume = false;
  BadBlockPolicy on_bad_block = BadBlockPolicy::Stop;
  bool progress = false;  // a progress line on stderr (the CLI turns it on for terminals)
};

// Runs the scan; IoError / InvalidInput / BackendUnavailable / CudaError / ModelError on failure.
ScanReport scan(Context& ctx, const ScanOptions& options);

}  // namespace driftguard
