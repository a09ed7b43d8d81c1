#include "sshx/pool.hpp"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <vector>

namespace odd::sshx {

using namespace boost::asio::experimental::awaitable_operators;

namespace {
using Clock = std::chrono::steady_clock;
constexpr auto kUse = asio::as_tuple(asio::use_awaitable);
}  // namespace

struct Pool::Impl {
  struct Entry {
    std::shared_ptr<Session> session;
    int leases = 0;
    Clock::time_point idle_since = Clock::now();
  };

  Impl(asio::any_io_executor ex, PoolOptions opts)
      : executor(ex),
        options(opts),
        changed(ex, Clock::time_point::max()),
        reaper(std::make_shared<asio::steady_timer>(ex)) {}

  asio::any_io_executor executor;
  PoolOptions options;
  std::vector<Entry> entries;
  int connecting = 0;
  Clock::time_point last_connect{};
  std::string last_error;
  bool failing = false;
  bool closed = false;
  bool reaper_running = false;
  asio::steady_timer changed;  // cancelled to wake every waiting acquire
  // The idle reaper's timer, shared with its coroutine so close() can end it at once.
  std::shared_ptr<asio::steady_timer> reaper;

  void notify() { changed.cancel(); }

  void drop_broken() {
    std::erase_if(entries, [](const Entry& e) { return e.leases == 0 && !e.session->usable(); });
  }

  Entry* free_slot() {
    for (Entry& e : entries) {
      if (e.session->usable() && e.leases < options.channels_per_session) return &e;
    }
    return nullptr;
  }

  int live_sessions() const {
    return static_cast<int>(std::count_if(entries.begin(), entries.end(),
                                          [](const Entry& e) { return e.session->usable(); }));
  }
};

Lease::Lease(std::weak_ptr<Pool> pool, std::shared_ptr<Session> session)
    : pool_(std::move(pool)), session_(std::move(session)) {}

Lease::Lease(Lease&& other) noexcept
    : pool_(std::move(other.pool_)), session_(std::move(other.session_)) {}

Lease& Lease::operator=(Lease&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = std::move(other.pool_);
    session_ = std::move(other.session_);
  }
  return *this;
}

Lease::~Lease() { release(); }

void Lease::release() {
  if (!session_) return;
  if (auto pool = pool_.lock()) pool->release(session_);
  session_.reset();
}

std::shared_ptr<Pool> Pool::create(asio::any_io_executor executor, SessionOptions session,
                                   PoolOptions options) {
  return std::shared_ptr<Pool>(new Pool(std::move(executor), std::move(session), options));
}

Pool::Pool(asio::any_io_executor executor, SessionOptions session, PoolOptions options)
    : session_(std::move(session)), impl_(std::make_unique<Impl>(std::move(executor), options)) {}

Pool::~Pool() { close(); }

void Pool::close() {
  impl_->closed = true;
  for (auto& e : impl_->entries) e.session->close();
  impl_->entries.clear();
  impl_->notify();
  impl_->reaper->cancel();
}

PoolState Pool::state() const {
  PoolState s;
  s.sessions = impl_->live_sessions();
  for (const auto& e : impl_->entries) s.leases += e.leases;
  if (s.sessions > 0) {
    s.kind = PoolState::Kind::kConnected;
  } else if (impl_->failing) {
    s.kind = PoolState::Kind::kFailing;
    s.error = impl_->last_error;
  }
  return s;
}

void Pool::release(const std::shared_ptr<Session>& session) {
  for (auto& e : impl_->entries) {
    if (e.session == session) {
      --e.leases;
      if (e.leases == 0) e.idle_since = Clock::now();
      break;
    }
  }
  impl_->drop_broken();
  impl_->notify();
}

