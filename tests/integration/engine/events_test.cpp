// dockerd's event feed against the real dockerd: filters, order, and the actor of each event.

#include <doctest/doctest.h>

#include <map>
#include <string>
#include <vector>

#include "engine/docker_client.hpp"
#include "tests/integration/support.hpp"

namespace odd::integration {
namespace {

constexpr Millis kLimit{30000};

// Reads events until one with `action` arrives, appending them to `seen`.
asio::awaitable<void> read_until(engine::EventStream& events, const std::string& action,
                                 std::vector<engine::Event>& seen) {
  for (;;) {
    auto event = co_await within(kLimit, events.next());
    REQUIRE_MESSAGE(event.has_value(), "no \"" << action << "\" event within 30 s");
    ODD_REQUIRE_OK(*event);
    REQUIRE_MESSAGE(event->value().has_value(), "the event feed ended");
    seen.push_back(std::move(*event->value()));
    if (seen.back().action == action) co_return;
  }
}

TEST_SUITE("engine integration") {
  TEST_CASE("a filtered event feed shows a container's create, start, die and destroy in order") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      const std::string name = unique_name();
      engine::EventsOptions options;
      options.filters = {{"type", {"container"}}, {"label", {"odd.it.name=" + name}}};
      auto events = co_await client->events(options);
      ODD_REQUIRE_OK(events);

      engine::ContainerConfig config = container_config(name, {"sh", "-c", "exit 2"});
      const std::string id = co_await create_tracked(*client, config, cleanup);
      auto wait = co_await client->begin_wait(id, engine::WaitCondition::kNextExit);
      ODD_REQUIRE_OK(wait);
      Status started = co_await client->start_container(id);
      ODD_REQUIRE_OK(started);

      std::vector<engine::Event> seen;
      co_await read_until(**events, "die", seen);
      auto result = co_await within(kLimit, (*wait)->result());
      REQUIRE(result.has_value());
      ODD_REQUIRE_OK(*result);
      Status removed = co_await client->remove_container(id, false, false);
      ODD_REQUIRE_OK(removed);
      co_await read_until(**events, "destroy", seen);

      std::string actions;
      std::int64_t last_time = 0;
      for (auto& event : seen) {
        CAPTURE(event.action);
        CHECK(event.type == "container");
        CHECK(event.actor_id == id);
        CHECK(event.attributes.count("name") == 1);
        if (event.attributes.count("name") == 1) CHECK(event.attributes.at("name") == name);
        CHECK(event.time_nano >= last_time);
        last_time = event.time_nano;
        actions += actions.empty() ? event.action : " " + event.action;
        if (event.action == "die") CHECK(event.attributes["exitCode"] == "2");
      }
      CHECK(actions == "create start die destroy");

      (*events)->close();
      auto after_close = co_await within(kLimit, (*events)->next());
      REQUIRE(after_close.has_value());
      ODD_REQUIRE_OK(*after_close);
      CHECK_FALSE(after_close->value().has_value());
    }());
  }
}

}  // namespace
}  // namespace odd::integration
