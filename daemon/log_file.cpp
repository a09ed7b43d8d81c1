#include "daemon/log_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>
#include <zstd_errors.h>

#include <algorithm>
#include <cerrno>
#include <system_error>
#include <utility>

#include "daemon/files.hpp"

namespace odd::daemon {

namespace {

// A frame over this is not one of ours, whatever its header says; it bounds what a reader holds.
const std::size_t kMaxCompressedFrame = ZSTD_compressBound(kLogMaxFrameContent);
// 2^24: a window any frame up to kLogMaxFrameContent fits in; larger windows are refused.
constexpr int kWindowLogMax = 24;
constexpr std::size_t kFirstFrameRead = std::size_t{64} << 10;
constexpr std::size_t kPiece = std::size_t{64} << 10;

std::uint32_t load_le32(const char* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

std::uint64_t load_le64(const char* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void store_le(char* p, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) {
    p[i] = static_cast<char>(v & 0xffu);
    v >>= 8;
  }
}

// Reads exactly `n` bytes at `offset` (the caller knows the file holds them) appended to `buf`.
Status pread_append(int fd, std::string& buf, std::size_t n, std::uint64_t offset,
                    const std::filesystem::path& path) {
  const std::size_t old = buf.size();
  buf.resize(old + n);
  std::size_t done = 0;
  while (done < n) {
    const ssize_t r =
        ::pread(fd, buf.data() + old + done, n - done, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      buf.resize(old + done);
      // A file cut shorter under us (a concurrent reopen) reads as a short tail.
      if (r == 0) return ok_status();
      return errno_status(errno, "reading " + path.string());
    }
    done += static_cast<std::size_t>(r);
  }
  return ok_status();
}

Result<std::uint64_t> file_size(int fd, const std::filesystem::path& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return errno_status(errno, "reading " + path.string());
  return static_cast<std::uint64_t>(st.st_size);
}

enum class FrameKind { kIncomplete, kData, kSkippable, kGarbage };

struct FrameAt {
  FrameKind kind = FrameKind::kIncomplete;
  std::uint64_t size = 0;   // the whole frame, header included
  std::uint32_t magic = 0;  // kSkippable: which of the 16 skippable magics
  std::string problem;      // kGarbage: why
};

// Looks at the frame at `offset` of a file of `size` bytes. kData leaves exactly the frame in
// `buf`; kSkippable leaves its 8-byte header and, when at most kLogTotalsPayload, its payload.
Result<FrameAt> load_frame(int fd, std::uint64_t offset, std::uint64_t size, std::string& buf,
                           const std::filesystem::path& path) {
  buf.clear();
  FrameAt frame;
  const std::uint64_t avail = size > offset ? size - offset : 0;
  if (avail < 8) return frame;
  if (Status s = pread_append(fd, buf, 8, offset, path); !s.ok()) return s;
  if (buf.size() < 8) return frame;
  const std::uint32_t magic = load_le32(buf.data());
  if ((magic & ZSTD_MAGIC_SKIPPABLE_MASK) == ZSTD_MAGIC_SKIPPABLE_START) {
    const std::uint64_t payload = load_le32(buf.data() + 4);
    if (avail < 8 + payload) return frame;
    if (payload <= kLogTotalsPayload) {
      if (Status s = pread_append(fd, buf, static_cast<std::size_t>(payload), offset + 8, path);
          !s.ok()) {
        return s;
      }
      if (buf.size() < 8 + payload) return frame;
    }
    frame.kind = FrameKind::kSkippable;
    frame.size = 8 + payload;
    frame.magic = magic;
    return frame;
  }
  if (magic != ZSTD_MAGICNUMBER) {
    frame.kind = FrameKind::kGarbage;
    frame.problem = "not a zstd frame";
    return frame;
  }
  std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(avail, kFirstFrameRead));
  for (;;) {
    if (buf.size() < want) {
      if (Status s = pread_append(fd, buf, want - buf.size(), offset + buf.size(), path); !s.ok()) {
        return s;
      }
      if (buf.size() < want) return frame;
    }
    const std::size_t found = ZSTD_findFrameCompressedSize(buf.data(), buf.size());
    if (!ZSTD_isError(found)) {
      buf.resize(found);
      frame.kind = FrameKind::kData;
      frame.size = found;
      return frame;
    }
    if (ZSTD_getErrorCode(found) != ZSTD_error_srcSize_wrong) {
      frame.kind = FrameKind::kGarbage;
      frame.problem = ZSTD_getErrorName(found);
      return frame;
    }
    if (buf.size() >= avail) return frame;
    if (buf.size() >= kMaxCompressedFrame) {
      frame.kind = FrameKind::kGarbage;
      frame.problem = "frame larger than " + std::to_string(kMaxCompressedFrame) + " bytes";
      return frame;
    }
    want = static_cast<std::size_t>(
        std::min<std::uint64_t>({avail, std::uint64_t{buf.size()} * 2, kMaxCompressedFrame}));
  }
}

bool is_totals_frame(const FrameAt& frame) {
  return frame.kind == FrameKind::kSkippable && frame.magic == kLogTotalsMagic &&
         frame.size == kLogTotalsFrameSize;
}

// The totals frame's payload (in `buf` after load_frame); its version when it is another one.
std::uint32_t totals_version(const std::string& buf) { return load_le32(buf.data() + 8); }
LogTotals parse_totals(const std::string& buf) {
  return {load_le64(buf.data() + 12), load_le64(buf.data() + 20)};
}

struct DctxDeleter {
  void operator()(ZSTD_DCtx* ctx) const { ZSTD_freeDCtx(ctx); }
};
using DctxPtr = std::unique_ptr<ZSTD_DCtx, DctxDeleter>;

DctxPtr make_dctx() {
  DctxPtr ctx(ZSTD_createDCtx());
  if (!ctx) throw std::bad_alloc();
  ZSTD_DCtx_setParameter(ctx.get(), ZSTD_d_windowLogMax, kWindowLogMax);
  return ctx;
}

// The decompressed size of a complete frame in `frame`: from its header, or by decompressing.
Result<std::uint64_t> frame_content_size(ZSTD_DCtx* ctx, const std::string& frame,
                                         std::string& scratch) {
  const unsigned long long declared = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != ZSTD_CONTENTSIZE_ERROR) return declared;
  ZSTD_DCtx_reset(ctx, ZSTD_reset_session_only);
  scratch.resize(kPiece);
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  std::uint64_t total = 0;
  for (;;) {
    ZSTD_outBuffer out{scratch.data(), scratch.size(), 0};
    const std::size_t r = ZSTD_decompressStream(ctx, &out, &in);
    if (ZSTD_isError(r)) return invalid_argument(ZSTD_getErrorName(r));
    total += out.pos;
    if (r == 0) return total;
    if (total > kLogMaxFrameContent) return invalid_argument("frame over the size limit");
    if (out.pos == 0 && in.pos == in.size) return invalid_argument("truncated frame");
  }
}

struct Scan {
  LogTotals totals;
  std::uint64_t data_bytes = 0;
  std::uint64_t valid_end = 0;
  std::uint64_t file_bytes = 0;
};

// Walks the pairs from the start; stops at the first thing that is not a complete pair.
Result<Scan> scan_pairs(int fd, const std::filesystem::path& path, bool count_data) {
  Scan scan;
  auto size = file_size(fd, path);
  if (!size) return size.error();
  scan.file_bytes = *size;
  std::string buf;
  std::string totals_buf;
  std::string scratch;
  DctxPtr ctx = count_data ? make_dctx() : nullptr;
  std::uint64_t offset = 0;
  for (;;) {
    auto data = load_frame(fd, offset, *size, buf, path);
    if (!data) return data.error();
    if (data->kind != FrameKind::kData) break;
    auto totals = load_frame(fd, offset + data->size, *size, totals_buf, path);
    if (!totals) return totals.error();
    if (!is_totals_frame(*totals)) break;
    if (const std::uint32_t version = totals_version(totals_buf); version != kLogFormatVersion) {
      return failed_precondition(path.string() + ": log format version " + std::to_string(version) +
                                 " at offset " + std::to_string(offset + data->size) +
                                 ", this daemon writes " + std::to_string(kLogFormatVersion));
    }
    if (count_data) {
      // A frame that does not decode is still a complete pair; the reader reports it.
      auto content = frame_content_size(ctx.get(), buf, scratch);
      if (content) scan.data_bytes += *content;
    }
    scan.totals = parse_totals(totals_buf);
    offset += data->size + totals->size;
    scan.valid_end = offset;
  }
  return scan;
}

// The end of [begin, end) once a run of zero bytes at its end is left off: after a crash a file
// system may show a grown file whose last blocks were never written, and read them as zeros.
Result<std::uint64_t> end_of_nonzero(int fd, std::uint64_t begin, std::uint64_t end,
                                     const std::filesystem::path& path) {
  std::string buf;
  while (end > begin) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(end - begin, kPiece));
    buf.clear();
    if (Status s = pread_append(fd, buf, n, end - n, path); !s.ok()) return s;
    if (buf.size() < n) return end;
    const std::size_t last = buf.find_last_not_of('\0');
    if (last != std::string::npos) return end - n + last + 1;
    end -= n;
  }
  return end;
}

}  // namespace

