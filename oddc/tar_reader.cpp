#include "oddc/tar_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <system_error>
#include <vector>

namespace odd::oddc {

namespace {

constexpr std::size_t kBlock = 512;
constexpr std::uint64_t kMaxMetaBytes = 1u << 20;

std::string_view field(const std::string& block, std::size_t offset, std::size_t length) {
  std::string_view f(block.data() + offset, length);
  const auto nul = f.find('\0');
  return nul == std::string_view::npos ? f : f.substr(0, nul);
}

// A numeric header field: octal digits (space or NUL padded), or GNU base-256 when the first
// byte has its high bit set.
bool parse_number(const std::string& block, std::size_t offset, std::size_t length,
                  std::uint64_t& out) {
  const auto first = static_cast<unsigned char>(block[offset]);
  out = 0;
  if (first & 0x80) {
    if (first != 0x80) return false;  // negative, or larger than 2^63 fits
    for (std::size_t i = 1; i < length; ++i) {
      if (out >> 55) return false;
      out = (out << 8) | static_cast<unsigned char>(block[offset + i]);
    }
    return true;
  }
  std::size_t i = 0;
  while (i < length && block[offset + i] == ' ') ++i;
  bool digits = false;
  for (; i < length; ++i) {
    const char c = block[offset + i];
    if (c == '\0' || c == ' ') break;
    if (c < '0' || c > '7') return false;
    if (out >> 60) return false;
    out = out * 8 + static_cast<std::uint64_t>(c - '0');
    digits = true;
  }
  return digits;
}

std::string shown_name(std::string_view name) {
  std::string out = "\"";
  for (const char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20 || u == 0x7f) {
      constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    } else {
      out += c;
    }
  }
  out += '"';
  return out;
}

Status refuse(std::string_view name, std::string_view why) {
  return invalid_argument("refusing tar entry " + shown_name(name) + ": " + std::string(why));
}

// The entry's path relative to the target directory, or why it is refused. "." parts and empty
// parts are dropped; the result may be empty (the directory itself).
Result<std::string> relative_path(std::string_view name) {
  if (name.empty()) return refuse(name, "it has an empty name");
  if (name.find('\0') != std::string_view::npos) return refuse(name, "its name holds a NUL byte");
  if (name.front() == '/') return refuse(name, "it is an absolute path");
  std::string out;
  std::size_t start = 0;
  while (start <= name.size()) {
    std::size_t end = name.find('/', start);
    if (end == std::string_view::npos) end = name.size();
    const std::string_view part = name.substr(start, end - start);
    if (part == "..") return refuse(name, "it has a \"..\" part");
    if (!part.empty() && part != ".") {
      if (!out.empty()) out += '/';
      out += part;
    }
    start = end + 1;
  }
  return out;
}

std::string_view type_description(char type) {
  switch (type) {
    case '1':
      return "it is a hard link";
    case '2':
      return "it is a symbolic link";
    case '3':
      return "it is a character device";
    case '4':
      return "it is a block device";
    case '6':
      return "it is a FIFO";
    default:
      return "";
  }
}

// PAX extended header records: "<length> <key>=<value>\n", the length counting the whole record.
Status apply_pax(std::string_view records, std::string& name, bool& has_size, std::uint64_t& size) {
  while (!records.empty()) {
    const auto space = records.find(' ');
    std::uint64_t length = 0;
    if (space == std::string_view::npos || space == 0) {
      return invalid_argument("malformed PAX header in the tar stream");
    }
    for (const char c : records.substr(0, space)) {
      if (c < '0' || c > '9' || length > kMaxMetaBytes) {
        return invalid_argument("malformed PAX header in the tar stream");
      }
      length = length * 10 + static_cast<std::uint64_t>(c - '0');
    }
    if (length <= space + 1 || length > records.size() || records[length - 1] != '\n') {
      return invalid_argument("malformed PAX header in the tar stream");
    }
    const std::string_view record = records.substr(space + 1, length - space - 2);
    records.remove_prefix(length);
    const auto eq = record.find('=');
    if (eq == std::string_view::npos) {
      return invalid_argument("malformed PAX header in the tar stream");
    }
    const std::string_view key = record.substr(0, eq);
    const std::string_view value = record.substr(eq + 1);
    if (key == "path") {
      name = std::string(value);
    } else if (key == "size") {
      std::uint64_t n = 0;
      if (value.empty()) return invalid_argument("malformed PAX size in the tar stream");
      for (const char c : value) {
        if (c < '0' || c > '9' || n > (UINT64_MAX - 9) / 10) {
          return invalid_argument("malformed PAX size in the tar stream");
        }
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
      }
      has_size = true;
      size = n;
    }
  }
  return ok_status();
}

Status write_all(int fd, std::string_view data, const std::string& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return internal_error("cannot write " + path + ": " + std::strerror(errno));
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return ok_status();
}

}  // namespace

