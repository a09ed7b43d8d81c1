// The raw-API floor: the least a Docker Engine API client can do for the benchmarked call
// sequences. Blocking POSIX sockets, HTTP/1.1 keep-alive over dockerd's Unix socket, no library.
// odd's engine is held to a ratio of these figures (bench/README.md).
//
//   floor p1 SOCKET IMAGE N        N sequential create/start/wait/logs/remove of `true`
//   floor p2 SOCKET IMAGE N K      the same for N containers, K in flight (K threads)
//   floor logs SOCKET CONTAINER    read and demultiplex the logs of an exited container
//
// SOCKET is dockerd's socket path or unix:// URL. Each prints one JSON line on stdout; any error
// prints "floor: ..." on stderr and exits 1.

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void die(std::string_view message) {
  std::fprintf(stderr, "floor: %.*s\n", static_cast<int>(message.size()), message.data());
  // Other threads may still be inside a request: leave without running static destructors.
  std::_Exit(1);
}

[[noreturn]] void die_errno(std::string_view what) {
  die(std::string(what) + ": " + std::strerror(errno));
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto to_s = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
  };
  return to_s(usage.ru_utime) + to_s(usage.ru_stime);
}

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
           return lower(x) == lower(y);
         });
}

// Receives a response body piece by piece, so a long log never has to fit in memory.
using BodySink = std::function<void(const char* data, std::size_t size)>;

struct Response {
  int status = 0;
  std::string body;  // filled only when no sink was given
};

// One keep-alive HTTP/1.1 connection to dockerd's Unix socket. Not thread-safe: one per thread.
class Connection {
 public:
  // `socket` is a path or a DOCKER_HOST style unix:// URL.
  explicit Connection(std::string_view socket) : buffer_(kBufferSize) {
    if (socket.substr(0, 7) == "unix://") socket.remove_prefix(7);
    std::string socket_path(socket);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (socket_path.size() >= sizeof(address.sun_path)) die("socket path too long: " + socket_path);
    std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
    fd_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) die_errno("socket");
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof(address)) != 0) {
      die_errno("connect " + socket_path);
    }
  }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  ~Connection() { ::close(fd_); }

  // Sends one request and reads the whole response; the body goes to `sink` when given.
  Response request(std::string_view method, std::string_view target, std::string_view body = {},
                   const BodySink& sink = nullptr) {
    std::string head;
    head.reserve(256 + body.size());
    head.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: docker\r\n");
    if (!body.empty()) head.append("Content-Type: application/json\r\n");
    head.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n\r\n");
    head.append(body);
    write_all(head);

    Response response;
    BodySink store = [&response](const char* data, std::size_t size) {
      response.body.append(data, size);
    };
    const BodySink& out = sink ? sink : store;

    std::string_view status_line = read_line();
    if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/") {
      die("malformed status line from dockerd");
    }
    response.status = std::atoi(std::string(status_line.substr(9, 3)).c_str());

    bool chunked = false;
    bool close_delimited = true;
    std::size_t content_length = 0;
    for (;;) {
      std::string_view line = read_line();
      if (line.empty()) break;
      std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view name = line.substr(0, colon);
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) {
        value.remove_prefix(1);
      }
      if (iequals(name, "Content-Length")) {
        content_length = std::strtoull(std::string(value).c_str(), nullptr, 10);
        close_delimited = false;
      } else if (iequals(name, "Transfer-Encoding") && value.find("chunked") != value.npos) {
        chunked = true;
        close_delimited = false;
      }
    }
    bool no_body = response.status == 204 || response.status == 304 ||
                   (response.status >= 100 && response.status < 200) || method == "HEAD";
    if (no_body) return response;
    if (chunked) {
      for (;;) {
        std::string_view size_line = read_line();
        std::size_t size = std::strtoull(std::string(size_line).c_str(), nullptr, 16);
        if (size == 0) {
          while (!read_line().empty()) {
          }
          break;
        }
        read_body(size, out);
        if (!read_line().empty()) die("malformed chunk from dockerd");
      }
    } else if (close_delimited) {
      read_until_close(out);
    } else {
      read_body(content_length, out);
    }
    return response;
  }

 private:
  static constexpr std::size_t kBufferSize = 256 * 1024;

  void write_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        die_errno("send");
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
  }

  // Reads more bytes after the unread ones; false at end of stream.
  bool fill() {
    if (begin_ > 0) {
      std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
      end_ -= begin_;
      begin_ = 0;
    }
    if (end_ == buffer_.size()) die("header line too long");
    for (;;) {
      ssize_t n = ::recv(fd_, buffer_.data() + end_, buffer_.size() - end_, 0);
      if (n < 0) {
        if (errno == EINTR) continue;
        die_errno("recv");
      }
      end_ += static_cast<std::size_t>(n);
      return n > 0;
    }
  }

  // A line without its CRLF; valid until the next read.
  std::string_view read_line() {
    for (;;) {
      std::string_view unread(buffer_.data() + begin_, end_ - begin_);
      std::size_t eol = unread.find("\r\n");
      if (eol != std::string_view::npos) {
        begin_ += eol + 2;
        return unread.substr(0, eol);
      }
      if (!fill()) die("dockerd closed the connection mid-response");
    }
  }

  void read_body(std::size_t size, const BodySink& sink) {
    while (size > 0) {
      if (begin_ == end_) {
        begin_ = end_ = 0;
        if (!fill()) die("dockerd closed the connection mid-body");
      }
      std::size_t n = std::min(size, end_ - begin_);
      sink(buffer_.data() + begin_, n);
      begin_ += n;
      size -= n;
    }
  }

  void read_until_close(const BodySink& sink) {
    for (;;) {
      if (begin_ < end_) sink(buffer_.data() + begin_, end_ - begin_);
      begin_ = end_ = 0;
      if (!fill()) return;
    }
  }

  int fd_ = -1;
  std::vector<char> buffer_;
  std::size_t begin_ = 0;
  std::size_t end_ = 0;
};

