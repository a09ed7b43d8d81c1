// The odd side of the SSH benchmarks (bench/ssh.sh): sshx exec on a pooled session, a fan-out
// over several hosts, SFTP transfers, and exec steps timed inside oddd. One JSON line per run.
//
//   odd_bench_ssh exec [--n N]                  connect through a Pool, then N sequential execs
//                                               of `true`, each timed from acquire to exit status
//   odd_bench_ssh fanout --hosts H1,H2,.. [--n N] [--inflight K]
//                                               N execs of `true` spread round-robin over one pool
//                                               per host, K in flight; a host is an sshd.sh dir or
//                                               ADDR:PORT (with the connection flags below)
//   odd_bench_ssh put FILE REMOTE [--buffer B]  sshx::upload of one file on a connected session
//   odd_bench_ssh get REMOTE FILE [--buffer B]  sshx::download of one file
//   odd_bench_ssh cipher [--mib M]              AES-128-CTR through OpenSSL's EVP over M MiB (64)
//                                               in 16-byte calls (one per block, as libssh2 1.10
//                                               decrypts) and in 32 KiB calls (a packet at once)
//   odd_bench_ssh steps SOCKET SPEC             submit SPEC to oddd at SOCKET and time each step
//                                               from the arrival of its step.start event to the
//                                               arrival of its step.end event; the statistics
//                                               leave out the first and the last step
//
// Connection (exec, put, get, and fanout hosts given as ADDR:PORT): --dir DIR (a
// tests/support/sshd.sh dir: its env file, id_ed25519 and known_hosts; default $ODD_SSHD_DIR),
// else $ODD_SSHD_ADDR, $ODD_SSHD_PORT, $ODD_SSHD_USER; --address, --port, --user, --identity and
// --known-hosts override single fields.

#include <libssh2.h>
#include <openssl/evp.h>
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/this_coro.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "oddc/client.hpp"
#include "sshx/ctr_provider.hpp"
#include "sshx/exec.hpp"
#include "sshx/pool.hpp"
#include "sshx/session.hpp"
#include "sshx/sftp.hpp"

