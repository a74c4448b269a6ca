// Reader and writer for driftguard's HDF5 table layout, on the HDF5 C API.
#include "driftguard/hdf5_io.hpp"

#include <hdf5.h>
#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "driftguard/errors.hpp"
#include "host/atomic_file.hpp"

namespace driftguard {
namespace {

constexpr std::size_t kTargetChunkBytes = std::size_t{1} << 20;
// HDF5 refuses chunks of 4 GiB or more.
constexpr std::size_t kMaxChunkBytes = (std::size_t{1} << 32) - 1;
// Large enough for a few chunks of another producer's layout, so unaligned block reads of
// compressed data do not inflate the same chunk once per block.
constexpr std::size_t kReadCacheBytes = std::size_t{16} << 20;
constexpr std::size_t kCacheSlots = 1021;  // prime, as HDF5 recommends for its hash
constexpr int kFormatVersion = 1;
// Widest table read: a row of 2^24 floats is 64 MiB, and no model binds to a wider batch.
constexpr std::size_t kMaxFeatures = std::size_t{1} << 24;
constexpr std::string_view kFormatName = "driftguard";

// Owns one HDF5 identifier; Close is the H5?close function for its kind of object.
template <herr_t (*Close)(hid_t)>
class Handle {
 public:
  Handle() = default;
  explicit Handle(hid_t id) noexcept : id_(id) {}
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
    }
    return *this;
  }
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle() { reset(); }

  hid_t get() const noexcept { return id_; }
  bool valid() const noexcept { return id_ >= 0; }
  // False when closing failed: for datasets and files that is the final flush of cached data.
  bool reset() noexcept {
    const hid_t id = std::exchange(id_, H5I_INVALID_HID);
    return id < 0 || Close(id) >= 0;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
};

using File = Handle<H5Fclose>;
using Dataset = Handle<H5Dclose>;
using Dataspace = Handle<H5Sclose>;
using Datatype = Handle<H5Tclose>;
using PropertyList = Handle<H5Pclose>;
using Attribute = Handle<H5Aclose>;

// HDF5 prints its whole error stack by default; we report one line instead. The setting is per
// thread in thread-safe builds (Debian's is one), so every entry point repeats it.
void silence_hdf5_stack_printing() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

// The innermost message on HDF5's error stack, i.e. what actually went wrong. Must be called
// before the next HDF5 call, which clears the stack.
std::string hdf5_error_detail() {
  std::string detail;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_UPWARD,
      [](unsigned n, const H5E_error2_t* error, void* out) -> herr_t {
        if (n == 0 && error->desc != nullptr) *static_cast<std::string*>(out) = error->desc;
        return 0;
      },
      &detail);
  return detail.empty() ? "unknown HDF5 error" : detail;
}

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw IoError(path + ": " + what);
}

std::string row_range(std::size_t first, std::size_t rows) {
  return std::to_string(first) + ".." + std::to_string(first + rows - 1);
}

// A block that cannot be read: the rows, the dataset and why, in one line.
[[noreturn]] void fail_rows(const std::string& path, std::size_t first, std::size_t rows,
                            const std::string& name, const std::string& why) {
  fail(path, "cannot read rows " + row_range(first, rows) + " of " + name +
                 " (corrupt block?: " + why + ")");
}

std::string class_name(H5T_class_t type_class) {
  switch (type_class) {
    case H5T_INTEGER:
      return "integer";
    case H5T_FLOAT:
      return "float";
    case H5T_STRING:
      return "string";
    case H5T_BITFIELD:
      return "bitfield";
    case H5T_OPAQUE:
      return "opaque";
    case H5T_COMPOUND:
      return "compound";
    case H5T_REFERENCE:
      return "reference";
    case H5T_ENUM:
      return "enum";
    case H5T_VLEN:
      return "variable-length sequence";
    case H5T_ARRAY:
      return "array";
    default:
      return "an unknown type";
  }
}

// ---- reading ----------------------------------------------------------------------------------

File open_for_reading(const std::string& path) {
  if (std::FILE* probe = std::fopen(path.c_str(), "rb")) {
    std::fclose(probe);
  } else if (errno == ENOENT) {
    fail(path, "no such file");
  } else {
    fail(path, std::string("cannot open: ") + std::strerror(errno));
  }
  std::error_code ignored;
  if (std::filesystem::is_directory(path, ignored)) fail(path, "is a directory, not a file");
  // The signature check tells a foreign file from a damaged HDF5 one, which H5Fopen alone
  // reports with the same error.
  const htri_t is_hdf5 = H5Fis_hdf5(path.c_str());
  if (is_hdf5 < 0) fail(path, "cannot open (" + hdf5_error_detail() + ")");
  if (is_hdf5 == 0) fail(path, "not an HDF5 file");

  PropertyList access(H5Pcreate(H5P_FILE_ACCESS));
  if (!access.valid() || H5Pset_cache(access.get(), 0, kCacheSlots, kReadCacheBytes, 0.75) < 0) {
    fail(path, "cannot set up file access (" + hdf5_error_detail() + ")");
  }
  File file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, access.get()));
  if (!file.valid()) fail(path, "truncated or corrupt HDF5 file (" + hdf5_error_detail() + ")");
  return file;
}

// Reads `count` strings stored as variable- or fixed-length HDF5 strings; `read(mem_type, buf)`
// performs the H5Aread or H5Dread. Returns false when HDF5 fails.
template <typename ReadFn>
bool read_strings(hid_t file_type, hid_t space, std::size_t count, ReadFn read,
                  std::vector<std::string>& out) {
  Datatype mem_type(H5Tcopy(H5T_C_S1));
  // HDF5 does not convert between ASCII and UTF-8 strings, so read in the file's own set.
  if (!mem_type.valid() || H5Tset_cset(mem_type.get(), H5Tget_cset(file_type)) < 0) return false;
  out.clear();
  const htri_t variable = H5Tis_variable_str(file_type);
  if (variable < 0) return false;
  if (variable > 0) {
    std::vector<char*> strings(count, nullptr);
    if (H5Tset_size(mem_type.get(), H5T_VARIABLE) < 0 || read(mem_type.get(), strings.data()) < 0) {
      return false;
    }
    for (const char* s : strings) out.emplace_back(s != nullptr ? s : "");
    // H5Treclaim would be the modern call, but Debian's libhdf5 1.10 does not export it.
    return H5Dvlen_reclaim(mem_type.get(), space, H5P_DEFAULT, strings.data()) >= 0;
  }
  const std::size_t size = H5Tget_size(file_type);
  std::vector<char> buffer(count * size);
  // NULLPAD keeps every byte of the stored string; padding is stripped below for all three kinds.
  if (size == 0 || H5Tset_size(mem_type.get(), size) < 0 ||
      H5Tset_strpad(mem_type.get(), H5T_STR_NULLPAD) < 0 ||
      read(mem_type.get(), buffer.data()) < 0) {
    return false;
  }
  const bool space_padded = H5Tget_strpad(file_type) == H5T_STR_SPACEPAD;
  for (std::size_t i = 0; i < count; ++i) {
    std::string_view s(buffer.data() + i * size, size);
    s = s.substr(0, s.find('\0'));
    if (space_padded) s = s.substr(0, s.find_last_not_of(' ') + 1);
    out.emplace_back(s);
  }
  return true;
}

// The root attribute `name` if present, as a string; a non-string attribute is an error.
std::optional<std::string> read_string_attribute(const std::string& path, hid_t file,
                                                 const char* name) {
  const htri_t exists = H5Aexists(file, name);
  if (exists < 0) fail(path, std::string("cannot read attribute ") + name);
  if (exists == 0) return std::nullopt;
  Attribute attribute(H5Aopen(file, name, H5P_DEFAULT));
  Datatype type(attribute.valid() ? H5Aget_type(attribute.get()) : H5I_INVALID_HID);
  Dataspace space(attribute.valid() ? H5Aget_space(attribute.get()) : H5I_INVALID_HID);
  if (!type.valid() || !space.valid()) fail(path, std::string("cannot read attribute ") + name);
  if (H5Tget_class(type.get()) != H5T_STRING || H5Sget_simple_extent_npoints(space.get()) != 1) {
    fail(path, std::string("attribute ") + name + " must be a single string");
  }
  std::vector<std::string> value;
  const bool ok = read_strings(
      type.get(), space.get(), 1,
      [&](hid_t mem_type, void* buffer) { return H5Aread(attribute.get(), mem_type, buffer); },
      value);
  if (!ok)
    fail(path, std::string("cannot read attribute ") + name + " (" + hdf5_error_detail() + ")");
  return value.front();
}

