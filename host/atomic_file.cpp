#include "host/atomic_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "driftguard/errors.hpp"

namespace driftguard::detail {
namespace {

[[noreturn]] void fail(const std::string& path, const std::string& what) {
  throw IoError(path + ": " + what + ": " + std::strerror(errno));
}

void fsync_path(const std::string& path, int flags) {
  const int fd = ::open(path.c_str(), flags);
  if (fd < 0) fail(path, "cannot open for fsync");
  const int rc = ::fsync(fd);
  ::close(fd);
  if (rc != 0) fail(path, "fsync failed");
}

}  // namespace

void write_all(int fd, std::string_view text, const std::string& path) {
  std::size_t written = 0;
  while (written < text.size()) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail(path, "cannot write");
    written += static_cast<std::size_t>(n);
  }
}

AtomicFile::AtomicFile(const std::string& path) : target_(path) {
  namespace fs = std::filesystem;
  std::error_code error;
  for (int hops = 0; hops < 40 && fs::is_symlink(target_, error); ++hops) {
    const fs::path link = fs::read_symlink(target_, error);
    target_ = (link.is_absolute() ? link : fs::path(target_).parent_path() / link).string();
  }
  struct stat st {};
  if (::stat(target_.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
    errno = S_ISDIR(st.st_mode) ? EISDIR : EINVAL;
    fail(path, "cannot write the output here (not a regular file)");
  }
  const fs::path target(target_);
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0; fd_ < 0; ++attempt) {
    std::string name = ".";  // built by appends: g++ 12 warns falsely on "." + string
    name += target.filename().string();
    name += '.';
    name += std::to_string(::getpid());
    name += '.';
    name += std::to_string(counter++);
    name += ".tmp";
    temporary_ = (target.parent_path() / name).string();
    fd_ = ::open(temporary_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd_ < 0 && (errno != EEXIST || attempt == 100)) fail(temporary_, "cannot create");
  }
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_) ::unlink(temporary_.c_str());
}

void AtomicFile::commit() {
  if (::fsync(fd_) != 0) fail(temporary_, "fsync failed");
  ::close(fd_);
  fd_ = -1;
  if (::rename(temporary_.c_str(), target_.c_str()) != 0) fail(target_, "cannot rename into place");
  committed_ = true;
  const std::filesystem::path parent = std::filesystem::absolute(target_).parent_path();
  fsync_path(parent.string(), O_RDONLY | O_DIRECTORY);
}

void write_file_atomically(const std::string& path, std::string_view text) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode)) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) fail(path, "cannot open for writing");
    try {
      write_all(fd, text, path);
    } catch (const IoError&) {
      ::close(fd);
      throw;
    }
    ::close(fd);
    return;
  }
  AtomicFile file(path);
  write_all(file.fd(), text, file.temporary());
  file.commit();
}

}  // namespace driftguard::detail