namespace {

// Closes sessions idle for longer than the pool's idle timeout.
asio::awaitable<void> reap_idle(std::weak_ptr<Pool> weak, std::shared_ptr<asio::steady_timer> timer,
                                Millis idle_timeout, std::function<void(Pool&)> reap) {
  const Millis period = std::max(Millis(100), idle_timeout / 2);
  for (;;) {
    timer->expires_after(period);
    auto [ec] = co_await timer->async_wait(kUse);
    if (ec) co_return;
    auto pool = weak.lock();
    if (!pool) co_return;
    reap(*pool);
  }
}

}  // namespace

asio::awaitable<Result<Lease>> Pool::acquire(Deadline deadline) {
  Impl& m = *impl_;
  if (!m.reaper_running) {
    m.reaper_running = true;
    asio::co_spawn(
        m.executor,
        reap_idle(weak_from_this(), m.reaper, m.options.idle_timeout,
                  [](Pool& pool) {
                    Impl& i = *pool.impl_;
                    const auto now = Clock::now();
                    for (auto& e : i.entries) {
                      if (e.leases == 0 && now - e.idle_since >= i.options.idle_timeout) {
                        e.session->close();
                      }
                    }
                    i.drop_broken();
                  }),
        asio::detached);
  }
  const std::string who = describe_host(session_);
  for (;;) {
    if (m.closed) co_return unavailable(who + ": the host was removed from the configuration");
    for (Impl::Entry& e : m.entries) e.session->check_connection();
    m.drop_broken();
    if (Impl::Entry* entry = m.free_slot()) {
      ++entry->leases;
      co_return Lease(weak_from_this(), entry->session);
    }
    if (m.live_sessions() + m.connecting < m.options.max_sessions) {
      ++m.connecting;
      Status last;
      for (int attempt = 0; attempt < std::max(1, m.options.connect_attempts); ++attempt) {
        auto wait_until = m.last_connect + m.options.min_connect_interval;
        if (attempt > 0) {
          wait_until =
              std::max(wait_until, Clock::now() + m.options.connect_backoff * (1 << (attempt - 1)));
        }
        if (wait_until > Clock::now()) {
          if (wait_until > deadline) {
            --m.connecting;
            co_return last.ok() ? deadline_exceeded(who + ": no session available in time") : last;
          }
          asio::steady_timer pause(m.executor, wait_until);
          auto [ec] = co_await pause.async_wait(kUse);
          if (ec) {
            --m.connecting;
            co_return cancelled(who + ": cancelled while connecting");
          }
        }
        m.last_connect = Clock::now();
        SessionOptions options = session_;
        const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now());
        if (deadline != Deadline::max() && left < options.connect_timeout) {
          options.connect_timeout = std::max(Millis(1), left);
        }
        auto connected = co_await Session::connect(m.executor, std::move(options));
        if (connected) {
          --m.connecting;
          m.failing = false;
          m.last_error.clear();
          if (m.closed) {
            (*connected)->close();
            co_return unavailable(who + ": the host was removed from the configuration");
          }
          m.entries.push_back({*connected, 1, Clock::now()});
          m.notify();
          co_return Lease(weak_from_this(), *connected);
        }
        last = connected.error();
        m.failing = true;
        m.last_error = last.message();
        if (!last.retryable() || last.code() == Code::kCancelled) break;
      }
      --m.connecting;
      m.notify();
      co_return last;
    }
    asio::steady_timer timeout(m.executor, deadline);
    auto woke = co_await (m.changed.async_wait(kUse) || timeout.async_wait(kUse));
    if (woke.index() == 1) {
      auto [ec] = std::get<1>(woke);
      if (!ec) co_return deadline_exceeded(who + ": every session is busy");
      co_return cancelled(who + ": cancelled while waiting for a session");
    }
    // The changed timer aborts both on notify() and on cancellation of this coroutine.
    auto state = co_await asio::this_coro::cancellation_state;
    if (state.cancelled() != asio::cancellation_type::none) {
      co_return cancelled(who + ": cancelled while waiting for a session");
    }
  }
}

}  // namespace odd::sshx
