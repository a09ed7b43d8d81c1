#pragma once
// Connection: a byte stream to dockerd, whatever carries it (Unix socket, TCP, or any Asio stream
// such as an SSH channel running `docker system dial-stdio`). Dialer opens new ones.
// Both are used from one strand; every awaitable honours Asio cancellation of the awaiting
// coroutine, and a connection whose operation was cancelled is closed, never reused.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/system/error_code.hpp>
#include <memory>
#include <string>
#include <tuple>

#include "common/status.hpp"
#include "engine/endpoint.hpp"

namespace odd::engine {

namespace asio = boost::asio;
using boost::system::error_code;

class Connection {
 public:
  virtual ~Connection() = default;

  // Reads at least one byte; asio::error::eof at the end of the stream.
  virtual asio::awaitable<std::tuple<error_code, std::size_t>> read_some(
      asio::mutable_buffer buffer) = 0;
  // Writes the whole buffer.
  virtual asio::awaitable<std::tuple<error_code, std::size_t>> write(asio::const_buffer buffer) = 0;
  // Ends the sending direction (end of stdin on a hijacked stream); reads go on.
  virtual void shutdown_send() = 0;
  // Closes both directions and aborts pending operations. Idempotent.
  virtual void close() = 0;
  virtual bool is_open() const = 0;
};

// Adapts any Asio AsyncStream that has close() (a socket or a channel that behaves like one).
template <class AsyncStream>
class StreamConnection final : public Connection {
 public:
  explicit StreamConnection(AsyncStream stream) : stream_(std::move(stream)) {}

  asio::awaitable<std::tuple<error_code, std::size_t>> read_some(
      asio::mutable_buffer buffer) override {
    co_return co_await stream_.async_read_some(buffer, asio::as_tuple(asio::use_awaitable));
  }
  asio::awaitable<std::tuple<error_code, std::size_t>> write(asio::const_buffer buffer) override {
    co_return co_await asio::async_write(stream_, buffer, asio::as_tuple(asio::use_awaitable));
  }
  void shutdown_send() override {
    error_code ignored;
    if constexpr (requires { stream_.shutdown(AsyncStream::shutdown_send, ignored); }) {
      stream_.shutdown(AsyncStream::shutdown_send, ignored);
    } else if constexpr (requires { stream_.shutdown_send(); }) {
      stream_.shutdown_send();
    }
  }
  void close() override {
    error_code ignored;
    if constexpr (requires { stream_.close(ignored); }) {
      stream_.close(ignored);
    } else {
      stream_.close();
    }
  }
  bool is_open() const override { return stream_.is_open(); }

  AsyncStream& stream() { return stream_; }

 private:
  AsyncStream stream_;
};

class Dialer {
 public:
  virtual ~Dialer() = default;
  // Opens a new connection. unavailable (naming the target) when nothing listens there,
  // permission_denied when the socket refuses us.
  virtual asio::awaitable<Result<std::unique_ptr<Connection>>> dial() = 0;
  // How errors name the target: "unix:///var/run/docker.sock".
  virtual std::string describe() const = 0;
};

// A dialer for a Unix-socket or TCP endpoint (TCP_NODELAY set).
std::unique_ptr<Dialer> make_dialer(asio::any_io_executor executor, Endpoint endpoint);

}  // namespace odd::engine
