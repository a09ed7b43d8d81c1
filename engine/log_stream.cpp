#include "engine/log_stream.hpp"

#include <memory>

namespace odd::engine {

namespace {

// Large reads keep a 500 MB log to a few thousand wake-ups.
constexpr std::size_t kBufferSize = 256 * 1024;

template <class Source>
asio::awaitable<Status> drain(Source& source, bool tty, const OutputSink& sink) {
  Demuxer demuxer(tty);
  auto buffer = std::make_unique<char[]>(kBufferSize);
  for (;;) {
    auto n = co_await source.read_some(asio::buffer(buffer.get(), kBufferSize));
    if (!n) co_return n.error();
    if (*n == 0) break;
    auto status = demuxer.feed(std::string_view(buffer.get(), *n), sink);
    if (!status.ok()) co_return status;
  }
  if (!demuxer.at_frame_boundary()) {
    co_return unavailable("output stream ended inside a frame after " +
                          std::to_string(demuxer.offset()) + " bytes");
  }
  co_return ok_status();
}

}  // namespace

asio::awaitable<Status> drain_output(BodyReader& reader, bool tty, const OutputSink& sink) {
  co_return co_await drain(reader, tty, sink);
}

asio::awaitable<Status> drain_output(RawStream& stream, bool tty, const OutputSink& sink) {
  co_return co_await drain(stream, tty, sink);
}

}  // namespace odd::engine
