// Hdf5BatchReader / Hdf5Writer: round trips, block reads, foreign layouts and every bad-file case.
#include <gtest/gtest.h>

#include <hdf5.h>
#include <bit>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "command.hpp"
#include "driftguard/errors.hpp"
#include "driftguard/hdf5_io.hpp"

namespace driftguard {
namespace {

namespace fs = std::filesystem;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNan = std::numeric_limits<float>::quiet_NaN();

struct Table {
  std::size_t rows = 0;
  std::size_t features = 0;
  std::vector<float> values;
  std::vector<float> label;
  std::vector<std::int64_t> timestamp;
  std::vector<std::int64_t> row_id;
};

// Normal values with NaN and ±Inf sprinkled in, so no value is ever the default 0.
Table random_table(std::size_t rows, std::size_t features, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(3.0f, 10.0f);
  std::uniform_int_distribution<int> special(0, 49);
  Table t{rows, features, {}, {}, {}, {}};
  for (std::size_t i = 0; i < rows * features; ++i) {
    const int s = special(rng);
    t.values.push_back(s == 0 ? kNan : s == 1 ? kInf : s == 2 ? -kInf : normal(rng));
  }
  for (std::size_t i = 0; i < rows; ++i) {
    t.label.push_back(static_cast<float>(special(rng) % 2));
    t.timestamp.push_back(1'700'000'000 + 3 * static_cast<std::int64_t>(i));
    t.row_id.push_back(-5 + static_cast<std::int64_t>(i) * 7);
  }
  return t;
}

std::vector<std::string> names_for(std::size_t features) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < features; ++i) names.push_back("feat_" + std::to_string(i));
  return names;
}

// Appends in uneven pieces so that appends straddle chunk boundaries.
void write_table(const std::string& path, const Table& t, std::vector<std::string> names,
                 Hdf5WriterOptions options) {
  Hdf5Writer writer(path, std::move(names), options);
  std::size_t first = 0;
  for (std::size_t piece = 1; first < t.rows; piece = piece * 3 + 17) {
    const std::size_t n = std::min(piece, t.rows - first);
    writer.append(t.values.data() + first * t.features, n,
                  options.with_label ? t.label.data() + first : nullptr,
                  options.with_timestamp ? t.timestamp.data() + first : nullptr,
                  options.with_row_id ? t.row_id.data() + first : nullptr);
    first += n;
  }
  EXPECT_EQ(writer.rows(), t.rows);
  writer.close();
}

Hdf5WriterOptions all_columns(std::size_t chunk_rows = 0, int gzip_level = 0) {
  return {chunk_rows, gzip_level, true, true, true};
}

// Bitwise comparison: NaN payloads and the sign of infinities must survive.
template <typename T>
void expect_same_bits(const T* actual, const T* expected, std::size_t n) {
  ASSERT_EQ(std::memcmp(actual, expected, n * sizeof(T)), 0);
}

// Raw HDF5 C API: datasets in layouts the writer never produces.
class RawFile {
 public:
  // `user_block`: bytes before HDF5's data (h5py's userblock_size), 0 or a power of 2 >= 512.
  // `latest_format`: the newest file format (h5py's libver="latest"), whose chunked datasets are
  // indexed by a fixed or extensible array, a v2 B-tree, a single chunk or implicitly, not by the
  // v1 B-tree of the default format.
  explicit RawFile(const std::string& path, hsize_t user_block = 0, bool latest_format = false) {
    const hid_t create = H5Pcreate(H5P_FILE_CREATE);
    const hid_t access = H5Pcreate(H5P_FILE_ACCESS);
    EXPECT_GE(H5Pset_userblock(create, user_block), 0);
    if (latest_format) {
      EXPECT_GE(H5Pset_libver_bounds(access, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST), 0);
    }
    file_ = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, create, access);
    H5Pclose(access);
    H5Pclose(create);
    EXPECT_GE(file_, 0);
  }
  ~RawFile() { H5Fclose(file_); }

  void dataset(const char* name, hid_t file_type, hid_t mem_type, std::vector<hsize_t> dims,
               const void* data) {
    const hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
    const hid_t dataset =
        H5Dcreate2(file_, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(dataset, 0);
    if (data != nullptr) {
      EXPECT_GE(H5Dwrite(dataset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), 0);
    }
    H5Dclose(dataset);
    H5Sclose(space);
  }

  // A chunked float32 table of `dims` (maximum `max_dims`), of which the first `written_rows`
  // rows are written (ones): the rest is declared but never stored.
  void chunked_table(const char* name, std::vector<hsize_t> dims, std::vector<hsize_t> max_dims,
                     std::vector<hsize_t> chunk, hsize_t written_rows) {
    const hid_t space = H5Screate_simple(2, dims.data(), max_dims.data());
    const hid_t create = H5Pcreate(H5P_DATASET_CREATE);
    EXPECT_GE(H5Pset_chunk(create, 2, chunk.data()), 0);
    const hid_t dataset =
        H5Dcreate2(file_, name, H5T_IEEE_F32LE, space, H5P_DEFAULT, create, H5P_DEFAULT);
    EXPECT_GE(dataset, 0);
    if (written_rows > 0) {
      const std::vector<float> ones(written_rows * dims[1], 1.0f);
      const hsize_t start[2] = {0, 0}, count[2] = {written_rows, dims[1]};
      EXPECT_GE(H5Sselect_hyperslab(space, H5S_SELECT_SET, start, nullptr, count, nullptr), 0);
      const hid_t memory = H5Screate_simple(2, count, nullptr);
      EXPECT_GE(H5Dwrite(dataset, H5T_NATIVE_FLOAT, memory, space, H5P_DEFAULT, ones.data()), 0);
      H5Sclose(memory);
    }
    H5Dclose(dataset);
    H5Pclose(create);
    H5Sclose(space);
  }

  // Writes float32 `values` over the whole of a dataset made by the caller, then closes it.
  void with_dataset(hid_t dataset, const float* values) {
    EXPECT_GE(dataset, 0);
    EXPECT_GE(H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values), 0);
    H5Dclose(dataset);
  }
  hid_t id() const { return file_; }

