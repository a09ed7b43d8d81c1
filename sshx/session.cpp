#include "sshx/session.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

#include "sshx/ctr_provider.hpp"
#include "sshx/keys.hpp"

namespace odd::sshx {

using namespace boost::asio::experimental::awaitable_operators;
using tcp = asio::ip::tcp;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

void init_libssh2_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Without it transfers are slower but correct; oddd reports why at start.
    install_ctr_provider();
    libssh2_init(0);
  });
}

std::string base64(const unsigned char* data, std::size_t size) {
  std::string out(4 * ((size + 2) / 3) + 1, '\0');
  const int n =
      EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(size));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

struct KeyType {
  int hostkey_type;
  int knownhost_bits;
  const char* name;
};

constexpr KeyType kKeyTypes[] = {
    {LIBSSH2_HOSTKEY_TYPE_ED25519, LIBSSH2_KNOWNHOST_KEY_ED25519, "ssh-ed25519"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_256, LIBSSH2_KNOWNHOST_KEY_ECDSA_256, "ecdsa-sha2-nistp256"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_384, LIBSSH2_KNOWNHOST_KEY_ECDSA_384, "ecdsa-sha2-nistp384"},
    {LIBSSH2_HOSTKEY_TYPE_ECDSA_521, LIBSSH2_KNOWNHOST_KEY_ECDSA_521, "ecdsa-sha2-nistp521"},
    {LIBSSH2_HOSTKEY_TYPE_RSA, LIBSSH2_KNOWNHOST_KEY_SSHRSA, "ssh-rsa"},
};

const KeyType* key_type_of(int hostkey_type) {
  for (const KeyType& k : kKeyTypes) {
    if (k.hostkey_type == hostkey_type) return &k;
  }
  return nullptr;
}

// The key types known_hosts lists for `host` (any entry form), in file order: the host key
// algorithms to ask the server for first, so it offers the key we can check (OpenSSH does the
// same).
std::vector<std::string> known_key_types(LIBSSH2_KNOWNHOSTS* hosts, const std::string& host,
                                         std::uint16_t port) {
  std::vector<std::string> types;
  const std::string bracketed = "[" + host + "]:" + std::to_string(port);
  libssh2_knownhost* entry = nullptr;
  while (libssh2_knownhost_get(hosts, &entry, entry) == 0) {
    if (entry->name == nullptr) continue;  // hashed: cannot tell without the key
    std::string_view names(entry->name);
    bool match = false;
    std::size_t start = 0;
    while (start <= names.size()) {
      std::size_t comma = names.find(',', start);
      std::string_view one = names.substr(start, comma - start);
      if (one == bracketed || (port == 22 && one == host)) match = true;
      if (comma == std::string_view::npos) break;
      start = comma + 1;
    }
    if (!match) continue;
    for (const KeyType& k : kKeyTypes) {
      if ((entry->typemask & LIBSSH2_KNOWNHOST_KEY_MASK) == k.knownhost_bits &&
          std::find(types.begin(), types.end(), k.name) == types.end()) {
        types.emplace_back(k.name);
      }
    }
  }
  return types;
}

}  // namespace

std::string describe_host(const SessionOptions& options) {
  std::string name = options.name.empty() ? options.address : options.name;
  return name + " (" + options.address + ":" + std::to_string(options.port) + ")";
}

struct Session::Driver {
  explicit Driver(asio::any_io_executor executor)
      : socket(executor),
        kick(executor, std::chrono::steady_clock::time_point::max()),
        keepalive(executor) {}

  struct Waiter {
    asio::steady_timer* timer;
    bool woken = false;
  };

  tcp::socket socket;
  asio::steady_timer kick;       // cancelled to make the driver look at its waiters again
  asio::steady_timer keepalive;  // the keepalive loop's; cancelled by close()
  std::vector<Waiter*> waiters;
  bool stopping = false;

  void wake_all() {
    for (Waiter* w : waiters) {
      w->woken = true;
      w->timer->cancel();
    }
    waiters.clear();
  }
};

