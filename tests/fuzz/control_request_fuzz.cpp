// Fuzzes control-request handling: any bytes parsed as an HTTP request with Beast's parser (the
// server's limits), then routed, its query parsed and, for POST /v1/runs, its body decoded.
// Nothing may crash or throw; a rejection carries a status the server may answer and an error
// body that encodes; a match names a valid run id where the route has one; a submit-body error is
// invalid_argument whose path, if any, opens its message. Violations trap.

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "daemon/control_server.hpp"
#include "proto/spec.hpp"

namespace {

namespace http = boost::beast::http;
using odd::daemon::Route;

void check(bool ok) {
  if (!ok) __builtin_trap();
}

bool has_run_id(Route route) {
  return route != Route::kVersion && route != Route::kHealth && route != Route::kSubmit &&
         route != Route::kListRuns;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const odd::daemon::ControlServerOptions limits;
  http::request_parser<http::string_body> parser;
  parser.header_limit(static_cast<std::uint32_t>(limits.max_header_bytes));
  parser.body_limit(static_cast<std::uint64_t>(limits.max_body_bytes));
  parser.eager(true);
  boost::system::error_code ec;
  const std::size_t used = parser.put(boost::asio::buffer(data, size), ec);
  check(used <= size);
  if (!parser.is_header_done()) return 0;

  const auto& request = parser.get();
  auto routed = odd::daemon::route(request.method_string(), request.target());
  if (!routed) {
    const auto& rejection = routed.error();
    const unsigned status = rejection.http_status;
    check(status == 400 || status == 404 || status == 405);
    check((status == 405) == !rejection.allow.empty());
    const auto body = odd::proto::encode(rejection.error)
                          .dump(-1, ' ', false, odd::proto::Json::error_handler_t::replace);
    check(!body.empty());
    return 0;
  }
  if (has_run_id(routed->route)) check(odd::proto::valid_run_id(routed->run_id));
  check((routed->route == Route::kLogs) == !routed->job_key.empty());
  check(routed->query.limit >= 1 && routed->query.limit <= 1000);

  if (routed->route != Route::kSubmit || !parser.is_done()) return 0;
  auto it = request.find(http::field::content_type);
  const std::string_view content_type =
      it == request.end() ? std::string_view() : std::string_view(it->value());
  auto submit = odd::daemon::parse_submit_body(content_type, request.body());
  if (!submit) {
    check(submit.error().code() == odd::Code::kInvalidArgument);
    const std::string path = odd::proto::spec_error_path(submit.error());
    check(submit.error().message().compare(0, path.size(), path) == 0);
  }
  return 0;
}