struct LogFileWriter::Ctx {
  struct Deleter {
    void operator()(ZSTD_CCtx* ctx) const { ZSTD_freeCCtx(ctx); }
  };
  std::unique_ptr<ZSTD_CCtx, Deleter> cctx;
};

LogFileWriter::LogFileWriter(std::filesystem::path path, int fd, int level)
    : path_(std::move(path)), fd_(fd), ctx_(std::make_unique<Ctx>()) {
  ctx_->cctx.reset(ZSTD_createCCtx());
  if (!ctx_->cctx) throw std::bad_alloc();
  ZSTD_CCtx_setParameter(ctx_->cctx.get(), ZSTD_c_compressionLevel, level);
  ZSTD_CCtx_setParameter(ctx_->cctx.get(), ZSTD_c_checksumFlag, 1);
}

LogFileWriter::~LogFileWriter() { (void)close(); }

Result<std::unique_ptr<LogFileWriter>> LogFileWriter::create(const std::filesystem::path& path,
                                                             int level) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0640);
  if (fd < 0) return errno_status(errno, "creating log " + path.string());
  std::unique_ptr<LogFileWriter> writer(new LogFileWriter(path, fd, level));
  if (Status s = writer->append({}, {}); !s.ok()) {
    (void)writer->close();
    std::error_code ec;
    std::filesystem::remove(path, ec);
    return s;
  }
  return writer;
}

