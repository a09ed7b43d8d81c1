#include "engine/image_builder.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "common/on_executor.hpp"
#include "engine/build_context.hpp"

namespace odd::engine {

namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Expands $NAME, ${NAME} and ${NAME:-default} from `args`; unknown names expand to "".
std::string expand(std::string_view text, const std::map<std::string, std::string>& args) {
  std::string out;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 == text.size()) {
      out += text[i];
      continue;
    }
    std::string name;
    std::string fallback;
    if (text[i + 1] == '{') {
      auto close = text.find('}', i + 2);
      if (close == std::string_view::npos) {
        out += text.substr(i);
        break;
      }
      std::string_view inner = text.substr(i + 2, close - i - 2);
      if (auto dash = inner.find(":-"); dash != std::string_view::npos) {
        fallback = std::string(inner.substr(dash + 2));
        inner = inner.substr(0, dash);
      }
      name = std::string(inner);
      i = close;
    } else {
      std::size_t j = i + 1;
      while (j < text.size() &&
             (std::isalnum(static_cast<unsigned char>(text[j])) != 0 || text[j] == '_')) {
        ++j;
      }
      name = std::string(text.substr(i + 1, j - i - 1));
      i = j - 1;
    }
    auto it = args.find(name);
    out += it != args.end() && !it->second.empty() ? it->second : fallback;
  }
  return out;
}

std::vector<std::string> split_words(std::string_view line) {
  std::vector<std::string> words;
  std::istringstream in{std::string(line)};
  for (std::string w; in >> w;) words.push_back(w);
  return words;
}

// BuildKit is refused only by daemons built without it; their words name it.
bool buildkit_refused(const Status& status) {
  if (status.code() != Code::kInvalidArgument && status.code() != Code::kInternal) return false;
  auto text = lower(status.message());
  return text.find("buildkit") != std::string::npos &&
         (text.find("not supported") != std::string::npos ||
          text.find("not enabled") != std::string::npos);
}

Result<std::string> read_text(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return not_found("cannot read " + path.string());
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

}  // namespace

Result<std::vector<std::string>> dockerfile_base_images(
    std::string_view text, const std::map<std::string, std::string>& build_args) {
  std::vector<std::string> logical;
  std::vector<int> numbers;
  std::string current;
  int line_number = 0;
  int start_line = 0;
  std::istringstream in{std::string(text)};
  for (std::string line; std::getline(in, line);) {
    ++line_number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    auto first = line.find_first_not_of(" \t");
    if (first == std::string::npos || line[first] == '#') continue;
    if (current.empty()) start_line = line_number;
    bool continued = !line.empty() && line.back() == '\\';
    current += continued ? line.substr(0, line.size() - 1) : line;
    if (continued) {
      current += ' ';
      continue;
    }
    logical.push_back(std::move(current));
    numbers.push_back(start_line);
    current.clear();
  }
  if (!current.empty()) {
    logical.push_back(std::move(current));
    numbers.push_back(start_line);
  }

  std::map<std::string, std::string> args;
  std::set<std::string> stages;
  std::vector<std::string> bases;
  bool seen_from = false;
  for (std::size_t i = 0; i < logical.size(); ++i) {
    auto words = split_words(logical[i]);
    if (words.empty()) continue;
    auto instruction = lower(words[0]);
    if (instruction == "arg" && !seen_from) {
      for (std::size_t w = 1; w < words.size(); ++w) {
        auto eq = words[w].find('=');
        std::string name = words[w].substr(0, eq);
        std::string value = eq == std::string::npos ? "" : words[w].substr(eq + 1);
        if (auto given = build_args.find(name); given != build_args.end()) value = given->second;
        args[name] = value;
      }
      continue;
    }
    if (instruction != "from") continue;
    seen_from = true;
    std::size_t w = 1;
    while (w < words.size() && words[w].starts_with("--")) ++w;
    if (w >= words.size()) {
      return invalid_argument("Dockerfile line " + std::to_string(numbers[i]) +
                              ": FROM names no image");
    }
    std::string image = expand(words[w], args);
    if (lower(image) != "scratch" && stages.count(lower(image)) == 0) bases.push_back(image);
    if (w + 2 < words.size() && lower(words[w + 1]) == "as") stages.insert(lower(words[w + 2]));
  }
  return bases;
}

std::string normalize_repository(std::string_view name) {
  std::string out;
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) != 0 || c == '.' || c == '_' || c == '-' || c == '/' || c == ':') {
      out += static_cast<char>(std::tolower(u));
    } else {
      out += '-';
    }
  }
  return out;
}

struct ImageBuilder::InFlight {
  explicit InFlight(asio::any_io_executor executor)
      : done(std::move(executor), asio::steady_timer::time_point::max()) {}
  asio::steady_timer done;  // cancelled when the build ends, waking every waiter
};

ImageBuilder::ImageBuilder(DockerClient& client, asio::any_io_executor blocking,
                           std::filesystem::path digest_cache_dir)
    : client_(client),
      blocking_(std::move(blocking)),
      digest_cache_dir_(std::move(digest_cache_dir)) {}

ImageBuilder::~ImageBuilder() = default;

