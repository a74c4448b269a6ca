#pragma once
// HDF5 tables in driftguard's layout (docs/data_format.md):
//   /features       float32 [N, F], chunked by whole rows (float64 is read with conversion)
//   /feature_names  UTF-8 strings [F]
//   /label          optional float32 [N]
//   /timestamp      optional int64 [N]
//   /row_id         optional int64 [N]
//   root attributes format = "driftguard", format_version = 1
// Every failure of a file is an IoError with one clear line naming the file and what is wrong;
// misuse of a writer (appending after close(), null rows, a column it was not made with) is
// InvalidInput.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace driftguard {

class Hdf5BatchReader {
 public:
  // Opens and checks the layout: not an HDF5 file, truncated file, missing /features, wrong rank
  // or dtype, /feature_names count mismatch and zero rows are IoErrors.
  explicit Hdf5BatchReader(const std::string& path);
  ~Hdf5BatchReader();
  Hdf5BatchReader(Hdf5BatchReader&&) noexcept;
  Hdf5BatchReader& operator=(Hdf5BatchReader&&) noexcept;

  const std::string& path() const noexcept;
  std::size_t rows() const noexcept;
  std::size_t features() const noexcept;
  const std::vector<std::string>& feature_names() const noexcept;
  // Rows per chunk of /features (a good block size to read), or rows() when contiguous.
  std::size_t chunk_rows() const noexcept;
  // Rows per batch: `requested`, or 0 for about 16 MiB of features plus `extra_floats_per_row`
  // (a model's outputs, say); rounded to whole chunks, so no chunk is read twice, and no more
  // chunks than the file has.
  std::size_t batch_rows(std::size_t requested, std::size_t extra_floats_per_row = 0) const;
  bool has_label() const noexcept;
  bool has_timestamp() const noexcept;
  bool has_row_id() const noexcept;

  // Reads rows [first, first + count) clamped to rows() into `out` (room for count * features()
  // floats, row-major); returns the number of rows read (0 when first >= rows()). IoError when the
  // block cannot be read (the message names the row range). The optional columns are read the
  // same way; reading one the file lacks (see has_label() etc.) is an IoError.
  // Whole chunks of native float32 or float64 rows in a plain file are read with pread and, when
  // compressed with deflate (and shuffle) or stored as float64, decoded here: on up to
  // `threads` threads (set_decode_threads; 0 = all cores, the default).
  std::size_t read(std::size_t first, std::size_t count, float* out);
  void set_decode_threads(int threads) noexcept;
  std::size_t read_label(std::size_t first, std::size_t count, float* out);
  std::size_t read_timestamp(std::size_t first, std::size_t count, std::int64_t* out);
  std::size_t read_row_id(std::size_t first, std::size_t count, std::int64_t* out);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct Hdf5WriterOptions {
  std::size_t chunk_rows = 0;  // 0: about 1 MiB of rows per chunk
  int gzip_level = 0;          // 0: uncompressed (fastest to stream), 1..9: deflate
  bool with_label = false;
  bool with_timestamp = false;
  bool with_row_id = false;
};

// Appends row blocks to a new file (truncates an existing one); sizes are extended as rows arrive,
// so multi-GB files stream with bounded memory. close() (or the destructor) finalises the file;
// call close() to get a failure as IoError, since the destructor can only print it to stderr.
// After a failed append the file is closed and incomplete, and further appends are IoErrors.
class Hdf5Writer {
 public:
  Hdf5Writer(const std::string& path, std::vector<std::string> feature_names,
             Hdf5WriterOptions options = {});
  ~Hdf5Writer();
  Hdf5Writer(Hdf5Writer&&) noexcept;
  Hdf5Writer& operator=(Hdf5Writer&&) noexcept;

  // `features` holds rows * F floats; the optional columns must be given iff enabled in options.
  void append(const float* features, std::size_t rows, const float* label = nullptr,
              const std::int64_t* timestamp = nullptr, const std::int64_t* row_id = nullptr);
  std::size_t rows() const noexcept;
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Streams 1-D ([N]) or 2-D ([N, width]) float32 columns and an optional int64 /row_id into a new
// file, e.g. the scores of `driftguard score`. The file is written under a temporary name next to
// `path` and replaces `path` when close() succeeds: a writer destroyed without close() (a run that
// failed) leaves `path` as it was. Failures are IoErrors.
class Hdf5ColumnWriter {
 public:
  struct Column {
    std::string name;       // dataset path, e.g. "/margin"
    std::size_t width = 0;  // 0: 1-D
  };
  Hdf5ColumnWriter(const std::string& path, std::vector<Column> columns, bool with_row_id);
  ~Hdf5ColumnWriter();
  Hdf5ColumnWriter(Hdf5ColumnWriter&&) noexcept;
  Hdf5ColumnWriter& operator=(Hdf5ColumnWriter&&) noexcept;

  // values[i] holds rows * max(width, 1) floats of column i; row_id is given iff enabled.
  void append(std::size_t rows, const std::vector<const float*>& values,
              const std::int64_t* row_id = nullptr);
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A small container of named 1-D arrays, texts and attributes in one HDF5 file: the storage of
// reference profiles (profile.hpp). Every failure is an IoError naming the file and the item.
class Hdf5Store {
 public:
  // A new store, replacing `path` when close() succeeds (written under a temporary name until
  // then; a store destroyed without close() leaves `path` as it was).
  static Hdf5Store create(const std::string& path);
  static Hdf5Store open(const std::string& path);  // read-only
  ~Hdf5Store();
  Hdf5Store(Hdf5Store&&) noexcept;
  Hdf5Store& operator=(Hdf5Store&&) noexcept;

  void set_attribute(const std::string& name, const std::string& value);
  void set_attribute(const std::string& name, std::int64_t value);
  // Empty when absent; IoError when present with another type.
  std::optional<std::string> string_attribute(const std::string& name) const;
  std::optional<std::int64_t> int_attribute(const std::string& name) const;

  void write(const std::string& name, std::span<const float> values);
  void write(const std::string& name, std::span<const std::uint64_t> values);
  void write_text(const std::string& name, const std::string& text);
  // IoError when the dataset is missing or has another rank or type class.
  std::vector<float> read_floats(const std::string& name) const;
  std::vector<std::uint64_t> read_uint64s(const std::string& name) const;
  std::string read_text(const std::string& name) const;

  void close();  // flushes; IoError when that fails (the destructor can only print it)

 private:
  Hdf5Store();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace driftguard