struct SessionAccess {
  static ssize_t recv(libssh2_socket_t fd, void* buffer, size_t length, int flags,
                      void** abstract) {
    auto* self = static_cast<Session*>(*abstract);
    // A broken session's last calls (the ones that free SFTP handles) must fail, not wait.
    if (self->broken_) return -ECONNRESET;
    // After close() the descriptor number may already belong to another socket.
    if (!self->driver_->socket.is_open()) return -EBADF;
    const ssize_t n = ::recv(fd, buffer, length, flags);
    if (n < 0) return failed(self, errno);
    if (n > 0) ++self->generation_;
    if (n == 0 && length > 0) self->lose_connection("closed by the server");
    return n;
  }
  static ssize_t send(libssh2_socket_t fd, const void* buffer, size_t length, int flags,
                      void** abstract) {
    auto* self = static_cast<Session*>(*abstract);
    // Nothing reaches a broken session's peer; swallowed, the bytes let libssh2 go on to the
    // read that fails and frees what the call holds (it keeps it when the send fails).
    if (self->broken_) return static_cast<ssize_t>(length);
    const ssize_t n = ::send(fd, buffer, length, flags | MSG_NOSIGNAL);
    if (n < 0) return failed(self, errno);
    return n;
  }
  // A transport error breaks the session at once, whichever libssh2 call met it: its error code
  // alone does not tell a dead connection from a refused request.
  static ssize_t failed(Session* self, int error) {
    if (error != EAGAIN && error != EWOULDBLOCK && error != EINTR) {
      self->lose_connection(std::strerror(error));
    }
    return -error;
  }
};

Session::Session(asio::any_io_executor executor, SessionOptions options)
    : executor_(std::move(executor)),
      options_(std::move(options)),
      description_(describe_host(options_)),
      driver_(std::make_unique<Driver>(executor_)) {}

Session::~Session() {
  close();
  if (session_ != nullptr) {
    libssh2_session_free(session_);
    session_ = nullptr;
  }
}

void Session::mark_broken(Status why) {
  if (!broken_) {
    broken_ = true;
    failure_ = std::move(why);
  }
  driver_->wake_all();
  driver_->kick.cancel();
}

void Session::lose_connection(std::string_view why) {
  if (lost_.empty() && !broken_) lost_ = why;
  mark_broken(unavailable(description_ + ": connection lost: " + std::string(why)));
}

void Session::close() {
  if (!driver_->stopping && session_ != nullptr && !broken_) {
    libssh2_session_disconnect(session_, "closing");
  }
  driver_->stopping = true;
  if (!broken_) {
    broken_ = true;
    failure_ = unavailable(description_ + ": the session is closed");
  }
  boost::system::error_code ignored;
  if (driver_->socket.is_open()) {
    driver_->socket.shutdown(tcp::socket::shutdown_both, ignored);
    driver_->socket.close(ignored);
  }
  driver_->wake_all();
  driver_->kick.cancel();
  driver_->keepalive.cancel();
}

void Session::after_call(std::uint64_t seen) {
  if (generation_ != seen) driver_->wake_all();
}

asio::awaitable<Status> Session::park(std::uint64_t seen, Deadline deadline, bool resumable) {
  if (broken_) co_return failure_;
  if (generation_ != seen) co_return ok_status();
  asio::steady_timer timer(executor_, deadline);
  Driver::Waiter waiter{&timer};
  driver_->waiters.push_back(&waiter);
  driver_->kick.cancel();
  auto [ec] = co_await timer.async_wait(kUse);
  auto& list = driver_->waiters;
  list.erase(std::remove(list.begin(), list.end(), &waiter), list.end());
  if (broken_) co_return failure_;
  if (waiter.woken) co_return ok_status();
  Status why = ec ? cancelled(description_ + ": cancelled")
                  : deadline_exceeded(description_ + ": no answer in time");
  if (!resumable) mark_broken(why);
  co_return why;
}