asio::awaitable<Result<BuiltImage>> ImageBuilder::build(const ImageBuildSpec& spec,
                                                        BuildStreamParser::ProgressSink on_progress,
                                                        BuildStreamParser::OutputSink on_output) {
  std::string repository = normalize_repository(spec.repository);
  if (repository.empty()) co_return invalid_argument("build: repository is empty");
  std::string what = "build " + repository + " from " + spec.context_dir.string();

  ContextOptions options;
  options.context_dir = spec.context_dir;
  options.dockerfile = spec.dockerfile;
  options.size_limit = spec.size_limit;
  options.digest_cache_dir = digest_cache_dir_;
  auto scanned = co_await on_executor(blocking_, [&] { return scan_context(options); });
  if (!scanned) co_return scanned.error().with_context(what);
  const BuildContext& context = *scanned;

  auto dockerfile_path = context.root / context.dockerfile;
  auto text = co_await on_executor(blocking_, [&] { return read_text(dockerfile_path); });
  if (!text) co_return text.error().with_context(what);
  auto bases = dockerfile_base_images(*text, spec.build_args);
  if (!bases) co_return bases.error().with_context(what + ": " + dockerfile_path.string());

  HashInputs inputs;
  inputs.build_args = spec.build_args;
  inputs.target = spec.target;
  inputs.platform = spec.platform;
  for (const auto& base : *bases) {
    auto info = co_await client_.inspect_image(base);
    if (info) {
      inputs.base_image_ids.push_back(info->id);
    } else if (info.error().code() == Code::kNotFound) {
      // Not here yet: the build pulls it (or fails saying so); its name stands in for its id.
      inputs.base_image_ids.push_back("absent:" + base);
    } else {
      co_return info.error().with_context(what);
    }
  }

  BuiltImage built;
  built.hash = content_hash(context, inputs);
  built.tag = tag_for(built.hash);
  built.image = repository + ":" + built.tag;
  built.context_bytes = context.total_size;
  built.context_entries = context.entries.size();

  for (auto it = in_flight_.find(built.image); it != in_flight_.end();
       it = in_flight_.find(built.image)) {
    auto other = it->second;
    co_await other->done.async_wait(asio::as_tuple(asio::use_awaitable));
  }
  auto flight = std::make_shared<InFlight>(co_await asio::this_coro::executor);
  in_flight_[built.image] = flight;
  // Holds its own copy of the name: `built` is moved out by co_return before this runs.
  struct Landing {
    ImageBuilder& self;
    std::string image;
    std::shared_ptr<InFlight> flight;
    ~Landing() {
      self.in_flight_.erase(image);
      flight->done.cancel();
    }
  } landing{*this, built.image, flight};

  if (!spec.no_cache) {
    auto existing = co_await client_.inspect_image(built.image);
    if (existing) {
      built.image_id = existing->id;
      built.cache_hit = true;
      co_return built;
    }
    if (existing.error().code() != Code::kNotFound) co_return existing.error().with_context(what);
  }

  BuildOptions build_options;
  build_options.tag = built.image;
  build_options.dockerfile = context.dockerfile;
  build_options.build_args = spec.build_args;
  build_options.target = spec.target;
  build_options.platform = spec.platform;
  build_options.labels = spec.labels;
  build_options.labels["odd.content-hash"] = built.hash;
  build_options.network_mode = spec.network_mode;
  build_options.no_cache = spec.no_cache;
  build_options.pull = spec.pull;

  for (bool buildkit : {true, false}) {
    build_options.buildkit = buildkit;
    auto tar = std::make_shared<ContextTarStream>(context);
    BodySource source = [this,
                         tar](asio::mutable_buffer buffer) -> asio::awaitable<Result<std::size_t>> {
      co_return co_await on_executor(
          blocking_, [&] { return tar->read(static_cast<char*>(buffer.data()), buffer.size()); });
    };
    BuildStreamParser parser(on_progress, on_output);
    auto image_id =
        co_await client_.build_image(build_options, std::move(source), parser, spec.timeout);
    if (!image_id && buildkit && buildkit_refused(image_id.error())) {
      spdlog::info("{}: dockerd offers no BuildKit, using the classic builder", what);
      continue;
    }
    if (!image_id) co_return image_id.error();
    built.image_id = *image_id;
    built.buildkit = buildkit;
    co_return built;
  }
  co_return internal_error(what + ": no builder was tried");
}

asio::awaitable<Status> ImageBuilder::prune(const std::string& repository, std::size_t keep) {
  std::string repo = normalize_repository(repository);
  ListImagesOptions options;
  options.reference_filters = {repo};
  auto images = co_await client_.list_images(options);
  if (!images) co_return images.error().with_context("prune images of " + repo);
  std::sort(images->begin(), images->end(),
            [](const ImageSummary& a, const ImageSummary& b) { return a.created > b.created; });
  for (std::size_t i = keep; i < images->size(); ++i) {
    for (const auto& name : (*images)[i].repo_tags) {
      if (!name.starts_with(repo + ":")) continue;
      Status removed = co_await client_.remove_image(name, false, true);
      if (!removed.ok() && removed.code() != Code::kNotFound &&
          removed.code() != Code::kFailedPrecondition && removed.code() != Code::kAlreadyExists) {
        co_return removed.with_context("prune images of " + repo);
      }
    }
  }
  co_return ok_status();
}

}  // namespace odd::engine
