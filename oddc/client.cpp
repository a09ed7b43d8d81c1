#include "oddc/client.hpp"

#include <sys/un.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <tuple>
#include <utility>

#include "proto/api_types.hpp"

namespace odd::oddc {

namespace http = boost::beast::http;
using boost::system::error_code;
using Socket = asio::local::stream_protocol::socket;
using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;
using namespace boost::asio::experimental::awaitable_operators;

namespace {

constexpr std::size_t kReadChunk = 64 * 1024;
constexpr std::size_t kMaxHeaderBytes = 64 * 1024;
constexpr std::size_t kMaxBodyBytes = 256u << 20;  // a whole summary of a large run fits
constexpr std::size_t kMaxLineBytes = 16u << 20;
constexpr std::size_t kShownErrorBytes = 200;

auto tuple_awaitable() { return asio::as_tuple(asio::use_awaitable); }

// Races `op` against a deadline; a lost race reports timed_out.
template <class... Ts>
asio::awaitable<std::tuple<error_code, Ts...>> until(
    asio::awaitable<std::tuple<error_code, Ts...>> op, TimePoint deadline) {
  if (deadline == TimePoint::max()) co_return co_await std::move(op);
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  auto result = co_await (std::move(op) || timer.async_wait(tuple_awaitable()));
  if (result.index() == 0) co_return std::get<0>(std::move(result));
  auto [ec] = std::get<1>(result);
  std::tuple<error_code, Ts...> out{};
  std::get<0>(out) = ec ? ec : error_code(asio::error::timed_out);
  co_return out;
}

std::string timeout_text(std::chrono::milliseconds timeout) {
  if (timeout.count() % 1000 != 0) return std::to_string(timeout.count()) + "ms";
  return std::to_string(timeout.count() / 1000) + "s";
}

// A failure after the connection was made.
Status exchange_error(std::string_view socket_path, const error_code& ec,
                      std::chrono::milliseconds timeout) {
  const std::string daemon = "the daemon on " + std::string(socket_path);
  if (ec == asio::error::timed_out) {
    return unavailable(daemon + " did not answer within " + timeout_text(timeout));
  }
  if (ec == asio::error::eof) return unavailable(daemon + " closed the connection");
  if (ec == asio::error::operation_aborted) {
    return unavailable("the connection to " + daemon + " was closed");
  }
  if (ec.category() == http::make_error_code(http::error::need_more).category()) {
    return unavailable(daemon + " sent a malformed HTTP response (" + ec.message() + ")");
  }
  return unavailable("lost the connection to " + daemon + ": " + ec.message());
}

std::string request_head(std::string_view method, std::string_view target, std::size_t body_size,
                         bool has_body) {
  std::string head;
  head.reserve(160 + target.size());
  head.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  head += "Host: oddd\r\nUser-Agent: oddc\r\nAccept: application/json, application/x-ndjson\r\n";
  if (has_body) head += "Content-Type: application/json\r\n";
  if (has_body || method == "POST" || method == "PUT") {
    head.append("Content-Length: ").append(std::to_string(body_size)).append("\r\n");
  }
  head += "\r\n";
  return head;
}

// One connection: the socket and what was read from it but not parsed yet.
struct Link {
  explicit Link(const asio::any_io_executor& executor) : socket(executor) {}
  Socket socket;
  boost::beast::flat_buffer buffer;
};

asio::awaitable<error_code> fill(Link& link, TimePoint deadline) {
  auto space = link.buffer.prepare(kReadChunk);
  auto [ec, n] = co_await until(link.socket.async_read_some(space, tuple_awaitable()), deadline);
  if (!ec) link.buffer.commit(n);
  co_return ec;
}

template <class Parser>
asio::awaitable<error_code> read_header(Link& link, Parser& parser, TimePoint deadline) {
  while (!parser.is_header_done()) {
    if (link.buffer.size() > 0) {
      error_code ec;
      const auto used = parser.put(link.buffer.data(), ec);
      link.buffer.consume(used);
      if (parser.is_header_done()) break;
      if (ec && ec != http::error::need_more) co_return ec;
    }
    if (auto ec = co_await fill(link, deadline)) co_return ec;
  }
  co_return error_code{};
}

// Feeds `parser` until the whole message is parsed (a string body).
template <class Parser>
asio::awaitable<error_code> read_rest(Link& link, Parser& parser, TimePoint deadline) {
  while (!parser.is_done()) {
    if (link.buffer.size() > 0) {
      error_code ec;
      const auto used = parser.put(link.buffer.data(), ec);
      link.buffer.consume(used);
      if (parser.is_done()) break;
      if (ec && ec != http::error::need_more) co_return ec;
      if (used > 0 && link.buffer.size() > 0) continue;
    }
    auto ec = co_await fill(link, deadline);
    if (ec == asio::error::eof && parser.got_some() && parser.need_eof()) {
      parser.put_eof(ec);
      co_return ec;
    }
    if (ec) co_return ec;
  }
  co_return error_code{};
}

class ResponseStreamImpl final : public ResponseStream {
 public:
  ResponseStreamImpl(std::unique_ptr<Link> link,
                     std::unique_ptr<http::response_parser<http::buffer_body>> parser,
                     std::string socket_path)
      : link_(std::move(link)), parser_(std::move(parser)), socket_path_(std::move(socket_path)) {}