struct DriverLoop {
  // The session's one driver: while callers are parked, waits for the socket in the directions
  // libssh2 is blocked on, then wakes them all to repeat their calls.
  static asio::awaitable<void> run(std::shared_ptr<Session::Driver> d, Session* s) {
    while (!d->stopping) {
      if (d->waiters.empty()) {
        co_await d->kick.async_wait(kUse);
        continue;
      }
      const int directions = libssh2_session_block_directions(s->session_);
      const bool want_write = (directions & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0;
      const bool want_read = (directions & LIBSSH2_SESSION_BLOCK_INBOUND) != 0 || !want_write;
      boost::system::error_code ec;
      bool ready = false;
      if (want_read && want_write) {
        auto r = co_await (d->socket.async_wait(tcp::socket::wait_read, kUse) ||
                           d->socket.async_wait(tcp::socket::wait_write, kUse) ||
                           d->kick.async_wait(kUse));
        if (r.index() == 0) {
          ec = std::get<0>(std::get<0>(r));
          ready = true;
        } else if (r.index() == 1) {
          ec = std::get<0>(std::get<1>(r));
          ready = true;
        }
      } else {
        auto r =
            co_await (d->socket.async_wait(
                          want_read ? tcp::socket::wait_read : tcp::socket::wait_write, kUse) ||
                      d->kick.async_wait(kUse));
        if (r.index() == 0) {
          ec = std::get<0>(std::get<0>(r));
          ready = true;
        }
      }
      if (d->stopping) break;
      if (!ready) continue;
      if (ec) {
        s->lose_connection(ec.message());
        break;
      }
      ++s->generation_;
      d->wake_all();
    }
  }
};

namespace {

// Sends keepalive requests (want_reply) every `interval`; a peer from which no byte has arrived
// across `count` answered-keepalive periods is dead: TCP keeps a hung sshd's socket open, so only
// the missing answers tell. Bytes still unread in the socket count as an answer.
asio::awaitable<void> keepalive_loop(std::weak_ptr<Session> weak,
                                     std::shared_ptr<Session::Driver> driver, Millis interval,
                                     int count) {
  asio::steady_timer& timer = driver->keepalive;
  std::uint64_t seen = 0;
  bool awaiting_answer = false;
  int misses = 0;
  if (auto session = weak.lock()) seen = session->generation();
  for (;;) {
    timer.expires_after(interval);
    co_await timer.async_wait(kUse);
    if (driver->stopping) co_return;
    auto session = weak.lock();
    if (!session || !session->usable()) co_return;
    const bool heard = session->generation() != seen || session->input_pending();
    seen = session->generation();
    if (heard) {
      misses = 0;
    } else if (awaiting_answer && ++misses >= count) {
      session->mark_broken(
          unavailable(session->describe() + ": the host stopped answering (no reply to " +
                      std::to_string(misses) + " keepalives in " +
                      std::to_string((interval * (misses + 1)).count() / 1000) + " s)"));
      co_return;
    }
    int next = 0;
    const Deadline deadline = std::chrono::steady_clock::now() + interval * count;
    auto sent = co_await session->call(
        [&] { return libssh2_keepalive_send(session->raw(), &next); }, deadline);
    if (!session->usable()) co_return;
    if (!sent || *sent != 0) {
      session->mark_broken(sent ? session->last_error("sending a keepalive")
                                : Status(sent.error()));
      co_return;
    }
    awaiting_answer = true;
  }
}

Status socket_options(tcp::socket& socket, const SessionOptions& options) {
  boost::system::error_code ec;
  socket.set_option(tcp::no_delay(true), ec);
  if (!ec) socket.set_option(asio::socket_base::keep_alive(true), ec);
  if (ec) return unavailable(describe_host(options) + ": setting socket options: " + ec.message());
  const int fd = socket.native_handle();
  const int idle = std::max(1, static_cast<int>(options.keepalive_interval.count() / 1000));
  const int count = std::max(1, options.keepalive_count);
  const auto user_timeout =
      static_cast<unsigned>(options.keepalive_interval.count() * options.keepalive_count);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &idle, sizeof idle);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof user_timeout);
  socket.native_non_blocking(true, ec);
  if (ec) return unavailable(describe_host(options) + ": setting socket options: " + ec.message());
  return ok_status();
}

std::string fingerprint(LIBSSH2_SESSION* session) {
  const char* hash = libssh2_hostkey_hash(session, LIBSSH2_HOSTKEY_HASH_SHA256);
  if (hash == nullptr) return "SHA256:?";
  std::string text = base64(reinterpret_cast<const unsigned char*>(hash), 32);
  while (!text.empty() && text.back() == '=') text.pop_back();
  return "SHA256:" + text;
}

