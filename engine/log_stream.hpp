#pragma once
// Draining a container's output (an attach, exec or /logs stream) into one sink, demultiplexed
// unless the container has a TTY (the caller passes the Tty setting from inspect, never a guess).
// Used from the strand that owns the stream; the sink runs on it too.

#include <boost/asio/awaitable.hpp>
#include <functional>
#include <string_view>

#include "common/status.hpp"
#include "engine/demux.hpp"
#include "engine/http_client.hpp"

namespace odd::engine {

// Receives each piece of output as it arrives; pieces point into a buffer reused afterwards.
using OutputSink = std::function<void(StreamId, std::string_view)>;

// Reads until the end of the stream. invalid_argument when the stream is not well-formed,
// unavailable when it breaks or ends inside a frame; cancelled when the caller is cancelled.
asio::awaitable<Status> drain_output(BodyReader& reader, bool tty, const OutputSink& sink);
asio::awaitable<Status> drain_output(RawStream& stream, bool tty, const OutputSink& sink);

}  // namespace odd::engine