  ~ResponseStreamImpl() override { close(); }

  unsigned status() const override { return parser_->get().result_int(); }

  asio::awaitable<Result<std::string>> read_some() override {
    std::string out(kReadChunk, '\0');
    for (;;) {
      if (closed_) co_return exchange_error(socket_path_, asio::error::operation_aborted, {});
      if (parser_->is_done()) co_return std::string();
      if (link_->buffer.size() > 0) {
        auto& body = parser_->get().body();
        body.data = out.data();
        body.size = out.size();
        error_code ec;
        const auto used = parser_->put(link_->buffer.data(), ec);
        link_->buffer.consume(used);
        const std::size_t produced = out.size() - body.size;
        body.data = nullptr;
        body.size = 0;
        if (ec == http::error::need_buffer || ec == http::error::need_more) ec = {};
        if (ec) {
          close();
          co_return exchange_error(socket_path_, ec, {});
        }
        if (produced > 0) {
          out.resize(produced);
          co_return out;
        }
        if (parser_->is_done()) co_return std::string();
        if (used > 0) continue;
      }
      auto ec = co_await fill(*link_, TimePoint::max());
      if (ec == asio::error::eof && parser_->need_eof()) {
        error_code ignored;
        parser_->put_eof(ignored);
        co_return std::string();
      }
      if (ec) {
        const bool closed_here = closed_;
        close();
        if (closed_here) ec = asio::error::operation_aborted;
        co_return exchange_error(socket_path_, ec, {});
      }
    }
  }

  asio::awaitable<Result<std::optional<std::string>>> read_line() override {
    std::size_t searched = 0;
    for (;;) {
      const auto newline = pending_.find('\n', searched);
      if (newline != std::string::npos) {
        std::string line = pending_.substr(0, newline);
        pending_.erase(0, newline + 1);
        co_return std::optional<std::string>(std::move(line));
      }
      if (pending_.size() > kMaxLineBytes) {
        close();
        co_return invalid_argument("the daemon on " + socket_path_ + " sent a line longer than " +
                                   std::to_string(kMaxLineBytes >> 20) + " MiB");
      }
      searched = pending_.size();
      auto piece = co_await read_some();
      if (!piece) co_return piece.error();
      if (piece->empty()) {
        if (pending_.empty()) co_return std::optional<std::string>();
        co_return std::optional<std::string>(std::exchange(pending_, std::string()));
      }
      pending_ += *piece;
    }
  }

  void close() override {
    closed_ = true;
    error_code ignored;
    link_->socket.close(ignored);
  }

