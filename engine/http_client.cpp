#include "engine/http_client.hpp"

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <charconv>
#include <cstring>
#include <deque>
#include <optional>
#include <variant>

#include "engine/errors.hpp"

namespace odd::engine {

namespace http = boost::beast::http;
using namespace boost::asio::experimental::awaitable_operators;
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

namespace {

constexpr std::size_t kReadChunk = 256 * 1024;
constexpr std::size_t kMaxHeaderBytes = 64 * 1024;

TimePoint deadline_after(Millis timeout) {
  if (timeout <= Millis::zero()) return TimePoint::max();
  return Clock::now() + timeout;
}

// Races `op` against a timer; a lost race reports timed_out, a parent cancellation
// operation_aborted. Without a deadline the operation runs alone.
template <class... Ts>
asio::awaitable<std::tuple<error_code, Ts...>> until(
    asio::awaitable<std::tuple<error_code, Ts...>> op, TimePoint deadline) {
  if (deadline == TimePoint::max()) co_return co_await std::move(op);
  asio::steady_timer timer(co_await asio::this_coro::executor, deadline);
  auto result = co_await (std::move(op) || timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (result.index() == 0) co_return std::get<0>(std::move(result));
  auto [ec] = std::get<1>(result);
  std::tuple<error_code, Ts...> out{};
  std::get<0>(out) = ec ? ec : error_code(asio::error::timed_out);
  co_return out;
}

asio::awaitable<std::tuple<error_code, Result<std::unique_ptr<Connection>>>> dial_tuple(
    Dialer& dialer) {
  auto conn = co_await dialer.dial();
  co_return std::make_tuple(error_code{}, std::move(conn));
}

std::string serialize_head(const HttpRequest& request, bool chunked, std::string_view extra) {
  std::string head;
  head.reserve(256 + request.target.size());
  head += request.method;
  head += ' ';
  head += request.target;
  head += " HTTP/1.1\r\nHost: docker\r\nUser-Agent: odd/0.1\r\n";
  if (!request.content_type.empty()) {
    head += "Content-Type: ";
    head += request.content_type;
    head += "\r\n";
  }
  if (chunked) {
    head += "Transfer-Encoding: chunked\r\n";
  } else if (!request.body.empty() || request.method == "POST" || request.method == "PUT") {
    head += "Content-Length: ";
    head += std::to_string(request.body.size());
    head += "\r\n";
  }
  for (const auto& [name, value] : request.headers) {
    head += name;
    head += ": ";
    head += value;
    head += "\r\n";
  }
  head += extra;
  head += "\r\n";
  return head;
}

// One open connection plus the bytes read from it that no response has consumed yet.
struct Link {
  std::unique_ptr<Connection> conn;
  boost::beast::flat_buffer buffer;
  TimePoint idle_since{};
  bool reused = false;
};

// Reads from `link` into its buffer until `done()`; feeding the parser is the caller's.
// Returns the transport error, or eof when the peer closed.
asio::awaitable<error_code> fill(Link& link, TimePoint deadline) {
  auto space = link.buffer.prepare(kReadChunk);
  auto [ec, n] = co_await until(link.conn->read_some(space), deadline);
  if (!ec) link.buffer.commit(n);
  co_return ec;
}

template <class Parser>
asio::awaitable<error_code> read_header(Link& link, Parser& parser, TimePoint deadline) {
  while (!parser.is_header_done()) {
    if (link.buffer.size() > 0) {
      error_code ec;
      auto used = parser.put(link.buffer.data(), ec);
      link.buffer.consume(used);
      if (parser.is_header_done()) break;
      if (ec && ec != http::error::need_more) co_return ec;
    }
    if (auto ec = co_await fill(link, deadline)) co_return ec;
  }
  co_return error_code{};
}

// Feeds `parser` from `link` until the whole message is parsed.
template <class Parser>
asio::awaitable<error_code> read_rest(Link& link, Parser& parser, TimePoint deadline) {
  while (!parser.is_done()) {
    if (link.buffer.size() > 0) {
      error_code ec;
      auto used = parser.put(link.buffer.data(), ec);
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

Status protocol_error(const error_code& ec, std::string_view target, std::string_view doing) {
  if (ec.category() == http::make_error_code(http::error::need_more).category()) {
    return unavailable(std::string(doing) + ": " + std::string(target) +
                       ": malformed HTTP response (" + ec.message() + ")");
  }
  return status_from_transport(ec, target, doing);
}

std::string content_type_of(const http::response_header<>& header) {
  auto it = header.find(http::field::content_type);
  return it == header.end() ? std::string() : std::string(it->value());
}

class BodyReaderImpl final : public BodyReader {
 public:
  BodyReaderImpl(Link link, std::unique_ptr<http::response_parser<http::buffer_body>> parser,
                 std::string target)
      : link_(std::move(link)), parser_(std::move(parser)), target_(std::move(target)) {
    content_type_ = content_type_of(parser_->get().base());
  }

  unsigned status() const override { return parser_->get().result_int(); }
  const std::string& content_type() const override { return content_type_; }

  asio::awaitable<Result<std::size_t>> read_some(asio::mutable_buffer out) override {
    if (out.size() == 0) co_return std::size_t{0};
    for (;;) {
      if (!link_.conn) co_return unavailable(target_ + ": response stream closed");
      if (parser_->is_done()) co_return std::size_t{0};
      if (link_.buffer.size() > 0) {
        auto& body = parser_->get().body();
        body.data = out.data();
        body.size = out.size();
        error_code ec;
        auto used = parser_->put(link_.buffer.data(), ec);
        link_.buffer.consume(used);
        std::size_t produced = out.size() - body.size;
        body.data = nullptr;
        body.size = 0;
        if (ec == http::error::need_buffer || ec == http::error::need_more) ec = {};
        if (ec) {
          close();
          co_return protocol_error(ec, target_, "reading response body");
        }
        if (produced > 0) co_return produced;
        if (parser_->is_done()) co_return std::size_t{0};
        if (used > 0) continue;
      }
      auto ec = co_await fill(link_, TimePoint::max());
      if (ec == asio::error::eof && parser_->need_eof()) {
        error_code eof_ec;
        parser_->put_eof(eof_ec);
        co_return std::size_t{0};
      }
      if (ec) {
        close();
        if (ec == asio::error::eof) {
          co_return unavailable(target_ + ": connection closed before the response ended");
        }
        co_return status_from_transport(ec, target_, "reading response body");
      }
    }
  }

  void close() override {
    if (link_.conn) link_.conn->close();
    link_.conn.reset();
  }

 private:
  Link link_;
  std::unique_ptr<http::response_parser<http::buffer_body>> parser_;
  std::string target_;
  std::string content_type_;
};

class RawStreamImpl final : public RawStream {
 public:
  RawStreamImpl(Link link, std::string target)
      : link_(std::move(link)), target_(std::move(target)) {}

  asio::awaitable<Result<std::size_t>> read_some(asio::mutable_buffer out) override {
    if (out.size() == 0) co_return std::size_t{0};
    if (link_.buffer.size() > 0) {
      auto n = asio::buffer_copy(out, link_.buffer.data());
      link_.buffer.consume(n);
      co_return n;
    }
    if (!link_.conn) co_return std::size_t{0};
    auto [ec, n] = co_await link_.conn->read_some(out);
    if (ec == asio::error::eof) co_return std::size_t{0};
    if (ec) co_return status_from_transport(ec, target_, "reading attached stream");
    co_return n;
  }

  asio::awaitable<Status> write(asio::const_buffer data) override {
    if (!link_.conn) co_return unavailable(target_ + ": attached stream closed");
    auto [ec, n] = co_await link_.conn->write(data);
    if (ec) co_return status_from_transport(ec, target_, "writing attached stream");
    co_return ok_status();
  }

  void close_write() override {
    if (link_.conn) link_.conn->shutdown_send();
  }

  void close() override {
    if (link_.conn) link_.conn->close();
    link_.conn.reset();
  }

 private:
  Link link_;
  std::string target_;
};

}  // namespace

struct HttpClient::Impl {
  Impl(asio::any_io_executor ex, std::unique_ptr<Dialer> d, HttpClientOptions o)
      : executor(std::move(ex)),
        dialer(std::move(d)),
        options(o),
        target(dialer->describe()),
        pool_changed(executor, TimePoint::max()),
        reaper(executor) {}

  asio::any_io_executor executor;
  std::unique_ptr<Dialer> dialer;
  HttpClientOptions options;
  std::string target;
  std::deque<Link> idle;
  std::size_t in_use = 0;
  std::size_t opened = 0;
  asio::steady_timer pool_changed;  // cancel_one() wakes a coroutine waiting for a free slot
  asio::steady_timer reaper;        // with close_idle: due when the oldest idle link expires
  bool reaping = false;

  asio::awaitable<Result<Link>> dial(TimePoint deadline) {
    auto connect_deadline = std::min(deadline, deadline_after(options.connect_timeout));
    auto [ec, conn] = co_await until(dial_tuple(*dialer), connect_deadline);
    if (ec == asio::error::timed_out) {
      co_return deadline_exceeded("connecting to " + target + ": timed out");
    }
    if (ec) co_return status_from_transport(ec, target, "connecting");
    if (!conn) co_return conn.error();
    ++opened;
    Link link;
    link.conn = std::move(*conn);
    co_return link;
  }

  // A pooled link, waiting for a free slot when max_connections are in use.
  asio::awaitable<Result<Link>> acquire(TimePoint deadline) {
    for (;;) {
      auto now = Clock::now();
      while (!idle.empty()) {
        Link link = std::move(idle.back());
        idle.pop_back();
        if (link.conn->is_open() && now - link.idle_since < options.idle_timeout) {
          ++in_use;
          link.reused = true;
          co_return link;
        }
        link.conn->close();
      }
      if (in_use < options.max_connections) {
        ++in_use;
        // Released on failure, and when a cancellation throws out of the dial.
        SlotGuard slot{this};
        auto link = co_await dial(deadline);
        if (link) slot.armed = false;
        co_return link;
      }
      auto [ec] = co_await until(
          [this]() -> asio::awaitable<std::tuple<error_code>> {
            co_return co_await pool_changed.async_wait(asio::as_tuple(asio::use_awaitable));
          }(),
          deadline);
      if (ec == asio::error::timed_out) {
        co_return deadline_exceeded("waiting for a free connection to " + target);
      }
      if (ec && ec != asio::error::operation_aborted) {
        co_return status_from_transport(ec, target, "waiting for a connection");
      }
      if (ec == asio::error::operation_aborted) {
        auto state = co_await asio::this_coro::cancellation_state;
        if (state.cancelled() != asio::cancellation_type::none) co_return cancelled("cancelled");
      }
    }
  }

  void release_slot() {
    --in_use;
    pool_changed.cancel_one();
  }

  struct SlotGuard {
    Impl* impl;
    bool armed = true;
    ~SlotGuard() {
      if (armed) impl->release_slot();
    }
  };

  // Gives a pooled link back, closed, unless the request handed it back itself: a cancellation
  // that throws out of a co_await must not leak a pool slot.
  struct LinkGuard {
    Impl* impl;
    std::optional<Link> link;
    ~LinkGuard() {
      if (link) impl->give_back(std::move(*link), false);
    }
    Link take() {
      Link taken = std::move(*link);
      link.reset();
      return taken;
    }
  };

  void give_back(Link link, bool reusable) {
    if (reusable && link.conn && link.conn->is_open() && link.buffer.size() == 0) {
      link.idle_since = Clock::now();
      idle.push_back(std::move(link));
      schedule_reap();
    } else if (link.conn) {
      link.conn->close();
    }
    release_slot();
  }

  // With close_idle, an idle link is closed once idle_timeout passes, not only when a call would
  // reuse it: over SSH it holds a channel, a pooled session and a `docker system dial-stdio`.
  void schedule_reap() {
    if (!options.close_idle || reaping || idle.empty()) return;
    reaping = true;
    reaper.expires_at(idle.front().idle_since + options.idle_timeout);
    // A destroyed timer completes with operation_aborted, after `this` is gone.
    reaper.async_wait([this](error_code ec) {
      if (ec) return;
      reaping = false;
      const TimePoint now = Clock::now();
      while (!idle.empty() && now - idle.front().idle_since >= options.idle_timeout) {
        idle.front().conn->close();
        idle.pop_front();
      }
      schedule_reap();
    });
  }

  asio::awaitable<error_code> send(Link& link, const std::string& data, TimePoint deadline) {
    auto [ec, n] = co_await until(link.conn->write(asio::buffer(data)), deadline);
    co_return ec;
  }

  asio::awaitable<error_code> send_streamed(Link& link, BodySource& source, TimePoint deadline) {
    std::string chunk(kReadChunk + 32, '\0');
    for (;;) {
      constexpr std::size_t kPrefix = 16;
      auto produced = co_await source(asio::buffer(chunk.data() + kPrefix, kReadChunk));
      if (!produced) {
        source_error = produced.error();
        co_return asio::error::operation_aborted;
      }
      std::size_t n = *produced;
      if (n == 0) break;
      char hex[kPrefix];
      auto [end, err] = std::to_chars(hex, hex + kPrefix, n, 16);
      auto hex_len = static_cast<std::size_t>(end - hex);
      std::size_t start = kPrefix - hex_len - 2;
      std::memcpy(chunk.data() + start, hex, hex_len);
      chunk[kPrefix - 2] = '\r';
      chunk[kPrefix - 1] = '\n';
      chunk[kPrefix + n] = '\r';
      chunk[kPrefix + n + 1] = '\n';
      auto [ec, written] = co_await until(
          link.conn->write(asio::buffer(chunk.data() + start, hex_len + 2 + n + 2)), deadline);
      if (ec) co_return ec;
    }
    static constexpr char kLast[] = "0\r\n\r\n";
    auto [ec, written] = co_await until(link.conn->write(asio::buffer(kLast, 5)), deadline);
    co_return ec;
  }

  struct Exchange {
    error_code ec;
    HttpResponse response;
    bool keep_alive = false;
    bool answered = false;  // some bytes of a response arrived
  };

  // One exchange on `link`: send, then read a whole response.
  asio::awaitable<Exchange> exchange(Link& link, const HttpRequest& request, BodySource* source,
                                     TimePoint deadline) {
    Exchange out;
    std::string head = serialize_head(request, source != nullptr, "");
    if (source == nullptr) head += request.body;
    out.ec = co_await send(link, head, deadline);
    if (!out.ec && source != nullptr) out.ec = co_await send_streamed(link, *source, deadline);
    if (out.ec) co_return out;
    http::response_parser<http::string_body> parser;
    parser.header_limit(kMaxHeaderBytes);
    parser.body_limit(options.max_body_bytes);
    parser.eager(true);
    if (request.method == "HEAD") parser.skip(true);
    out.ec = co_await read_rest(link, parser, deadline);
    out.answered = parser.got_some();
    if (out.ec) co_return out;
    out.keep_alive = parser.keep_alive();
    auto message = parser.release();
    out.response.status = message.result_int();
    out.response.content_type = content_type_of(message.base());
    out.response.body = std::move(message.body());
    co_return out;
  }

  Status failure(const error_code& ec, std::string_view method_target) {
    if (ec == http::error::body_limit) {
      return failed_precondition(std::string(method_target) + ": response from " + target +
                                 " is larger than " + std::to_string(options.max_body_bytes) +
                                 " bytes");
    }
    if (ec == asio::error::timed_out) {
      return deadline_exceeded(std::string(method_target) + ": no answer from " + target +
                               " in time");
    }
    return protocol_error(ec, target, method_target);
  }

  std::optional<Status> source_error;

  asio::awaitable<Result<HttpResponse>> run(const HttpRequest& request, BodySource* source,
                                            Millis timeout) {
    auto deadline = deadline_after(timeout);
    std::string what = request.method + " " + request.target;
    for (int attempt = 0;; ++attempt) {
      auto acquired = co_await acquire(deadline);
      if (!acquired) co_return acquired.error().with_context(what);
      LinkGuard guard{this, std::move(*acquired)};
      source_error.reset();
      auto [ec, response, keep_alive, answered] =
          co_await exchange(*guard.link, request, source, deadline);
      if (!ec) {
        give_back(guard.take(), keep_alive);
        co_return std::move(response);
      }
      bool stale = guard.link->reused && !answered && source == nullptr &&
                   (ec == asio::error::eof || ec == asio::error::connection_reset ||
                    ec == asio::error::broken_pipe);
      give_back(guard.take(), false);
      if (source_error) co_return source_error->with_context(what);
      // A kept-alive connection the peer closed meanwhile fails before any byte of an answer;
      // the request never reached dockerd, so sending it once more on a new one is safe.
      if (stale && attempt == 0) continue;
      co_return failure(ec, what);
    }
  }

  // A connection of its own, the request sent (its body from `source` when given) and the
  // response header read.
  template <class Parser>
  asio::awaitable<Result<Link>> open_dedicated(const HttpRequest& request, std::string_view extra,
                                               Parser& parser, BodySource* source, Millis timeout) {
    auto deadline = deadline_after(timeout);
    std::string what = request.method + " " + request.target;
    auto link = co_await dial(deadline);
    if (!link) co_return link.error().with_context(what);
    std::string head = serialize_head(request, source != nullptr, extra);
    if (source == nullptr) head += request.body;
    source_error.reset();
    auto sent = co_await send(*link, head, deadline);
    if (!sent && source != nullptr) sent = co_await send_streamed(*link, *source, deadline);
    if (source_error) {
      link->conn->close();
      co_return source_error->with_context(what);
    }
    parser.header_limit(kMaxHeaderBytes);
    // A peer that refuses the body answers first and closes: its answer is the better error.
    auto read = co_await read_header(*link, parser, sent ? deadline_after(Millis(2000)) : deadline);
    if (read) {
      link->conn->close();
      co_return failure(sent ? sent : read, what);
    }
    co_return std::move(*link);
  }
};

HttpClient::HttpClient(asio::any_io_executor executor, std::unique_ptr<Dialer> dialer,
                       HttpClientOptions options)
    : impl_(std::make_unique<Impl>(std::move(executor), std::move(dialer), options)) {}

HttpClient::~HttpClient() = default;

asio::awaitable<Result<HttpResponse>> HttpClient::request(HttpRequest request, Millis timeout) {
  co_return co_await impl_->run(request, nullptr, timeout);
}

asio::awaitable<Result<HttpResponse>> HttpClient::request_streamed(HttpRequest request,
                                                                   BodySource source,
                                                                   Millis timeout) {
  co_return co_await impl_->run(request, &source, timeout);
}

asio::awaitable<Result<std::unique_ptr<BodyReader>>> HttpClient::stream(HttpRequest request,
                                                                        Millis header_timeout) {
  auto parser = std::make_unique<http::response_parser<http::buffer_body>>();
  parser->body_limit(boost::none);
  parser->eager(true);
  if (request.method == "HEAD") parser->skip(true);
  auto link = co_await impl_->open_dedicated(request, "", *parser, nullptr, header_timeout);
  if (!link) co_return link.error();
  co_return std::make_unique<BodyReaderImpl>(std::move(*link), std::move(parser), impl_->target);
}

asio::awaitable<Result<std::unique_ptr<BodyReader>>> HttpClient::upload(HttpRequest request,
                                                                        BodySource source,
                                                                        Millis timeout) {
  auto parser = std::make_unique<http::response_parser<http::buffer_body>>();
  parser->body_limit(boost::none);
  parser->eager(true);
  auto link = co_await impl_->open_dedicated(request, "", *parser, &source, timeout);
  if (!link) co_return link.error();
  co_return std::make_unique<BodyReaderImpl>(std::move(*link), std::move(parser), impl_->target);
}

asio::awaitable<Result<HttpClient::Hijacked>> HttpClient::hijack(HttpRequest request,
                                                                 Millis header_timeout) {
  http::response_parser<http::empty_body> parser;
  auto link = co_await impl_->open_dedicated(request, "Connection: Upgrade\r\nUpgrade: tcp\r\n",
                                             parser, nullptr, header_timeout);
  if (!link) co_return link.error();
  Hijacked out;
  out.response.status = parser.get().result_int();
  out.response.content_type = content_type_of(parser.get().base());
  if (out.response.status == 101 || out.response.status == 200) {
    out.stream = std::make_unique<RawStreamImpl>(std::move(*link), impl_->target);
    co_return out;
  }
  // An error answer is an ordinary response: read its body to the end.
  http::response_parser<http::string_body> full(std::move(parser));
  full.body_limit(kMaxHeaderBytes);
  full.eager(true);
  auto ec = co_await read_rest(*link, full, deadline_after(header_timeout));
  link->conn->close();
  if (ec) co_return impl_->failure(ec, request.method + " " + request.target);
  out.response.body = std::move(full.get().body());
  co_return out;
}

const std::string& HttpClient::target_name() const { return impl_->target; }

std::size_t HttpClient::connections_opened() const { return impl_->opened; }

}  // namespace odd::engine