// Splits dockerd's multiplexed stream (8-byte header: stream, 3 zero bytes, big-endian size)
// into per-stream byte counts; headers may be cut anywhere by the transport.
class DemuxCounter {
 public:
  void feed(const char* data, std::size_t size) {
    while (size > 0) {
      if (payload_left_ > 0) {
        std::size_t n = std::min(size, payload_left_);
        (stream_ == 2 ? stderr_bytes_ : stdout_bytes_) += n;
        payload_left_ -= n;
        data += n;
        size -= n;
        continue;
      }
      std::size_t n = std::min(size, header_.size() - header_fill_);
      std::memcpy(header_.data() + header_fill_, data, n);
      header_fill_ += n;
      data += n;
      size -= n;
      if (header_fill_ == header_.size()) {
        stream_ = header_[0];
        payload_left_ = (std::size_t{header_[4]} << 24) | (std::size_t{header_[5]} << 16) |
                        (std::size_t{header_[6]} << 8) | std::size_t{header_[7]};
        header_fill_ = 0;
      }
    }
  }
  std::uint64_t stdout_bytes() const { return stdout_bytes_; }
  std::uint64_t stderr_bytes() const { return stderr_bytes_; }
  bool mid_frame() const { return header_fill_ != 0 || payload_left_ != 0; }

 private:
  std::array<std::uint8_t, 8> header_{};
  std::size_t header_fill_ = 0;
  std::size_t payload_left_ = 0;
  std::uint8_t stream_ = 1;
  std::uint64_t stdout_bytes_ = 0;
  std::uint64_t stderr_bytes_ = 0;
};

std::string json_escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out.push_back('\\');
    if (static_cast<unsigned char>(c) >= 0x20) out.push_back(c);
  }
  return out;
}

void expect_status(const Response& response, int expected, std::string_view what) {
  if (response.status != expected) {
    die(std::string(what) + ": HTTP " + std::to_string(response.status) + ": " + response.body);
  }
}

// One container of `true` through the whole sequence a test runner needs.
void run_one(Connection& connection, const std::string& image) {
  std::string create_body = R"({"Image":")" + json_escape(image) +
                            R"(","Cmd":["true"],"HostConfig":{"NetworkMode":"none"}})";
  Response created = connection.request("POST", "/v1.41/containers/create", create_body);
  expect_status(created, 201, "create");
  constexpr std::string_view kIdKey = R"("Id":")";
  std::size_t at = created.body.find(kIdKey);
  if (at == std::string::npos) die("create: no Id in " + created.body);
  at += kIdKey.size();
  std::string id = created.body.substr(at, created.body.find('"', at) - at);
  std::string base = "/v1.41/containers/" + id;

  expect_status(connection.request("POST", base + "/start"), 204, "start");
  Response waited = connection.request("POST", base + "/wait");
  expect_status(waited, 200, "wait");
  if (waited.body.find(R"("StatusCode":0)") == std::string::npos) {
    die("wait: container did not exit 0: " + waited.body);
  }
  // Read in full like a runner would, but there is nothing in it to keep.
  Response logs = connection.request("GET", base + "/logs?stdout=1&stderr=1", {},
                                     [](const char*, std::size_t) {});
  expect_status(logs, 200, "logs");
  expect_status(connection.request("DELETE", base + "?force=1"), 204, "remove");
}