Result<std::unique_ptr<TarExtractor>> TarExtractor::create(const std::string& dir,
                                                           std::string strip) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return invalid_argument("cannot create directory " + dir + ": " + ec.message());
  if (!std::filesystem::is_directory(dir, ec)) {
    return invalid_argument(dir + " is not a directory");
  }
  return std::unique_ptr<TarExtractor>(new TarExtractor(dir, std::move(strip)));
}

TarExtractor::~TarExtractor() {
  if (fd_ >= 0) ::close(fd_);
}

Status TarExtractor::fail(Status status) {
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
    // A file cut short must not pass for a complete one.
    ::unlink((dir_ + "/" + entry_name_).c_str());
  }
  error_ = status;
  return status;
}

Status TarExtractor::write(std::string_view bytes) {
  if (!error_.ok()) return error_;
  while (!bytes.empty()) {
    switch (state_) {
      case State::kHeader: {
        const std::size_t take = std::min(kBlock - block_.size(), bytes.size());
        block_.append(bytes.substr(0, take));
        bytes.remove_prefix(take);
        if (block_.size() == kBlock) {
          Status s = header_block();
          block_.clear();
          if (!s.ok()) return fail(std::move(s));
        }
        break;
      }
      case State::kData:
      case State::kMeta: {
        const auto take =
            static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, bytes.size()));
        if (state_ == State::kData) {
          if (Status s = write_all(fd_, bytes.substr(0, take), dir_ + "/" + entry_name_); !s.ok()) {
            return fail(std::move(s));
          }
        } else if (meta_kind_ != Meta::kIgnored) {
          meta_.append(bytes.substr(0, take));
        }
        bytes.remove_prefix(take);
        remaining_ -= take;
        if (remaining_ == 0) {
          if (Status s = end_data(); !s.ok()) return fail(std::move(s));
        }
        break;
      }
      case State::kSkip: {
        const auto take = static_cast<std::size_t>(std::min<std::uint64_t>(padding_, bytes.size()));
        bytes.remove_prefix(take);
        padding_ -= take;
        if (padding_ == 0) state_ = State::kHeader;
        break;
      }
      case State::kEnd:
        // Writers pad the archive to a whole record with zeros after the end marker.
        return ok_status();
    }
  }
  return ok_status();
}

Status TarExtractor::finish() {
  if (!error_.ok()) return error_;
  if (state_ == State::kEnd) return ok_status();
  if (state_ == State::kHeader && block_.empty() && zero_blocks_ == 1) return ok_status();
  if (state_ == State::kData || state_ == State::kMeta) {
    return fail(
        invalid_argument("the tar stream ended in the middle of " + shown_name(entry_name_)));
  }
  return fail(invalid_argument("the tar stream ended without its end-of-archive blocks"));
}

Status TarExtractor::header_block() {
  if (std::all_of(block_.begin(), block_.end(), [](char c) { return c == '\0'; })) {
    if (++zero_blocks_ == 2) state_ = State::kEnd;
    return ok_status();
  }
  zero_blocks_ = 0;
  std::uint64_t stored = 0;
  if (!parse_number(block_, 148, 8, stored)) {
    return invalid_argument("malformed tar header: its checksum field is not a number");
  }
  std::uint64_t sum = 0;
  for (std::size_t i = 0; i < kBlock; ++i) {
    sum += (i >= 148 && i < 156) ? static_cast<unsigned char>(' ')
                                 : static_cast<unsigned char>(block_[i]);
  }
  if (sum != stored) return invalid_argument("malformed tar header: checksum mismatch");
  std::string name(field(block_, 0, 100));
  if (field(block_, 257, 5) == "ustar") {
    const std::string_view prefix = field(block_, 345, 155);
    if (!prefix.empty()) name = std::string(prefix) + "/" + name;
  }
  std::uint64_t mode = 0;
  if (!parse_number(block_, 100, 8, mode)) mode = 0644;
  std::uint64_t size = 0;
  if (!parse_number(block_, 124, 12, size)) {
    return invalid_argument("malformed tar header of " + shown_name(name) + ": bad size field");
  }
  return start_entry(block_[156], std::move(name), size, static_cast<unsigned>(mode & 07777));
}