void check_format_attributes(const std::string& path, hid_t file) {
  if (const auto format = read_string_attribute(path, file, "format");
      format && *format != kFormatName) {
    fail(path,
         "format attribute is '" + *format + "', expected '" + std::string(kFormatName) + "'");
  }
  const htri_t has_version = H5Aexists(file, "format_version");
  if (has_version < 0) fail(path, "cannot read attribute format_version");
  if (has_version == 0) return;
  Attribute attribute(H5Aopen(file, "format_version", H5P_DEFAULT));
  Datatype type(attribute.valid() ? H5Aget_type(attribute.get()) : H5I_INVALID_HID);
  Dataspace space(attribute.valid() ? H5Aget_space(attribute.get()) : H5I_INVALID_HID);
  long long version = 0;
  if (!type.valid() || !space.valid() || H5Tget_class(type.get()) != H5T_INTEGER ||
      H5Sget_simple_extent_npoints(space.get()) != 1 ||
      H5Aread(attribute.get(), H5T_NATIVE_LLONG, &version) < 0) {
    fail(path, "attribute format_version must be a single integer");
  }
  if (version > kFormatVersion) {
    fail(path, "format_version " + std::to_string(version) + " is newer than this reader (" +
                   std::to_string(kFormatVersion) + ")");
  }
  if (version < 1) fail(path, "format_version " + std::to_string(version) + " is not a version");
}

// Every dataset is opened here. A virtual dataset, or one whose data lives in external raw
// files, reads a missing source or a short file as the fill value: rows of data that are not in
// the file. Only data stored in the file itself is read.
Dataset open_dataset(const std::string& path, hid_t file, const char* name) {
  Dataset dataset(H5Dopen2(file, name, H5P_DEFAULT));
  if (!dataset.valid()) {
    fail(path, std::string("cannot open ") + name + " as a dataset (" + hdf5_error_detail() + ")");
  }
  PropertyList create(H5Dget_create_plist(dataset.get()));
  if (!create.valid()) fail(path, std::string("cannot read the layout of ") + name);
  if (H5Pget_layout(create.get()) == H5D_VIRTUAL) {
    fail(path, std::string(name) +
                   " is a virtual dataset (its data lives in other files); store the data in "
                   "the file itself");
  }
  if (H5Pget_external_count(create.get()) != 0) {
    fail(path, std::string(name) + " keeps its data in external raw files; store the data in " +
                   "the file itself");
  }
  // Chunks stored as they are read (no filter) bypass the chunk cache: HDF5 then reads a chunk
  // straight into the caller's buffer instead of into a cache slot and copying it over.
  if (H5Pget_layout(create.get()) == H5D_CHUNKED && H5Pget_nfilters(create.get()) == 0) {
    PropertyList access(H5Pcreate(H5P_DATASET_ACCESS));
    if (access.valid() && H5Pset_chunk_cache(access.get(), 0, 0, 1.0) >= 0) {
      Dataset direct(H5Dopen2(file, name, access.get()));
      if (direct.valid()) return direct;
    }
  }
  return dataset;
}

// 0 when the link does not exist.
bool has_link(const std::string& path, hid_t file, const char* name) {
  const htri_t exists = H5Lexists(file, name, H5P_DEFAULT);
  if (exists < 0)
    fail(path, std::string("cannot look up ") + name + " (" + hdf5_error_detail() + ")");
  return exists > 0;
}

// Extent of a simple dataspace; `rank` is -1 when it cannot be read.
struct Extent {
  int rank = -1;
  hsize_t dims[H5S_MAX_RANK] = {};
};

Extent extent_of(hid_t dataset) {
  Extent extent;
  Dataspace space(H5Dget_space(dataset));
  if (space.valid()) extent.rank = H5Sget_simple_extent_dims(space.get(), extent.dims, nullptr);
  return extent;
}

std::vector<std::string> read_feature_names(const std::string& path, hid_t file,
                                            std::size_t features) {
  std::vector<std::string> names;
  if (!has_link(path, file, "/feature_names")) {
    for (std::size_t i = 0; i < features; ++i)
      names.push_back(std::string("f").append(std::to_string(i)));
    return names;
  }
  const Dataset dataset = open_dataset(path, file, "/feature_names");
  Datatype type(H5Dget_type(dataset.get()));
  Dataspace space(H5Dget_space(dataset.get()));
  if (!type.valid() || !space.valid()) fail(path, "cannot read /feature_names");
  if (H5Tget_class(type.get()) != H5T_STRING) {
    fail(path, "/feature_names must be strings, got " + class_name(H5Tget_class(type.get())));
  }
  const Extent extent = extent_of(dataset.get());
  if (extent.rank != 1) {
    fail(path, "/feature_names must be 1-D, got rank " + std::to_string(extent.rank));
  }
  if (extent.dims[0] != features) {
    fail(path, "/feature_names has " + std::to_string(extent.dims[0]) +
                   " names but /features has " + std::to_string(features) + " columns");
  }
  const bool ok = read_strings(
      type.get(), space.get(), features,
      [&](hid_t mem_type, void* buffer) {
        return H5Dread(dataset.get(), mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer);
      },
      names);
  if (!ok) fail(path, "cannot read /feature_names (" + hdf5_error_detail() + ")");
  std::unordered_set<std::string_view> seen;
  for (std::size_t i = 0; i < names.size(); ++i) {
    const std::string& name = names[i];
    if (name.empty()) fail(path, "/feature_names contains an empty name");
    // Names go into JSON reports, which are UTF-8 (a Latin-1 name from an old CSV is not).
    try {
      (void)nlohmann::json(name).dump();
    } catch (const nlohmann::json::type_error&) {
      fail(path, "/feature_names[" + std::to_string(i) + "] is not UTF-8 text");
    }
    if (!seen.insert(name).second) fail(path, "/feature_names has duplicate name '" + name + "'");
  }
  return names;
}

// An optional 1-D column: absent, or `rows` values of an allowed type class.
Dataset open_column(const std::string& path, hid_t file, const char* name, std::size_t rows,
                    bool allow_float) {
  if (!has_link(path, file, name)) return {};
  Dataset dataset = open_dataset(path, file, name);
  Datatype type(H5Dget_type(dataset.get()));
  if (!type.valid()) fail(path, std::string("cannot read the type of ") + name);
  const H5T_class_t type_class = H5Tget_class(type.get());
  if (type_class != H5T_INTEGER && !(allow_float && type_class == H5T_FLOAT)) {
    fail(path, std::string(name) + " must be " + (allow_float ? "numeric" : "integer") + ", got " +
                   class_name(type_class));
  }
  const Extent extent = extent_of(dataset.get());
  if (extent.rank != 1) {
    fail(path, std::string(name) + " must be 1-D, got rank " + std::to_string(extent.rank));
  }
  if (extent.dims[0] != rows) {
    fail(path, std::string(name) + " has " + std::to_string(extent.dims[0]) +
                   " entries but /features has " + std::to_string(rows) + " rows");
  }
  return dataset;
}

// HDF5 converts an out-of-range value to the nearest one it can hold (a uint64 row id above 2^63
// to INT64_MAX); for identifiers and timestamps that is a wrong answer, so such a read fails.
H5T_conv_ret_t refuse_out_of_range(H5T_conv_except_t exception, hid_t, hid_t, void*, void*, void*) {
  return exception == H5T_CONV_EXCEPT_RANGE_HI || exception == H5T_CONV_EXCEPT_RANGE_LOW
             ? H5T_CONV_ABORT
             : H5T_CONV_UNHANDLED;
}