Result<std::unique_ptr<LogFileWriter>> LogFileWriter::reopen(const std::filesystem::path& path,
                                                             int level) {
  Fd fd(::open(path.c_str(), O_RDWR | O_APPEND | O_CLOEXEC));
  if (fd.get() < 0) return errno_status(errno, "reopening log " + path.string());
  auto scan = scan_pairs(fd.get(), path, false);
  if (!scan) return scan.error();
  if (scan->valid_end < scan->file_bytes) {
    auto end = end_of_nonzero(fd.get(), scan->valid_end, scan->file_bytes, path);
    if (!end) return end.error();
    if (*end - scan->valid_end > kMaxCompressedFrame + kLogTotalsFrameSize) {
      return failed_precondition(path.string() + ": " + std::to_string(*end - scan->valid_end) +
                                 " bytes after the last complete pair (offset " +
                                 std::to_string(scan->valid_end) +
                                 ") are more than one torn write; not truncating");
    }
    if (::ftruncate(fd.get(), static_cast<off_t>(scan->valid_end)) != 0) {
      return errno_status(errno, "truncating the torn tail of " + path.string());
    }
  }
  std::unique_ptr<LogFileWriter> writer(new LogFileWriter(path, fd.release(), level));
  writer->totals_ = scan->totals;
  writer->size_ = scan->valid_end;
  writer->truncated_ = scan->file_bytes - scan->valid_end;
  return writer;
}

Status LogFileWriter::append(std::string_view data, LogTotals totals) {
  if (fd_ < 0) return invalid_argument("log " + path_.string() + " is closed");
  if (data.size() > kLogMaxFrameContent) {
    return invalid_argument("log frame of " + std::to_string(data.size()) + " bytes for " +
                            path_.string() + " is over the limit");
  }
  const std::size_t bound = ZSTD_compressBound(data.size());
  // Never shrunk: resizing within the high-water mark costs nothing per frame.
  if (out_.size() < bound + kLogTotalsFrameSize) out_.resize(bound + kLogTotalsFrameSize);
  const std::size_t n =
      ZSTD_compress2(ctx_->cctx.get(), out_.data(), bound, data.data(), data.size());
  if (ZSTD_isError(n)) {
    return internal_error("compressing a frame for " + path_.string() + ": " +
                          ZSTD_getErrorName(n));
  }
  char* t = out_.data() + n;
  store_le(t, kLogTotalsMagic, 4);
  store_le(t + 4, kLogTotalsPayload, 4);
  store_le(t + 8, kLogFormatVersion, 4);
  store_le(t + 12, totals.bytes, 8);
  store_le(t + 20, totals.lines, 8);
  const std::size_t total = n + kLogTotalsFrameSize;
  std::size_t done = 0;
  while (done < total) {
    const ssize_t w = ::write(fd_, out_.data() + done, total - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = w < 0 ? errno : EIO;
      // A partial pair would make the next pair unreadable; cut back to the last complete one.
      if (done > 0) (void)::ftruncate(fd_, static_cast<off_t>(size_));
      return errno_status(err, "writing log " + path_.string());
    }
    done += static_cast<std::size_t>(w);
  }
  size_ += total;
  totals_ = totals;
  return ok_status();
}

