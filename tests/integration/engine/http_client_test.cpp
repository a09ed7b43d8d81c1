// Connection handling against the real dockerd (DESIGN §3): short calls reuse pooled
// connections, and long-lived streams never take the pool's connections, so they cannot block
// short calls even when the pool holds a single connection.

#include <doctest/doctest.h>

#include <boost/asio/experimental/awaitable_operators.hpp>
#include <string>

#include "engine/docker_client.hpp"
#include "tests/integration/support.hpp"

namespace odd::integration {
namespace {

constexpr Millis kLimit{30000};

TEST_SUITE("engine integration") {
  TEST_CASE("sequential short calls share one pooled connection") {
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      for (int i = 0; i < 50; ++i) {
        CAPTURE(i);
        Status pinged = co_await client->ping();
        ODD_REQUIRE_OK(pinged);
        auto image = co_await client->inspect_image(test_image());
        ODD_REQUIRE_OK(image);
        auto missing = co_await client->inspect_container(unique_name() + "-missing");
        REQUIRE_FALSE(missing.has_value());  // an error answer keeps the connection too
      }
      CHECK(client->http().connections_opened() == 1);
    }());
  }

  TEST_CASE("open streams do not block short calls when the pool holds one connection") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      using namespace asio::experimental::awaitable_operators;
      engine::DockerClientOptions client_options;
      client_options.http.max_connections = 1;
      client_options.call_timeout = Millis(5000);
      auto client = co_await connect(client_options);

      engine::ContainerConfig config = container_config(
          unique_name(), {"sh", "-c", "while true; do echo tick; sleep 0.1; done"});
      const std::string id = co_await create_tracked(*client, config, cleanup);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);

      // Three long-lived responses at once: a wait, a followed log and the event feed.
      auto wait = co_await client->begin_wait(id, engine::WaitCondition::kNotRunning);
      ODD_REQUIRE_OK(wait);
      engine::LogsOptions logs_options;
      logs_options.follow = true;
      auto logs = co_await client->container_logs(id, logs_options);
      ODD_REQUIRE_OK(logs);
      engine::EventsOptions events_options;
      events_options.filters = {{"type", {"container"}}};
      auto events = co_await client->events(events_options);
      ODD_REQUIRE_OK(events);
      const std::size_t opened_before = client->http().connections_opened();

      for (int i = 0; i < 20; ++i) {
        CAPTURE(i);
        auto info = co_await within(kLimit, client->inspect_container(id));
        REQUIRE_MESSAGE(info.has_value(), "a short call hung behind the open streams");
        ODD_REQUIRE_OK(*info);
        CHECK((*info)->state.running);
      }
      // Concurrent short calls queue for the single pooled connection rather than fail.
      auto both = co_await within(
          kLimit, client->inspect_container(id) && client->inspect_image(test_image()));
      REQUIRE(both.has_value());
      ODD_CHECK_OK(std::get<0>(*both));
      ODD_CHECK_OK(std::get<1>(*both));
      CHECK(client->http().connections_opened() - opened_before <= 1);

      // The followed log is live all along.
      std::string chunk(4096, '\0');
      auto n = co_await within(kLimit, (*logs)->read_some(asio::buffer(chunk)));
      REQUIRE(n.has_value());
      ODD_REQUIRE_OK(*n);
      CHECK(**n > 0);

      Status killed = co_await client->kill_container(id);
      ODD_REQUIRE_OK(killed);
      auto result = co_await within(kLimit, (*wait)->result());
      REQUIRE(result.has_value());
      ODD_REQUIRE_OK(*result);
      CHECK((*result)->status_code == 137);
      (*logs)->close();
      (*events)->close();
    }());
  }
}

}  // namespace
}  // namespace odd::integration