Status TarExtractor::start_entry(char type, std::string name, std::uint64_t size, unsigned mode) {
  padding_ = (kBlock - size % kBlock) % kBlock;
  remaining_ = size;
  if (type == 'x' || type == 'g' || type == 'L' || type == 'K') {
    if ((type == 'x' || type == 'L') && size > kMaxMetaBytes) {
      return invalid_argument("malformed tar stream: a " + std::to_string(size) +
                              "-byte extended header");
    }
    meta_kind_ = type == 'x' ? Meta::kPax : type == 'L' ? Meta::kGnuLongName : Meta::kIgnored;
    meta_.clear();
    entry_name_ = name;
    state_ = State::kMeta;
    return size == 0 ? end_data() : ok_status();
  }
  if (!next_name_.empty()) name = std::exchange(next_name_, std::string());
  if (has_next_size_) {
    size = next_size_;
    has_next_size_ = false;
    padding_ = (kBlock - size % kBlock) % kBlock;
    remaining_ = size;
  }
  auto relative = relative_path(name);
  if (!relative) return relative.error();
  if (!strip_.empty()) {
    if (*relative == strip_) {
      relative->clear();
    } else if (relative->size() > strip_.size() && relative->starts_with(strip_) &&
               (*relative)[strip_.size()] == '/') {
      relative->erase(0, strip_.size() + 1);
    }
  }
  const bool regular = type == '0' || type == '\0' || type == '7';
  if (type != '5' && !regular) {
    std::string why(type_description(type));
    if (why.empty()) {
      why = "its type '";
      why += (type >= 0x20 && type < 0x7f) ? type : '?';
      why += "' is neither a regular file nor a directory";
    }
    return refuse(name, why);
  }
  const std::string path = relative->empty() ? dir_ : dir_ + "/" + *relative;
  std::error_code ec;
  if (type == '5') {
    std::filesystem::create_directories(path, ec);
    if (ec) return internal_error("cannot create directory " + path + ": " + ec.message());
    ++directories_;
    state_ = State::kMeta;
    meta_kind_ = Meta::kIgnored;
    entry_name_ = name;
    return remaining_ == 0 ? end_data() : ok_status();
  }
  if (relative->empty()) return refuse(name, "a file cannot be the target directory itself");
  const auto parent = std::filesystem::path(path).parent_path();
  std::filesystem::create_directories(parent, ec);
  if (ec) return internal_error("cannot create directory " + parent.string() + ": " + ec.message());
  const auto file_mode = static_cast<mode_t>((mode & 0755) | 0600);
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, file_mode);
  if (fd_ < 0) return internal_error("cannot create " + path + ": " + std::strerror(errno));
  entry_name_ = *relative;
  state_ = State::kData;
  return remaining_ == 0 ? end_data() : ok_status();
}

Status TarExtractor::end_data() {
  if (state_ == State::kData) {
    const int fd = std::exchange(fd_, -1);
    if (::close(fd) != 0) {
      return internal_error("cannot write " + dir_ + "/" + entry_name_ + ": " +
                            std::strerror(errno));
    }
    ++files_;
  } else if (meta_kind_ == Meta::kPax) {
    if (Status s = apply_pax(meta_, next_name_, has_next_size_, next_size_); !s.ok()) return s;
  } else if (meta_kind_ == Meta::kGnuLongName) {
    const auto nul = meta_.find('\0');
    next_name_ = meta_.substr(0, nul);
  }
  meta_.clear();
  state_ = padding_ > 0 ? State::kSkip : State::kHeader;
  return ok_status();
}

}  // namespace odd::oddc
