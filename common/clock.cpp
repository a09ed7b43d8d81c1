#include "common/clock.hpp"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace odd {

Clock::TimePoint SystemClock::now() const { return std::chrono::steady_clock::now(); }

std::chrono::system_clock::time_point SystemClock::wall_now() const {
  return std::chrono::system_clock::now();
}

asio::awaitable<Status> SystemClock::sleep_for(Duration duration) {
  if (duration <= Duration::zero()) co_return ok_status();
  asio::steady_timer timer(co_await asio::this_coro::executor, duration);
  auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  if (ec) co_return cancelled("sleep cancelled");
  co_return ok_status();
}

struct ManualClock::Sleeper {
  TimePoint due;
  asio::steady_timer* timer = nullptr;
  bool woken = false;
};

std::chrono::system_clock::time_point ManualClock::wall_now() const {
  // A fixed, readable epoch plus the time advanced so far.
  const auto epoch = std::chrono::sys_days(std::chrono::year(2026) / 11 / 22);
  return std::chrono::system_clock::time_point(epoch) +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(now_.time_since_epoch() -
                                                                         std::chrono::hours(1));
}

asio::awaitable<Status> ManualClock::sleep_for(Duration duration) {
  if (duration <= Duration::zero()) co_return ok_status();
  asio::steady_timer timer(co_await asio::this_coro::executor,
                           asio::steady_timer::time_point::max());
  Sleeper sleeper{now_ + duration, &timer, false};
  sleepers_.push_back(&sleeper);
  co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  sleepers_.remove(&sleeper);
  if (!sleeper.woken) co_return cancelled("sleep cancelled");
  co_return ok_status();
}

void ManualClock::advance(Duration duration) {
  now_ += duration;
  for (Sleeper* sleeper : sleepers_) {
    if (!sleeper->woken && sleeper->due <= now_) {
      sleeper->woken = true;
      sleeper->timer->cancel();
    }
  }
}

Clock::TimePoint ManualClock::next_wake() const {
  TimePoint earliest = TimePoint::max();
  for (const Sleeper* sleeper : sleepers_) {
    if (!sleeper->woken && sleeper->due < earliest) earliest = sleeper->due;
  }
  return earliest == TimePoint::max() ? now_ : earliest;
}

}  // namespace odd
