#include "daemon/control_server.hpp"

#include <grp.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/status.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <charconv>
#include <cstddef>
#include <exception>
#include <functional>
#include <map>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

#include "proto/spec.hpp"

namespace odd::daemon {

namespace http = boost::beast::http;
using namespace boost::asio::experimental::awaitable_operators;
using boost::system::error_code;
using UnixSocket = asio::local::stream_protocol::socket;
using Acceptor = asio::local::stream_protocol::acceptor;
using Millis = std::chrono::milliseconds;

namespace {

constexpr std::size_t kReadChunk = 16 * 1024;
// The producer of a stream stops pulling from its cursor once this much waits for the client.
constexpr std::size_t kStreamHighWater = 64 * 1024;
constexpr std::size_t kMaxListLimit = 1000;
constexpr std::size_t kShownBytes = 80;
constexpr Millis kRefuseTimeout{2000};
constexpr Millis kLingerTimeout{1000};
constexpr std::size_t kLingerBytes = 1024 * 1024;

constexpr std::string_view kJsonType = "application/json";
constexpr std::string_view kNdjsonType = "application/x-ndjson";

// ---- Text helpers ---------------------------------------------------------------------------

std::string json_text(const proto::Json& json) {
  // Strings from containers and clients need not be UTF-8; dump() would throw on them.
  std::string text = json.dump(-1, ' ', false, proto::Json::error_handler_t::replace);
  text += '\n';
  return text;
}

// `text` as a JSON string literal, cut to kShownBytes: safe to put into any message.
std::string quote(std::string_view text) {
  std::string cut(text.substr(0, kShownBytes));
  std::string out =
      proto::Json(std::move(cut)).dump(-1, ' ', false, proto::Json::error_handler_t::replace);
  if (text.size() > kShownBytes) out += "...";
  return out;
}

std::string shown(std::string_view text) {
  std::string out(text.substr(0, kShownBytes));
  if (text.size() > kShownBytes) out += "...";
  return out;
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
           return lower(x) == lower(y);
         });
}

std::string_view trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// %XX decoding; '+' is a space in query strings only. nullopt for a malformed escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      const int high = hex_value(text[i + 1]);
      const int low = hex_value(text[i + 2]);
      if (high < 0 || low < 0) return std::nullopt;
      out += static_cast<char>(high * 16 + low);
      i += 2;
    } else if (text[i] == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += text[i];
    }
  }
  return out;
}

// ---- Query parameters -----------------------------------------------------------------------

enum Param : unsigned {
  kParamState = 1u << 0,
  kParamLimit = 1u << 1,
  kParamSince = 1u << 2,
  kParamFollow = 1u << 3,
  kParamStream = 1u << 4,
};

struct ParamName {
  Param param;
  std::string_view name;
};
constexpr ParamName kParamNames[] = {
    {kParamState, "state"},   {kParamLimit, "limit"},   {kParamSince, "since"},
    {kParamFollow, "follow"}, {kParamStream, "stream"},
};

std::string accepted_params(unsigned accepted) {
  std::string out;
  for (const auto& p : kParamNames) {
    if ((accepted & p.param) == 0) continue;
    if (!out.empty()) out += ", ";
    out += p.name;
  }
  return out.empty() ? std::string("none") : out;
}

Status bad_param(std::string_view name, std::string_view expected, std::string_view got) {
  std::string message = "query parameter \"";
  message += name;
  message += "\": expected ";
  message += expected;
  message += ", got ";
  message += quote(got);
  return invalid_argument(std::move(message));
}

std::optional<std::uint64_t> parse_unsigned(std::string_view text) {
  std::uint64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

Status parse_param(Param param, std::string_view value, RequestQuery& query) {
  switch (param) {
    case kParamState: {
      auto state = proto::parse_run_state(value);
      if (!state) {
        return bad_param("state", "one of queued, running, succeeded, failed, cancelled", value);
      }
      query.state = *state;
      return ok_status();
    }
    case kParamLimit: {
      auto n = parse_unsigned(value);
      if (!n || *n < 1 || *n > kMaxListLimit) {
        return bad_param("limit", "an integer from 1 to " + std::to_string(kMaxListLimit), value);
      }
      query.limit = static_cast<std::size_t>(*n);
      return ok_status();
    }
    case kParamSince: {
      auto n = parse_unsigned(value);
      if (!n) return bad_param("since", "an event sequence number (0 or more)", value);
      query.since = *n;
      return ok_status();
    }
    case kParamFollow:
      if (value == "1" || value == "true") {
        query.follow = true;
      } else if (value == "0" || value == "false") {
        query.follow = false;
      } else {
        return bad_param("follow", "0, 1, true or false", value);
      }
      return ok_status();
    case kParamStream:
      if (value == "stdout") {
        query.stream = LogSelect::kStdout;
      } else if (value == "stderr") {
        query.stream = LogSelect::kStderr;
      } else if (value == "both") {
        query.stream = LogSelect::kBoth;
      } else {
        return bad_param("stream", "stdout, stderr or both", value);
      }
      return ok_status();
  }
  return internal_error("unknown query parameter kind");
}

Result<RequestQuery> parse_query(std::string_view text, unsigned accepted) {
  RequestQuery query;
  unsigned seen = 0;
  while (!text.empty()) {
    const std::size_t amp = text.find('&');
    const std::string_view item = text.substr(0, amp);
    text = amp == std::string_view::npos ? std::string_view() : text.substr(amp + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    auto name = percent_decode(item.substr(0, eq), true);
    auto value = percent_decode(
        eq == std::string_view::npos ? std::string_view() : item.substr(eq + 1), true);
    if (!name || !value) {
      return invalid_argument("malformed %-escape in query parameter " + quote(item));
    }
    const ParamName* found = nullptr;
    for (const auto& p : kParamNames) {
      if (p.name == *name && (accepted & p.param) != 0) found = &p;
    }
    if (found == nullptr) {
      return invalid_argument("unknown query parameter " + quote(*name) +
                              " (accepted here: " + accepted_params(accepted) + ")");
    }
    if ((seen & found->param) != 0) {
      return invalid_argument("query parameter " + quote(*name) + " given more than once");
    }
    seen |= found->param;
    if (Status status = parse_param(found->param, *value, query); !status.ok()) return status;
  }
  return query;
}

// ---- Request bodies -------------------------------------------------------------------------

// A first pass over a request body that bounds what parsing it may cost: nesting (copying and
// destroying nlohmann values recurse) and keys per object (ordered_json looks keys up linearly).
class JsonShapeCheck final : public nlohmann::json_sax<proto::Json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t, const string_t&) override { return true; }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return true; }
  bool start_object(std::size_t) override { return open(); }
  bool key(string_t&) override {
    if (++keys_.back() <= proto::kMaxKeys) return true;
    problem_ =
        "an object in the request body has more than " + std::to_string(proto::kMaxKeys) + " keys";
    return false;
  }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& error) override {
    // what() reads "[json.exception.parse_error.101] parse error at line 1, column 5: syntax
    // error while parsing value - ..."; the byte offset replaces the prefix.
    std::string_view what = error.what();
    if (auto colon = what.find(": "); colon != std::string_view::npos) {
      what.remove_prefix(colon + 2);
    }
    problem_ = "the request body is not valid JSON at byte " + std::to_string(position) + ": ";
    problem_ += what;
    return false;
  }

  const std::string& problem() const { return problem_; }

 private:
  static constexpr std::size_t kMaxDepth = proto::kMaxNesting + 1;  // the spec sits in a body

  bool open() {
    if (keys_.size() >= kMaxDepth) {
      problem_ = "the request body is nested deeper than " + std::to_string(kMaxDepth) + " levels";
      return false;
    }
    keys_.push_back(0);
    return true;
  }
  bool close() {
    keys_.pop_back();
    return true;
  }

  std::vector<std::size_t> keys_;  // per open object or array: keys seen so far
  std::string problem_;
};

