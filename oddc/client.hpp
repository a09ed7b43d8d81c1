#pragma once
// Client: oddc's side of the control socket (DESIGN §8): HTTP/1.1 over a Unix socket, one
// connection per request (the daemon closes streams when they end; oddc makes few calls).
// Ordinary calls read the whole response; streams hand out the body piece by piece or line by
// line. Use from one strand. Closing a stream aborts its pending read, which is how a signal
// handler ends a wait. Beast is instantiated only in client.cpp.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace odd::oddc {

namespace asio = boost::asio;

inline constexpr std::string_view kDefaultSocket = "/run/odd/oddd.sock";

// A response body being received. Not copyable; destroying it closes its connection.
class ResponseStream {
 public:
  virtual ~ResponseStream() = default;
  virtual unsigned status() const = 0;
  // The next bytes of the body (chunked encoding removed); empty at its end. unavailable when
  // the connection breaks or is closed first.
  virtual asio::awaitable<Result<std::string>> read_some() = 0;
  // The next line without its "\n"; std::nullopt at the end of the body (a last line without
  // "\n" is still returned). invalid_argument for a line over 16 MiB; unavailable as read_some.
  virtual asio::awaitable<Result<std::optional<std::string>>> read_line() = 0;
  // Closes the connection, aborting a pending read. Idempotent; safe from another coroutine.
  virtual void close() = 0;
};

class Client {
 public:
  // `request_timeout` bounds an ordinary call and the wait for a stream's response headers.
  Client(asio::any_io_executor executor, std::string socket_path,
         std::chrono::milliseconds request_timeout = std::chrono::seconds(60));

  const std::string& socket_path() const { return socket_path_; }

  // Sends a request (a non-empty body is sent as application/json) and reads the whole response.
  // The body of a 2xx answer is returned. Errors: unavailable (see connect_error; also a lost
  // connection or no answer within the timeout), or the daemon's error body as a Status
  // (response_error).
  asio::awaitable<Result<std::string>> call(std::string method, std::string target,
                                            std::string body = "");

  // As call(), returning once the headers of a 2xx answer arrived; its body is read through the
  // stream, with no deadline. A non-2xx answer's body is read and returned as its error.
  asio::awaitable<Result<std::unique_ptr<ResponseStream>>> stream(std::string method,
                                                                  std::string target,
                                                                  std::string body = "");

 private:
  asio::any_io_executor executor_;
  std::string socket_path_;
  std::chrono::milliseconds request_timeout_;
};

// The socket oddc talks to: `flag` (--socket) when set, then $ODD_SOCKET when set and not empty,
// then kDefaultSocket.
std::string choose_socket(const std::optional<std::string>& flag,
                          const std::optional<std::string>& env_odd_socket);

// A failure to connect to `socket_path`, always unavailable (exit 3): ENOENT and ECONNREFUSED
// "no daemon running on PATH"; EACCES "cannot connect to PATH: Permission denied (is your user
// in group odd?)"; anything else "cannot connect to PATH: <reason>".
Status connect_error(std::string_view socket_path, const boost::system::error_code& ec);

// A non-2xx answer as a Status: the {"error": {"code", "message", "path"}} body's code and
// message; a body that is not one gets the code for the HTTP status (400 invalid_argument, 404
// not_found, 503 unavailable, otherwise internal) and "the daemon answered HTTP <n>: <text>".
Status response_error(unsigned http_status, std::string_view body);

// `text` percent-encoded for one path segment or query value (RFC 3986 unreserved kept).
std::string url_encode(std::string_view text);

}  // namespace odd::oddc