// libhdf5 reads a chunk that is not stored as the fill value: rows of data the file does not
// have. The count at open does not prove every chunk of /features stored (libhdf5 1.10 writes a
// chunk at an offset equal to the extent, outside the table, and counts it), and the optional
// columns are not counted at all, so each chunk of rows [first, first + n) of a chunked dataset is
// looked up before libhdf5 reads them: H5Dget_chunk_storage_size is one index lookup.
void check_chunks_stored(const std::string& path, hid_t dataset, const char* name, std::size_t rows,
                         std::size_t columns, std::size_t first, std::size_t n) {
  const int rank = columns == 0 ? 1 : 2;
  PropertyList create(H5Dget_create_plist(dataset));
  hsize_t chunk[2] = {0, 0};
  if (!create.valid() || H5Pget_layout(create.get()) != H5D_CHUNKED ||
      H5Pget_chunk(create.get(), rank, chunk) != rank || chunk[0] == 0) {
    return;
  }
  const hsize_t column_step = rank == 2 && chunk[1] > 0 ? chunk[1] : std::max<hsize_t>(columns, 1);
  for (hsize_t row = first / chunk[0] * chunk[0]; row < first + n; row += chunk[0]) {
    for (hsize_t column = 0; column < std::max<std::size_t>(columns, 1); column += column_step) {
      const hsize_t offset[2] = {row, column};
      hsize_t size = 0;
      // libhdf5 1.10 fails the lookup of a chunk that is not stored; later ones give size 0.
      if (H5Dget_chunk_storage_size(dataset, offset, &size) < 0 || size == 0) {
        fail_rows(path, row, std::min<hsize_t>(chunk[0], rows - row), name,
                  "the chunk is not stored");
      }
    }
  }
}

// Reads rows [first, first + count) clamped to `rows` of a 1-D (columns == 0) or 2-D dataset;
// `exact`: values out of mem_type's range fail the read instead of being clamped.
std::size_t read_rows(const std::string& path, hid_t dataset, const char* name, std::size_t rows,
                      std::size_t columns, hid_t mem_type, std::size_t first, std::size_t count,
                      void* out, bool exact = false) {
  if (dataset < 0) fail(path, std::string("has no ") + name + " dataset");
  if (first >= rows || count == 0) return 0;
  const std::size_t n = std::min(count, rows - first);
  if (out == nullptr) throw InvalidInput(path + ": read of " + name + " into a null buffer");
  check_chunks_stored(path, dataset, name, rows, columns, first, n);
  const int rank = columns == 0 ? 1 : 2;
  const hsize_t start[2] = {first, 0};
  const hsize_t block[2] = {n, columns};
  Dataspace file_space(H5Dget_space(dataset));
  Dataspace mem_space(H5Screate_simple(rank, block, nullptr));
  PropertyList transfer(exact ? H5Pcreate(H5P_DATASET_XFER) : H5I_INVALID_HID);
  if (exact && (!transfer.valid() ||
                H5Pset_type_conv_cb(transfer.get(), refuse_out_of_range, nullptr) < 0)) {
    fail(path, std::string("cannot read ") + name + " (" + hdf5_error_detail() + ")");
  }
  if (!file_space.valid() || !mem_space.valid() ||
      H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, block, nullptr) < 0 ||
      H5Dread(dataset, mem_type, mem_space.get(), file_space.get(),
              exact ? transfer.get() : H5P_DEFAULT, out) < 0) {
    fail(path, "cannot read rows " + row_range(first, n) + " of " + name +
                   (exact ? " (a value beyond int64, or a corrupt block: " : " (corrupt block?: ") +
                   hdf5_error_detail() + ")");
  }
  return n;
}

// ---- writing ----------------------------------------------------------------------------------

void check(herr_t status, const std::string& path, const std::string& what) {
  if (status < 0) fail(path, "cannot " + what + " (" + hdf5_error_detail() + ")");
}

Datatype utf8_string_type(const std::string& path) {
  Datatype type(H5Tcopy(H5T_C_S1));
  check(type.valid() ? 0 : -1, path, "create a string type");
  check(H5Tset_size(type.get(), H5T_VARIABLE), path, "create a string type");
  check(H5Tset_cset(type.get(), H5T_CSET_UTF8), path, "create a string type");
  return type;
}

void write_root_attributes(const std::string& path, hid_t file) {
  Dataspace scalar(H5Screate(H5S_SCALAR));
  const Datatype string_type = utf8_string_type(path);
  Attribute format(
      H5Acreate2(file, "format", string_type.get(), scalar.get(), H5P_DEFAULT, H5P_DEFAULT));
  const char* format_value = kFormatName.data();
  check(format.valid() ? H5Awrite(format.get(), string_type.get(), &format_value) : -1, path,
        "write attribute format");
  Attribute version(
      H5Acreate2(file, "format_version", H5T_STD_I32LE, scalar.get(), H5P_DEFAULT, H5P_DEFAULT));
  check(version.valid() ? H5Awrite(version.get(), H5T_NATIVE_INT, &kFormatVersion) : -1, path,
        "write attribute format_version");
}

void write_feature_names(const std::string& path, hid_t file,
                         const std::vector<std::string>& names) {
  std::vector<const char*> pointers;
  for (const std::string& name : names) pointers.push_back(name.c_str());
  const hsize_t count = names.size();
  Dataspace space(H5Screate_simple(1, &count, nullptr));
  const Datatype string_type = utf8_string_type(path);
  PropertyList create(H5Pcreate(H5P_DATASET_CREATE));
  check(create.valid() ? H5Pset_obj_track_times(create.get(), false) : -1, path,
        "create /feature_names");
  Dataset dataset(H5Dcreate2(file, "/feature_names", string_type.get(), space.get(), H5P_DEFAULT,
                             create.get(), H5P_DEFAULT));
  check(dataset.valid() ? H5Dwrite(dataset.get(), string_type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT,
                                   pointers.data())
                        : -1,
        path, "write /feature_names");
}

// An empty dataset that grows along rows; `columns` == 0 makes it 1-D.
Dataset create_extendible(const std::string& path, hid_t file, const char* name, hid_t file_type,
                          std::size_t columns, std::size_t chunk_rows, int gzip_level) {
  const int rank = columns == 0 ? 1 : 2;
  const hsize_t dims[2] = {0, columns};
  const hsize_t max_dims[2] = {H5S_UNLIMITED, columns};
  const hsize_t chunk[2] = {chunk_rows, columns};
  const std::string what = std::string("create ") + name;
  Dataspace space(H5Screate_simple(rank, dims, max_dims));
  PropertyList create(H5Pcreate(H5P_DATASET_CREATE));
  PropertyList access(H5Pcreate(H5P_DATASET_ACCESS));
  check(space.valid() && create.valid() && access.valid() ? 0 : -1, path, what);
  check(H5Pset_chunk(create.get(), rank, chunk), path, what);
  check(H5Pset_obj_track_times(create.get(), false), path, what);
  if (gzip_level > 0) {
    // Byte shuffling groups exponents together and typically halves the size of float data.
    check(H5Pset_shuffle(create.get()), path, what);
    check(H5Pset_deflate(create.get(), static_cast<unsigned>(gzip_level)), path, what);
  }
  // Room for the chunks an unaligned append leaves half written, so they are compressed once.
  const std::size_t chunk_bytes =
      chunk_rows * std::max<std::size_t>(columns, 1) * H5Tget_size(file_type);
  check(H5Pset_chunk_cache(access.get(), kCacheSlots, 4 * chunk_bytes, 1.0), path, what);
  Dataset dataset(
      H5Dcreate2(file, name, file_type, space.get(), H5P_DEFAULT, create.get(), access.get()));
  check(dataset.valid() ? 0 : -1, path, what);
  return dataset;
}

void append_rows(const std::string& path, hid_t dataset, const char* name, std::size_t columns,
                 hid_t mem_type, std::size_t first, std::size_t rows, const void* data) {
  const int rank = columns == 0 ? 1 : 2;
  const hsize_t start[2] = {first, 0};
  const hsize_t block[2] = {rows, columns};
  const hsize_t new_dims[2] = {first + rows, columns};
  const std::string what = "write rows " + row_range(first, rows) + " to " + name;
  check(H5Dset_extent(dataset, new_dims), path, what);
  Dataspace file_space(H5Dget_space(dataset));
  Dataspace mem_space(H5Screate_simple(rank, block, nullptr));
  check(file_space.valid() && mem_space.valid() ? 0 : -1, path, what);
  check(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, block, nullptr), path,
        what);
  check(H5Dwrite(dataset, mem_type, mem_space.get(), file_space.get(), H5P_DEFAULT, data), path,
        what);
}

std::size_t default_chunk_rows(std::size_t row_bytes) {
  return std::max<std::size_t>(1, kTargetChunkBytes / row_bytes);
}

}  // namespace

// ---- Hdf5BatchReader ----------------------------------------------------------------------------