// ---- Connections ----------------------------------------------------------------------------

struct ServerCore {
  ServerCore(asio::any_io_executor ex, ControlService& s, ControlServerOptions o)
      : executor(std::move(ex)), service(s), options(std::move(o)) {}
  asio::any_io_executor executor;
  ControlService& service;
  ControlServerOptions options;
  bool stopping = false;
};

struct Peer {
  Peer(UnixSocket s, std::size_t buffer_limit)
      : socket(std::move(s)), buffer(buffer_limit), timer(socket.get_executor()) {}
  UnixSocket socket;
  boost::beast::flat_buffer buffer;  // read but not yet parsed
  asio::steady_timer timer;
  proto::Caller caller;
};

proto::Caller peer_caller(UnixSocket& socket) {
  proto::Caller caller;
  ucred cred{};
  socklen_t length = sizeof cred;
  if (::getsockopt(socket.native_handle(), SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0) {
    caller.uid = cred.uid;
    caller.gid = cred.gid;
    caller.pid = cred.pid;
  }
  return caller;
}

asio::awaitable<std::tuple<error_code, std::size_t>> read_some(Peer& peer,
                                                               asio::mutable_buffer into,
                                                               Millis timeout) {
  peer.timer.expires_after(timeout);
  auto result = co_await (peer.socket.async_read_some(into, asio::as_tuple(asio::use_awaitable)) ||
                          peer.timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (result.index() == 0) co_return std::get<0>(result);
  auto [ec] = std::get<1>(result);
  co_return std::make_tuple(ec ? ec : error_code(asio::error::timed_out), std::size_t{0});
}

asio::awaitable<error_code> write_all(Peer& peer, std::string_view data, Millis timeout) {
  peer.timer.expires_after(timeout);
  auto result = co_await (asio::async_write(peer.socket, asio::buffer(data.data(), data.size()),
                                            asio::as_tuple(asio::use_awaitable)) ||
                          peer.timer.async_wait(asio::as_tuple(asio::use_awaitable)));
  if (result.index() == 0) co_return std::get<0>(std::get<0>(result));
  auto [ec] = std::get<1>(result);
  co_return ec ? ec : error_code(asio::error::timed_out);
}

// Feeds `parser` from the connection until the header (or the whole message) is parsed.
// eof when the peer closed between requests; otherwise a transport or http::error code.
template <class Parser>
asio::awaitable<error_code> read_message(Peer& peer, Parser& parser, bool header_only,
                                         Millis timeout) {
  auto finished = [&] { return header_only ? parser.is_header_done() : parser.is_done(); };
  for (;;) {
    if (finished()) co_return error_code{};
    if (peer.buffer.size() > 0) {
      error_code ec;
      const std::size_t used = parser.put(peer.buffer.data(), ec);
      peer.buffer.consume(used);
      if (ec && ec != http::error::need_more) co_return ec;
      if (finished()) co_return error_code{};
      if (!ec && used > 0 && peer.buffer.size() > 0) continue;
    }
    const std::size_t room = peer.buffer.max_size() - peer.buffer.size();
    if (room == 0) co_return error_code(http::error::header_limit);
    auto [ec, n] =
        co_await read_some(peer, peer.buffer.prepare(std::min(kReadChunk, room)), timeout);
    if (ec == asio::error::eof && parser.got_some()) {
      error_code eof_ec;
      parser.put_eof(eof_ec);
      co_return eof_ec ? eof_ec : error_code(http::error::partial_message);
    }
    if (ec) co_return ec;
    peer.buffer.commit(n);
  }
}

std::string_view reason(unsigned status) {
  if (status == 499) return "Client Closed Request";
  return http::obsolete_reason(static_cast<http::status>(status));
}

struct Head {
  unsigned status = 200;
  std::string_view content_type = kJsonType;
  std::optional<std::size_t> content_length;  // unset: a stream
  bool chunked = false;
  bool close = false;
  std::string extra;  // further header lines, each ending in "\r\n"
};

std::string serialize(const Head& head) {
  std::string out = "HTTP/1.1 ";
  out += std::to_string(head.status);
  out += ' ';
  out += reason(head.status);
  out += "\r\nServer: oddd\r\nContent-Type: ";
  out += head.content_type;
  out += "\r\n";
  if (head.content_length) {
    out += "Content-Length: ";
    out += std::to_string(*head.content_length);
    out += "\r\n";
  } else if (head.chunked) {
    out += "Transfer-Encoding: chunked\r\n";
  }
  if (head.close) out += "Connection: close\r\n";
  out += head.extra;
  out += "\r\n";
  return out;
}

void append_chunk(std::string& out, std::string_view data, bool chunked) {
  if (data.empty()) return;
  if (!chunked) {
    out += data;
    return;
  }
  char hex[20];
  auto [end, ec] = std::to_chars(hex, hex + sizeof hex, data.size(), 16);
  out.append(hex, end);
  out += "\r\n";
  out += data;
  out += "\r\n";
}

std::string error_body(const Status& status, std::string path) {
  return json_text(proto::encode(proto::ApiError::from_status(status, std::move(path))));
}

std::string error_response(unsigned http_status, const std::string& body, bool close,
                           std::string allow) {
  Head head;
  head.status = http_status;
  head.content_length = body.size();
  head.close = close;
  if (!allow.empty()) head.extra = "Allow: " + allow + "\r\n";
  return serialize(head) + body;
}

// Ends a connection whose request may not have been read to its end: the peer gets our answer
// before a reset caused by unread bytes.
asio::awaitable<void> linger_close(Peer& peer) {
  error_code ignored;
  peer.socket.shutdown(UnixSocket::shutdown_send, ignored);
  std::array<char, 4096> sink{};
  std::size_t drained = 0;
  const auto deadline = std::chrono::steady_clock::now() + kLingerTimeout;
  while (drained < kLingerBytes) {
    const auto left =
        std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left <= Millis::zero()) break;
    auto [ec, n] = co_await read_some(peer, asio::buffer(sink), left);
    if (ec) break;
    drained += n;
  }
  peer.socket.close(ignored);
}

// One request being answered: what a route handler gets.
struct Exchange {
  ServerCore& core;
  Peer& peer;
  const RouteMatch& match;
  std::string_view content_type;
  std::string_view body;
  bool chunked = true;     // false for an HTTP/1.0 client: a stream is delimited by closing
  bool keep_alive = true;  // handlers clear it to close the connection after their response
};

asio::awaitable<void> respond(Exchange& ex, unsigned status, const proto::Json& json,
                              std::string extra) {
  const std::string body = json_text(json);
  Head head;
  head.status = status;
  head.content_length = body.size();
  head.close = !ex.keep_alive;
  head.extra = std::move(extra);
  const std::string out = serialize(head) + body;
  if (co_await write_all(ex.peer, out, ex.core.options.idle_timeout)) ex.keep_alive = false;
}

asio::awaitable<void> respond_error(Exchange& ex, const Status& status, std::string path) {
  const proto::Json json = proto::encode(proto::ApiError::from_status(status, std::move(path)));
  co_await respond(ex, proto::http_status(status.code()), json, std::string());
}

// ---- Streamed responses ---------------------------------------------------------------------

// The pieces of a streamed body: bytes, or nullopt at the end.
class PieceSource {
 public:
  virtual ~PieceSource() = default;
  virtual asio::awaitable<Result<std::optional<std::string>>> next() = 0;
};

class EventLines final : public PieceSource {
 public:
  explicit EventLines(EventCursor& cursor) : cursor_(cursor) {}
  asio::awaitable<Result<std::optional<std::string>>> next() override {
    auto event = co_await cursor_.next();
    if (!event) co_return event.error();
    if (!*event) co_return std::optional<std::string>();
    co_return std::optional<std::string>(json_text(proto::encode(**event)));
  }

 private:
  EventCursor& cursor_;
};

class BytePieces final : public PieceSource {
 public:
  explicit BytePieces(ByteCursor& cursor) : cursor_(cursor) {}
  asio::awaitable<Result<std::optional<std::string>>> next() override {
    auto piece = co_await cursor_.next();
    if (!piece) co_return piece.error();
    if (piece->empty()) co_return std::optional<std::string>();
    co_return std::optional<std::string>(std::move(*piece));
  }

 private:
  ByteCursor& cursor_;
};

// What the producer (pulling the cursor), the writer and the watcher of one stream share. The
// producer stops pulling at kStreamHighWater, so a client that stops reading holds at most that
// much here, and blocks nobody but its own stream.
struct StreamState {
  StreamState(const asio::any_io_executor& executor, const ServerCore& server)
      : wake(executor, asio::steady_timer::time_point::max()), core(server) {}

  std::string head;     // written first: the response head, maybe a first line
  std::string pending;  // produced, not yet written
  bool source_done = false;
  std::optional<Status> failure;  // the cursor's error
  bool ndjson = false;            // a failure is reported as a last line {"error": ...}
  bool chunked = true;
  bool completed = false;   // the whole body went out, end marker included
  asio::steady_timer wake;  // cancel() wakes whoever waits for the other side
  const ServerCore& core;
  std::function<void(const std::string&)> on_gone;  // the client left before the end
  bool gone_reported = false;

  void notify() { wake.cancel(); }
  asio::awaitable<void> wait() { co_await wake.async_wait(asio::as_tuple(asio::use_awaitable)); }

  // A server that stops cancels its streams; that is not the client leaving.
  void report_gone(const std::string& why) {
    if (gone_reported || core.stopping || !on_gone) return;
    gone_reported = true;
    on_gone(why);
  }
};

asio::awaitable<void> produce(StreamState& s, PieceSource& source) {
  for (;;) {
    while (s.pending.size() >= kStreamHighWater) co_await s.wait();
    std::optional<Result<std::optional<std::string>>> piece;
    std::string broken;
    try {
      piece.emplace(co_await source.next());
    } catch (const std::exception& e) {
      broken = e.what();
    }
    if (!piece) {
      auto state = co_await asio::this_coro::cancellation_state;
      if (state.cancelled() != asio::cancellation_type::none) co_return;
      spdlog::error("control socket: a stream's cursor threw: {}", broken);
      piece.emplace(internal_error("the daemon failed while producing this stream"));
    }
    if (!*piece) {
      s.failure = piece->error();
      s.source_done = true;
      s.notify();
      co_return;
    }
    if (!**piece) {
      s.source_done = true;
      s.notify();
      co_return;
    }
    s.pending += ***piece;
    s.notify();
  }
}

asio::awaitable<void> consume(StreamState& s, Peer& peer) {
  std::string out = std::move(s.head);
  for (;;) {
    if (out.empty()) {
      while (s.pending.empty() && !s.source_done) co_await s.wait();
    }
    // Everything produced while the last write was under way goes out as one chunk.
    append_chunk(out, s.pending, s.chunked);
    s.pending.clear();
    s.notify();
    const bool last = s.source_done;
    if (last) {
      if (s.failure && s.ndjson) append_chunk(out, error_body(*s.failure, ""), s.chunked);
      // A byte stream that failed is cut off without its end marker, so the client knows.
      if ((!s.failure || s.ndjson) && s.chunked) out += "0\r\n\r\n";
    }
    if (!out.empty()) {
      auto [ec, n] = co_await asio::async_write(peer.socket, asio::buffer(out),
                                                asio::as_tuple(asio::use_awaitable));
      if (ec) {
        if (ec != asio::error::operation_aborted) s.report_gone("client disconnected");
        error_code ignored;
        peer.socket.cancel(ignored);  // ends the watcher, and so the producer
        co_return;
      }
      out.clear();
    }
    if (last) {
      s.completed = !s.failure;
      co_return;
    }
  }
}

// Keeps a read pending for as long as the stream runs: end of file or an error means the client
// left, even when no byte is being written to notice it.
asio::awaitable<void> watch(StreamState& s, Peer& peer) {
  std::array<char, 512> sink{};
  for (;;) {
    auto [ec, n] = co_await peer.socket.async_read_some(asio::buffer(sink),
                                                        asio::as_tuple(asio::use_awaitable));
    if (!ec) continue;
    if (ec != asio::error::operation_aborted) s.report_gone("client disconnected");
    co_return;
  }
}

// Sends s.head, then the pieces of `source` until it ends, the client leaves or the server stops.
// The connection is closed afterwards.
asio::awaitable<void> stream(Exchange& ex, StreamState& s, PieceSource& source) {
  ex.keep_alive = false;
  s.chunked = ex.chunked;
  co_await ((produce(s, source) && consume(s, ex.peer)) || watch(s, ex.peer));
}

Head stream_head(const Exchange& ex, std::string_view content_type) {
  Head head;
  head.content_type = content_type;
  head.chunked = ex.chunked;
  head.close = true;
  return head;
}

// ---- Route handlers -------------------------------------------------------------------------

asio::awaitable<void> handle_version(Exchange& ex) {
  auto version = co_await ex.core.service.version();
  if (!version) {
    co_await respond_error(ex, version.error(), std::string());
    co_return;
  }
  co_await respond(ex, 200, *version, std::string());
}

asio::awaitable<void> handle_health(Exchange& ex) {
  auto health = co_await ex.core.service.health();
  if (!health) {
    co_await respond_error(ex, health.error(), std::string());
    co_return;
  }
  co_await respond(ex, 200, *health, std::string());
}

asio::awaitable<void> handle_submit(Exchange& ex) {
  auto request = parse_submit_body(ex.content_type, ex.body);
  if (!request) {
    co_await respond_error(ex, request.error(), proto::spec_error_path(request.error()));
    co_return;
  }
  const bool detach = request->detach;
  auto submitted = co_await ex.core.service.submit(std::move(*request), ex.peer.caller);
  if (!submitted) {
    const Status& error = submitted.error();
    std::string path;
    if (error.code() == Code::kInvalidArgument) path = proto::spec_error_path(error);
    co_await respond_error(ex, error, std::move(path));
    co_return;
  }
  const std::string run_id = submitted->run_id;
  proto::Json id_json = proto::Json::object();
  id_json["id"] = run_id;
  if (detach) {
    co_await respond(ex, 201, id_json, "Location: /v1/runs/" + run_id + "\r\n");
    co_return;
  }
  if (!submitted->events) {
    ex.core.service.submitter_gone(run_id, "the daemon gave the submitter no event stream");
    const Status broken = internal_error("run " + run_id + " was submitted without events");
    co_await respond_error(ex, broken, std::string());
    co_return;
  }
  EventLines source(*submitted->events);
  StreamState s(co_await asio::this_coro::executor, ex.core);
  s.head = serialize(stream_head(ex, kNdjsonType));
  append_chunk(s.head, json_text(id_json), ex.chunked);
  s.ndjson = true;
  ControlService& service = ex.core.service;
  s.on_gone = [&service, run_id](const std::string& why) { service.submitter_gone(run_id, why); };
  std::exception_ptr thrown;
  try {
    co_await stream(ex, s, source);
  } catch (...) {
    thrown = std::current_exception();
  }
  // However the stream ended early, no run may be left that nobody waits for.
  if (!s.completed) {
    s.report_gone(s.failure ? "event stream failed: " + s.failure->message()
                            : std::string("client disconnected"));
  }
  if (thrown) std::rethrow_exception(thrown);
}

asio::awaitable<void> handle_list_runs(Exchange& ex) {
  auto runs = ex.core.service.list_runs(ex.match.query.state, ex.match.query.limit);
  if (!runs) {
    co_await respond_error(ex, runs.error(), std::string());
    co_return;
  }
  proto::Json list = proto::Json::array();
  for (const auto& run : *runs) list.push_back(proto::encode(run, false));
  co_await respond(ex, 200, list, std::string());
}

asio::awaitable<void> handle_get_run(Exchange& ex) {
  auto run = ex.core.service.get_run(ex.match.run_id);
  if (!run) {
    co_await respond_error(ex, run.error(), std::string());
    co_return;
  }
  co_await respond(ex, 200, proto::encode(*run), std::string());
}

asio::awaitable<void> handle_cancel_run(Exchange& ex) {
  Status status = ex.core.service.cancel_run(ex.match.run_id);
  if (!status.ok()) {
    co_await respond_error(ex, status, std::string());
    co_return;
  }
  proto::Json body = proto::Json::object();
  body["id"] = ex.match.run_id;
  co_await respond(ex, 200, body, std::string());
}

asio::awaitable<void> handle_events(Exchange& ex) {
  auto cursor =
      ex.core.service.events(ex.match.run_id, ex.match.query.since, ex.match.query.follow);
  if (!cursor) {
    co_await respond_error(ex, cursor.error(), std::string());
    co_return;
  }
  EventLines source(**cursor);
  StreamState s(co_await asio::this_coro::executor, ex.core);
  s.head = serialize(stream_head(ex, kNdjsonType));
  s.ndjson = true;
  co_await stream(ex, s, source);
}

asio::awaitable<void> handle_logs(Exchange& ex) {
  auto cursor = ex.core.service.logs(ex.match.run_id, ex.match.job_key, ex.match.query.stream,
                                     ex.match.query.follow);
  if (!cursor) {
    co_await respond_error(ex, cursor.error(), std::string());
    co_return;
  }
  BytePieces source(**cursor);
  StreamState s(co_await asio::this_coro::executor, ex.core);
  s.head = serialize(stream_head(ex, "application/octet-stream"));
  co_await stream(ex, s, source);
}

asio::awaitable<void> handle_summary(Exchange& ex) {
  auto summary = ex.core.service.summary(ex.match.run_id);
  if (!summary) {
    co_await respond_error(ex, summary.error(), std::string());
    co_return;
  }
  co_await respond(ex, 200, proto::encode(*summary), std::string());
}

asio::awaitable<void> handle_artifacts(Exchange& ex) {
  auto cursor = ex.core.service.artifacts(ex.match.run_id);
  if (!cursor) {
    co_await respond_error(ex, cursor.error(), std::string());
    co_return;
  }
  BytePieces source(**cursor);
  StreamState s(co_await asio::this_coro::executor, ex.core);
  Head head = stream_head(ex, "application/x-tar");
  head.extra =
      "Content-Disposition: attachment; filename=\"" + ex.match.run_id + "-artifacts.tar\"\r\n";
  s.head = serialize(head);
  co_await stream(ex, s, source);
}

// ---- The route table ------------------------------------------------------------------------

using Handler = asio::awaitable<void> (*)(Exchange&);

struct RouteEntry {
  std::string_view method;
  std::string_view pattern;  // "{id}" matches a run id, "{key}" a job key
  Route route;
  unsigned params;  // the query parameters it accepts
  Handler handler;
};

constexpr RouteEntry kRoutes[] = {
    {"GET", "/v1/version", Route::kVersion, 0, &handle_version},
    {"GET", "/v1/health", Route::kHealth, 0, &handle_health},
    {"POST", "/v1/runs", Route::kSubmit, 0, &handle_submit},
    {"GET", "/v1/runs", Route::kListRuns, kParamState | kParamLimit, &handle_list_runs},
    {"GET", "/v1/runs/{id}", Route::kGetRun, 0, &handle_get_run},
    {"POST", "/v1/runs/{id}/cancel", Route::kCancelRun, 0, &handle_cancel_run},
    {"GET", "/v1/runs/{id}/events", Route::kEvents, kParamSince | kParamFollow, &handle_events},
    {"GET", "/v1/runs/{id}/jobs/{key}/logs", Route::kLogs, kParamStream | kParamFollow,
     &handle_logs},
    {"GET", "/v1/runs/{id}/summary", Route::kSummary, 0, &handle_summary},
    {"GET", "/v1/runs/{id}/artifacts", Route::kArtifacts, 0, &handle_artifacts},
};

const RouteEntry& entry_of(Route route) {
  for (const auto& entry : kRoutes) {
    if (entry.route == route) return entry;
  }
  throw std::logic_error("control server: a route without a handler");
}

// The raw text of {id} and {key} when `path` has the shape of `pattern`.
struct Captures {
  std::string_view id;
  std::string_view key;
};
std::optional<Captures> match_path(std::string_view pattern, std::string_view path) {
  Captures captures;
  for (;;) {
    if (pattern.empty() || path.empty()) {
      if (pattern.empty() && path.empty()) return captures;
      return std::nullopt;
    }
    if (pattern.front() != '/' || path.front() != '/') return std::nullopt;
    pattern.remove_prefix(1);
    path.remove_prefix(1);
    const std::string_view want = pattern.substr(0, pattern.find('/'));
    const std::string_view have = path.substr(0, path.find('/'));
    if (want == "{id}" || want == "{key}") {
      if (have.empty()) return std::nullopt;
      (want == "{id}" ? captures.id : captures.key) = have;
    } else if (want != have) {
      return std::nullopt;
    }
    pattern.remove_prefix(want.size());
    path.remove_prefix(have.size());
  }
}

Rejection reject(unsigned http_status, Status status) {
  Rejection rejection;
  rejection.http_status = http_status;
  rejection.error = proto::ApiError::from_status(status);
  return rejection;
}

}  // namespace