std::size_t parse_count(const char* text, std::string_view what) {
  char* end = nullptr;
  unsigned long long value = std::strtoull(text, &end, 10);
  if (end == text || *end != '\0' || value == 0) {
    die(std::string(what) + " must be a positive number");
  }
  return static_cast<std::size_t>(value);
}

int bench_p1(const std::string& socket_path, const std::string& image, std::size_t runs) {
  Connection connection(socket_path);
  std::vector<double> per_run_ms;
  per_run_ms.reserve(runs);
  Clock::time_point start = Clock::now();
  for (std::size_t i = 0; i < runs; ++i) {
    Clock::time_point run_start = Clock::now();
    run_one(connection, image);
    per_run_ms.push_back(seconds_since(run_start) * 1e3);
  }
  double total_s = seconds_since(start);
  std::vector<double> sorted = per_run_ms;
  std::sort(sorted.begin(), sorted.end());
  std::size_t mid = sorted.size() / 2;
  double median = sorted.size() % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;

  std::string runs_json;
  for (double ms : per_run_ms) {
    char item[32];
    std::snprintf(item, sizeof(item), "%s%.2f", runs_json.empty() ? "" : ",", ms);
    runs_json += item;
  }
  std::printf(R"({"bench":"p1","runs":%zu,"total_s":%.3f,"per_run_ms":[%s],"median_ms":%.2f})"
              "\n",
              runs, total_s, runs_json.c_str(), median);
  return 0;
}

int bench_p2(const std::string& socket_path, const std::string& image, std::size_t containers,
             std::size_t in_flight) {
  in_flight = std::min(in_flight, containers);
  // Connect before the clock starts: the figure is the container work, not K connects.
  std::vector<std::unique_ptr<Connection>> connections;
  for (std::size_t i = 0; i < in_flight; ++i) {
    connections.push_back(std::make_unique<Connection>(socket_path));
  }
  std::atomic<std::size_t> next{0};
  Clock::time_point start = Clock::now();
  {
    std::vector<std::jthread> workers;
    for (std::size_t i = 0; i < in_flight; ++i) {
      workers.emplace_back([&, i] {
        while (next.fetch_add(1) < containers) run_one(*connections[i], image);
      });
    }
  }
  double wall_s = seconds_since(start);
  std::printf(R"({"bench":"p2","containers":%zu,"in_flight":%zu,"wall_s":%.3f})"
              "\n",
              containers, in_flight, wall_s);
  return 0;
}

int bench_logs(const std::string& socket_path, const std::string& container) {
  Connection connection(socket_path);
  DemuxCounter counter;
  double cpu_start = cpu_seconds();
  Clock::time_point start = Clock::now();
  Response response = connection.request(
      "GET", "/v1.41/containers/" + container + "/logs?stdout=1&stderr=1", {},
      [&counter](const char* data, std::size_t size) { counter.feed(data, size); });
  double wall_s = seconds_since(start);
  double cpu_s = cpu_seconds() - cpu_start;
  if (response.status != 200) die("logs: HTTP " + std::to_string(response.status));
  if (counter.mid_frame()) die("logs: stream ended inside a frame");
  std::printf(R"({"stdout_bytes":%llu,"stderr_bytes":%llu,"wall_s":%.3f,"cpu_s":%.3f})"
              "\n",
              static_cast<unsigned long long>(counter.stdout_bytes()),
              static_cast<unsigned long long>(counter.stderr_bytes()), wall_s, cpu_s);
  return 0;
}

constexpr const char* kUsage =
    "usage: floor p1 SOCKET IMAGE N\n"
    "       floor p2 SOCKET IMAGE N K\n"
    "       floor logs SOCKET CONTAINER\n";

[[noreturn]] void usage() {
  std::fputs(kUsage, stderr);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty()) usage();
  const std::string& command = args[0];
  if (command == "p1" && args.size() == 4) {
    return bench_p1(args[1], args[2], parse_count(argv[4], "N"));
  }
  if (command == "p2" && args.size() == 5) {
    return bench_p2(args[1], args[2], parse_count(argv[4], "N"), parse_count(argv[5], "K"));
  }
  if (command == "logs" && args.size() == 3) return bench_logs(args[1], args[2]);
  usage();
}
