#include "daemon/log_capture.hpp"

#include <algorithm>
#include <array>
#include <boost/asio/steady_timer.hpp>
#include <system_error>
#include <utility>

#include "daemon/log_file.hpp"
#include "daemon/log_hub.hpp"
#include "engine/demux.hpp"
#include "proto/line_protocol.hpp"

namespace odd::daemon {

namespace {

constexpr std::string_view kMask = "***";
// Frames stay well under what a reader accepts (kLogMaxFrameContent) even when masking a
// 1 MiB line with a one-byte secret triples it.
constexpr std::size_t kMaxFrameBytes = std::size_t{4} << 20;

// Whether proto::classify_line could see more than text in `line`: a cheap test on its first
// bytes, so that ordinary output never reaches the parser.
bool may_be_protocol(std::string_view line) {
  if (line.size() >= 4 && line[0] == '[' && line[1] == 'v' && line[2] >= '0' && line[2] <= '3' &&
      line[3] == ']') {
    line.remove_prefix(4);
    if (line.starts_with(' ')) line.remove_prefix(1);
  }
  if (line.empty()) return false;
  switch (line[0]) {
    case 'P':
      return line.starts_with("PB> ") || line.starts_with("PASS ");
    case 'F':
      return line.starts_with("FAIL ");
    case 'S':
      return line.starts_with("SKIP ");
    case ':':
      return line.starts_with("::set-output name=");
    default:
      return false;
  }
}

std::vector<std::string> mask_units(const std::vector<std::string>& secrets) {
  std::vector<std::string> units;
  for (const std::string& secret : secrets) {
    std::string_view rest = secret;
    while (!rest.empty()) {
      const std::size_t newline = rest.find('\n');
      std::string_view line = rest.substr(0, newline);
      rest.remove_prefix(newline == std::string_view::npos ? rest.size() : newline + 1);
      if (line.ends_with('\r') && line.size() > 1) line.remove_suffix(1);
      if (!line.empty()) units.emplace_back(line);
    }
  }
  // Longest first, duplicates gone: fewer searches, and the order never changes the result.
  std::sort(units.begin(), units.end(),
            [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  units.erase(std::unique(units.begin(), units.end()), units.end());
  return units;
}

}  // namespace

struct LogCapture::Impl : std::enable_shared_from_this<LogCapture::Impl> {
  struct Stream {
    OutputStream id;
    engine::LineSplitter splitter;
    std::unique_ptr<LogFileWriter> file;
    std::filesystem::path path;
    std::string pending;  // masked bytes of the frame being filled
    LogTotals stored;     // raw totals of the lines appended to `pending` or written before
    std::uint64_t received = 0;
    std::uint64_t skip = 0;
    Status error;
  };

  // One of the last lines. It points into its stream's `pending` until that frame is closed;
  // then its text is copied out, so only the lines still in the tail are ever copied.
  struct TailEntry {
    OutputStream stream = OutputStream::kStdout;
    bool copied = true;
    std::size_t offset = 0;
    std::size_t size = 0;
    std::string text;
  };

  Impl(asio::any_io_executor executor, CaptureOptions opts, CaptureListener l, LogHub* h)
      : options(std::move(opts)),
        listener(std::move(l)),
        hub(h),
        timer(std::move(executor)),
        secrets(mask_units(options.secrets)),
        streams{Stream{OutputStream::kStdout, engine::LineSplitter(), {}, {}, {}, {}, 0, 0, {}},
                Stream{OutputStream::kStderr, engine::LineSplitter(), {}, {}, {}, {}, 0, 0, {}}},
        tail_ring(options.tail_lines) {
    options.frame_bytes = std::clamp<std::size_t>(options.frame_bytes, 1, kMaxFrameBytes);
    options.tail_line_bytes = std::max<std::size_t>(options.tail_line_bytes, 1);
    for (Stream& s : streams) s.pending.reserve(options.frame_bytes + 4096);
  }

  Stream& stream(OutputStream id) { return streams[id == OutputStream::kStdout ? 0 : 1]; }
  const Stream& stream(OutputStream id) const {
    return streams[id == OutputStream::kStdout ? 0 : 1];
  }

  void write(Stream& s, std::string_view bytes) {
    if (s.skip > 0) {
      const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(s.skip, bytes.size()));
      s.skip -= n;
      bytes.remove_prefix(n);
    }
    s.received += bytes.size();
    s.splitter.push(bytes, [this, &s](std::string_view line, bool complete) {
      on_line(s, line, complete, false);
    });
  }

  void on_line(Stream& s, std::string_view line, bool complete, bool last) {
    const std::size_t raw = line.size() + (complete ? 1 : 0);
    if (!s.pending.empty() && s.pending.size() + raw > options.frame_bytes) close_frame(s);
    const std::size_t start = s.pending.size();
    append_masked(s.pending, line);
    const std::size_t size = s.pending.size() - start;
    if (complete) s.pending.push_back('\n');
    s.stored.bytes += raw;
    // A piece of an overlong line is not a line of its own; its last piece ends it.
    if (complete || last) ++s.stored.lines;
    remember(s.id, start, size);
    if (s.id == OutputStream::kStdout) {
      const std::string_view masked(s.pending.data() + start, size);
      if (may_be_protocol(masked)) report(masked);
    }
    if (s.pending.size() >= options.frame_bytes) {
      close_frame(s);
    } else if (!timer_armed && !closed) {
      arm_timer();
    }
  }

  // Appends `line` with every occurrence of every secret replaced; occurrences that overlap or
  // touch are one "***", so no byte of any of them is stored.
  void append_masked(std::string& out, std::string_view line) {
    const auto hit = std::find_if(secrets.begin(), secrets.end(), [&](const std::string& secret) {
      return line.find(secret) != std::string_view::npos;
    });
    if (hit == secrets.end()) {
      out.append(line);
      return;
    }
    spans.clear();
    for (auto it = hit; it != secrets.end(); ++it) {
      for (std::size_t at = line.find(*it); at != std::string_view::npos;
           at = line.find(*it, at + 1)) {
        spans.emplace_back(at, at + it->size());
      }
    }
    std::sort(spans.begin(), spans.end());
    std::size_t done = 0;
    std::size_t i = 0;
    while (i < spans.size()) {
      const std::size_t begin = spans[i].first;
      std::size_t end = spans[i].second;
      for (++i; i < spans.size() && spans[i].first <= end; ++i)
        end = std::max(end, spans[i].second);
      out.append(line.substr(done, begin - done));
      out.append(kMask);
      done = end;
    }
    out.append(line.substr(done));
  }

  void report(std::string_view line) {
    proto::LineInfo info = proto::classify_line(line);
    switch (info.kind) {
      case proto::LineKind::kProgress:
        if (listener.on_progress) listener.on_progress(*info.progress);
        break;
      case proto::LineKind::kSuite:
        if (listener.on_suite) listener.on_suite(*info.suite);
        break;
      case proto::LineKind::kSetOutput:
        if (listener.on_output) listener.on_output(info.output->first, info.output->second);
        break;
      case proto::LineKind::kText:
        break;
    }
  }

  void remember(OutputStream id, std::size_t offset, std::size_t size) {
    if (tail_ring.empty()) return;
    TailEntry& e = tail_ring[tail_next];
    e.stream = id;
    e.copied = false;
    e.offset = offset;
    e.size = std::min(size, options.tail_line_bytes);
    tail_next = (tail_next + 1) % tail_ring.size();
    tail_count = std::min(tail_count + 1, tail_ring.size());
  }

  void close_frame(Stream& s) {
    if (s.pending.empty()) return;
    for (TailEntry& e : tail_ring) {
      if (!e.copied && e.stream == s.id) {
        e.text.assign(s.pending, e.offset, e.size);
        e.copied = true;
      }
    }
    if (s.file && s.error.ok()) {
      s.error = s.file->append(s.pending, s.stored);
      if (s.error.ok() && hub != nullptr) hub->notify(s.path);
    }
    s.pending.clear();
  }

  // Closes every frame; with nothing pending the timer has nothing left to do.
  void flush() {
    for (Stream& s : streams) close_frame(s);
    if (timer_armed) {
      timer.cancel();
      timer_armed = false;
    }
  }

  void arm_timer() {
    timer_armed = true;
    timer.expires_after(options.flush_interval);
    timer.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
      if (ec) return;
      if (auto self = weak.lock()) {
        self->timer_armed = false;
        for (Stream& s : self->streams) self->close_frame(s);
      }
    });
  }