void throw_exception_from_error(const Rejection& rejection, const boost::source_location& loc) {
  odd::throw_exception_from_error(rejection.error.to_status(), loc);
}

Routed route(std::string_view method, std::string_view target) {
  const std::size_t question = target.find('?');
  const std::string_view path = target.substr(0, question);
  const std::string_view query =
      question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
  if (path.empty() || path.front() != '/') {
    return reject(400, invalid_argument("the request target must be a path such as /v1/version, "
                                        "got " +
                                        quote(target)));
  }
  const RouteEntry* chosen = nullptr;
  std::optional<Captures> captures;
  std::vector<std::string_view> methods;
  for (const auto& entry : kRoutes) {
    auto matched = match_path(entry.pattern, path);
    if (!matched) continue;
    methods.push_back(entry.method);
    if (chosen == nullptr && entry.method == method) {
      chosen = &entry;
      captures = matched;
    }
  }
  if (methods.empty()) return reject(404, not_found("no endpoint " + quote(path)));
  if (chosen == nullptr) {
    std::sort(methods.begin(), methods.end());
    std::string allow;
    for (auto m : methods) {
      if (!allow.empty()) allow += ", ";
      allow += m;
    }
    Rejection rejection =
        reject(405, invalid_argument("method " + quote(method) + " is not allowed on " +
                                     quote(path) + " (allowed: " + allow + ")"));
    rejection.allow = std::move(allow);
    return rejection;
  }
  RouteMatch match;
  match.route = chosen->route;
  if (!captures->id.empty()) {
    auto id = percent_decode(captures->id, false);
    if (!id || !proto::valid_run_id(*id)) {
      return reject(404, not_found("no run " + shown(id ? *id : std::string(captures->id))));
    }
    match.run_id = std::move(*id);
  }
  if (!captures->key.empty()) {
    auto key = percent_decode(captures->key, false);
    if (!key) {
      return reject(400, invalid_argument("malformed %-escape in job key " + quote(captures->key)));
    }
    match.job_key = std::move(*key);
  }
  auto parsed = parse_query(query, chosen->params);
  if (!parsed) return reject(400, parsed.error());
  match.query = *parsed;
  return match;
}