// libhdf5 1.10 finds a chunk's address (H5Dget_chunk_info_by_coord) by walking the dataset's
// chunk index, about 7 ns per chunk of the dataset (8,000 chunks: 0.4 s to locate them all): a
// table of many small chunks would take time growing with the square of their count. Chunks are
// located by address only while the walk costs little beside reading the chunk: at most one chunk
// in the dataset per this many bytes of a chunk (1 MiB chunks: up to 4 GiB tables; the walk then
// costs about as long as reading the chunk on a fast host, and pread on all cores is still ahead
// of libhdf5 reading on one thread).
constexpr std::size_t kChunkBytesPerIndexedChunk = 256;

struct Hdf5BatchReader::Impl {
  std::string path;
  File file;  // declared before the datasets, so it is closed after them
  Dataset features_data;
  Dataset label;
  Dataset timestamp;
  Dataset row_id;
  std::size_t rows = 0;
  std::size_t features = 0;
  std::size_t chunk_rows = 0;
  // Chunks of whole rows stored as native float32 or float64, without filters or with shuffle and
  // deflate only, in a plain file: whole chunks are read here, located through libhdf5's chunk
  // index and read with pread on all decode_threads (libhdf5 reads, inflates and copies through
  // its chunk cache on one thread: its calls are serialised), then decoded here.
  bool raw_chunks = false;
  // Whether whole chunks are read at their addresses with pread (kChunkBytesPerIndexedChunk);
  // otherwise libhdf5 reads each one's stored bytes (H5Dread_chunk: one index lookup, on the
  // calling thread) and they are decoded here on all threads still.
  bool by_address = false;
  std::uint64_t file_bytes = 0;  // the file's size when opened (with fd)

  // libhdf5 reads past the end of a file as zeros (at open it checks that the file holds all it
  // addresses): rows just read through libhdf5 fail when the file is now shorter than at open.
  void check_not_cut(const char* name, std::size_t first, std::size_t n) const {
    struct stat status {};
    if (fd >= 0 && n > 0 &&
        (fstat(fd, &status) != 0 || static_cast<std::uint64_t>(status.st_size) < file_bytes)) {
      fail_rows(path, first, n, name, "the file is shorter than when it was opened");
    }
  }
  int fd = -1;                     // the file's descriptor, libhdf5's (sec2 driver)
  std::uint64_t base_address = 0;  // where HDF5's addresses start in the file: after a user block
  std::size_t element_bytes = 4;   // 8: float64 chunks, narrowed here as libhdf5 narrows
  std::vector<H5Z_filter_t> filters;  // the pipeline, in the order it was applied
  int decode_threads = 0;
  std::vector<std::vector<unsigned char>> stored;   // raw bytes of a block's chunks, reused
  std::vector<std::vector<unsigned char>> scratch;  // per decoding thread: 2 stored chunks
  std::vector<std::string> names;
};

Hdf5BatchReader::Hdf5BatchReader(const std::string& path) : impl_(std::make_unique<Impl>()) {
  silence_hdf5_stack_printing();
  Impl& r = *impl_;
  r.path = path;
  r.file = open_for_reading(path);
  const hid_t file = r.file.get();
  check_format_attributes(path, file);

  if (!has_link(path, file, "/features")) fail(path, "missing dataset /features");
  r.features_data = open_dataset(path, file, "/features");
  Datatype type(H5Dget_type(r.features_data.get()));
  if (!type.valid()) fail(path, "cannot read the type of /features");
  const H5T_class_t type_class = H5Tget_class(type.get());
  const std::size_t type_size = H5Tget_size(type.get());
  if (type_class != H5T_FLOAT) {
    fail(path, "/features must be float32 or float64, got " + class_name(type_class));
  }
  if (type_size != 4 && type_size != 8) {
    fail(path, "/features must be float32 or float64, got float" + std::to_string(8 * type_size));
  }
  const Extent extent = extent_of(r.features_data.get());
  if (extent.rank != 2) {
    fail(path, "/features must be 2-D [rows, features], got rank " + std::to_string(extent.rank));
  }
  r.rows = extent.dims[0];
  r.features = extent.dims[1];
  if (r.rows == 0) fail(path, "/features has zero rows");
  if (r.features == 0) fail(path, "/features has zero columns");
  // A few kilobytes of file can declare any extent: the declared table must be one this process
  // can address, and (below) one the file actually stores.
  if (r.features > kMaxFeatures) {
    fail(path, "/features declares " + std::to_string(r.features) + " columns, more than " +
                   std::to_string(kMaxFeatures));
  }
  if (r.rows > std::numeric_limits<std::size_t>::max() / (r.features * sizeof(double))) {
    fail(path, "/features declares " + std::to_string(r.rows) + " x " + std::to_string(r.features) +
                   " values, more than this machine can address");
  }

  PropertyList create(H5Dget_create_plist(r.features_data.get()));
  if (!create.valid()) fail(path, "cannot read the layout of /features");
  const H5D_layout_t layout = H5Pget_layout(create.get());
  hsize_t chunk[2] = {0, 0};
  // A filter missing from this libhdf5 (h5py's lzf, a plugin not installed) would fail every
  // read with a message about plugin directories; name it once, here.
  const int filters = H5Pget_nfilters(create.get());
  for (int i = 0; i < filters; ++i) {
    unsigned flags = 0, config = 0;
    std::size_t values = 0;
    char filter_name[64] = {};
    const H5Z_filter_t filter =
        H5Pget_filter2(create.get(), static_cast<unsigned>(i), &flags, &values, nullptr,
                       sizeof filter_name, filter_name, &config);
    if (filter < 0 || H5Zfilter_avail(filter) <= 0) {
      fail(path, "/features is compressed with HDF5 filter " + std::to_string(filter) +
                     (filter_name[0] != '\0' ? " (" + std::string(filter_name) + ")" : "") +
                     ", which this HDF5 library does not have; rewrite it with gzip");
    }
  }
  const bool chunked = layout == H5D_CHUNKED && H5Pget_chunk(create.get(), 2, chunk) == 2;
  r.chunk_rows = chunked ? std::min<std::size_t>(chunk[0], r.rows) : r.rows;
  const bool native_double = H5Tequal(type.get(), H5T_NATIVE_DOUBLE) > 0;
  r.element_bytes = native_double ? 8 : 4;
  r.raw_chunks = chunked && chunk[1] == r.features && chunk[0] <= r.rows &&
                 (native_double || H5Tequal(type.get(), H5T_NATIVE_FLOAT) > 0);
  for (int i = 0; r.raw_chunks && i < filters; ++i) {
    unsigned flags = 0, config = 0;
    std::size_t values = 4;
    unsigned parameters[4] = {};
    r.filters.push_back(H5Pget_filter2(create.get(), static_cast<unsigned>(i), &flags, &values,
                                       parameters, 0, nullptr, &config));
    // Decoded here: shuffle of the table's elements as the first filter, then deflate, as h5py
    // and driftguard-data write them. Any other pipeline goes to libhdf5.
    const bool shuffle =
        r.filters.back() == H5Z_FILTER_SHUFFLE && values >= 1 && parameters[0] == r.element_bytes;
    r.raw_chunks = i == 0 ? shuffle || r.filters.back() == H5Z_FILTER_DEFLATE
                          : i == 1 && r.filters[0] == H5Z_FILTER_SHUFFLE &&
                                r.filters.back() == H5Z_FILTER_DEFLATE;
  }
  // A plain POSIX file (libhdf5's default driver, sec2) has a file descriptor: whole chunks are
  // read through it, and its size tells a file cut short while open.
  {
    PropertyList access(H5Fget_access_plist(file));
    PropertyList file_create(H5Fget_create_plist(file));
    void* handle = nullptr;
    hsize_t user_block = 0;
    if (access.valid() && file_create.valid() && H5Pget_driver(access.get()) == H5FD_SEC2 &&
        H5Fget_vfd_handle(file, access.get(), &handle) >= 0 && handle != nullptr &&
        H5Pget_userblock(file_create.get(), &user_block) >= 0) {
      r.fd = *static_cast<const int*>(handle);
      r.base_address = user_block;
      struct stat status {};
      if (fstat(r.fd, &status) != 0) fail(path, "cannot read the file's size");
      r.file_bytes = static_cast<std::uint64_t>(status.st_size);
    }
  }
  r.raw_chunks = r.raw_chunks && r.fd >= 0;
  if (r.raw_chunks) {
    const std::size_t dataset_chunks = (r.rows + r.chunk_rows - 1) / r.chunk_rows;
    r.by_address =
        dataset_chunks <= r.chunk_rows * r.features * r.element_bytes / kChunkBytesPerIndexedChunk;
  }
  if (!r.raw_chunks) r.filters.clear();
  // Chunks or a contiguous block never written read as the fill value: rows that would count as
  // data though the file has none. (Counted per chunk: libhdf5 1.10's H5Dget_space_status calls
  // a fully written compressed dataset partly allocated.)
  bool stored = true;
  if (chunked) {
    // HDF5 refuses to create a chunk larger than a fixed maximum extent, so one is a corrupt
    // layout, which libhdf5 1.10 then reads past its own buffers.
    Dataspace space(H5Dget_space(r.features_data.get()));
    hsize_t max_dims[2] = {0, 0};
    if (!space.valid() || H5Sget_simple_extent_dims(space.get(), nullptr, max_dims) != 2) {
      fail(path, "cannot read the extent of /features");
    }
    for (int d = 0; d < 2; ++d) {
      if (chunk[d] == 0 || (max_dims[d] != H5S_UNLIMITED && chunk[d] > max_dims[d])) {
        fail(path, "/features has a corrupt layout (chunk " + std::to_string(chunk[0]) + " x " +
                       std::to_string(chunk[1]) + " in a table of at most " +
                       std::to_string(max_dims[0]) + " x " + std::to_string(max_dims[1]) + ")");
      }
    }
    hsize_t chunks = 0;
    const hsize_t expected =
        (r.rows + chunk[0] - 1) / chunk[0] * ((r.features + chunk[1] - 1) / chunk[1]);
    stored =
        H5Dget_num_chunks(r.features_data.get(), space.get(), &chunks) >= 0 && chunks >= expected;
  } else if (layout == H5D_CONTIGUOUS) {
    H5D_space_status_t status = H5D_SPACE_STATUS_ERROR;
    stored = H5Dget_space_status(r.features_data.get(), &status) >= 0 &&
             status == H5D_SPACE_STATUS_ALLOCATED;
  }
  if (!stored) {
    fail(path, "/features declares " + std::to_string(r.rows) + " x " + std::to_string(r.features) +
                   " values but the file stores only part of them (never written)");
  }

  r.names = read_feature_names(path, file, r.features);
  r.label = open_column(path, file, "/label", r.rows, /*allow_float=*/true);
  r.timestamp = open_column(path, file, "/timestamp", r.rows, /*allow_float=*/false);
  r.row_id = open_column(path, file, "/row_id", r.rows, /*allow_float=*/false);
}

