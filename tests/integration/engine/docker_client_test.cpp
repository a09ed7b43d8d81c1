// DockerClient against the real dockerd: API version negotiation, listing containers by label,
// and the image calls (list, inspect, tag, remove).

#include "engine/docker_client.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "engine/api.hpp"
#include "tests/integration/support.hpp"

namespace odd::integration {
namespace {

bool has(const std::vector<std::string>& values, const std::string& value) {
  return std::find(values.begin(), values.end(), value) != values.end();
}

// The test image's reference without its tag: "odd-test/busybox".
std::string test_repository() { return engine::split_image_reference(test_image()).repository; }

TEST_SUITE("engine integration") {
  TEST_CASE("the API version is the lower of dockerd's and 1.43") {
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      CHECK(client->api_version().empty());
      auto version = co_await client->version();
      ODD_REQUIRE_OK(version);
      auto server = engine::parse_api_version(version->api_version);
      ODD_REQUIRE_OK(server);
      auto highest = engine::parse_api_version(engine::kMaxApiVersion);
      ODD_REQUIRE_OK(highest);

      Status negotiated = co_await client->negotiate();
      ODD_REQUIRE_OK(negotiated);
      CHECK(client->api_version() == std::min(*server, *highest).to_string());
      if (version->version.starts_with("20.10.")) CHECK(client->api_version() == "1.41");

      Status pinged = co_await client->ping();
      ODD_CHECK_OK(pinged);
      auto info = co_await client->info();
      ODD_REQUIRE_OK(info);
      CHECK(info->contains("ServerVersion"));
    }());
  }

  TEST_CASE("listing containers by label returns exactly the labelled ones") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      const std::string group = unique_name();
      std::set<std::string> ours;
      for (int i = 0; i < 3; ++i) {
        engine::ContainerConfig config = container_config(unique_name(), {"true"});
        config.labels["odd.it.group"] = group;
        ours.insert(co_await create_tracked(*client, config, cleanup));
      }
      engine::ContainerConfig other = container_config(unique_name(), {"true"});
      other.labels["odd.it.group"] = group + "-other";
      const std::string other_id = co_await create_tracked(*client, other, cleanup);

      engine::ListContainersOptions options;
      options.label_filters = {"odd.it.group=" + group};
      auto listed = co_await client->list_containers(options);
      ODD_REQUIRE_OK(listed);
      std::set<std::string> ids;
      for (const auto& summary : *listed) {
        ids.insert(summary.id);
        CHECK(summary.state == "created");
        CHECK(summary.image == test_image());
        CHECK(summary.labels.at("odd.it.group") == group);
        REQUIRE(summary.names.size() == 1);
        CHECK(summary.names[0].starts_with("/odd-it-"));
      }
      CHECK(ids == ours);
      CHECK(ids.count(other_id) == 0);

      options.all = false;  // created, never started: not running
      auto running = co_await client->list_containers(options);
      ODD_REQUIRE_OK(running);
      CHECK(running->empty());
    }());
  }

  TEST_CASE("the test image is listed by reference, inspected, tagged, and the tag removed") {
    ContainerCleanup cleanup;
    run_io([&]() -> asio::awaitable<void> {
      auto client = co_await connect();
      engine::ListImagesOptions options;
      options.reference_filters = {test_image()};
      auto listed = co_await client->list_images(options);
      ODD_REQUIRE_OK(listed);
      REQUIRE(listed->size() == 1);
      const engine::ImageSummary& summary = listed->front();
      CHECK(has(summary.repo_tags, test_image()));
      CHECK(summary.id.starts_with("sha256:"));
      CHECK(summary.size > 0);

      auto image = co_await client->inspect_image(test_image());
      ODD_REQUIRE_OK(image);
      CHECK(image->id == summary.id);
      CHECK(has(image->repo_tags, test_image()));

      const std::string repository = "odd-it/tag-" + unique_name();
      const std::string tagged = repository + ":t1";
      cleanup.add_image(tagged);
      Status tag = co_await client->tag_image(test_image(), repository, "t1");
      ODD_REQUIRE_OK(tag);
      auto same = co_await client->inspect_image(tagged);
      ODD_REQUIRE_OK(same);
      CHECK(same->id == image->id);
      options.reference_filters = {repository};
      auto by_new_tag = co_await client->list_images(options);
      ODD_REQUIRE_OK(by_new_tag);
      REQUIRE(by_new_tag->size() == 1);
      CHECK(has(by_new_tag->front().repo_tags, tagged));

      Status removed = co_await client->remove_image(tagged, false, false);
      ODD_REQUIRE_OK(removed);
      auto gone = co_await client->inspect_image(tagged);
      REQUIRE_FALSE(gone.has_value());
      ODD_CHECK_CODE(gone.error(), Code::kNotFound);
      auto still = co_await client->inspect_image(test_image());
      ODD_CHECK_OK(still);

      options.reference_filters = {test_repository() + ":no-such-tag"};
      auto none = co_await client->list_images(options);
      ODD_REQUIRE_OK(none);
      CHECK(none->empty());
    }());
  }
}

}  // namespace
}  // namespace odd::integration