Result<proto::SubmitRequest> parse_submit_body(std::string_view content_type,
                                               std::string_view body) {
  const std::string_view media = trim(content_type.substr(0, content_type.find(';')));
  if (!iequals(media, kJsonType)) {
    return invalid_argument("the request body must be JSON sent with Content-Type " +
                            std::string(kJsonType) + ", got " +
                            (content_type.empty() ? std::string("none") : quote(content_type)));
  }
  JsonShapeCheck check;
  if (!proto::Json::sax_parse(body, &check)) return invalid_argument(check.problem());
  proto::Json json = proto::Json::parse(body, nullptr, false);
  if (json.is_discarded()) return internal_error("a request body checked as JSON did not parse");
  return proto::decode_submit_request(json);
}

// ---- The server -----------------------------------------------------------------------------

struct ControlServer::Impl : std::enable_shared_from_this<ControlServer::Impl> {
  Impl(asio::any_io_executor executor, ControlService& service, ControlServerOptions options)
      : core(executor, service, std::move(options)),
        acceptor(executor),
        drained(executor, asio::steady_timer::time_point::max()),
        retry(executor) {}

  ServerCore core;
  Acceptor acceptor;
  asio::steady_timer drained;  // cancel()ed whenever a connection ends
  asio::steady_timer retry;
  // Every connection coroutine's cancellation; an entry goes once its coroutine has ended.
  std::map<std::uint64_t, std::unique_ptr<asio::cancellation_signal>> connections;
  std::uint64_t next_id = 0;
  std::size_t serving = 0;
  std::size_t refusing = 0;
  bool created = false;  // listen() made the socket file: stop() removes it
  dev_t device = 0;
  ino_t inode = 0;