 private:
  std::unique_ptr<Link> link_;
  std::unique_ptr<http::response_parser<http::buffer_body>> parser_;
  std::string socket_path_;
  std::string pending_;
  bool closed_ = false;
};

// Connects and sends one request, all before `deadline`.
asio::awaitable<Result<std::unique_ptr<Link>>> open_and_send(
    asio::any_io_executor executor, const std::string& socket_path, std::string_view method,
    std::string_view target, std::string_view body, TimePoint deadline,
    std::chrono::milliseconds timeout) {
  if (socket_path.size() >= sizeof(sockaddr_un::sun_path)) {
    co_return connect_error(socket_path, asio::error::name_too_long);
  }
  auto link = std::make_unique<Link>(executor);
  const asio::local::stream_protocol::endpoint endpoint(socket_path);
  auto [ec] = co_await until(link->socket.async_connect(endpoint, tuple_awaitable()), deadline);
  if (ec == asio::error::timed_out) co_return exchange_error(socket_path, ec, timeout);
  if (ec) co_return connect_error(socket_path, ec);
  std::string data = request_head(method, target, body.size(), !body.empty());
  data += body;
  auto [write_ec, n] = co_await until(
      asio::async_write(link->socket, asio::buffer(data), tuple_awaitable()), deadline);
  // A daemon that refuses the request early may close before taking all of it; its answer,
  // if any, is still read.
  if (write_ec && write_ec != asio::error::broken_pipe &&
      write_ec != asio::error::connection_reset) {
    co_return exchange_error(socket_path, write_ec, timeout);
  }
  co_return link;
}

}  // namespace

Client::Client(asio::any_io_executor executor, std::string socket_path,
               std::chrono::milliseconds request_timeout)
    : executor_(std::move(executor)),
      socket_path_(std::move(socket_path)),
      request_timeout_(request_timeout) {}

asio::awaitable<Result<std::string>> Client::call(std::string method, std::string target,
                                                  std::string body) {
  const TimePoint deadline = SteadyClock::now() + request_timeout_;
  auto link = co_await open_and_send(executor_, socket_path_, method, target, body, deadline,
                                     request_timeout_);
  if (!link) co_return link.error();
  http::response_parser<http::string_body> parser;
  parser.header_limit(kMaxHeaderBytes);
  parser.body_limit(kMaxBodyBytes);
  parser.eager(true);
  if (auto ec = co_await read_rest(**link, parser, deadline)) {
    if (ec != asio::error::eof || !parser.is_done()) {
      co_return exchange_error(socket_path_, ec, request_timeout_);
    }
  }
  auto& response = parser.get();
  const unsigned status = response.result_int();
  if (status < 200 || status > 299) co_return response_error(status, response.body());
  co_return std::move(response.body());
}

asio::awaitable<Result<std::unique_ptr<ResponseStream>>> Client::stream(std::string method,
                                                                        std::string target,
                                                                        std::string body) {
  const TimePoint deadline = SteadyClock::now() + request_timeout_;
  auto link = co_await open_and_send(executor_, socket_path_, method, target, body, deadline,
                                     request_timeout_);
  if (!link) co_return link.error();
  auto parser = std::make_unique<http::response_parser<http::buffer_body>>();
  parser->header_limit(kMaxHeaderBytes);
  parser->body_limit(boost::none);
  if (auto ec = co_await read_header(**link, *parser, deadline)) {
    co_return exchange_error(socket_path_, ec, request_timeout_);
  }
  const unsigned status = parser->get().result_int();
  auto stream =
      std::make_unique<ResponseStreamImpl>(std::move(*link), std::move(parser), socket_path_);
  if (status >= 200 && status <= 299) co_return std::unique_ptr<ResponseStream>(std::move(stream));
  // An error body is small; it is read with the request's deadline.
  std::string error_body;
  auto reader = [&]() -> asio::awaitable<std::tuple<error_code>> {
    for (;;) {
      auto piece = co_await stream->read_some();
      if (!piece) co_return std::make_tuple(error_code(asio::error::connection_reset));
      if (piece->empty()) co_return std::make_tuple(error_code());
      error_body += *piece;
      if (error_body.size() > kMaxHeaderBytes) co_return std::make_tuple(error_code());
    }
  };
  auto [ec] = co_await until(reader(), deadline);
  if (ec == asio::error::timed_out) co_return exchange_error(socket_path_, ec, request_timeout_);
  co_return response_error(status, error_body);
}

std::string choose_socket(const std::optional<std::string>& flag,
                          const std::optional<std::string>& env_odd_socket) {
  if (flag) return *flag;
  if (env_odd_socket && !env_odd_socket->empty()) return *env_odd_socket;
  return std::string(kDefaultSocket);
}

Status connect_error(std::string_view socket_path, const error_code& ec) {
  const std::string path(socket_path);
  if (ec == asio::error::connection_refused ||
      ec == boost::system::errc::no_such_file_or_directory) {
    return unavailable("no daemon running on " + path);
  }
  if (ec == asio::error::access_denied || ec == boost::system::errc::permission_denied) {
    return unavailable("cannot connect to " + path +
                       ": Permission denied (is your user in group odd?)");
  }
  if (ec == asio::error::name_too_long) {
    return unavailable("cannot connect to " + path + ": the path is longer than a socket allows (" +
                       std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes)");
  }
  return unavailable("cannot connect to " + path + ": " + ec.message());
}

Status response_error(unsigned http_status, std::string_view body) {
  auto parsed = proto::Json::parse(body, nullptr, false);
  if (!parsed.is_discarded() && parsed.is_object() && parsed.contains("error")) {
    if (auto error = proto::decode_api_error(parsed); error.has_value()) {
      return error->to_status();
    }
  }
  Code code = Code::kInternal;
  if (http_status == 400) code = Code::kInvalidArgument;
  if (http_status == 404) code = Code::kNotFound;
  if (http_status == 503) code = Code::kUnavailable;
  std::string text(body.substr(0, kShownErrorBytes));
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  for (char& c : text) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::string message = "the daemon answered HTTP " + std::to_string(http_status);
  if (!text.empty()) message.append(": ").append(text);
  return Status(code, std::move(message));
}

std::string url_encode(std::string_view text) {
  constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    const auto u = static_cast<unsigned char>(c);
    if ((u >= 'A' && u <= 'Z') || (u >= 'a' && u <= 'z') || (u >= '0' && u <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 0xf];
    }
  }
  return out;
}

}  // namespace odd::oddc