Status LogFileWriter::close() {
  if (fd_ < 0) return ok_status();
  const int fd = std::exchange(fd_, -1);
  if (::close(fd) != 0) return errno_status(errno, "closing log " + path_.string());
  return ok_status();
}

struct LogFileReader::Ctx {
  DctxPtr dctx = make_dctx();
};

LogFileReader::LogFileReader(std::filesystem::path path, int fd)
    : path_(std::move(path)), fd_(fd), ctx_(std::make_unique<Ctx>()) {}

LogFileReader::~LogFileReader() {
  if (fd_ >= 0) ::close(fd_);
}

Result<std::unique_ptr<LogFileReader>> LogFileReader::open(const std::filesystem::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno_status(errno, "opening log " + path.string());
  return std::unique_ptr<LogFileReader>(new LogFileReader(path, fd.release()));
}

Result<bool> LogFileReader::next_frame() {
  auto size = file_size(fd_, path_);
  if (!size) return size.error();
  if (stalled_ && *size == stalled_size_) return false;
  stalled_ = false;
  for (;;) {
    auto frame = load_frame(fd_, offset_, *size, frame_, path_);
    if (!frame) return frame.error();
    switch (frame->kind) {
      case FrameKind::kIncomplete:
        stalled_ = true;
        stalled_size_ = *size;
        return false;
      case FrameKind::kSkippable:
        if (is_totals_frame(*frame) && totals_version(frame_) == kLogFormatVersion) {
          totals_ = parse_totals(frame_);
        }
        offset_ += frame->size;
        continue;
      case FrameKind::kGarbage:
        return invalid_argument(path_.string() + ": " + frame->problem + " at offset " +
                                std::to_string(offset_));
      case FrameKind::kData: {
        const unsigned long long declared = ZSTD_getFrameContentSize(frame_.data(), frame_.size());
        if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != ZSTD_CONTENTSIZE_ERROR &&
            declared > kLogMaxFrameContent) {
          return invalid_argument(path_.string() + ": frame at offset " + std::to_string(offset_) +
                                  " holds " + std::to_string(declared) + " bytes, over the limit");
        }
        ZSTD_DCtx_reset(ctx_->dctx.get(), ZSTD_reset_session_only);
        in_frame_ = true;
        frame_pos_ = 0;
        frame_out_ = 0;
        return true;
      }
    }
  }
}

Result<std::size_t> LogFileReader::read(std::string& out, std::size_t max) {
  std::size_t appended = 0;
  while (appended < max) {
    if (!in_frame_) {
      auto more = next_frame();
      if (!more) return more.error();
      if (!*more) break;
      continue;
    }
    const std::size_t room = max - appended;
    const std::size_t old = out.size();
    out.resize(old + room);
    ZSTD_outBuffer o{out.data() + old, room, 0};
    ZSTD_inBuffer i{frame_.data(), frame_.size(), frame_pos_};
    const std::size_t r = ZSTD_decompressStream(ctx_->dctx.get(), &o, &i);
    out.resize(old + o.pos);
    const bool progressed = o.pos > 0 || i.pos > frame_pos_;
    frame_pos_ = i.pos;
    frame_out_ += o.pos;
    appended += o.pos;
    auto corrupt = [&](std::string_view why) {
      in_frame_ = false;
      return invalid_argument(path_.string() + ": corrupt frame at offset " +
                              std::to_string(offset_) + ": " + std::string(why));
    };
    if (ZSTD_isError(r)) return corrupt(ZSTD_getErrorName(r));
    if (frame_out_ > kLogMaxFrameContent) return corrupt("over the size limit");
    if (r == 0) {
      if (frame_pos_ != frame_.size()) return corrupt("trailing bytes");
      offset_ += frame_.size();
      in_frame_ = false;
      continue;
    }
    if (!progressed) return corrupt("truncated");
  }
  return appended;
}

Result<LogFileInfo> inspect_log_file(const std::filesystem::path& path) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) return errno_status(errno, "opening log " + path.string());
  auto scan = scan_pairs(fd.get(), path, true);
  if (!scan) return scan.error();
  return LogFileInfo{scan->totals, scan->data_bytes, scan->valid_end, scan->file_bytes};
}

Status decompress_log_file(const std::filesystem::path& path,
                           const std::function<Status(std::string_view)>& sink) {
  auto reader = LogFileReader::open(path);
  if (!reader) return reader.error();
  std::string piece;
  for (;;) {
    piece.clear();
    auto n = (*reader)->read(piece, kPiece);
    if (!n) return n.error();
    if (*n == 0) return ok_status();
    if (Status s = sink(piece); !s.ok()) return s;
  }
}

}  // namespace odd::daemon