  std::size_t buffer_limit() const { return core.options.max_header_bytes + kReadChunk; }

  void stop() {
    if (core.stopping) return;
    core.stopping = true;
    error_code ignored;
    acceptor.close(ignored);
    retry.cancel();
    std::vector<asio::cancellation_signal*> signals;
    for (auto& [id, signal] : connections) signals.push_back(signal.get());
    for (auto* signal : signals) signal->emit(asio::cancellation_type::terminal);
    unlink_socket();
  }

  void unlink_socket() {
    if (!created) return;
    created = false;
    // Only our own file: never one that replaced it meanwhile.
    struct stat st {};
    const std::string& path = core.options.socket_path;
    if (::lstat(path.c_str(), &st) == 0 && st.st_dev == device && st.st_ino == inode) {
      ::unlink(path.c_str());
    }
  }

  Status listen() {
    const std::string& path = core.options.socket_path;
    if (path.empty()) return invalid_argument("no control socket path given");
    if (path.size() >= sizeof(sockaddr_un::sun_path)) {
      return invalid_argument("control socket path " + path + " is longer than " +
                              std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes");
    }
    if (Status status = clear_stale(path); !status.ok()) return status;
    error_code ec;
    acceptor.open(asio::local::stream_protocol(), ec);
    if (ec) return unavailable("control socket " + path + ": creating a socket: " + ec.message());
    // The file is created with the umask applied: never, even briefly, wider than socket_mode.
    const mode_t mode = static_cast<mode_t>(core.options.socket_mode & 0777);
    const mode_t old_mask = ::umask(static_cast<mode_t>(~mode & 0777));
    acceptor.bind(asio::local::stream_protocol::endpoint(path), ec);
    ::umask(old_mask);
    if (ec) {
      error_code ignored;
      acceptor.close(ignored);
      return system_failure(ec.value(), "binding the control socket " + path);
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0) {
      created = true;
      device = st.st_dev;
      inode = st.st_ino;
    }
    acceptor.listen(asio::socket_base::max_listen_connections, ec);
    if (ec) {
      error_code ignored;
      acceptor.close(ignored);
      unlink_socket();
      return system_failure(ec.value(), "listening on the control socket " + path);
    }
    if (::chmod(path.c_str(), mode) != 0) {
      spdlog::warn("control socket {}: cannot set mode {:o}: {}", path, mode,
                   std::system_category().message(errno));
    }
    set_group(path);
    return ok_status();
  }

  static Status system_failure(int error, const std::string& doing) {
    std::string message = doing + ": " + std::system_category().message(error);
    if (error == EACCES || error == EPERM) return permission_denied(std::move(message));
    if (error == EADDRINUSE) return failed_precondition(std::move(message));
    if (error == ENOENT || error == ENOTDIR) return failed_precondition(std::move(message));
    return unavailable(std::move(message));
  }

  // A socket file left by an oddd that is gone is replaced; one somebody answers on is not.
  static Status clear_stale(const std::string& path) {
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return ok_status();
      return system_failure(errno, "checking the control socket " + path);
    }
    if (!S_ISSOCK(st.st_mode)) {
      return failed_precondition(path + " exists and is not a socket; remove it or configure " +
                                 "another control socket path");
    }
    const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (probe < 0) return system_failure(errno, "probing the control socket " + path);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::copy(path.begin(), path.end(), address.sun_path);
    const int rc = ::connect(probe, reinterpret_cast<const sockaddr*>(&address), sizeof address);
    const int error = rc == 0 ? 0 : errno;
    ::close(probe);
    // EAGAIN: a full backlog, so somebody listens.
    if (rc == 0 || error == EAGAIN || error == EINPROGRESS) {
      return failed_precondition("another oddd is already listening on " + path);
    }
    if (error != ECONNREFUSED) return system_failure(error, "probing the control socket " + path);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return system_failure(errno, "removing the stale control socket " + path);
    }
    spdlog::info("control socket {}: replaced a stale socket nobody listened on", path);
    return ok_status();
  }

  void set_group(const std::string& path) {
    const std::string& group = core.options.socket_group;
    if (group.empty()) return;
    std::vector<char> buffer(16384);
    ::group entry{};
    ::group* found = nullptr;
    const int rc = ::getgrnam_r(group.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (rc != 0 || found == nullptr) {
      spdlog::warn("control socket {}: group '{}' does not exist; the socket keeps group {}", path,
                   group, ::getegid());
      return;
    }
    if (::chown(path.c_str(), static_cast<uid_t>(-1), found->gr_gid) != 0) {
      spdlog::warn("control socket {}: cannot give it to group '{}': {}", path, group,
                   std::system_category().message(errno));
    }
  }

  Status adopt(int fd) {
    int listening = 0;
    socklen_t length = sizeof listening;
    if (::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) != 0 || listening == 0) {
      return invalid_argument("file descriptor " + std::to_string(fd) +
                              " is not a listening socket");
    }
    sockaddr_un address{};
    socklen_t address_length = sizeof address;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &address_length) != 0 ||
        address.sun_family != AF_UNIX) {
      return invalid_argument("file descriptor " + std::to_string(fd) + " is not a Unix socket");
    }
    error_code ec;
    acceptor.assign(asio::local::stream_protocol(), fd, ec);
    if (ec) {
      return invalid_argument("adopting file descriptor " + std::to_string(fd) + ": " +
                              ec.message());
    }
    if (address_length > offsetof(sockaddr_un, sun_path) && address.sun_path[0] != '\0') {
      core.options.socket_path = address.sun_path;
    }
    return ok_status();
  }

  asio::awaitable<void> run() {
    while (!core.stopping) {
      auto [ec, socket] = co_await acceptor.async_accept(asio::as_tuple(asio::use_awaitable));
      if (core.stopping) break;
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) break;
      if (ec) {
        // Out of descriptors, most likely: let connections end before trying again.
        spdlog::warn("control socket {}: accept failed: {}", core.options.socket_path,
                     ec.message());
        retry.expires_after(Millis(100));
        auto [waited] = co_await retry.async_wait(asio::as_tuple(asio::use_awaitable));
        if (waited == asio::error::operation_aborted) break;
        continue;
      }
      start(std::move(socket));
    }
    stop();
    co_await asio::this_coro::reset_cancellation_state();
    while (!connections.empty()) {
      co_await drained.async_wait(asio::as_tuple(asio::use_awaitable));
    }
  }

  void start(UnixSocket socket) {
    const bool refuse = serving >= core.options.max_connections;
    if (refuse && refusing >= core.options.max_connections) {
      refuse_now(socket);
      return;
    }
    const std::uint64_t id = next_id++;
    auto& signal =
        *connections.emplace(id, std::make_unique<asio::cancellation_signal>()).first->second;
    ++(refuse ? refusing : serving);
    auto self = shared_from_this();
    auto done = [self, id, refuse](std::exception_ptr) {
      // Later, once co_spawn is done with the signal's slot.
      asio::post(self->core.executor, [self, id, refuse] {
        self->connections.erase(id);
        --(refuse ? self->refusing : self->serving);
        self->drained.cancel();
      });
    };
    if (refuse) {
      asio::co_spawn(core.executor, refuse_connection(self, std::move(socket)),
                     asio::bind_cancellation_slot(signal.slot(), std::move(done)));
    } else {
      asio::co_spawn(core.executor, serve(self, std::move(socket)),
                     asio::bind_cancellation_slot(signal.slot(), std::move(done)));
    }
  }

  std::string busy_response() const {
    const Status busy =
        unavailable("oddd is serving its maximum of " +
                    std::to_string(core.options.max_connections) + " connections; try again later");
    return error_response(503, error_body(busy, ""), true, "");
  }

  // Beyond even the connections being refused politely: one non-blocking write, then close.
  void refuse_now(UnixSocket& socket) {
    error_code ignored;
    socket.non_blocking(true, ignored);
    const std::string response = busy_response();
    socket.write_some(asio::buffer(response), ignored);
    socket.close(ignored);
  }

  static asio::awaitable<void> refuse_connection(std::shared_ptr<Impl> self, UnixSocket socket) {
    Peer peer(std::move(socket), self->buffer_limit());
    try {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(self->core.options.max_header_bytes));
      parser.eager(false);
      const Millis timeout = std::min(kRefuseTimeout, self->core.options.idle_timeout);
      co_await read_message(peer, parser, true, timeout);
      if (!co_await write_all(peer, self->busy_response(), timeout)) co_await linger_close(peer);
    } catch (const std::exception&) {
      // Cancelled by stop(): the connection just closes.
    }
    error_code ignored;
    peer.socket.close(ignored);
  }

  static asio::awaitable<void> serve(std::shared_ptr<Impl> self, UnixSocket socket) {
    Peer peer(std::move(socket), self->buffer_limit());
    peer.caller = peer_caller(peer.socket);
    try {
      co_await self->serve_requests(peer);
    } catch (const std::exception& e) {
      if (!self->core.stopping) {
        spdlog::error("control socket: a connection of pid {} failed: {}", peer.caller.pid,
                      e.what());
      }
    }
    error_code ignored;
    peer.socket.close(ignored);
  }

  // An error answer to a request that is not read to its end, after which the connection closes.
  asio::awaitable<void> refuse_request(Peer& peer, unsigned http_status, const Status& status,
                                       std::string allow) {
    const std::string out =
        error_response(http_status, error_body(status, ""), true, std::move(allow));
    if (!co_await write_all(peer, out, core.options.idle_timeout)) co_await linger_close(peer);
  }

  asio::awaitable<void> serve_requests(Peer& peer) {
    const auto& options = core.options;
    while (!core.stopping) {
      http::request_parser<http::string_body> parser;
      parser.header_limit(static_cast<std::uint32_t>(options.max_header_bytes));
      parser.body_limit(static_cast<std::uint64_t>(options.max_body_bytes));
      parser.eager(false);
      auto ec = co_await read_message(peer, parser, true, options.idle_timeout);
      if (!ec && !parser.is_header_done()) ec = http::error::partial_message;
      if (ec) {
        co_await refuse_for(peer, ec);
        co_return;
      }
      auto& request = parser.get();
      auto routed = route(request.method_string(), request.target());
      const bool has_body =
          parser.chunked() || (parser.content_length() && *parser.content_length() > 0);
      if (!routed) {
        const Rejection& rejection = routed.error();
        const bool close = has_body || !parser.keep_alive();
        const std::string out =
            error_response(rejection.http_status, json_text(proto::encode(rejection.error)), close,
                           rejection.allow);
        if (co_await write_all(peer, out, options.idle_timeout)) co_return;
        if (!close) continue;
        co_await linger_close(peer);
        co_return;
      }
      if (has_body && iequals(trim(request[http::field::expect]), "100-continue")) {
        if (co_await write_all(peer, "HTTP/1.1 100 Continue\r\n\r\n", options.idle_timeout)) {
          co_return;
        }
      }
      parser.eager(true);
      ec = co_await read_message(peer, parser, false, options.idle_timeout);
      if (ec) {
        co_await refuse_for(peer, ec);
        co_return;
      }
      const RouteMatch& match = *routed;
      Exchange ex{core, peer, match, request[http::field::content_type], request.body()};
      ex.chunked = request.version() >= 11;
      ex.keep_alive = parser.keep_alive();
      co_await entry_of(match.route).handler(ex);
      if (!ex.keep_alive) co_return;
    }
  }

  // The answer to a request that could not be read: 431, 413, 400; nothing for a closed or
  // silent connection.
  asio::awaitable<void> refuse_for(Peer& peer, error_code ec) {
    const auto& options = core.options;
    if (ec == http::error::header_limit) {
      const Status status = invalid_argument("the request header is larger than " +
                                             std::to_string(options.max_header_bytes) + " bytes");
      co_await refuse_request(peer, 431, status, std::string());
    } else if (ec == http::error::body_limit) {
      const Status status = invalid_argument("the request body is larger than " +
                                             std::to_string(options.max_body_bytes) + " bytes");
      co_await refuse_request(peer, 413, status, std::string());
    } else if (ec.category() == http::make_error_code(http::error::need_more).category() &&
               ec != http::error::partial_message) {
      const Status status = invalid_argument("malformed HTTP request: " + ec.message());
      co_await refuse_request(peer, 400, status, std::string());
    }
  }
};

ControlServer::ControlServer(asio::any_io_executor executor, ControlService& service,
                             ControlServerOptions options)
    : impl_(std::make_shared<Impl>(std::move(executor), service, std::move(options))) {}

ControlServer::~ControlServer() { impl_->stop(); }

Status ControlServer::listen() { return impl_->listen(); }

Status ControlServer::adopt(int fd) { return impl_->adopt(fd); }

asio::awaitable<void> ControlServer::run() {
  auto impl = impl_;
  co_await impl->run();
}

void ControlServer::stop() { impl_->stop(); }

void ControlServer::set_limits(std::size_t max_connections, std::size_t max_header_bytes,
                               std::size_t max_body_bytes) {
  impl_->core.options.max_connections = max_connections;
  impl_->core.options.max_header_bytes = max_header_bytes;
  impl_->core.options.max_body_bytes = max_body_bytes;
}

const std::string& ControlServer::socket_path() const { return impl_->core.options.socket_path; }

std::size_t ControlServer::connections() const { return impl_->connections.size(); }

}  // namespace odd::daemon