struct KnownHosts {
  LIBSSH2_KNOWNHOSTS* hosts = nullptr;
  ~KnownHosts() {
    if (hosts != nullptr) libssh2_knownhost_free(hosts);
  }
};

}  // namespace

asio::awaitable<Result<std::shared_ptr<Session>>> Session::connect(asio::any_io_executor executor,
                                                                   SessionOptions options) {
  init_libssh2_once();
  const std::string who = describe_host(options);
  if (options.identity.has_value() == options.agent) {
    co_return invalid_argument(who + ": set exactly one of identity and agent");
  }
  const Deadline deadline = std::chrono::steady_clock::now() + options.connect_timeout;
  std::shared_ptr<Session> self(new Session(executor, options));
  Driver& d = *self->driver_;

  asio::steady_timer timer(executor, deadline);
  tcp::resolver resolver(executor);
  auto resolved =
      co_await (resolver.async_resolve(options.address, std::to_string(options.port), kUse) ||
                timer.async_wait(kUse));
  if (resolved.index() == 1) co_return deadline_exceeded(who + ": resolving the address timed out");
  auto [resolve_ec, endpoints] = std::get<0>(std::move(resolved));
  if (resolve_ec) {
    co_return unavailable(who + ": cannot resolve " + options.address + ": " +
                          resolve_ec.message());
  }
  auto connected =
      co_await (asio::async_connect(d.socket, endpoints, kUse) || timer.async_wait(kUse));
  if (connected.index() == 1) co_return deadline_exceeded(who + ": connecting timed out");
  if (auto ec = std::get<0>(std::get<0>(connected)); ec) {
    co_return unavailable(who + ": cannot connect: " + ec.message());
  }
  if (Status set = socket_options(d.socket, options); !set.ok()) co_return set;

  KnownHosts known;
  self->session_ = libssh2_session_init_ex(nullptr, nullptr, nullptr, self.get());
  if (self->session_ == nullptr) co_return internal_error(who + ": libssh2 session init failed");
  LIBSSH2_SESSION* raw = self->session_;
  libssh2_session_set_blocking(raw, 0);
  libssh2_session_callback_set(raw, LIBSSH2_CALLBACK_RECV,
                               reinterpret_cast<void*>(&SessionAccess::recv));
  libssh2_session_callback_set(raw, LIBSSH2_CALLBACK_SEND,
                               reinterpret_cast<void*>(&SessionAccess::send));
  known.hosts = libssh2_knownhost_init(raw);
  if (known.hosts == nullptr) co_return internal_error(who + ": libssh2 knownhost init failed");
  if (libssh2_knownhost_readfile(known.hosts, options.known_hosts.c_str(),
                                 LIBSSH2_KNOWNHOST_FILE_OPENSSH) < 0) {
    std::ifstream probe(options.known_hosts);
    co_return invalid_argument(
        who + ": known_hosts " + options.known_hosts.string() +
        (probe ? ": not a known_hosts file libssh2 can read" : ": cannot be read"));
  }
  std::string preference;
  for (const std::string& type : known_key_types(known.hosts, options.address, options.port)) {
    preference += type + ",";
  }
  for (const KeyType& k : kKeyTypes) {
    if (preference.find(std::string(k.name) + ",") == std::string::npos) {
      preference += std::string(k.name) + ",";
    }
  }
  preference.pop_back();
  libssh2_session_method_pref(raw, LIBSSH2_METHOD_HOSTKEY, preference.c_str());

  asio::co_spawn(executor, DriverLoop::run(self->driver_, self.get()), asio::detached);

  const int fd = d.socket.native_handle();
  auto handshake =
      co_await self->call([&] { return libssh2_session_handshake(raw, fd); }, deadline);
  if (!handshake || *handshake != 0) {
    co_return self->handshake_error(handshake ? ok_status() : handshake.error());
  }

  std::size_t key_length = 0;
  int key_type = 0;
  const char* key = libssh2_session_hostkey(raw, &key_length, &key_type);
  const KeyType* type = key_type_of(key_type);
  const std::string offered =
      std::string(type != nullptr ? type->name : "unknown key type") + " " + fingerprint(raw);
  if (key == nullptr || type == nullptr) {
    co_return permission_denied(who + ": the server offered a host key odd cannot check (" +
                                offered + ")");
  }
  libssh2_knownhost* found = nullptr;
  const int check = libssh2_knownhost_checkp(
      known.hosts, options.address.c_str(), options.port, key, key_length,
      LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | type->knownhost_bits, &found);
  switch (check) {
    case LIBSSH2_KNOWNHOST_CHECK_MATCH:
      break;
    case LIBSSH2_KNOWNHOST_CHECK_MISMATCH:
      co_return permission_denied(
          who + ": host key does not match the known_hosts entry in " +
          options.known_hosts.string() + " (the server offered " + offered +
          "); if the host was reinstalled, replace its entry after checking the fingerprint");
    case LIBSSH2_KNOWNHOST_CHECK_NOTFOUND:
      co_return permission_denied(who + ": host is not in " + options.known_hosts.string() +
                                  " (the server offered " + offered +
                                  "); add it after checking the fingerprint, e.g. with "
                                  "ssh-keyscan");
    default:
      co_return permission_denied(who + ": checking the host key against " +
                                  options.known_hosts.string() + " failed (" + offered + ")");
  }

  Status authenticated = co_await self->authenticate(deadline);
  if (!authenticated.ok()) co_return authenticated;

  libssh2_keepalive_config(
      raw, 1, static_cast<unsigned>(std::max<long>(1, options.keepalive_interval.count() / 1000)));
  asio::co_spawn(
      executor,
      keepalive_loop(self, self->driver_, options.keepalive_interval, options.keepalive_count),
      asio::detached);
  co_return self;
}