  // Fixed-length, NUL-padded ASCII strings, as numpy's "S" dtype stores them.
  void fixed_strings(const char* name, const std::vector<std::string>& strings, std::size_t size) {
    std::vector<char> buffer(strings.size() * size, '\0');
    for (std::size_t i = 0; i < strings.size(); ++i) {
      std::memcpy(buffer.data() + i * size, strings[i].data(), std::min(size, strings[i].size()));
    }
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, size);
    H5Tset_strpad(type, H5T_STR_NULLPAD);
    dataset(name, type, type, {strings.size()}, buffer.data());
    H5Tclose(type);
  }

  void string_attribute(const char* name, const std::string& value) {
    const hid_t type = H5Tcopy(H5T_C_S1);
    H5Tset_size(type, value.size());
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attribute = H5Acreate2(file_, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(H5Awrite(attribute, type, value.data()), 0);
    H5Aclose(attribute);
    H5Sclose(space);
    H5Tclose(type);
  }

  void int_attribute(const char* name, long long value) {
    const hid_t space = H5Screate(H5S_SCALAR);
    const hid_t attribute = H5Acreate2(file_, name, H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(H5Awrite(attribute, H5T_NATIVE_LLONG, &value), 0);
    H5Aclose(attribute);
    H5Sclose(space);
  }

 private:
  hid_t file_ = H5I_INVALID_HID;
};

class Hdf5IoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           (std::string("hdf5_io_") + info->test_suite_name() + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override {
    // Every path, failures included, must have closed all its files, datasets and attributes.
    EXPECT_EQ(H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
    fs::remove_all(dir_);
  }

  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  // A file made with the raw HDF5 API by `extra`.
  template <typename Extra>
  std::string raw_file(const std::string& name, Extra extra, hsize_t user_block = 0,
                       bool latest_format = false) {
    const std::string path = file(name);
    RawFile raw(path, user_block, latest_format);
    extra(raw);
    return path;
  }

  // The reader must refuse `path` with an IoError naming the file and containing `phrase`,
  // and HDF5 must not print its error stack.
  static void expect_open_error(const std::string& path, const std::string& phrase) {
    ::testing::internal::CaptureStderr();
    try {
      Hdf5BatchReader reader(path);
      ADD_FAILURE() << path << ": expected IoError containing '" << phrase << "'";
    } catch (const IoError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind(path + ": ", 0), 0u) << message;
      EXPECT_NE(message.find(phrase), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  }

  // Reading `rows` rows from `first` must fail with one IoError containing `phrase` (the file,
  // the rows and why), and HDF5 must not print its error stack.
  void every_chunk_pipeline_reads_what_libhdf5_reads(std::size_t chunk_rows);

  static void expect_read_error(Hdf5BatchReader& reader, std::size_t first, std::size_t rows,
                                float* out, const std::string& phrase) {
    ::testing::internal::CaptureStderr();
    try {
      reader.read(first, rows, out);
      ADD_FAILURE() << "expected IoError containing '" << phrase << "'";
    } catch (const IoError& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(phrase), std::string::npos) << message;
      EXPECT_EQ(message.find('\n'), std::string::npos) << message;
    }
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  }

  fs::path dir_;
};

TEST_F(Hdf5IoTest, RoundTripKeepsEveryBitAndColumn) {
  const Table t = random_table(5000, 7, 1);
  std::vector<std::string> names = names_for(7);
  names[3] = "einkommen_\u20ac";  // non-ASCII UTF-8 must survive
  const std::string path = file("round_trip.h5");
  write_table(path, t, names, all_columns());

  Hdf5BatchReader reader(path);
  EXPECT_EQ(reader.path(), path);
  EXPECT_EQ(reader.rows(), t.rows);
  EXPECT_EQ(reader.features(), t.features);
  EXPECT_EQ(reader.feature_names(), names);
  ASSERT_TRUE(reader.has_label() && reader.has_timestamp() && reader.has_row_id());

  std::vector<float> values(t.values.size(), -1.0f);
  std::vector<float> label(t.rows, -1.0f);
  std::vector<std::int64_t> timestamp(t.rows, -1), row_id(t.rows, -1);
  EXPECT_EQ(reader.read(0, t.rows, values.data()), t.rows);
  EXPECT_EQ(reader.read_label(0, t.rows, label.data()), t.rows);
  EXPECT_EQ(reader.read_timestamp(0, t.rows, timestamp.data()), t.rows);
  EXPECT_EQ(reader.read_row_id(0, t.rows, row_id.data()), t.rows);
  expect_same_bits(values.data(), t.values.data(), values.size());
  expect_same_bits(label.data(), t.label.data(), t.rows);
  expect_same_bits(timestamp.data(), t.timestamp.data(), t.rows);
  expect_same_bits(row_id.data(), t.row_id.data(), t.rows);
}

TEST_F(Hdf5IoTest, GzipRoundTripWithExplicitChunks) {
  const Table t = random_table(3001, 5, 2);
  const std::string path = file("gzip.h5");
  write_table(path, t, names_for(5), all_columns(/*chunk_rows=*/128, /*gzip_level=*/6));

  Hdf5BatchReader reader(path);
  EXPECT_EQ(reader.chunk_rows(), 128u);
  std::vector<float> values(t.values.size(), -1.0f);
  EXPECT_EQ(reader.read(0, t.rows, values.data()), t.rows);
  expect_same_bits(values.data(), t.values.data(), values.size());
}

TEST_F(Hdf5IoTest, OptionalColumnsAreOptional) {
  const Table t = random_table(50, 2, 3);
  const std::string path = file("plain.h5");
  write_table(path, t, names_for(2), {});
  Hdf5BatchReader reader(path);
  EXPECT_FALSE(reader.has_label() || reader.has_timestamp() || reader.has_row_id());
  std::vector<float> label(t.rows);
  EXPECT_THROW(reader.read_label(0, t.rows, label.data()), IoError);
}

TEST_F(Hdf5IoTest, DefaultChunksHoldAboutOneMebibyte) {
  const Table t = random_table(20000, 32, 4);
  const std::string path = file("chunks.h5");
  write_table(path, t, names_for(32), {});
  EXPECT_EQ(Hdf5BatchReader(path).chunk_rows(), (std::size_t{1} << 20) / (32 * sizeof(float)));

  const Table small = random_table(100, 32, 5);
  write_table(path, small, names_for(32), {});
  EXPECT_EQ(Hdf5BatchReader(path).chunk_rows(), 100u);  // never more than the rows stored
}

TEST_F(Hdf5IoTest, BatchRowsAreWholeChunksWithinTheFile) {
  const std::string path = file("batches.h5");
  write_table(path, random_table(20000, 32, 4), names_for(32), {.chunk_rows = 1000});
  const Hdf5BatchReader reader(path);
  // 16 MiB of 32 floats a row would be 131072 rows: the file's 20 chunks are all there is.
  EXPECT_EQ(reader.batch_rows(0), 20000u);
  EXPECT_EQ(reader.batch_rows(2500), 3000u);  // rounded up to whole chunks
  EXPECT_EQ(reader.batch_rows(std::size_t{1} << 62), 20000u);
  // 1000 model outputs a row leave room for 4 chunks (16 MiB / (1032 * 4 B) = 4064 rows).
  EXPECT_EQ(reader.batch_rows(0, 1000), 4000u);
}

TEST_F(Hdf5IoTest, BlockReadsAtEveryOffsetClampTheLastBlock) {
  const Table t = random_table(1000, 3, 6);
  const std::string path = file("blocks.h5");
  write_table(path, t, names_for(3), all_columns(/*chunk_rows=*/64));
  Hdf5BatchReader reader(path);

  // Blocks inside one chunk, blocks holding whole chunks between partial ones (whole chunks of
  // float32 are read raw), and the whole table (its last chunk is partial).
  for (const std::size_t block : {std::size_t{37}, std::size_t{150}, std::size_t{1000}}) {
    SCOPED_TRACE(block);
    std::vector<float> values(block * t.features);
    std::vector<float> label(block);
    std::vector<std::int64_t> timestamp(block), row_id(block);
    for (std::size_t first = 0; first < t.rows; ++first) {
      const std::size_t expected = std::min(block, t.rows - first);
      std::fill(values.begin(), values.end(), -1.0f);
      ASSERT_EQ(reader.read(first, block, values.data()), expected) << first;
      expect_same_bits(values.data(), t.values.data() + first * t.features, expected * t.features);
      ASSERT_EQ(reader.read_label(first, block, label.data()), expected);
      ASSERT_EQ(reader.read_timestamp(first, block, timestamp.data()), expected);
      ASSERT_EQ(reader.read_row_id(first, block, row_id.data()), expected);
      expect_same_bits(label.data(), t.label.data() + first, expected);
      expect_same_bits(timestamp.data(), t.timestamp.data() + first, expected);
      expect_same_bits(row_id.data(), t.row_id.data() + first, expected);
    }
    EXPECT_EQ(reader.read(t.rows, block, values.data()), 0u);
    EXPECT_EQ(reader.read(t.rows + 5, block, values.data()), 0u);
    EXPECT_EQ(reader.read(10, 0, values.data()), 0u);
  }
}

// Whole chunks are read raw (pread, at the addresses of libhdf5's chunk index, past a user block
// where the file has one, whichever kind of index the file format gives the dataset) and decoded
// by driftguard when stored as native float32 or float64 with no filter, shuffle, deflate or both
// (shuffle first); other layouts (chunks split across features among them) go through libhdf5.
// Every one reads at every offset, whole chunks between partial ones, what libhdf5's own
// H5Dread of the whole table gives (float64 narrowed as libhdf5 narrows: past FLT_MAX to Inf).
// Twice: in 64-row chunks, too many small ones to locate by address (libhdf5 reads their stored
// bytes, H5Dread_chunk, and driftguard decodes them), and in 512-row chunks, read by address.
TEST_F(Hdf5IoTest, EveryChunkPipelineReadsWhatLibhdf5Reads) {
  for (const std::size_t chunk_rows : {std::size_t{64}, std::size_t{512}}) {
    SCOPED_TRACE("chunk rows " + std::to_string(chunk_rows));
    every_chunk_pipeline_reads_what_libhdf5_reads(chunk_rows);
  }
}

void Hdf5IoTest::every_chunk_pipeline_reads_what_libhdf5_reads(const std::size_t kChunkRows) {
  constexpr std::size_t kRows = 1000, kFeatures = 3;
  std::vector<double> source(kRows * kFeatures);
  std::mt19937_64 rng(12);
  std::normal_distribution<double> normal(0.0, 1e3);
  const double flt_max = std::numeric_limits<float>::max();
  const std::vector<double> unusual = {1e39,
                                       -1e39,
                                       flt_max,
                                       flt_max * (1 + 1e-9),
                                       -flt_max * (1 + 1e-9),
                                       1e-40,
                                       1e-50,
                                       -0.0,
                                       1.0 + 1.5 * std::ldexp(1.0, -24),
                                       std::numeric_limits<double>::quiet_NaN(),
                                       std::numeric_limits<double>::infinity()};
  for (std::size_t i = 0; i < source.size(); ++i) {
    source[i] = i % 7 == 3 ? unusual[(i / 7) % unusual.size()] : normal(rng);
  }
  struct Layout {
    const char* name;
    std::vector<H5Z_filter_t> filters;
    hid_t file_type;
    hsize_t user_block = 0;  // HDF5's addresses then start past it in the file
    bool latest_format = false;
    int unlimited_dims = 0;  // 1: rows, 2: rows and features (the index depends on it)
    hsize_t chunk_rows = 0;  // 0: kChunkRows
    hsize_t chunk_features = kFeatures;
    bool early_allocation = false;  // with no filter and fixed dims: the implicit index
    // Chunk 2 stored with its deflate step skipped (filter mask bit 1), as libhdf5 does when an
    // optional filter fails: shuffled bytes, not compressed.
    bool unfiltered_chunk_2 = false;
  };
  const std::vector<Layout> layouts = {
      {"plain", {}, H5T_IEEE_F32LE},
      {"deflate", {H5Z_FILTER_DEFLATE}, H5T_IEEE_F32LE},
      {"shuffle", {H5Z_FILTER_SHUFFLE}, H5T_IEEE_F32LE},
      {.name = "shuffle_deflate",
       .filters = {H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE},
       .file_type = H5T_IEEE_F32LE,
       .unfiltered_chunk_2 = true},
      {"f64_plain", {}, H5T_IEEE_F64LE},
      {"f64_deflate", {H5Z_FILTER_DEFLATE}, H5T_IEEE_F64LE},
      {"f64_shuffle_deflate", {H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE}, H5T_IEEE_F64LE},
      {"plain_user_block", {}, H5T_IEEE_F32LE, 512},
      {"deflate_user_block", {H5Z_FILTER_DEFLATE}, H5T_IEEE_F32LE, 4096},
      {.name = "f64_shuffle", .filters = {H5Z_FILTER_SHUFFLE}, .file_type = H5T_IEEE_F64LE},
      {.name = "fixed_array_shuffle_deflate",
       .filters = {H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE},
       .file_type = H5T_IEEE_F32LE,
       .latest_format = true,
       .unfiltered_chunk_2 = true},
      {.name = "extensible_array_shuffle_deflate",
       .filters = {H5Z_FILTER_SHUFFLE, H5Z_FILTER_DEFLATE},
       .file_type = H5T_IEEE_F32LE,
       .latest_format = true,
       .unlimited_dims = 1,
       .unfiltered_chunk_2 = true},
      {.name = "v2_btree_plain",
       .filters = {},
       .file_type = H5T_IEEE_F32LE,
       .latest_format = true,
       .unlimited_dims = 2},
      {.name = "implicit_plain",
       .filters = {},
       .file_type = H5T_IEEE_F32LE,
       .latest_format = true,
       .early_allocation = true},
      {.name = "single_chunk_f64_deflate",
       .filters = {H5Z_FILTER_DEFLATE},
       .file_type = H5T_IEEE_F64LE,
       .latest_format = true,
       .chunk_rows = kRows},
      // libhdf5's path:
      {"deflate_shuffle", {H5Z_FILTER_DEFLATE, H5Z_FILTER_SHUFFLE}, H5T_IEEE_F32LE},
      {"fletcher_deflate", {H5Z_FILTER_FLETCHER32, H5Z_FILTER_DEFLATE}, H5T_IEEE_F32LE},
      {"big_endian_deflate", {H5Z_FILTER_DEFLATE}, H5T_IEEE_F32BE},
      {"f64_big_endian", {}, H5T_IEEE_F64BE},
      {"big_endian_plain", {}, H5T_IEEE_F32BE},
      {.name = "two_chunks_across_features",
       .filters = {H5Z_FILTER_DEFLATE},
       .file_type = H5T_IEEE_F32LE,
       .unlimited_dims = 1,
       .chunk_features = 2},
  };
  for (const Layout& layout : layouts) {
    SCOPED_TRACE(layout.name);
    const std::string path = raw_file(
        std::string(layout.name) + ".h5",
        [&](RawFile& f) {
          const hsize_t dims[2] = {kRows, kFeatures};
          const hsize_t max_dims[2] = {layout.unlimited_dims >= 1 ? H5S_UNLIMITED : kRows,
                                       layout.unlimited_dims >= 2 ? H5S_UNLIMITED : kFeatures};
          const hsize_t chunk[2] = {layout.chunk_rows != 0 ? layout.chunk_rows : kChunkRows,
                                    layout.chunk_features};
          const hid_t space = H5Screate_simple(2, dims, max_dims);
          const hid_t create = H5Pcreate(H5P_DATASET_CREATE);
          EXPECT_GE(H5Pset_chunk(create, 2, chunk), 0);
          if (layout.early_allocation) {
            EXPECT_GE(H5Pset_alloc_time(create, H5D_ALLOC_TIME_EARLY), 0);
          }
          for (const H5Z_filter_t filter : layout.filters) {
            const herr_t set = filter == H5Z_FILTER_DEFLATE   ? H5Pset_deflate(create, 4)
                               : filter == H5Z_FILTER_SHUFFLE ? H5Pset_shuffle(create)
                                                              : H5Pset_fletcher32(create);
            EXPECT_GE(set, 0);
          }
          const hid_t dataset = H5Dcreate2(f.id(), "/features", layout.file_type, space,
                                           H5P_DEFAULT, create, H5P_DEFAULT);
          EXPECT_GE(
              H5Dwrite(dataset, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, source.data()),
              0);
          if (layout.unfiltered_chunk_2) {
            const std::size_t n = kChunkRows * kFeatures;
            // Chunk 2, or the first where there are fewer whole ones.
            const hsize_t chunk_index = std::min<hsize_t>(2, kRows / kChunkRows - 1);
            std::vector<float> values(n);
            for (std::size_t i = 0; i < n; ++i) values[i] = static_cast<float>(i) - 17.25f;
            const auto* bytes = reinterpret_cast<const unsigned char*>(values.data());
            std::vector<unsigned char> shuffled(4 * n);
            for (std::size_t i = 0; i < n; ++i) {
              for (std::size_t j = 0; j < 4; ++j) shuffled[j * n + i] = bytes[4 * i + j];
            }
            const hsize_t offset[2] = {chunk_index * kChunkRows, 0};
            EXPECT_GE(
                H5Dwrite_chunk(dataset, H5P_DEFAULT, 2u, offset, shuffled.size(), shuffled.data()),
                0);
          }
          H5Dclose(dataset);
          H5Pclose(create);
          H5Sclose(space);
        },
        layout.user_block, layout.latest_format);
    std::vector<float> expected(kRows * kFeatures);
    {
      const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
      const hid_t dataset = H5Dopen2(file, "/features", H5P_DEFAULT);
      EXPECT_GE(H5Dread(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, expected.data()),
                0);
      H5Dclose(dataset);
      H5Fclose(file);
    }
    Hdf5BatchReader reader(path);
    for (const int threads : {1, 3}) {
      reader.set_decode_threads(threads);
      for (const std::size_t block : {std::size_t{37}, std::size_t{150}, std::size_t{1000}}) {
        std::vector<float> values(block * kFeatures);
        for (std::size_t first = 0; first < kRows; first += first < 200 ? 1 : 13) {
          const std::size_t rows = std::min(block, kRows - first);
          std::fill(values.begin(), values.end(), -1.0f);
          ASSERT_EQ(reader.read(first, block, values.data()), rows) << first;
          for (std::size_t i = 0; i < rows * kFeatures; ++i) {
            const float want = expected[first * kFeatures + i];
            if (std::isnan(want)) {
              ASSERT_TRUE(std::isnan(values[i])) << first << " " << i;
            } else {
              ASSERT_EQ(std::bit_cast<std::uint32_t>(values[i]), std::bit_cast<std::uint32_t>(want))
                  << first << " " << i << ": " << values[i] << " vs " << want;
            }
          }
        }
      }
    }
  }
}

TEST_F(Hdf5IoTest, Float64FeaturesAreConvertedAndFixedLengthNamesRead) {
  constexpr std::size_t kRows = 300, kFeatures = 4;
  std::vector<double> values(kRows * kFeatures);
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = std::sin(0.37 * i) * 1e4 + 0.1;
  values[5] = std::numeric_limits<double>::quiet_NaN();
  values[6] = std::numeric_limits<double>::infinity();
  values[7] = -std::numeric_limits<double>::infinity();
  const std::vector<std::string> names = {"income", "age", "x", "utilization"};
  const std::string path = raw_file("float64.h5", [&](RawFile& raw) {
    raw.dataset("/features", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, {kRows, kFeatures}, values.data());
    raw.fixed_strings("/feature_names", names, 16);
  });

  Hdf5BatchReader reader(path);
  EXPECT_EQ(reader.feature_names(), names);
  EXPECT_EQ(reader.chunk_rows(), kRows);  // contiguous: one block is the whole table
  std::vector<float> out(values.size(), -1.0f);
  ASSERT_EQ(reader.read(0, kRows, out.data()), kRows);
  EXPECT_TRUE(std::isnan(out[5]));
  EXPECT_EQ(out[6], kInf);
  EXPECT_EQ(out[7], -kInf);
  for (std::size_t i = 8; i < values.size(); ++i) {
    ASSERT_EQ(out[i], static_cast<float>(values[i])) << i;
  }
}

TEST_F(Hdf5IoTest, MissingNamesDefaultToIndices) {
  const std::vector<float> values(6, 1.5f);
  const std::string path = raw_file("no_names.h5", [&](RawFile& raw) {
    raw.dataset("/features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {2, 3}, values.data());
  });
  EXPECT_EQ(Hdf5BatchReader(path).feature_names(), (std::vector<std::string>{"f0", "f1", "f2"}));
}

TEST_F(Hdf5IoTest, NonexistentPath) { expect_open_error(file("nope.h5"), "no such file"); }

TEST_F(Hdf5IoTest, TextFileIsNotHdf5) {
  const std::string path = file("cur.h5");
  std::ofstream(path) << "ID,LIMIT_BAL\n1,20000\n";
  expect_open_error(path, "not an HDF5 file");
}

TEST_F(Hdf5IoTest, TruncatedFile) {
  const std::string path = file("cur.h5");
  write_table(path, random_table(4000, 8, 7), names_for(8), all_columns());
  fs::resize_file(path, fs::file_size(path) / 2);
  expect_open_error(path, "truncated or corrupt HDF5 file (");
}

TEST_F(Hdf5IoTest, MissingFeatures) {
  const std::vector<float> label(10, 1.0f);
  const std::string path = raw_file("cur.h5", [&](RawFile& raw) {
    raw.dataset("/label", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {10}, label.data());
  });
  expect_open_error(path, "missing dataset /features");
}

TEST_F(Hdf5IoTest, FeaturesOfRankOneAndThree) {
  const std::vector<float> values(24, 2.0f);
  const std::string rank1 = raw_file("rank1.h5", [&](RawFile& raw) {
    raw.dataset("/features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {24}, values.data());
  });
  expect_open_error(rank1, "/features must be 2-D [rows, features], got rank 1");
  const std::string rank3 = raw_file("rank3.h5", [&](RawFile& raw) {
    raw.dataset("/features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {2, 3, 4}, values.data());
  });
  expect_open_error(rank3, "/features must be 2-D [rows, features], got rank 3");
}

TEST_F(Hdf5IoTest, IntegerFeatures) {
  const std::vector<std::int32_t> values(12, 3);
  const std::string path = raw_file("cur.h5", [&](RawFile& raw) {
    raw.dataset("/features", H5T_STD_I32LE, H5T_NATIVE_INT32, {3, 4}, values.data());
  });
  expect_open_error(path, "/features must be float32 or float64, got integer");
}

TEST_F(Hdf5IoTest, NamesCountMismatch) {
  const std::vector<float> values(12, 3.0f);
  const std::string path = raw_file("cur.h5", [&](RawFile& raw) {
    raw.dataset("/features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {3, 4}, values.data());
    raw.fixed_strings("/feature_names", {"a", "b", "c"}, 8);
  });
  expect_open_error(path, "/feature_names has 3 names but /features has 4 columns");
}

TEST_F(Hdf5IoTest, DuplicateNames) {
  const std::vector<float> values(6, 3.0f);
  const std::string path = raw_file("cur.h5", [&](RawFile& raw) {
    raw.dataset("/features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {3, 2}, values.data());
    raw.fixed_strings("/feature_names", {"age", "age"}, 8);
  });
  expect_open_error(path, "/feature_names has duplicate name 'age'");
}

TEST_F(Hdf5IoTest, NamesThatAreNotUtf8) {
  const std::vector<float> values(6, 3.0f);
  const std::string path = raw_file("cur.h5", [&](RawFile& raw) {
    raw.dataset("/features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {3, 2}, values.data());
    raw.fixed_strings("/feature_names", {"age", "r\xe9gion"}, 8);  // Latin-1
  });
  expect_open_error(path, "/feature_names[1] is not UTF-8 text");
}

TEST_F(Hdf5IoTest, Uint64RowIdsBeyondInt64FailInsteadOfClamping) {
  const std::vector<float> values(6, 3.0f);
  const std::vector<std::uint64_t> small = {1, 2, 3}, big = {1, (std::uint64_t{1} << 63) + 5, 3};
  for (const auto* ids : {&small, &big}) {
    const std::string path = raw_file(ids == &small ? "small.h5" : "big.h5", [&](RawFile& raw) {
      raw.dataset("/features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {3, 2}, values.data());
      raw.dataset("/row_id", H5T_STD_U64LE, H5T_NATIVE_UINT64, {3}, ids->data());
    });
    Hdf5BatchReader reader(path);
    std::int64_t out[3] = {};
    if (ids == &small) {
      ASSERT_EQ(reader.read_row_id(0, 3, out), 3u);
      EXPECT_EQ(out[1], 2);
      continue;
    }
    ::testing::internal::CaptureStderr();
    try {
      reader.read_row_id(0, 3, out);
      ADD_FAILURE() << "a row id above 2^63 was read as " << out[1];
    } catch (const IoError& e) {
      EXPECT_NE(std::string(e.what()).find("rows 0..2 of /row_id (a value beyond int64"),
                std::string::npos)
          << e.what();
    }
    EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  }
}

TEST_F(Hdf5IoTest, ZeroRows) {
  const std::string path = file("cur.h5");
  Hdf5Writer(path, names_for(4)).close();
  expect_open_error(path, "/features has zero rows");
}

// A few kilobytes of file can declare any extent; rows never written would read as the fill value
// and count as data.
TEST_F(Hdf5IoTest, DeclaredButUnstoredRowsAreRefused) {
  const hsize_t unlimited = H5S_UNLIMITED;
  expect_open_error(raw_file("half.h5",
                             [](RawFile& f) {
                               f.chunked_table("/features", {100, 4}, {100, 4}, {10, 4}, 50);
                             }),
                    "declares 100 x 4 values but the file stores only part of them");
  expect_open_error(raw_file("huge.h5",
                             [&](RawFile& f) {
                               f.chunked_table("/features", {hsize_t{1} << 40, 6},
                                               {unlimited, unlimited}, {1024, 6}, 0);
                             }),
                    "declares 1099511627776 x 6 values but the file stores only part of them");
  expect_open_error(
      raw_file("contiguous.h5",
               [](RawFile& f) {
                 f.dataset("/features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {8, 3}, nullptr);
               }),
      "declares 8 x 3 values but the file stores only part of them");
  expect_open_error(raw_file("wide.h5",
                             [&](RawFile& f) {
                               f.chunked_table("/features", {3, hsize_t{1} << 31},
                                               {unlimited, unlimited}, {1, 1024}, 0);
                             }),
                    "declares 2147483648 columns, more than 16777216");
  expect_open_error(raw_file("overflow.h5",
                             [&](RawFile& f) {
                               f.chunked_table("/features", {(hsize_t{1} << 61) + 1, 8},
                                               {unlimited, unlimited}, {1, 8}, 0);
                             }),
                    "more than this machine can address");
  // Written in full, the same layouts read.
  const std::string whole = raw_file("whole.h5", [](RawFile& f) {
    f.chunked_table("/features", {100, 4}, {100, 4}, {10, 4}, 100);
  });
  EXPECT_EQ(Hdf5BatchReader(whole).rows(), 100u);
}

// libhdf5 1.10's H5Dwrite_chunk accepts a chunk at an offset equal to the extent, outside the
// table, and the chunk count at open counts it: a table missing one chunk then opens. The missing
// chunk's rows must fail whichever path reads them (whole chunks raw, block edges and layouts
// split across features through libhdf5, which would give the fill value), never read as zeros.
TEST_F(Hdf5IoTest, ChunkNeverWrittenFailsEveryReadOfItsRows) {
  const std::vector<float> chunk(10 * 3, 7.0f);
  const auto table = [&](hsize_t chunk_features, std::vector<std::array<hsize_t, 2>> chunks) {
    return [=](RawFile& f) {
      const hsize_t dims[2] = {40, 3}, max_dims[2] = {H5S_UNLIMITED, 3};
      const hsize_t shape[2] = {10, chunk_features};
      const hid_t space = H5Screate_simple(2, dims, max_dims);
      const hid_t create = H5Pcreate(H5P_DATASET_CREATE);
      EXPECT_GE(H5Pset_chunk(create, 2, shape), 0);
      const hid_t dataset =
          H5Dcreate2(f.id(), "/features", H5T_IEEE_F32LE, space, H5P_DEFAULT, create, H5P_DEFAULT);
      for (const auto& at : chunks) {
        const hsize_t offset[2] = {at[0], at[1]};
        EXPECT_GE(
            H5Dwrite_chunk(dataset, H5P_DEFAULT, 0, offset, 10 * chunk_features * 4, chunk.data()),
            0);
      }
      H5Dclose(dataset);
      H5Pclose(create);
      H5Sclose(space);
    };
  };
  // Rows 20..29 never written; a chunk at row 40, past the table, makes the count.
  Hdf5BatchReader whole_rows(
      raw_file("whole_rows.h5", table(3, {{0, 0}, {10, 0}, {30, 0}, {40, 0}})));
  std::vector<float> values(40 * 3);
  EXPECT_EQ(whole_rows.read(0, 20, values.data()), 20u);
  for (const auto& [first, rows] :
       {std::pair<std::size_t, std::size_t>{0, 40}, {20, 10}, {15, 10}, {25, 10}, {21, 3}}) {
    SCOPED_TRACE(first);
    expect_read_error(whole_rows, first, rows, values.data(), "of /features (corrupt block?");
  }
  // Two chunks across features (read by libhdf5): the chunk of rows 20..29, columns 2.. missing.
  Hdf5BatchReader split(
      raw_file("split.h5",
               table(2, {{0, 0}, {0, 2}, {10, 0}, {10, 2}, {20, 0}, {30, 0}, {30, 2}, {40, 0}})));
  EXPECT_EQ(split.read(0, 20, values.data()), 20u);
  expect_read_error(split, 0, 40, values.data(), "of /features (corrupt block?");
  expect_read_error(split, 25, 1, values.data(), "of /features (corrupt block?");
  // An optional column's chunks are not counted at open: /label with only rows 0..9 written.
  Hdf5BatchReader label_gap(raw_file("label_gap.h5", [&](RawFile& f) {
    table(3, {{0, 0}, {10, 0}, {20, 0}, {30, 0}})(f);
    const hsize_t rows = 40, shape = 10;
    const hid_t space = H5Screate_simple(1, &rows, nullptr);
    const hid_t create = H5Pcreate(H5P_DATASET_CREATE);
    EXPECT_GE(H5Pset_chunk(create, 1, &shape), 0);
    const hid_t label =
        H5Dcreate2(f.id(), "/label", H5T_IEEE_F32LE, space, H5P_DEFAULT, create, H5P_DEFAULT);
    const hsize_t offset = 0;
    EXPECT_GE(H5Dwrite_chunk(label, H5P_DEFAULT, 0, &offset, 10 * 4, chunk.data()), 0);
    H5Dclose(label);
    H5Pclose(create);
    H5Sclose(space);
  }));
  ASSERT_TRUE(label_gap.has_label());
  EXPECT_EQ(label_gap.read_label(0, 10, values.data()), 10u);
  EXPECT_EQ(values[9], 7.0f);
  EXPECT_EQ(label_gap.read(0, 40, values.data()), 40u);
  ::testing::internal::CaptureStderr();
  try {
    label_gap.read_label(5, 10, values.data());
    ADD_FAILURE() << "a label chunk never written read";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("cannot read rows 10..19 of /label (corrupt block?: the "
                                         "chunk is not stored)"),
              std::string::npos)
        << e.what();
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

// A virtual dataset whose source is missing, or a table in an external raw file shorter than it
// declares, reads as the fill value: rows of data that are in no file.
TEST_F(Hdf5IoTest, DataOutsideTheFileIsRefused) {
  const hsize_t dims[2] = {500, 4};
  expect_open_error(
      raw_file("virtual.h5",
               [&](RawFile& f) {
                 const hid_t space = H5Screate_simple(2, dims, nullptr);
                 const hid_t create = H5Pcreate(H5P_DATASET_CREATE);
                 EXPECT_GE(H5Pset_virtual(create, space, "missing_source.h5", "/features", space),
                           0);
                 const hid_t dataset = H5Dcreate2(f.id(), "/features", H5T_IEEE_F32LE, space,
                                                  H5P_DEFAULT, create, H5P_DEFAULT);
                 EXPECT_GE(dataset, 0);
                 H5Dclose(dataset);
                 H5Pclose(create);
                 H5Sclose(space);
               }),
      "/features is a virtual dataset");
  const std::string raw = file("short.bin");
  {
    std::ofstream out(raw, std::ios::binary);
    const std::vector<float> first_rows(100 * 4, 1.0f);  // a fifth of the declared table
    out.write(reinterpret_cast<const char*>(first_rows.data()),
              static_cast<std::streamsize>(first_rows.size() * sizeof(float)));
  }
  expect_open_error(raw_file("external.h5",
                             [&](RawFile& f) {
                               const hid_t space = H5Screate_simple(2, dims, nullptr);
                               const hid_t create = H5Pcreate(H5P_DATASET_CREATE);
                               EXPECT_GE(H5Pset_external(create, raw.c_str(), 0, 500 * 4 * 4), 0);
                               const hid_t dataset =
                                   H5Dcreate2(f.id(), "/features", H5T_IEEE_F32LE, space,
                                              H5P_DEFAULT, create, H5P_DEFAULT);
                               EXPECT_GE(dataset, 0);
                               H5Dclose(dataset);
                               H5Pclose(create);
                               H5Sclose(space);
                             }),
                    "/features keeps its data in external raw files");
}

// h5py's lzf (filter 32000) is not in Debian's libhdf5: named at open, not as a failed read about
// plugin directories on every block.
TEST_F(Hdf5IoTest, FilterThisLibraryLacksIsNamed) {
  const std::string path = raw_file("lzf.h5", [](RawFile& f) {
    const hsize_t dims[2] = {20, 3}, chunk[2] = {10, 3};
    const hid_t space = H5Screate_simple(2, dims, nullptr);
    const hid_t create = H5Pcreate(H5P_DATASET_CREATE);
    EXPECT_GE(H5Pset_chunk(create, 2, chunk), 0);
    EXPECT_GE(H5Pset_filter(create, 32000, H5Z_FLAG_OPTIONAL, 0, nullptr), 0);  // as h5py sets it
    const std::vector<float> values(60, 1.0f);
    f.with_dataset(
        H5Dcreate2(f.id(), "/features", H5T_IEEE_F32LE, space, H5P_DEFAULT, create, H5P_DEFAULT),
        values.data());
    H5Pclose(create);
    H5Sclose(space);
  });
  expect_open_error(path, "/features is compressed with HDF5 filter 32000");
}

// HDF5 never creates a chunk larger than a fixed maximum extent; libhdf5 1.10 reads past its
// buffers on one, so the layout is refused at open.
TEST_F(Hdf5IoTest, ChunkLargerThanTheTableIsACorruptLayout) {
  const std::string path = raw_file("chunk.h5", [](RawFile& f) {
    f.chunked_table("/features", {200, 5}, {200, 5}, {25, 5}, 200);
  });
  std::string bytes = driftguard::testing::read_text(path);
  // The layout message holds the chunk's dimensions and the element size as 32-bit integers.
  const std::uint32_t layout[3] = {25, 5, 4}, patched = 8716313;
  const std::size_t at = bytes.find(std::string(reinterpret_cast<const char*>(layout), 12));
  ASSERT_NE(at, std::string::npos);
  std::memcpy(bytes.data() + at, &patched, 4);
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  expect_open_error(path, "corrupt layout (chunk 8716313 x 5 in a table of at most 200 x 5)");
}

TEST_F(Hdf5IoTest, LabelLengthMismatch) {
  const std::vector<float> values(40, 3.0f), label(9, 1.0f);
  const std::string path = raw_file("cur.h5", [&](RawFile& raw) {
    raw.dataset("/features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {10, 4}, values.data());
    raw.dataset("/label", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {9}, label.data());
  });
  expect_open_error(path, "/label has 9 entries but /features has 10 rows");
}

TEST_F(Hdf5IoTest, FloatTimestampIsRefused) {
  const std::vector<float> values(40, 3.0f), timestamp(10, 1.0f);
  const std::string path = raw_file("cur.h5", [&](RawFile& raw) {
    raw.dataset("/features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {10, 4}, values.data());
    raw.dataset("/timestamp", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {10}, timestamp.data());
  });
  expect_open_error(path, "/timestamp must be integer, got float");
}

TEST_F(Hdf5IoTest, ForeignFormatAttribute) {
  const std::vector<float> values(4, 3.0f);
  const std::string path = raw_file("cur.h5", [&](RawFile& raw) {
    raw.dataset("/features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {2, 2}, values.data());
    raw.string_attribute("format", "anndata");
  });
  expect_open_error(path, "format attribute is 'anndata', expected 'driftguard'");
}

TEST_F(Hdf5IoTest, FormatVersionOutsideTheKnownOnes) {
  const std::vector<float> values(4, 3.0f);
  for (const auto& [version, phrase] :
       {std::pair{2LL, "format_version 2 is newer than this reader (1)"},
        std::pair{0LL, "format_version 0 is not a version"},
        std::pair{-5LL, "format_version -5 is not a version"}}) {
    expect_open_error(
        raw_file(
            "cur.h5",
            [&](RawFile& raw) {
              raw.dataset("/features", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, {2, 2}, values.data());
              raw.int_attribute("format_version", version);
            }),
        phrase);
  }
}

TEST_F(Hdf5IoTest, CorruptChunkNamesTheRowRange) {
  const Table t = random_table(1000, 4, 8);
  const std::string path = file("cur.h5");
  write_table(path, t, names_for(4), all_columns(/*chunk_rows=*/100, /*gzip_level=*/5));

  // Overwrite the middle of the third chunk of /features with garbage.
  haddr_t address = 0;
  hsize_t size = 0;
  {
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    const hid_t d = H5Dopen2(f, "/features", H5P_DEFAULT);
    hsize_t offset[2];
    unsigned filter_mask = 0;
    const hid_t space = H5Dget_space(d);
    ASSERT_GE(H5Dget_chunk_info(d, space, 2, offset, &filter_mask, &address, &size), 0);
    H5Sclose(space);
    EXPECT_EQ(offset[0], 200u);
    H5Dclose(d);
    H5Fclose(f);
  }
  {
    std::fstream out(path, std::ios::in | std::ios::out | std::ios::binary);
    out.seekp(static_cast<std::streamoff>(address + size / 4));
    const std::string garbage(size / 2, '\xA5');
    out.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  }

  Hdf5BatchReader reader(path);
  std::vector<float> values(100 * t.features);
  EXPECT_EQ(reader.read(100, 100, values.data()), 100u);  // the chunks around it still read
  EXPECT_EQ(reader.read(300, 100, values.data()), 100u);
  expect_read_error(reader, 200, 100, values.data(),
                    path + ": cannot read rows 200..299 of /features (corrupt block?");
}

// A file cut short after the reader opened it (another process truncating it): the chunks before
// the cut still read; a block reaching past it is one IoError naming the rows, not a short read
// taken for data.
// A file cut short while the reader has it open. Chunks read at their addresses (a table of few
// chunks) still read bit for bit before the cut, and the chunk it cuts is refused as one IoError
// naming its rows (pread's short read). Chunks read through libhdf5 (a table of many small ones,
// which libhdf5 reads past the file's end as zeros) are refused from the cut on: the file is
// shorter than when it was opened.
TEST_F(Hdf5IoTest, FileCutShortWhileOpenNamesTheRowRange) {
  const Table t = random_table(1000, 4, 9);
  for (const std::size_t chunk_rows : {std::size_t{500}, std::size_t{100}}) {
    SCOPED_TRACE("chunk rows " + std::to_string(chunk_rows));
    const std::string path = file("cut_" + std::to_string(chunk_rows) + ".h5");
    write_table(path, t, names_for(4), all_columns(chunk_rows));
    haddr_t address = 0;
    {
      const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
      const hid_t d = H5Dopen2(f, "/features", H5P_DEFAULT);
      const hsize_t offset[2] = {500, 0};
      unsigned filter_mask = 0;
      hsize_t size = 0;
      ASSERT_GE(H5Dget_chunk_info_by_coord(d, offset, &filter_mask, &address, &size), 0);
      H5Dclose(d);
      H5Fclose(f);
    }
    Hdf5BatchReader reader(path);
    std::vector<float> values(chunk_rows * t.features);
    fs::resize_file(path, address + 40);  // inside the chunk of rows 500..
    const std::string cut_rows = "500.." + std::to_string(500 + chunk_rows - 1);
    if (chunk_rows == 500) {
      ASSERT_EQ(reader.read(0, 500, values.data()), 500u);
      expect_same_bits(values.data(), t.values.data(), 500 * t.features);
      expect_read_error(reader, 500, 500, values.data(),
                        path + ": cannot read rows " + cut_rows +
                            " of /features (corrupt block?: the file ends inside the chunk)");
    } else {
      expect_read_error(reader, 500, chunk_rows, values.data(),
                        path + ": cannot read rows " + cut_rows +
                            " of /features (corrupt block?: the file is shorter than when it was "
                            "opened)");
    }
  }
}

// The same for what libhdf5 reads (here big-endian values, and /label), which reads past the
// file's end as zeros: every read after the cut is refused, naming its rows.
TEST_F(Hdf5IoTest, FileCutShortWhileOpenFailsReadsThroughLibhdf5) {
  const std::string path = raw_file("cut_big_endian.h5", [](RawFile& f) {
    const hsize_t dims[2] = {1000, 4};
    std::vector<float> values(1000 * 4, 1.5f);
    const hid_t space = H5Screate_simple(2, dims, nullptr);
    const hid_t features = H5Dcreate2(f.id(), "/features", H5T_IEEE_F32BE, space, H5P_DEFAULT,
                                      H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(H5Dwrite(features, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()),
              0);
    const hid_t column = H5Screate_simple(1, dims, nullptr);
    const hid_t label =
        H5Dcreate2(f.id(), "/label", H5T_IEEE_F32LE, column, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    EXPECT_GE(H5Dwrite(label, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()), 0);
    H5Dclose(label);
    H5Sclose(column);
    H5Dclose(features);
    H5Sclose(space);
  });
  Hdf5BatchReader reader(path);
  std::vector<float> values(100 * 4);
  ASSERT_EQ(reader.read(900, 100, values.data()), 100u);
  EXPECT_EQ(values.back(), 1.5f);
  ASSERT_EQ(reader.read_label(900, 100, values.data()), 100u);
  fs::resize_file(path, fs::file_size(path) / 2);
  expect_read_error(reader, 900, 100, values.data(),
                    path +
                        ": cannot read rows 900..999 of /features (corrupt block?: the file is "
                        "shorter than when it was opened)");
  ::testing::internal::CaptureStderr();
  EXPECT_THROW(reader.read_label(900, 100, values.data()), IoError);
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST_F(Hdf5IoTest, WriterRefusesBadArguments) {
  const std::string path = file("w.h5");
  EXPECT_THROW(Hdf5Writer(path, {}), InvalidInput);
  EXPECT_THROW(Hdf5Writer(path, {"a", "a"}), InvalidInput);
  EXPECT_THROW(Hdf5Writer(path, {"a", ""}), InvalidInput);
  EXPECT_THROW(Hdf5Writer(path, {"a"}, {0, 10, false, false, false}), InvalidInput);

  Hdf5Writer writer(path, {"a", "b"}, {0, 0, /*with_label=*/true, false, false});
  const float row[2] = {1.0f, 2.0f};
  const float label = 1.0f;
  const std::int64_t stamp = 7;
  EXPECT_THROW(writer.append(row, 1), InvalidInput);                  // label enabled but missing
  EXPECT_THROW(writer.append(row, 1, &label, &stamp), InvalidInput);  // timestamp not enabled
  writer.append(row, 1, &label);
  writer.close();
  EXPECT_THROW(writer.append(row, 1, &label), InvalidInput);
  EXPECT_EQ(Hdf5BatchReader(path).rows(), 1u);
}

TEST_F(Hdf5IoTest, WriterIntoMissingDirectory) {
  const std::string path = file("no/such/dir/out.h5");
  ::testing::internal::CaptureStderr();
  try {
    Hdf5Writer writer(path, {"a"});
    ADD_FAILURE() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": cannot create (", 0), 0u) << e.what();
  }
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

TEST_F(Hdf5IoTest, MovedReaderAndWriterKeepWorking) {
  const Table t = random_table(10, 2, 9);
  const std::string path = file("moved.h5");
  Hdf5Writer first(path, names_for(2));
  Hdf5Writer writer = std::move(first);
  writer.append(t.values.data(), t.rows);
  writer.close();

  Hdf5BatchReader opened(path);
  Hdf5BatchReader reader = std::move(opened);
  std::vector<float> values(t.values.size());
  EXPECT_EQ(reader.read(0, t.rows, values.data()), t.rows);
  expect_same_bits(values.data(), t.values.data(), values.size());
}

}  // namespace
}  // namespace driftguard