namespace {

namespace asio = boost::asio;
namespace fs = std::filesystem;
using odd::Status;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kAcquireTimeout{60};

double ms_since(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// User and system CPU time of this process so far, in seconds.
double cpu_seconds() {
  rusage usage{};
  ::getrusage(RUSAGE_SELF, &usage);
  const auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6;
  };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

[[noreturn]] void fail(const Status& status) {
  std::fprintf(stderr, "odd_bench_ssh: %s\n", status.message().c_str());
  std::exit(1);
}

[[noreturn]] void usage(const std::string& why) {
  std::fprintf(stderr,
               "odd_bench_ssh: %s\nusage: odd_bench_ssh exec [--n N] | fanout --hosts H,.. [--n N] "
               "[--inflight K] | put FILE REMOTE [--buffer B] | get REMOTE FILE [--buffer B] | "
               "cipher [--mib M] | steps SOCKET SPEC\n  connection: --dir DIR | --address A --port "
               "P --user U "
               "--identity KEY --known-hosts FILE (defaults from $ODD_SSHD_*)\n",
               why.c_str());
  std::exit(2);
}

std::string env_or(const char* name, std::string fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::string(value) : fallback;
}

// KEY=VALUE lines of an sshd.sh dir's env file.
std::map<std::string, std::string> read_env_file(const fs::path& path) {
  std::map<std::string, std::string> values;
  std::ifstream in(path);
  if (!in) fail(odd::not_found("cannot read " + path.string() + " (an sshd.sh dir's env file)"));
  std::string line;
  while (std::getline(in, line)) {
    const auto eq = line.find('=');
    if (eq != std::string::npos) values[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return values;
}

std::uint16_t parse_port(const std::string& text) {
  const int port = std::atoi(text.c_str());
  if (port <= 0 || port > 65535) usage("not a port: \"" + text + "\"");
  return static_cast<std::uint16_t>(port);
}

odd::sshx::SessionOptions options_from_dir(const fs::path& dir) {
  auto env = read_env_file(dir / "env");
  odd::sshx::SessionOptions options;
  options.name = dir.filename().string();
  options.address = env["ODD_SSHD_ADDR"];
  options.port = parse_port(env["ODD_SSHD_PORT"]);
  options.user = env["ODD_SSHD_USER"];
  options.identity = dir / "id_ed25519";
  options.known_hosts = dir / "known_hosts";
  return options;
}

struct Args {
  std::vector<std::string> positional;
  std::map<std::string, std::string> flags;

  std::string flag(const std::string& name, std::string fallback) const {
    auto it = flags.find(name);
    return it == flags.end() ? fallback : it->second;
  }
  int number(const std::string& name, int fallback) const {
    auto it = flags.find(name);
    if (it == flags.end()) return fallback;
    const int value = std::atoi(it->second.c_str());
    if (value <= 0) usage("--" + name + " wants a positive number, got \"" + it->second + "\"");
    return value;
  }
};

Args parse_args(int argc, char** argv) {
  Args args;
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--", 0) == 0) {
      if (i + 1 >= argc) usage(arg + " needs a value");
      args.flags[arg.substr(2)] = argv[++i];
    } else {
      args.positional.push_back(arg);
    }
  }
  return args;
}

// An sshd.sh dir (--dir, else $ODD_SSHD_DIR), else $ODD_SSHD_ADDR, _PORT and _USER; then the
// flags override single fields.
odd::sshx::SessionOptions connection(const Args& args) {
  odd::sshx::SessionOptions options;
  const std::string dir = args.flag("dir", env_or("ODD_SSHD_DIR", ""));
  if (!dir.empty()) {
    options = options_from_dir(dir);
  } else {
    options.name = "bench-host";
    options.address = env_or("ODD_SSHD_ADDR", "");
    options.port = parse_port(env_or("ODD_SSHD_PORT", "22"));
    options.user = env_or("ODD_SSHD_USER", "");
  }
  options.address = args.flag("address", options.address);
  const std::string port = args.flag("port", "");
  if (!port.empty()) options.port = parse_port(port);
  options.user = args.flag("user", options.user);
  const std::string identity = args.flag("identity", "");
  if (!identity.empty()) options.identity = identity;
  const std::string known_hosts = args.flag("known-hosts", "");
  if (!known_hosts.empty()) options.known_hosts = known_hosts;
  if (options.address.empty() || options.user.empty() || !options.identity ||
      options.known_hosts.empty()) {
    usage("no SSH host: pass --dir DIR or --address, --user, --identity and --known-hosts");
  }
  return options;
}

template <class Body>
void run(asio::io_context& io, Body body) {
  std::exception_ptr error;
  asio::co_spawn(io, std::move(body), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
}

// One exec of `true` on a lease of `pool`; its exit status must be 0.
asio::awaitable<void> exec_true(odd::sshx::Pool& pool) {
  auto lease = co_await pool.acquire(Clock::now() + kAcquireTimeout);
  if (!lease) fail(lease.error());
  odd::sshx::ExecRequest request;
  request.command = "true";
  auto exited = co_await odd::sshx::exec(lease->session(), std::move(request),
                                         [](odd::sshx::ExecStream, std::string_view) {});
  if (!exited) fail(exited.error());
  if (exited->exit_code != 0) {
    fail(odd::internal_error("`true` exited " + std::to_string(exited->exit_code)));
  }
}

// What the session negotiated, so the peers' algorithms can be compared.
nlohmann::json methods(const odd::sshx::Session& session) {
  auto method = [&](int which) {
    const char* name = libssh2_session_methods(session.raw(), which);
    return std::string(name != nullptr ? name : "?");
  };
  return {{"kex", method(LIBSSH2_METHOD_KEX)},
          {"cipher", method(LIBSSH2_METHOD_CRYPT_CS)},
          {"mac", method(LIBSSH2_METHOD_MAC_CS)}};
}

nlohmann::json spread(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  double sum = 0;
  for (double m : ms) sum += m;
  const std::size_t n = ms.size();
  if (n == 0) return {{"n", 0}};
  return {{"n", n},
          {"median_ms", n % 2 ? ms[n / 2] : (ms[n / 2 - 1] + ms[n / 2]) / 2},
          {"p90_ms", ms[std::min(n - 1, n * 9 / 10)]},
          {"mean_ms", sum / static_cast<double>(n)},
          {"min_ms", ms.front()},
          {"max_ms", ms.back()}};
}

int bench_exec(const Args& args) {
  const int n = args.number("n", 200);
  asio::io_context io;
  auto pool = odd::sshx::Pool::create(io.get_executor(), connection(args), {});
  double connect_ms = 0;
  double first_ms = 0;
  nlohmann::json negotiated;
  std::vector<double> per_exec;
  run(io, [&]() -> asio::awaitable<void> {
    auto start = Clock::now();
    {
      auto lease = co_await pool->acquire(Clock::now() + kAcquireTimeout);
      if (!lease) fail(lease.error());
      negotiated = methods(*lease->session());
    }
    connect_ms = ms_since(start);
    // The first exec on a new session is reported apart: the figure is a warm pool's.
    start = Clock::now();
    co_await exec_true(*pool);
    first_ms = ms_since(start);
    for (int i = 0; i < n; ++i) {
      auto one = Clock::now();
      co_await exec_true(*pool);
      per_exec.push_back(ms_since(one));
    }
    pool->close();
  });
  nlohmann::json out = spread(per_exec);
  out["bench"] = "exec";
  out["connect_ms"] = connect_ms;
  out["first_exec_ms"] = first_ms;
  out["methods"] = negotiated;
  out["per_exec_ms"] = per_exec;
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, sep)) {
    if (!part.empty()) parts.push_back(part);
  }
  return parts;
}

int bench_fanout(const Args& args) {
  const int n = args.number("n", 100);
  const int inflight = args.number("inflight", 8);
  const auto hosts = split(args.flag("hosts", ""), ',');
  if (hosts.empty()) usage("fanout needs --hosts H1,H2,..");
  asio::io_context io;
  std::vector<std::shared_ptr<odd::sshx::Pool>> pools;
  for (const std::string& host : hosts) {
    odd::sshx::SessionOptions options;
    if (fs::is_directory(host)) {
      options = options_from_dir(host);
    } else {
      const auto colon = host.rfind(':');
      if (colon == std::string::npos) usage("a host is an sshd.sh dir or ADDR:PORT: " + host);
      options = connection(args);
      options.name = host;
      options.address = host.substr(0, colon);
      options.port = parse_port(host.substr(colon + 1));
    }
    pools.push_back(odd::sshx::Pool::create(io.get_executor(), std::move(options), {}));
  }
  int next = 0;
  int running = inflight;
  Clock::time_point start;
  double wall_s = 0;
  // One io.run() for all of it: the pools' timers keep the context busy until they are closed.
  run(io, [&]() -> asio::awaitable<void> {
    // Every pool connected and warm before the clock starts, as the peers' ControlMasters are.
    for (auto& pool : pools) co_await exec_true(*pool);
    start = Clock::now();
    for (int w = 0; w < inflight; ++w) {
      asio::co_spawn(
          io,
          [&]() -> asio::awaitable<void> {
            while (next < n) {
              const auto k = static_cast<std::size_t>(next++);
              co_await exec_true(*pools[k % pools.size()]);
            }
          },
          [&](std::exception_ptr e) {
            if (e) std::rethrow_exception(e);
            if (--running > 0) return;
            wall_s = ms_since(start) / 1000;
            for (auto& pool : pools) pool->close();
          });
    }
  });
  nlohmann::json out = {
      {"bench", "fanout"},    {"hosts", hosts.size()}, {"n", n},
      {"inflight", inflight}, {"wall_s", wall_s},      {"execs_per_s", n / wall_s}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

int bench_transfer(const Args& args, bool put) {
  if (args.positional.size() != 2) usage(put ? "put FILE REMOTE" : "get REMOTE FILE");
  odd::sshx::TransferOptions transfer;
  transfer.buffer_bytes = static_cast<std::size_t>(args.number("buffer", 1 << 20));
  asio::io_context io;
  auto pool = odd::sshx::Pool::create(io.get_executor(), connection(args), {});
  odd::sshx::TransferStats stats;
  double wall_s = 0;
  double cpu_s = 0;
  nlohmann::json negotiated;
  run(io, [&]() -> asio::awaitable<void> {
    auto lease = co_await pool->acquire(Clock::now() + kAcquireTimeout);
    if (!lease) fail(lease.error());
    negotiated = methods(*lease->session());
    const auto start = Clock::now();
    const double cpu_start = cpu_seconds();
    if (put) {
      auto sent = co_await odd::sshx::upload(lease->session(), args.positional[0],
                                             args.positional[1], std::nullopt, transfer);
      if (!sent) fail(sent.error());
      stats = *sent;
    } else {
      const fs::path local = fs::absolute(args.positional[1]);
      auto got =
          co_await odd::sshx::download(lease->session(), args.positional[0], local.parent_path(),
                                       local.filename().string(), transfer);
      if (!got) fail(got.error());
      stats = *got;
    }
    wall_s = ms_since(start) / 1000;
    cpu_s = cpu_seconds() - cpu_start;
    pool->close();
  });
  const double bytes = static_cast<double>(stats.bytes);
  nlohmann::json out = {{"bench", put ? "put" : "get"},
                        {"bytes", stats.bytes},
                        {"buffer_bytes", transfer.buffer_bytes},
                        {"wall_s", wall_s},
                        {"cpu_s", cpu_s},
                        {"mb_per_s", bytes / 1e6 / wall_s},
                        {"methods", negotiated}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// Events are timestamped on arrival here: their own `ts` has one-second resolution. step.start
// is emitted just before a step begins and step.end just after it ends, and both travel the same
// path to this reader, so the difference of their arrivals is the step's time inside the daemon
// up to the jitter of that path.
int bench_steps(const Args& args) {
  if (args.positional.size() != 2) usage("steps SOCKET SPEC");
  std::ifstream spec_in(args.positional[1]);
  if (!spec_in) fail(odd::not_found("cannot read " + args.positional[1]));
  std::stringstream spec_text;
  spec_text << spec_in.rdbuf();
  const nlohmann::json body = {
      {"spec_text", spec_text.str()}, {"workdir", fs::current_path().string()}, {"detach", false}};
  asio::io_context io;
  odd::oddc::Client client(io.get_executor(), args.positional[0]);
  std::map<long, Clock::time_point> started;
  std::map<long, double> step_ms;
  std::map<long, Clock::time_point> ended;
  std::string final_state;
  double wall_s = 0;
  run(io, [&]() -> asio::awaitable<void> {
    const auto submitted = Clock::now();
    auto stream = co_await client.stream("POST", "/v1/runs", body.dump());
    if (!stream) fail(stream.error());
    for (;;) {
      auto line = co_await (*stream)->read_line();
      if (!line) fail(line.error());
      if (!*line) break;
      const auto arrived = Clock::now();
      const auto event = nlohmann::json::parse(**line, nullptr, false);
      if (!event.is_object() || !event.contains("type")) continue;
      const std::string type = event["type"].get<std::string>();
      if (type == "step.start") {
        started[event["index"].get<long>()] = arrived;
      } else if (type == "step.end") {
        const long index = event["index"].get<long>();
        if (event.value("status", "") != "ok") {
          fail(odd::internal_error("step " + std::to_string(index) +
                                   " failed: " + event.value("error", "")));
        }
        ended[index] = arrived;
        step_ms[index] =
            std::chrono::duration<double, std::milli>(arrived - started.at(index)).count();
      } else if (type == "run.state") {
        final_state = event.value("state", "");
      }
    }
    wall_s = ms_since(submitted) / 1000;
  });
  if (final_state != "succeeded") fail(odd::internal_error("the run ended " + final_state));
  // The first step connects the host's pool, and the last one's step.end waits behind the run's
  // final events: the figures are of the steps in between.
  std::vector<double> all;
  for (const auto& [index, ms] : step_ms) all.push_back(ms);
  std::vector<double> middle;
  if (all.size() > 2) middle.assign(all.begin() + 1, all.end() - 1);
  nlohmann::json out = spread(middle);
  out["bench"] = "steps";
  out["steps"] = all.size();
  out["step_ms"] = all;
  // The mean from one step.end to the next over the middle steps: unlike each step's own figure,
  // it cannot be shortened by two events arriving in one read, and it includes the daemon's work
  // between steps.
  if (all.size() > 2) {
    const auto first = ended.begin()->second;
    const auto last = std::prev(ended.end(), 2)->second;
    out["period_ms"] = std::chrono::duration<double, std::milli>(last - first).count() /
                       static_cast<double>(all.size() - 2);
  }
  out["run_wall_s"] = wall_s;
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

// MB/s of AES-128-CTR from `provider` over `data`, fed to EVP_Cipher `call` bytes at a time.
double ctr_rate(std::vector<unsigned char>& data, std::size_t call, const char* provider) {
  const unsigned char key[16] = {1};
  const unsigned char iv[16] = {2};
  const std::string properties = std::string("provider=") + provider;
  EVP_CIPHER* cipher = EVP_CIPHER_fetch(nullptr, "AES-128-CTR", properties.c_str());
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (cipher == nullptr || ctx == nullptr ||
      EVP_CipherInit_ex(ctx, cipher, nullptr, key, iv, 1) != 1) {
    std::fprintf(stderr, "odd_bench_ssh: cannot set up AES-128-CTR\n");
    std::exit(1);
  }
  const auto start = Clock::now();
  for (std::size_t at = 0; at + call <= data.size(); at += call) {
    EVP_Cipher(ctx, data.data() + at, data.data() + at, static_cast<unsigned>(call));
  }
  const double seconds = ms_since(start) / 1000;
  EVP_CIPHER_CTX_free(ctx);
  EVP_CIPHER_free(cipher);
  return static_cast<double>(data.size()) / 1e6 / seconds;
}

int bench_cipher(const Args& args) {
  const auto bytes = static_cast<std::size_t>(args.number("mib", 64)) << 20;
  std::vector<unsigned char> data(bytes, 0x5a);
  const std::string failure = odd::sshx::install_ctr_provider();
  if (!failure.empty()) fail(odd::internal_error("the CTR provider: " + failure));
  ctr_rate(data, 32768, "default");  // warm up: pages, CPU frequency
  nlohmann::json out = {{"bench", "cipher"},
                        {"cipher", "aes128-ctr"},
                        {"bytes", bytes},
                        {"mb_per_s_16", ctr_rate(data, 16, "default")},
                        {"mb_per_s_32k", ctr_rate(data, 32768, "default")},
                        {"mb_per_s_16_odd", ctr_rate(data, 16, odd::sshx::kCtrProviderName)}};
  std::printf("%s\n", out.dump().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) usage("no subcommand");
  const std::string command = argv[1];
  const Args args = parse_args(argc, argv);
  if (command == "exec") return bench_exec(args);
  if (command == "fanout") return bench_fanout(args);
  if (command == "put") return bench_transfer(args, true);
  if (command == "get") return bench_transfer(args, false);
  if (command == "steps") return bench_steps(args);
  if (command == "cipher") return bench_cipher(args);
  usage("unknown subcommand " + command);
}