Hdf5BatchReader::~Hdf5BatchReader() = default;
Hdf5BatchReader::Hdf5BatchReader(Hdf5BatchReader&&) noexcept = default;
Hdf5BatchReader& Hdf5BatchReader::operator=(Hdf5BatchReader&&) noexcept = default;

const std::string& Hdf5BatchReader::path() const noexcept { return impl_->path; }
std::size_t Hdf5BatchReader::rows() const noexcept { return impl_->rows; }
std::size_t Hdf5BatchReader::features() const noexcept { return impl_->features; }
const std::vector<std::string>& Hdf5BatchReader::feature_names() const noexcept {
  return impl_->names;
}
std::size_t Hdf5BatchReader::chunk_rows() const noexcept { return impl_->chunk_rows; }

std::size_t Hdf5BatchReader::batch_rows(std::size_t requested,
                                        std::size_t extra_floats_per_row) const {
  const std::size_t chunk = std::max<std::size_t>(1, impl_->chunk_rows);
  const std::size_t whole_file = std::max(chunk, (impl_->rows + chunk - 1) / chunk * chunk);
  if (requested > 0) {
    const std::size_t rows = std::min(requested, whole_file);
    return std::max(chunk, (rows + chunk - 1) / chunk * chunk);
  }
  const std::size_t row_bytes = (impl_->features + extra_floats_per_row) * sizeof(float);
  const std::size_t target = std::max<std::size_t>(1, (std::size_t{16} << 20) / row_bytes);
  return std::min(whole_file, std::max(chunk, target / chunk * chunk));
}
bool Hdf5BatchReader::has_label() const noexcept { return impl_->label.valid(); }
bool Hdf5BatchReader::has_timestamp() const noexcept { return impl_->timestamp.valid(); }
bool Hdf5BatchReader::has_row_id() const noexcept { return impl_->row_id.valid(); }

namespace {

// Undoes HDF5's shuffle filter for n elements of kSize bytes: byte j of element i was stored at
// j * n + i.
template <std::size_t kSize>
void unshuffle(const unsigned char* shuffled, std::size_t n, unsigned char* out) {
  for (std::size_t i = 0; i < n; ++i) {
    for (std::size_t j = 0; j < kSize; ++j) out[kSize * i + j] = shuffled[j * n + i];
  }
}

// float64 to float32 as libhdf5's conversion does it: values beyond float32's range become
// +-Inf (even those that round-to-nearest would bring down to +-FLT_MAX), others are rounded to
// nearest; NaN stays NaN.
void narrow_to_float(const double* in, std::size_t n, float* out) {
  constexpr double kMax = std::numeric_limits<float>::max();
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < n; ++i) {
    const double d = in[i];
    out[i] = d > kMax ? kInf : d < -kMax ? -kInf : static_cast<float>(d);
  }
}

// Decodes one raw chunk of `element_bytes` elements through `filters` (applied in that order
// when written; bit i of `skipped` set: filter i was not applied to this chunk) into `out`,
// `bytes` long. Returns an error text, empty on success. `scratch` holds `bytes` and belongs to
// the caller's thread.
std::string decode_chunk(const std::vector<unsigned char>& stored, std::uint32_t skipped,
                         const std::vector<H5Z_filter_t>& filters, std::size_t element_bytes,
                         unsigned char* out, std::size_t bytes, unsigned char* scratch) {
  // Decoding runs the pipeline backwards; each step reads `from` and writes the next buffer,
  // the last one `out`.
  std::array<std::size_t, 2> steps{};  // the reader accepts pipelines of at most two filters
  std::size_t step_count = 0;
  for (std::size_t i = filters.size(); i-- > 0;) {
    if ((skipped >> i & 1u) == 0) steps[step_count++] = i;
  }
  const unsigned char* from = stored.data();
  std::size_t size = stored.size();
  for (std::size_t k = 0; k < step_count; ++k) {
    // Alternate between `out` and `scratch` so that the last step lands in `out`.
    unsigned char* to = (step_count - k) % 2 == 1 ? out : scratch;
    if (filters[steps[k]] == H5Z_FILTER_DEFLATE) {
      uLongf produced = static_cast<uLongf>(bytes);
      const int status = uncompress(to, &produced, from, static_cast<uLong>(size));
      if (status != Z_OK || produced != bytes) {
        return status == Z_OK || status == Z_BUF_ERROR
                   ? "the chunk inflates to a size other than a chunk's"
                   : std::string("deflate data error (zlib ") + std::to_string(status) + ")";
      }
    } else {  // H5Z_FILTER_SHUFFLE
      if (size != bytes) return "a shuffled chunk of " + std::to_string(size) + " bytes";
      if (element_bytes == 8) {
        unshuffle<8>(from, bytes / 8, to);
      } else {
        unshuffle<4>(from, bytes / 4, to);
      }
    }
    from = to;
    size = bytes;
  }
  if (step_count == 0) {
    if (size != bytes) return "the chunk stores " + std::to_string(size) + " bytes";
    std::memcpy(out, from, bytes);
  }
  return {};
}

// Reads `size` bytes at `offset` of `fd` into `into`: an error message, or empty.
std::string read_stored_bytes(int fd, std::uint64_t offset, std::size_t size, void* into) {
  auto* out = static_cast<unsigned char*>(into);
  while (size > 0) {
    const ssize_t got = ::pread(fd, out, size, static_cast<off_t>(offset));
    if (got < 0) {
      if (errno == EINTR) continue;
      return "read error: " + std::error_code(errno, std::generic_category()).message();
    }
    if (got == 0) return "the file ends inside the chunk";
    out += got;
    offset += static_cast<std::uint64_t>(got);
    size -= static_cast<std::size_t>(got);
  }
  return {};
}

}  // namespace

void Hdf5BatchReader::set_decode_threads(int threads) noexcept { impl_->decode_threads = threads; }