  Status close() {
    if (closed) return first_error();
    closed = true;
    for (Stream& s : streams) {
      s.splitter.finish(
          [this, &s](std::string_view line, bool complete) { on_line(s, line, complete, true); });
      close_frame(s);
      if (s.file) {
        if (Status st = s.file->close(); !st.ok() && s.error.ok()) s.error = st;
      }
      if (hub != nullptr) hub->close(s.path);
    }
    timer.cancel();
    timer_armed = false;
    return first_error();
  }

  Status first_error() const {
    for (const Stream& s : streams) {
      if (!s.error.ok()) return s.error;
    }
    return ok_status();
  }

  CaptureOptions options;
  CaptureListener listener;
  LogHub* hub;
  asio::steady_timer timer;
  bool timer_armed = false;
  bool closed = false;
  std::vector<std::string> secrets;
  std::vector<std::pair<std::size_t, std::size_t>> spans;
  std::array<Stream, 2> streams;
  std::vector<TailEntry> tail_ring;
  std::size_t tail_next = 0;
  std::size_t tail_count = 0;
};

LogCapture::LogCapture(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

LogCapture::~LogCapture() {
  if (impl_) (void)impl_->close();
}

Result<std::unique_ptr<LogCapture>> LogCapture::open(asio::any_io_executor executor,
                                                     CaptureOptions options,
                                                     CaptureListener listener, LogHub* hub) {
  auto impl =
      std::make_shared<Impl>(std::move(executor), std::move(options), std::move(listener), hub);
  const CaptureOptions& o = impl->options;
  std::vector<std::filesystem::path> created;
  auto undo = [&created] {
    for (const auto& path : created) {
      std::error_code ec;
      std::filesystem::remove(path, ec);
    }
  };
  for (Impl::Stream& s : impl->streams) {
    const char* name = s.id == OutputStream::kStdout ? "-stdout-" : "-stderr-";
    std::string file_name = o.container_name;
    file_name.append(name).append(o.stamp).append(".log.zst");
    s.path = o.dir / file_name;
    bool fresh = !o.resume;
    Result<std::unique_ptr<LogFileWriter>> file = fresh
                                                      ? LogFileWriter::create(s.path, o.zstd_level)
                                                      : LogFileWriter::reopen(s.path, o.zstd_level);
    if (!fresh && !file && file.error().code() == Code::kNotFound) {
      fresh = true;
      file = LogFileWriter::create(s.path, o.zstd_level);
    }
    if (!file) {
      undo();
      return file.error().with_context("opening the log of " + o.container_name);
    }
    if (fresh) created.push_back(s.path);
    s.file = std::move(*file);
    s.stored = s.file->totals();
    s.received = s.stored.bytes;
    s.skip = s.stored.bytes;
  }
  if (hub != nullptr) {
    for (const Impl::Stream& s : impl->streams) hub->open(s.path);
  }
  return std::unique_ptr<LogCapture>(new LogCapture(std::move(impl)));
}

void LogCapture::write(OutputStream stream, std::string_view bytes) {
  if (impl_->closed) return;
  impl_->write(impl_->stream(stream), bytes);
}

void LogCapture::flush() { impl_->flush(); }

Status LogCapture::close() { return impl_->close(); }

const std::filesystem::path& LogCapture::stdout_path() const {
  return impl_->stream(OutputStream::kStdout).path;
}

const std::filesystem::path& LogCapture::stderr_path() const {
  return impl_->stream(OutputStream::kStderr).path;
}

std::vector<std::pair<OutputStream, std::string>> LogCapture::tail() const {
  std::vector<std::pair<OutputStream, std::string>> lines;
  const auto& ring = impl_->tail_ring;
  lines.reserve(impl_->tail_count);
  const std::size_t first =
      (impl_->tail_next + ring.size() - impl_->tail_count) % std::max<std::size_t>(ring.size(), 1);
  for (std::size_t k = 0; k < impl_->tail_count; ++k) {
    const auto& e = ring[(first + k) % ring.size()];
    if (e.copied) {
      lines.emplace_back(e.stream, e.text);
    } else {
      lines.emplace_back(e.stream, impl_->stream(e.stream).pending.substr(e.offset, e.size));
    }
  }
  return lines;
}

std::uint64_t LogCapture::bytes(OutputStream stream) const {
  return impl_->stream(stream).received;
}

}  // namespace odd::daemon
