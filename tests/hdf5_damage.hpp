#pragma once
// Damaging HDF5 test files as storage or transfers do.
#include <hdf5.h>

#include <cstddef>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

namespace driftguard::testing {

// Overwrites the middle of chunk `index` of /features with garbage; returns its first row.
inline std::size_t corrupt_chunk(const std::filesystem::path& path, hsize_t index) {
  haddr_t address = 0;
  hsize_t size = 0, offset[2] = {0, 0};
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t data = H5Dopen2(file, "/features", H5P_DEFAULT);
  const hid_t space = H5Dget_space(data);
  unsigned filter_mask = 0;
  const herr_t rc = H5Dget_chunk_info(data, space, index, offset, &filter_mask, &address, &size);
  H5Sclose(space);
  H5Dclose(data);
  H5Fclose(file);
  EXPECT_GE(rc, 0);
  std::fstream out(path, std::ios::in | std::ios::out | std::ios::binary);
  out.seekp(static_cast<std::streamoff>(address + size / 4));
  const std::string garbage(size / 2, '\xA5');
  out.write(garbage.data(), static_cast<std::streamsize>(garbage.size()));
  return static_cast<std::size_t>(offset[0]);
}

}  // namespace driftguard::testing
