#pragma once
// ImageBuilder: images tagged by the content hash of what builds them (DESIGN §6). It scans the
// build context on the blocking-work executor, resolves the Dockerfile's FROM lines to local image
// ids, tags by the hash, skips the build when <repository>:<tag> already exists, and otherwise
// streams the canonical tar to dockerd (BuildKit, or the classic builder where BuildKit is not
// offered). At most one build per tag runs at a time; a second caller waits for it and then hits
// the cache. Owned and called from the I/O strand of its DockerClient.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "engine/build_stream.hpp"
#include "engine/docker_client.hpp"

namespace odd::engine {

struct ImageBuildSpec {
  std::filesystem::path context_dir;
  std::string dockerfile = "Dockerfile";  // relative to context_dir
  std::string repository;                 // the image is <repository>:<12 hex of the hash>
  std::map<std::string, std::string> build_args;
  std::string target;
  std::string platform;
  std::map<std::string, std::string> labels;
  std::string network_mode = "none";  // for RUN steps; dockerd may have no bridge
  bool no_cache = false;              // build even when the tag exists
  bool pull = false;
  std::uint64_t size_limit = 0;  // bytes of context; 0: no limit
  Millis timeout{std::chrono::minutes(30)};
};

struct BuiltImage {
  std::string image;  // "<repository>:<tag>"
  std::string tag;    // 12 hex digits
  std::string hash;   // all 64
  std::string image_id;
  bool cache_hit = false;
  bool buildkit = false;  // which builder ran (false on a cache hit)
  std::uint64_t context_bytes = 0;
  std::size_t context_entries = 0;
};

// The base images a Dockerfile's FROM lines name, in order, with ARG defaults before the first
// FROM and `build_args` substituted; "scratch" and earlier stages' names left out.
// invalid_argument naming the line for a FROM without an image.
Result<std::vector<std::string>> dockerfile_base_images(
    std::string_view dockerfile_text, const std::map<std::string, std::string>& build_args);

// Repository names must be lowercase for dockerd; matrix values are sanitised the same way.
std::string normalize_repository(std::string_view name);

class ImageBuilder {
 public:
  // `blocking` runs file-system work (scanning, hashing, reading the tar); `digest_cache_dir`
  // keeps per-file digests between builds ("" for none).
  ImageBuilder(DockerClient& client, asio::any_io_executor blocking,
               std::filesystem::path digest_cache_dir);
  ~ImageBuilder();

  // Ensures the image for `spec` exists and returns it. Errors name what to fix: the context or
  // Dockerfile path (not_found, invalid_argument, permission_denied), the failed step with
  // dockerd's message (failed_precondition), dockerd itself (unavailable), the deadline.
  asio::awaitable<Result<BuiltImage>> build(const ImageBuildSpec& spec,
                                            BuildStreamParser::ProgressSink on_progress,
                                            BuildStreamParser::OutputSink on_output);

  // Removes the images of `repository` other than its `keep` newest; images in use are kept.
  asio::awaitable<Status> prune(const std::string& repository, std::size_t keep);

 private:
  struct InFlight;
  DockerClient& client_;
  asio::any_io_executor blocking_;
  std::filesystem::path digest_cache_dir_;
  std::map<std::string, std::shared_ptr<InFlight>> in_flight_;  // by image name
};

}  // namespace odd::engine