asio::awaitable<Status> Session::authenticate(Deadline deadline) {
  LIBSSH2_SESSION* raw = session_;
  const std::string& user = options_.user;
  const auto user_length = static_cast<unsigned>(user.size());
  if (options_.identity) {
    const std::string path = options_.identity->string();
    std::ifstream file(*options_.identity, std::ios::binary);
    if (!file) {
      co_return permission_denied(description_ + ": identity " + path +
                                  " cannot be read: " + std::strerror(errno));
    }
    std::stringstream text;
    text << file.rdbuf();
    const std::string type = private_key_type(text.str());
    if (type == "ssh-rsa" || type == "ssh-dss") {
      co_return invalid_argument(description_ + ": identity " + path + " is an " +
                                 (type == "ssh-rsa" ? "RSA" : "DSA") +
                                 " key; libssh2 1.10 cannot sign with rsa-sha2-256/512, which "
                                 "OpenSSH requires: use an ed25519 or ecdsa key");
    }
    const char* passphrase = options_.passphrase ? options_.passphrase->c_str() : nullptr;
    auto rc = co_await call(
        [&] {
          return libssh2_userauth_publickey_fromfile_ex(raw, user.c_str(), user_length, nullptr,
                                                        path.c_str(), passphrase);
        },
        deadline);
    if (!rc) co_return rc.error();
    if (*rc == 0) co_return ok_status();
    if (*rc == LIBSSH2_ERROR_FILE || *rc == LIBSSH2_ERROR_KEYFILE_AUTH_FAILED) {
      co_return permission_denied(description_ + ": identity " + path + " cannot be used: " +
                                  (options_.passphrase
                                       ? "wrong passphrase or not a private key"
                                       : "it needs a passphrase or is not a private key"));
    }
    if (*rc == LIBSSH2_ERROR_AUTHENTICATION_FAILED || *rc == LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED) {
      co_return permission_denied(description_ + ": the server accepted no key for user " + user +
                                  " (tried identity " + path + ")");
    }
    co_return last_error("authenticating as " + user);
  }

  struct Agent {
    LIBSSH2_AGENT* agent = nullptr;
    ~Agent() {
      if (agent != nullptr) {
        libssh2_agent_disconnect(agent);
        libssh2_agent_free(agent);
      }
    }
  } agent;
  agent.agent = libssh2_agent_init(raw);
  const char* socket_path = std::getenv("SSH_AUTH_SOCK");
  const std::string where = socket_path != nullptr ? socket_path : "(SSH_AUTH_SOCK is not set)";
  if (agent.agent == nullptr || libssh2_agent_connect(agent.agent) != 0) {
    co_return permission_denied(description_ + ": ssh-agent unreachable at " + where);
  }
  if (libssh2_agent_list_identities(agent.agent) != 0) {
    co_return permission_denied(description_ + ": cannot list the keys of ssh-agent at " + where);
  }
  libssh2_agent_publickey* identity = nullptr;
  int tried = 0;
  while (libssh2_agent_get_identity(agent.agent, &identity, identity) == 0) {
    ++tried;
    auto rc = co_await call(
        [&] { return libssh2_agent_userauth(agent.agent, user.c_str(), identity); }, deadline);
    if (!rc) co_return rc.error();
    if (*rc == 0) co_return ok_status();
  }
  co_return permission_denied(description_ + ": the server accepted none of the " +
                              std::to_string(tried) + " keys of ssh-agent (" + where +
                              ") for user " + user);
}

