#pragma once
// FakeDaemon: a canned control socket for oddc's tests. It listens on a Unix socket in a fresh
// directory under /tmp and serves each connection with a coroutine on its own thread (the
// client under test runs its own io_context on the test's thread). The test's handler reads the
// parsed request and writes raw HTTP with the helpers below; every request is recorded.
// requests() and the flags are safe from the test's thread; the handler runs on the server's.

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace odd::oddc::testing {

namespace asio = boost::asio;
using Socket = asio::local::stream_protocol::socket;

struct Request {
  std::string method;
  std::string target;
  std::string body;
};

inline std::string http_response(unsigned status, const std::string& body,
                                 const std::string& content_type = "application/json") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: " + content_type +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" +
         body;
}

inline std::string chunked_head(const std::string& content_type = "application/x-ndjson") {
  return "HTTP/1.1 200 OK\r\nContent-Type: " + content_type +
         "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
}

inline std::string chunk(const std::string& data) {
  char size[32];
  std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  return size + data + "\r\n";
}

inline const std::string kLastChunk = "0\r\n\r\n";

inline std::string error_body(const std::string& code, const std::string& message) {
  return R"({"error": {"code": ")" + code + R"(", "message": ")" + message +
         R"(", "path": null}})" + "\n";
}

inline asio::awaitable<void> send(Socket& socket, std::string data) {
  co_await asio::async_write(socket, asio::buffer(data), asio::as_tuple(asio::use_awaitable));
}

// Waits until the peer closes the connection (or it breaks).
inline asio::awaitable<void> wait_closed(Socket& socket) {
  char byte = 0;
  for (;;) {
    auto [ec, n] = co_await socket.async_read_some(asio::buffer(&byte, 1),
                                                   asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
  }
}

class FakeDaemon {
 public:
  using Handler = std::function<asio::awaitable<void>(Request, Socket&)>;

  explicit FakeDaemon(Handler handler) : handler_(std::move(handler)), acceptor_(io_) {
    char dir[] = "/tmp/oddc-XXXXXX";
    if (::mkdtemp(dir) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = dir;
    path_ = dir_ + "/s";
    const asio::local::stream_protocol::endpoint endpoint(path_);
    acceptor_.open(endpoint.protocol());
    acceptor_.bind(endpoint);
    acceptor_.listen();
    asio::co_spawn(io_, accept(), asio::detached);
    thread_ = std::thread([this] { io_.run(); });
  }

  ~FakeDaemon() {
    asio::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
      io_.stop();
    });
    thread_.join();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  const std::string& socket_path() const { return path_; }
  const std::string& dir() const { return dir_; }

  std::vector<Request> requests() const {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  bool saw(const std::string& method, const std::string& target) const {
    for (const auto& r : requests()) {
      if (r.method == method && r.target == target) return true;
    }
    return false;
  }

  // For handlers: polls `done` on the server's thread until it holds.
  asio::awaitable<void> wait_until(std::function<bool()> done) {
    asio::steady_timer timer(io_);
    while (!done()) {
      timer.expires_after(std::chrono::milliseconds(5));
      co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  // Set by handlers, read by tests.
  std::atomic<int> counter{0};
  std::atomic<bool> client_left{false};

 private:
  asio::awaitable<void> accept() {
    for (;;) {
      auto [ec, socket] = co_await acceptor_.async_accept(asio::as_tuple(asio::use_awaitable));
      if (ec) co_return;
      asio::co_spawn(io_, serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> serve(Socket socket) {
    std::string buffer;
    auto [ec, n] = co_await asio::async_read_until(socket, asio::dynamic_buffer(buffer), "\r\n\r\n",
                                                   asio::as_tuple(asio::use_awaitable));
    if (ec) co_return;
    Request request;
    const std::string head = buffer.substr(0, n);
    buffer.erase(0, n);
    const auto first_space = head.find(' ');
    const auto second_space = head.find(' ', first_space + 1);
    request.method = head.substr(0, first_space);
    request.target = head.substr(first_space + 1, second_space - first_space - 1);
    std::size_t length = 0;
    if (const auto at = head.find("Content-Length: "); at != std::string::npos) {
      length = std::stoul(head.substr(at + 16));
    }
    if (buffer.size() < length) {
      auto [read_ec, m] = co_await asio::async_read(socket, asio::dynamic_buffer(buffer),
                                                    asio::transfer_exactly(length - buffer.size()),
                                                    asio::as_tuple(asio::use_awaitable));
      if (read_ec) co_return;
    }
    request.body = buffer.substr(0, length);
    {
      std::lock_guard lock(mutex_);
      requests_.push_back(request);
    }
    co_await handler_(std::move(request), socket);
  }

  Handler handler_;
  asio::io_context io_;
  asio::local::stream_protocol::acceptor acceptor_;
  std::string dir_;
  std::string path_;
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<Request> requests_;
};

}  // namespace odd::oddc::testing