std::size_t Hdf5BatchReader::read(std::size_t first, std::size_t count, float* out) {
  silence_hdf5_stack_printing();
  Impl& r = *impl_;
  const hid_t dataset = r.features_data.get();
  if (first >= r.rows || count == 0 || out == nullptr) {
    return read_rows(r.path, dataset, "/features", r.rows, r.features, H5T_NATIVE_FLOAT, first,
                     count, out);
  }
  const std::size_t end = first + std::min(count, r.rows - first);
  const std::size_t chunk = r.chunk_rows;
  const auto fail_chunk = [&](std::size_t row, const std::string& why) {
    fail_rows(r.path, row, std::min(chunk, r.rows - row), "/features", why);
  };
  const auto read_part = [&](std::size_t from, std::size_t to) {
    if (to <= from) return;
    read_rows(r.path, dataset, "/features", r.rows, r.features, H5T_NATIVE_FLOAT, from, to - from,
              out + (from - first) * r.features);
    r.check_not_cut("/features", from, to - from);
  };
  if (!r.raw_chunks) {
    read_part(first, end);
    return end - first;
  }
  const std::size_t chunk_bytes = chunk * r.features * r.element_bytes;  // as stored, decoded
  // Rows before the first whole chunk and after the last go through the selection path.
  const std::size_t whole_begin = std::min(end, (first + chunk - 1) / chunk * chunk);
  const std::size_t whole_end = std::max(whole_begin, end / chunk * chunk);
  // Where the chunk at `row` is stored (libhdf5's chunk index, read one chunk at a time): its
  // offset in the file, its stored size (checked by the caller before anything is allocated or
  // read: a corrupt index could claim any) and its filter mask.
  struct Stored {
    std::uint64_t offset;
    std::size_t size;
    std::uint32_t skipped;
  };
  const auto locate = [&](std::size_t row) {
    const hsize_t offset[2] = {row, 0};
    unsigned mask = 0;
    haddr_t address = HADDR_UNDEF;
    hsize_t size = 0;
    if (!r.by_address) {
      // Its size only (the lookup libhdf5 1.10 fails for a chunk that is not stored; later ones
      // give 0); read_directly reads it and its mask.
      if (H5Dget_chunk_storage_size(dataset, offset, &size) < 0 || size == 0) {
        fail_chunk(row, "the chunk is not stored");
      }
      return Stored{0, static_cast<std::size_t>(size), 0};
    }
    if (H5Dget_chunk_info_by_coord(dataset, offset, &mask, &address, &size) < 0) {
      fail_chunk(row, hdf5_error_detail());
    }
    if (address == HADDR_UNDEF) fail_chunk(row, "the chunk is not stored");
    return Stored{r.base_address + address, static_cast<std::size_t>(size), mask};
  };
  // The chunk's stored bytes through libhdf5, into `into` (room for where.size bytes).
  const auto read_directly = [&](std::size_t row, Stored& where, void* into) {
    const hsize_t offset[2] = {row, 0};
    std::uint32_t mask = 0;
    if (H5Dread_chunk(dataset, H5P_DEFAULT, offset, &mask, into) < 0) {
      fail_chunk(row, hdf5_error_detail());
    }
    where.skipped = mask;
  };
  read_part(first, whole_begin);
  const std::size_t chunks = (whole_end - whole_begin) / chunk;
  const int threads = r.decode_threads > 0 ? r.decode_threads : omp_get_max_threads();
  // Plain float32 chunks are read straight into the block, all at once; others are read into
  // `stored` and decoded (and narrowed from float64), in groups so that a large read holds the
  // stored bytes of a few chunks per thread only.
  const bool plain = r.filters.empty() && r.element_bytes == 4;
  const std::size_t group = plain ? chunks : 4 * static_cast<std::size_t>(threads);
  std::vector<Stored> where(std::min(chunks, group));
  std::vector<std::string> errors(where.size());
  if (!plain) {
    if (r.stored.size() < where.size()) r.stored.resize(where.size());
    // Per thread, a decoded chunk before unshuffling and a float64 chunk before narrowing;
    // allocated here, where a failure can still be thrown (not inside the parallel loop).
    const std::size_t scratch_bytes =
        (r.filters.size() > 1 ? chunk_bytes : 0) + (r.element_bytes == 8 ? chunk_bytes : 0);
    r.scratch.resize(std::max<std::size_t>(r.scratch.size(), static_cast<std::size_t>(threads)));
    for (std::vector<unsigned char>& buffer : r.scratch) {
      if (buffer.size() < scratch_bytes) buffer.resize(scratch_bytes);
    }
  }
  for (std::size_t g = 0; g < chunks; g += group) {
    const std::size_t count = std::min(group, chunks - g);
    for (std::size_t c = 0; c < count; ++c) {
      const std::size_t row = whole_begin + (g + c) * chunk;
      where[c] = locate(row);
      if (plain && where[c].size != chunk_bytes) {
        fail_chunk(row, "the chunk stores " + std::to_string(where[c].size) + " bytes");
      }
      // Deflate's worst case adds 0.03% and a few bytes to a chunk; a larger claim is a corrupt
      // index, refused before allocating it.
      if (!plain && (where[c].size == 0 || where[c].size > 2 * chunk_bytes + 1024)) {
        fail_chunk(row, "the chunk claims " + std::to_string(where[c].size) + " stored bytes");
      }
      if (!plain) r.stored[c].resize(where[c].size);
      if (!r.by_address) {
        read_directly(row, where[c],
                      plain ? static_cast<void*>(out + (row - first) * r.features)
                            : static_cast<void*>(r.stored[c].data()));
      }
    }
    if (!r.by_address) r.check_not_cut("/features", whole_begin + g * chunk, count * chunk);
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1) if (count > 1)
    for (std::size_t c = 0; c < count; ++c) {
      float* const to = out + (whole_begin + (g + c) * chunk - first) * r.features;
      if (r.by_address) {
        errors[c] = read_stored_bytes(r.fd, where[c].offset, plain ? chunk_bytes : where[c].size,
                                      plain ? static_cast<void*>(to) : r.stored[c].data());
      }
      if (plain || !errors[c].empty()) continue;
      unsigned char* const scratch =
          r.scratch[static_cast<std::size_t>(omp_get_thread_num())].data();
      if (r.element_bytes == 4) {
        errors[c] = decode_chunk(r.stored[c], where[c].skipped, r.filters, 4,
                                 reinterpret_cast<unsigned char*>(to), chunk_bytes, scratch);
      } else {
        unsigned char* const doubles = scratch + (r.filters.size() > 1 ? chunk_bytes : 0);
        errors[c] = decode_chunk(r.stored[c], where[c].skipped, r.filters, 8, doubles, chunk_bytes,
                                 scratch);
        if (errors[c].empty()) {
          narrow_to_float(reinterpret_cast<const double*>(doubles), chunk * r.features, to);
        }
      }
    }
    for (std::size_t c = 0; c < count; ++c) {
      if (!errors[c].empty()) fail_chunk(whole_begin + (g + c) * chunk, errors[c]);
    }
  }
  read_part(whole_end, end);
  return end - first;
}

std::size_t Hdf5BatchReader::read_label(std::size_t first, std::size_t count, float* out) {
  silence_hdf5_stack_printing();
  const std::size_t n = read_rows(impl_->path, impl_->label.get(), "/label", impl_->rows, 0,
                                  H5T_NATIVE_FLOAT, first, count, out);
  impl_->check_not_cut("/label", first, n);
  return n;
}

std::size_t Hdf5BatchReader::read_timestamp(std::size_t first, std::size_t count,
                                            std::int64_t* out) {
  silence_hdf5_stack_printing();
  const std::size_t n = read_rows(impl_->path, impl_->timestamp.get(), "/timestamp", impl_->rows, 0,
                                  H5T_NATIVE_INT64, first, count, out, /*exact=*/true);
  impl_->check_not_cut("/timestamp", first, n);
  return n;
}

std::size_t Hdf5BatchReader::read_row_id(std::size_t first, std::size_t count, std::int64_t* out) {
  silence_hdf5_stack_printing();
  const std::size_t n = read_rows(impl_->path, impl_->row_id.get(), "/row_id", impl_->rows, 0,
                                  H5T_NATIVE_INT64, first, count, out, /*exact=*/true);
  impl_->check_not_cut("/row_id", first, n);
  return n;
}

