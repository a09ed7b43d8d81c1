#pragma once
// HttpClient: HTTP/1.1 to dockerd over Connections from a Dialer, with keep-alive reuse of at most
// `max_connections` pooled connections for short calls. Long-lived responses (stream(), hijack())
// always get a connection of their own, so a full pool can never block them.
// Not thread-safe: use from one strand. Every call honours cancellation of the awaiting coroutine.
// Beast is instantiated only in http_client.cpp; this header keeps it out.

#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "engine/connection.hpp"

namespace odd::engine {

using Millis = std::chrono::milliseconds;

struct HttpRequest {
  std::string method = "GET";  // "GET", "POST", "PUT", "DELETE", "HEAD"
  std::string target;          // "/v1.41/containers/create?name=x", already encoded
  std::string body;
  std::string content_type;  // set when body is non-empty, e.g. "application/json"
  std::vector<std::pair<std::string, std::string>> headers;
};

struct HttpResponse {
  unsigned status = 0;
  std::string content_type;
  std::string body;
};

// Produces the next piece of a streamed request body into `buffer`; 0 means the body is complete.
using BodySource = std::function<asio::awaitable<Result<std::size_t>>(asio::mutable_buffer)>;

struct HttpClientOptions {
  std::size_t max_connections = 8;         // pooled connections for short calls
  std::size_t max_body_bytes = 64u << 20;  // largest body request() buffers
  Millis connect_timeout{5000};
  Millis idle_timeout{30000};  // pooled connections unused for this long are not reused
  // Also close them when idle_timeout passes, with a timer, rather than when a call next finds
  // them stale. The timer is work on the executor: a context's run() waits for it.
  bool close_idle = false;
};

// The body of a streamed response, read piece by piece on its own connection.
class BodyReader {
 public:
  virtual ~BodyReader() = default;
  virtual unsigned status() const = 0;
  virtual const std::string& content_type() const = 0;
  // Reads the next piece of the body (chunked encoding removed); 0 at the end of the body.
  // unavailable when the connection breaks before the body ends.
  virtual asio::awaitable<Result<std::size_t>> read_some(asio::mutable_buffer buffer) = 0;
  // Aborts the response and closes its connection. Idempotent.
  virtual void close() = 0;
};

// A hijacked connection (attach, exec start): raw bytes both ways after the HTTP exchange.
class RawStream {
 public:
  virtual ~RawStream() = default;
  // Reads the next bytes; 0 at the end of the stream.
  virtual asio::awaitable<Result<std::size_t>> read_some(asio::mutable_buffer buffer) = 0;
  virtual asio::awaitable<Status> write(asio::const_buffer buffer) = 0;
  // Signals end of input (stdin EOF) while output can still be read.
  virtual void close_write() = 0;
  virtual void close() = 0;
};

class HttpClient {
 public:
  HttpClient(asio::any_io_executor executor, std::unique_ptr<Dialer> dialer,
             HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends `request` and reads the whole response, all within `timeout`, on a pooled connection.
  // Any HTTP status is a value here; only transport failures are errors: unavailable
  // (connect or I/O failure, naming the target), deadline_exceeded, cancelled, or
  // failed_precondition when the body exceeds max_body_bytes.
  asio::awaitable<Result<HttpResponse>> request(HttpRequest request, Millis timeout);

  // As request(), with the body streamed from `source` in chunked transfer encoding.
  // `timeout` bounds the exchange from connect to the end of the response.
  asio::awaitable<Result<HttpResponse>> request_streamed(HttpRequest request, BodySource source,
                                                         Millis timeout);

  // Sends `request` on a new connection and returns once the response headers arrive (within
  // `header_timeout`); the body is read through the returned reader with no deadline of its own.
  asio::awaitable<Result<std::unique_ptr<BodyReader>>> stream(HttpRequest request,
                                                              Millis header_timeout);

  // As stream(), with the request body streamed from `source` in chunked transfer encoding on the
  // new connection; `timeout` bounds sending the body and receiving the response headers. When
  // dockerd answers before taking the whole body (an early error), that answer is returned.
  asio::awaitable<Result<std::unique_ptr<BodyReader>>> upload(HttpRequest request,
                                                              BodySource source, Millis timeout);

  // Sends `request` with "Connection: Upgrade, Upgrade: tcp" on a new connection. On a 101 (or
  // 200) response `stream` carries the raw bytes that follow; on any other status `stream` is
  // null and `response` holds the status and the whole (error) body.
  struct Hijacked {
    HttpResponse response;
    std::unique_ptr<RawStream> stream;
  };
  asio::awaitable<Result<Hijacked>> hijack(HttpRequest request, Millis header_timeout);

  const std::string& target_name() const;
  // Connections opened so far (pooled and dedicated); for tests of reuse.
  std::size_t connections_opened() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace odd::engine
