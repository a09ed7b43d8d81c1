#include "engine/errors.hpp"

#include <boost/asio/error.hpp>
#include <nlohmann/json.hpp>
#include <string>

namespace odd::engine {

namespace {

std::string dockerd_message(std::string_view body) {
  auto parsed = nlohmann::json::parse(body, nullptr, false);
  if (parsed.is_object()) {
    auto it = parsed.find("message");
    if (it != parsed.end() && it->is_string()) return it->get<std::string>();
  }
  std::string text(body);
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

std::string join(std::string_view context, std::string_view message) {
  if (context.empty()) return std::string(message);
  return std::string(context) + ": " + std::string(message);
}

}  // namespace

Status status_from_http(unsigned http_status, std::string_view body, std::string_view context) {
  std::string message = dockerd_message(body);
  if (message.empty()) message = "empty response";
  std::string text =
      join(context, "dockerd: " + message + " (HTTP " + std::to_string(http_status) + ")");
  switch (http_status) {
    case 400:
      return invalid_argument(std::move(text));
    case 401:
    case 403:
      return permission_denied(std::move(text));
    case 404:
      return not_found(std::move(text));
    case 409:
      if (message.find("already in use") != std::string::npos ||
          message.find("already exists") != std::string::npos) {
        return already_exists(std::move(text));
      }
      return failed_precondition(std::move(text));
    case 502:
    case 503:
    case 504:
      return unavailable(std::move(text));
    default:
      return internal_error(std::move(text));
  }
}

Status status_from_transport(const boost::system::error_code& ec, std::string_view target,
                             std::string_view context) {
  namespace error = boost::asio::error;
  std::string where = std::string(target);
  if (ec == error::operation_aborted) return cancelled(join(context, "cancelled"));
  if (ec == error::timed_out) {
    return deadline_exceeded(join(context, where + ": timed out"));
  }
  if (ec == error::access_denied || ec == boost::system::errc::permission_denied) {
    return permission_denied(join(context, "cannot connect to " + where + ": " + ec.message()));
  }
  if (ec == error::connection_refused || ec == boost::system::errc::no_such_file_or_directory) {
    return unavailable(
        join(context, "no dockerd listening on " + where + " (" + ec.message() + ")"));
  }
  if (ec == error::eof) {
    return unavailable(join(context, where + ": connection closed by dockerd"));
  }
  return unavailable(join(context, where + ": " + ec.message()));
}

}  // namespace odd::engine
