#pragma once
// Maps what dockerd and the transport say to a Status (DESIGN §4), keeping dockerd's own words
// and adding what we were doing. Pure functions.

#include <boost/system/error_code.hpp>
#include <string_view>

#include "common/status.hpp"

namespace odd::engine {

// An HTTP status plus dockerd's `{"message": "..."}` body (or plain text) as a Status:
// 400 invalid_argument, 401/403 permission_denied, 404 not_found, 409 already_exists when the
// name is taken and failed_precondition otherwise, 503 unavailable, anything else internal.
// The message reads "<context>: dockerd: <message> (HTTP <status>)".
Status status_from_http(unsigned http_status, std::string_view body, std::string_view context);

// A transport failure talking to `target` as a Status: refused or missing socket unavailable,
// EACCES permission_denied, operation_aborted cancelled, timed_out deadline_exceeded.
Status status_from_transport(const boost::system::error_code& ec, std::string_view target,
                             std::string_view context);

}  // namespace odd::engine