bool Session::check_connection() {
  if (!usable() || !driver_->socket.is_open()) return usable();
  const int fd = driver_->socket.native_handle();
  pollfd p{fd, POLLIN | POLLRDHUP, 0};
  if (::poll(&p, 1, 0) <= 0) return true;
  if ((p.revents & POLLERR) != 0) {
    int error = 0;
    socklen_t length = sizeof(error);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    lose_connection(error != 0 ? std::strerror(error) : "socket error");
  } else if ((p.revents & (POLLHUP | POLLRDHUP)) != 0) {
    // An SSH server never half-closes: once it stopped sending, no answer can come.
    lose_connection("closed by the server");
  }
  return usable();
}

Status Session::handshake_error(Status why) const {
  if (why.code() == Code::kCancelled) return why;
  const char* banner = libssh2_session_banner_get(session_);
  if (banner != nullptr && std::string_view(banner).starts_with("SSH-")) {
    return why.ok() ? last_error("SSH handshake") : why;
  }
  // Without "SSH-" from the peer, libssh2's words ("Failed getting banner") and the deadline's
  // ("no answer in time") hide the likely cause: no SSH server listens on that port.
  std::string text = description_ + ": SSH handshake: the server sent no SSH banner";
  if (!lost_.empty()) {
    text += " before the connection was lost (" + lost_ + ")";
  } else if (why.code() == Code::kDeadlineExceeded) {
    text += " in time";
  }
  text += "; is an SSH server listening on port " + std::to_string(options_.port) + "?";
  return {why.ok() || why.code() == Code::kInternal ? Code::kUnavailable : why.code(),
          std::move(text)};
}

bool Session::input_pending() const {
  if (!driver_->socket.is_open()) return false;
  pollfd p{driver_->socket.native_handle(), POLLIN, 0};
  return ::poll(&p, 1, 0) > 0 && (p.revents & POLLIN) != 0;
}

Status Session::last_error(std::string_view what) const {
  char* message = nullptr;
  int length = 0;
  const int code =
      session_ != nullptr ? libssh2_session_last_error(session_, &message, &length, 0) : 0;
  std::string text = description_ + ": " + std::string(what);
  // libssh2's own words for a dead connection ("transport read") say less than the socket did.
  if (!lost_.empty()) return unavailable(text + ": connection lost: " + lost_);
  if (message != nullptr && length > 0) text += ": " + std::string(message, std::size_t(length));
  switch (code) {
    case LIBSSH2_ERROR_SOCKET_SEND:
    case LIBSSH2_ERROR_SOCKET_RECV:
    case LIBSSH2_ERROR_SOCKET_DISCONNECT:
    case LIBSSH2_ERROR_SOCKET_TIMEOUT:
    case LIBSSH2_ERROR_TIMEOUT:
    case LIBSSH2_ERROR_SOCKET_NONE:
    case LIBSSH2_ERROR_KEY_EXCHANGE_FAILURE:
      return unavailable(std::move(text));
    case LIBSSH2_ERROR_CHANNEL_FAILURE:
    case LIBSSH2_ERROR_CHANNEL_REQUEST_DENIED:
    case LIBSSH2_ERROR_CHANNEL_UNKNOWN:
    case LIBSSH2_ERROR_CHANNEL_CLOSED:
    case LIBSSH2_ERROR_CHANNEL_EOF_SENT:
      return failed_precondition(std::move(text));
    default:
      return internal_error(std::move(text));
  }
}

}  // namespace odd::sshx