namespace {

// Closes the datasets, then the file, even after a failure; the first failure is thrown. Closing
// is where HDF5 flushes cached chunks, so it can fail on a full disk.
void close_for_writing(const std::string& path, const std::vector<Dataset*>& datasets, File& file) {
  silence_hdf5_stack_printing();
  std::string detail;
  for (Dataset* dataset : datasets) {
    if (!dataset->reset() && detail.empty()) detail = hdf5_error_detail();
  }
  if (!file.reset() && detail.empty()) detail = hdf5_error_detail();
  if (!detail.empty()) fail(path, "cannot finish writing (" + detail + ")");
}

}  // namespace

// ---- Hdf5Writer ---------------------------------------------------------------------------------

struct Hdf5Writer::Impl {
  std::string path;
  std::size_t features = 0;
  Hdf5WriterOptions options;
  File file;  // declared before the datasets, so it is closed after them
  Dataset features_data;
  Dataset label;
  Dataset timestamp;
  Dataset row_id;
  std::size_t rows = 0;
  bool failed = false;  // an append failed half way; the file is closed and incomplete

  // Destructors cannot throw, so a failure to finish the file is the one thing reported here.
  ~Impl() {
    try {
      finish();
    } catch (const Error& e) {
      std::fprintf(stderr, "driftguard: %s\n", e.what());
    }
  }

  void finish() { close_for_writing(path, {&label, &timestamp, &row_id, &features_data}, file); }
};

Hdf5Writer::Hdf5Writer(const std::string& path, std::vector<std::string> feature_names,
                       Hdf5WriterOptions options)
    : impl_(std::make_unique<Impl>()) {
  silence_hdf5_stack_printing();
  Impl& w = *impl_;
  w.path = path;
  w.features = feature_names.size();
  w.options = options;
  if (w.features == 0) throw InvalidInput(path + ": a table needs at least one feature");
  std::unordered_set<std::string_view> seen;
  for (const std::string& name : feature_names) {
    if (name.empty()) throw InvalidInput(path + ": empty feature name");
    if (!seen.insert(name).second)
      throw InvalidInput(path + ": duplicate feature name '" + name + "'");
  }
  if (options.gzip_level < 0 || options.gzip_level > 9) {
    throw InvalidInput(path + ": gzip level must be 0..9, got " +
                       std::to_string(options.gzip_level));
  }
  const std::size_t row_bytes = w.features * sizeof(float);
  if (options.chunk_rows > kMaxChunkBytes / row_bytes) {
    throw InvalidInput(path + ": chunk_rows " + std::to_string(options.chunk_rows) +
                       " makes chunks of 4 GiB or more, which HDF5 cannot store");
  }
  if (options.gzip_level > 0 && H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0) {
    fail(path, "this HDF5 library has no deflate filter for gzip_level " +
                   std::to_string(options.gzip_level));
  }

  // No modification times in object headers: the same data give the same bytes, so generated
  // files are reproducible.
  PropertyList create(H5Pcreate(H5P_FILE_CREATE));
  check(create.valid() ? H5Pset_obj_track_times(create.get(), false) : -1, path,
        "set up file creation");
  w.file = File(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, create.get(), H5P_DEFAULT));
  if (!w.file.valid()) fail(path, "cannot create (" + hdf5_error_detail() + ")");
  const hid_t file = w.file.get();
  write_root_attributes(path, file);
  write_feature_names(path, file, feature_names);

  // An explicit chunk_rows applies to every dataset; by default each gets about 1 MiB chunks.
  const auto chunk_rows = [&](std::size_t row_bytes_of) {
    return options.chunk_rows != 0 ? options.chunk_rows : default_chunk_rows(row_bytes_of);
  };
  w.features_data = create_extendible(path, file, "/features", H5T_IEEE_F32LE, w.features,
                                      chunk_rows(row_bytes), options.gzip_level);
  if (options.with_label) {
    w.label = create_extendible(path, file, "/label", H5T_IEEE_F32LE, 0, chunk_rows(sizeof(float)),
                                options.gzip_level);
  }
  if (options.with_timestamp) {
    w.timestamp = create_extendible(path, file, "/timestamp", H5T_STD_I64LE, 0,
                                    chunk_rows(sizeof(std::int64_t)), options.gzip_level);
  }
  if (options.with_row_id) {
    w.row_id = create_extendible(path, file, "/row_id", H5T_STD_I64LE, 0,
                                 chunk_rows(sizeof(std::int64_t)), options.gzip_level);
  }
}

Hdf5Writer::~Hdf5Writer() = default;
Hdf5Writer::Hdf5Writer(Hdf5Writer&&) noexcept = default;
Hdf5Writer& Hdf5Writer::operator=(Hdf5Writer&&) noexcept = default;

void Hdf5Writer::append(const float* features, std::size_t rows, const float* label,
                        const std::int64_t* timestamp, const std::int64_t* row_id) {
  silence_hdf5_stack_printing();
  Impl& w = *impl_;
  if (w.failed)
    fail(w.path, "cannot append after an earlier write failed (the file is incomplete)");
  if (!w.file.valid()) throw InvalidInput(w.path + ": append after close()");
  const auto check_column = [&](bool given, bool enabled, const char* name) {
    if (given != enabled) {
      throw InvalidInput(
          w.path + ": " + name +
          (enabled ? " is enabled but was not given" : " was given but is not enabled"));
    }
  };
  check_column(label != nullptr, w.options.with_label, "/label");
  check_column(timestamp != nullptr, w.options.with_timestamp, "/timestamp");
  check_column(row_id != nullptr, w.options.with_row_id, "/row_id");
  if (rows == 0) return;
  if (features == nullptr) throw InvalidInput(w.path + ": append of null features");
  try {
    append_rows(w.path, w.features_data.get(), "/features", w.features, H5T_NATIVE_FLOAT, w.rows,
                rows, features);
    if (label != nullptr) {
      append_rows(w.path, w.label.get(), "/label", 0, H5T_NATIVE_FLOAT, w.rows, rows, label);
    }
    if (timestamp != nullptr) {
      append_rows(w.path, w.timestamp.get(), "/timestamp", 0, H5T_NATIVE_INT64, w.rows, rows,
                  timestamp);
    }
    if (row_id != nullptr) {
      append_rows(w.path, w.row_id.get(), "/row_id", 0, H5T_NATIVE_INT64, w.rows, rows, row_id);
    }
  } catch (const IoError&) {
    // The datasets may now disagree in length; release the file rather than write more to it.
    w.failed = true;
    try {
      w.finish();
    } catch (const IoError&) {  // the append's own error is the one worth reporting
    }
    throw;
  }
  w.rows += rows;
}

std::size_t Hdf5Writer::rows() const noexcept { return impl_->rows; }

void Hdf5Writer::close() {
  if (impl_) impl_->finish();
}

// ---- Hdf5ColumnWriter ---------------------------------------------------------------------------

struct Hdf5ColumnWriter::Impl {
  std::string path;
  std::vector<Column> columns;
  // Declared first, so it is destroyed last: a writer destroyed without close() (a failed run)
  // removes its temporary file and leaves `path` as it was.
  std::optional<detail::AtomicFile> output;
  File file;  // declared before the datasets, so it is closed after them
  std::vector<Dataset> datasets;
  Dataset row_id;
  std::size_t rows = 0;

  void finish() {
    if (!output) return;
    std::vector<Dataset*> open{&row_id};
    for (Dataset& dataset : datasets) open.push_back(&dataset);
    close_for_writing(path, open, file);
    output->commit();
    output.reset();
  }
};

Hdf5ColumnWriter::Hdf5ColumnWriter(const std::string& path, std::vector<Column> columns,
                                   bool with_row_id)
    : impl_(std::make_unique<Impl>()) {
  silence_hdf5_stack_printing();
  Impl& w = *impl_;
  w.path = path;
  w.columns = std::move(columns);
  PropertyList create(H5Pcreate(H5P_FILE_CREATE));
  check(create.valid() ? H5Pset_obj_track_times(create.get(), false) : -1, path,
        "set up file creation");
  w.output.emplace(path);
  w.file = File(H5Fcreate(w.output->temporary().c_str(), H5F_ACC_TRUNC, create.get(), H5P_DEFAULT));
  if (!w.file.valid()) fail(path, "cannot create (" + hdf5_error_detail() + ")");
  for (const Column& c : w.columns) {
    w.datasets.push_back(create_extendible(
        path, w.file.get(), c.name.c_str(), H5T_IEEE_F32LE, c.width,
        default_chunk_rows(std::max<std::size_t>(c.width, 1) * sizeof(float)), 0));
  }
  if (with_row_id) {
    w.row_id = create_extendible(path, w.file.get(), "/row_id", H5T_STD_I64LE, 0,
                                 default_chunk_rows(sizeof(std::int64_t)), 0);
  }
}

