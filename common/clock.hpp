#pragma once
// Clock: the time source of everything that waits (deadlines, backoff, flush intervals), so the
// scheduler can be tested with ManualClock and no sleeps. SystemClock reads the real clocks and
// sleeps on an Asio timer. Both are used from one strand; sleep_for runs on the caller's executor.

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <list>

#include "common/status.hpp"

namespace odd {

namespace asio = boost::asio;

class Clock {
 public:
  using Duration = std::chrono::milliseconds;
  using TimePoint = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  // Monotonic time, for deadlines and intervals.
  virtual TimePoint now() const = 0;
  // Wall-clock time, for timestamps that are stored or shown.
  virtual std::chrono::system_clock::time_point wall_now() const = 0;
  // Completes once `duration` has passed: ok, or cancelled when the awaiting coroutine is
  // cancelled first. A duration of zero or less completes at once.
  virtual asio::awaitable<Status> sleep_for(Duration duration) = 0;
};

class SystemClock final : public Clock {
 public:
  TimePoint now() const override;
  std::chrono::system_clock::time_point wall_now() const override;
  asio::awaitable<Status> sleep_for(Duration duration) override;
};

// Time moves only when advance() is called; sleepers whose time has come are then woken (their
// coroutines resume when the io_context next runs handlers). Starts at an arbitrary fixed point.
class ManualClock final : public Clock {
 public:
  TimePoint now() const override { return now_; }
  std::chrono::system_clock::time_point wall_now() const override;
  asio::awaitable<Status> sleep_for(Duration duration) override;

  // Moves time forward by `duration` and wakes every sleeper due by then.
  void advance(Duration duration);
  // Sleepers still waiting.
  std::size_t sleepers() const { return sleepers_.size(); }
  // When the earliest sleeper is due; now() when there is none.
  TimePoint next_wake() const;

 private:
  struct Sleeper;
  TimePoint now_{std::chrono::hours(1)};
  std::list<Sleeper*> sleepers_;
};

}  // namespace odd
