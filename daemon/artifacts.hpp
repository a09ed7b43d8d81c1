#pragma once
// The artifacts of a finished run as one tar stream (DESIGN §8), laid out as a `logs/` folder:
// `<job-key>/<container>-stdout-<ts>.log` and `-stderr-` (decompressed, every attempt),
// `<job-key>/<container>-summary.json`, `aggregate-<run-id>.json`, and downloaded files under
// `files/`. Produced piece by piece in bounded memory; used on the I/O strand.

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.hpp"
#include "daemon/control_service.hpp"
#include "proto/api_types.hpp"

namespace odd::daemon {

class LogHub;

// One ustar header block (plus a PAX header before it when `name` does not fit ustar's fields)
// for a regular file or, with a trailing '/', a directory.
std::string tar_header(std::string_view name, std::uint64_t size, unsigned mode,
                       std::int64_t mtime);

// The run's artifact tar. `job_dirs` come from the summary's jobs (runs/<id>/jobs/<key>/);
// `files_dir` is runs/<id>/artifacts/ (may not exist). failed_precondition while the run is not
// final.
Result<std::unique_ptr<ByteCursor>> open_artifacts_tar(asio::any_io_executor executor, LogHub& hub,
                                                       const proto::RunSummary& summary,
                                                       const std::filesystem::path& jobs_dir,
                                                       const std::filesystem::path& files_dir);

}  // namespace odd::daemon