Hdf5ColumnWriter::~Hdf5ColumnWriter() = default;
Hdf5ColumnWriter::Hdf5ColumnWriter(Hdf5ColumnWriter&&) noexcept = default;
Hdf5ColumnWriter& Hdf5ColumnWriter::operator=(Hdf5ColumnWriter&&) noexcept = default;

void Hdf5ColumnWriter::append(std::size_t rows, const std::vector<const float*>& values,
                              const std::int64_t* row_id) {
  silence_hdf5_stack_printing();
  Impl& w = *impl_;
  if (!w.file.valid()) throw InvalidInput(w.path + ": append after close()");
  if (values.size() != w.columns.size() || (row_id != nullptr) != w.row_id.valid()) {
    throw InvalidInput(w.path + ": append does not give the file's columns");
  }
  if (rows == 0) return;
  for (std::size_t i = 0; i < values.size(); ++i) {
    append_rows(w.path, w.datasets[i].get(), w.columns[i].name.c_str(), w.columns[i].width,
                H5T_NATIVE_FLOAT, w.rows, rows, values[i]);
  }
  if (row_id != nullptr) {
    append_rows(w.path, w.row_id.get(), "/row_id", 0, H5T_NATIVE_INT64, w.rows, rows, row_id);
  }
  w.rows += rows;
}

void Hdf5ColumnWriter::close() {
  if (impl_) impl_->finish();
}

// ---- Hdf5Store ----------------------------------------------------------------------------------

namespace {

// A 1-D dataset of `count` elements of one type class, read whole.
template <typename T>
std::vector<T> read_array(const std::string& path, hid_t file, const std::string& name,
                          H5T_class_t expected_class, hid_t memory_type) {
  if (!has_link(path, file, name.c_str())) fail(path, "missing dataset " + name);
  const Dataset dataset = open_dataset(path, file, name.c_str());
  const Extent extent = extent_of(dataset.get());
  const Datatype type(H5Dget_type(dataset.get()));
  if (extent.rank != 1 || !type.valid() || H5Tget_class(type.get()) != expected_class) {
    fail(path, name + " must be a 1-D " + class_name(expected_class) + " dataset");
  }
  std::vector<T> values(extent.dims[0]);
  if (!values.empty() &&
      H5Dread(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values.data()) < 0) {
    fail(path, "cannot read " + name + " (" + hdf5_error_detail() + ")");
  }
  return values;
}

}  // namespace

struct Hdf5Store::Impl {
  std::string path;
  std::optional<detail::AtomicFile> output;  // a created store until close(); destroyed last
  File file;
  bool writable = false;

  void write_array(const std::string& name, hid_t file_type, hid_t memory_type, std::size_t count,
                   const void* data) {
    if (!writable) fail(path, "opened read-only, cannot write " + name);
    const hsize_t dims[1] = {count};
    Dataspace space(H5Screate_simple(1, dims, nullptr));
    Dataset dataset(space.valid() ? H5Dcreate2(file.get(), name.c_str(), file_type, space.get(),
                                               H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)
                                  : H5I_INVALID_HID);
    check(dataset.valid() ? 0 : -1, path, "create " + name);
    if (count > 0) {
      check(H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), path,
            "write " + name);
    }
  }
  void write_attribute(const std::string& name, hid_t file_type, hid_t memory_type,
                       const void* value) {
    if (!writable) fail(path, "opened read-only, cannot write attribute " + name);
    Dataspace scalar(H5Screate(H5S_SCALAR));
    Attribute attribute(
        H5Acreate2(file.get(), name.c_str(), file_type, scalar.get(), H5P_DEFAULT, H5P_DEFAULT));
    check(attribute.valid() ? H5Awrite(attribute.get(), memory_type, value) : -1, path,
          "write attribute " + name);
  }
};

Hdf5Store::Hdf5Store() : impl_(std::make_unique<Impl>()) {}
Hdf5Store::~Hdf5Store() = default;
Hdf5Store::Hdf5Store(Hdf5Store&&) noexcept = default;
Hdf5Store& Hdf5Store::operator=(Hdf5Store&&) noexcept = default;

Hdf5Store Hdf5Store::create(const std::string& path) {
  silence_hdf5_stack_printing();
  Hdf5Store store;
  store.impl_->path = path;
  store.impl_->writable = true;
  store.impl_->output.emplace(path);
  store.impl_->file = File(
      H5Fcreate(store.impl_->output->temporary().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  if (!store.impl_->file.valid()) fail(path, "cannot create (" + hdf5_error_detail() + ")");
  return store;
}

Hdf5Store Hdf5Store::open(const std::string& path) {
  silence_hdf5_stack_printing();
  Hdf5Store store;
  store.impl_->path = path;
  store.impl_->file = open_for_reading(path);
  return store;
}

void Hdf5Store::set_attribute(const std::string& name, const std::string& value) {
  silence_hdf5_stack_printing();
  const Datatype type = utf8_string_type(impl_->path);
  const char* text = value.c_str();
  impl_->write_attribute(name, type.get(), type.get(), &text);
}

void Hdf5Store::set_attribute(const std::string& name, std::int64_t value) {
  silence_hdf5_stack_printing();
  impl_->write_attribute(name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

std::optional<std::string> Hdf5Store::string_attribute(const std::string& name) const {
  silence_hdf5_stack_printing();
  return read_string_attribute(impl_->path, impl_->file.get(), name.c_str());
}

std::optional<std::int64_t> Hdf5Store::int_attribute(const std::string& name) const {
  silence_hdf5_stack_printing();
  const std::string& path = impl_->path;
  const htri_t exists = H5Aexists(impl_->file.get(), name.c_str());
  if (exists < 0) fail(path, "cannot read attribute " + name);
  if (exists == 0) return std::nullopt;
  Attribute attribute(H5Aopen(impl_->file.get(), name.c_str(), H5P_DEFAULT));
  Datatype type(attribute.valid() ? H5Aget_type(attribute.get()) : H5I_INVALID_HID);
  Dataspace space(attribute.valid() ? H5Aget_space(attribute.get()) : H5I_INVALID_HID);
  std::int64_t value = 0;
  if (!type.valid() || !space.valid() || H5Tget_class(type.get()) != H5T_INTEGER ||
      H5Sget_simple_extent_npoints(space.get()) != 1 ||
      H5Aread(attribute.get(), H5T_NATIVE_INT64, &value) < 0) {
    fail(path, "attribute " + name + " must be a single integer");
  }
  return value;
}

void Hdf5Store::write(const std::string& name, std::span<const float> values) {
  silence_hdf5_stack_printing();
  impl_->write_array(name, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, values.size(), values.data());
}

void Hdf5Store::write(const std::string& name, std::span<const std::uint64_t> values) {
  silence_hdf5_stack_printing();
  impl_->write_array(name, H5T_STD_U64LE, H5T_NATIVE_UINT64, values.size(), values.data());
}

void Hdf5Store::write_text(const std::string& name, const std::string& text) {
  silence_hdf5_stack_printing();
  impl_->write_array(name, H5T_STD_U8LE, H5T_NATIVE_UCHAR, text.size(), text.data());
}

std::vector<float> Hdf5Store::read_floats(const std::string& name) const {
  silence_hdf5_stack_printing();
  return read_array<float>(impl_->path, impl_->file.get(), name, H5T_FLOAT, H5T_NATIVE_FLOAT);
}

std::vector<std::uint64_t> Hdf5Store::read_uint64s(const std::string& name) const {
  silence_hdf5_stack_printing();
  return read_array<std::uint64_t>(impl_->path, impl_->file.get(), name, H5T_INTEGER,
                                   H5T_NATIVE_UINT64);
}

std::string Hdf5Store::read_text(const std::string& name) const {
  silence_hdf5_stack_printing();
  const auto bytes = read_array<unsigned char>(impl_->path, impl_->file.get(), name, H5T_INTEGER,
                                               H5T_NATIVE_UCHAR);
  return {bytes.begin(), bytes.end()};
}

void Hdf5Store::close() {
  close_for_writing(impl_->path, {}, impl_->file);
  if (impl_->output) {
    impl_->output->commit();
    impl_->output.reset();
  }
}

}  // namespace driftguard
