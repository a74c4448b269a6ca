#pragma once
// A reference profile: everything a scan needs from the reference window, built once from the
// raw reference table and saved to HDF5 for reuse (docs/profile.md). Scanning against a profile
// reads no reference rows, so a current window runs at streaming speed.
//
// It holds the schema, the reference's validation counts, its columns sorted (NaN counted apart;
// these give KS, the quantile edges, every binning policy's reference histogram and the
// evidently policy's statistics), and a subsample of finite reference rows for MMD.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "driftguard/binning.hpp"
#include "driftguard/histogram.hpp"
#include "driftguard/ks.hpp"
#include "driftguard/model.hpp"
#include "driftguard/schema.hpp"
#include "driftguard/validate.hpp"

namespace driftguard {

class Context;

struct ProfileOptions {
  std::optional<Schema> schema;     // inferred from the reference when absent
  std::size_t max_categories = 20;  // schema inference (SchemaInferrer)
  double range_margin = 0.1;        // schema inference (SchemaInferrer)
  std::size_t mmd_rows = 2000;      // rows kept for MMD (all finite rows when fewer)
  std::uint64_t seed = 0;           // which rows the MMD sample keeps
  // A model whose reference scores the profile keeps, for score drift (scan --model).
  std::optional<std::string> model_path;
  ModelOptions model_options;
};

struct ReferenceProfile {
  std::string source;  // the reference table it was built from
  std::string file;    // the profile file it was read from (load); empty when built in memory
  std::uint64_t rows = 0;
  Schema schema;
  bool schema_inferred = false;
  ValidationCounts validation;
  SortedColumns sorted;
  // Rows of the reference without NaN or +-Inf (MMD rejects them), chosen uniformly at random by
  // the seed and kept in file order; row-major [mmd_rows x features].
  std::vector<float> mmd_sample;
  std::size_t mmd_rows = 0;
  std::uint64_t finite_rows = 0;  // reference rows eligible for the MMD sample
  // With ProfileOptions::model_path: the model's probability outputs on every reference row, one
  // sorted column per output (model_scores); empty otherwise. The model's path and its
  // Model::fingerprint(): a scan must score with the model whose fingerprint this is.
  std::string score_model;
  std::string score_model_fingerprint;
  SortedColumns scores;

  // Reads the whole reference table (its rows are held in memory while sorting).
  static ReferenceProfile build(Context& ctx, const std::string& reference_path,
                                const ProfileOptions& options = {});
  // IoError on unreadable files; InvalidInput on a file that is not a profile of this version or
  // whose parts disagree (wrong sizes, unsorted columns, a schema that does not parse).
  static ReferenceProfile load(const std::string& path);
  void save(const std::string& path) const;
  // True when `path` is an HDF5 file carrying the profile format attribute.
  static bool is_profile(const std::string& path);

  std::size_t features() const noexcept { return schema.features.size(); }
  // What errors about this reference name: the profile file a user passed, else the table.
  const std::string& name() const noexcept { return file.empty() ? source : file; }
  // Per-feature statistics of the finite reference values (binning policies), read off the sorted
  // columns (ColumnStats::of_sorted).
  std::vector<ColumnStats> column_stats() const;
  // Reference histogram for `spec`, counted from the sorted columns; equals histogram() over the
  // reference rows.
  HistogramCounts histogram(const HistogramSpec& spec) const;
};

// histogram() of the values behind sorted columns, by binary search with the kernel's float
// comparisons: equals histogram() over the unsorted rows.
HistogramCounts histogram_of_sorted(const SortedColumns& columns, const HistogramSpec& spec);

// The model's probability outputs (score() with probability only) for every row of a host batch
// whose columns are `names`: rows x model.outputs() floats, row-major.
std::vector<float> model_scores(Context& ctx, const Model& model,
                                const std::vector<std::string>& names, BatchView batch);

// Up to `rows` rows of `batch` (host) without NaN or +-Inf, chosen uniformly by `seed` and kept in
// batch order, row-major; `finite_rows` receives how many rows qualified.
std::vector<float> sample_finite_rows(BatchView batch, std::size_t rows, std::uint64_t seed,
                                      std::uint64_t* finite_rows = nullptr);

}  // namespace driftguard
