#pragma once
// SFTP transfers over one Session (DESIGN §3, §11): files and directory trees both ways with
// modes kept, large pipelined requests, uploads that never leave a half-written file visible
// (written to a temporary name, then moved over the target), and downloads confined to their
// destination directory. Use from the session's strand.

#include <boost/asio/awaitable.hpp>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "sshx/session.hpp"

namespace odd::sshx {

struct TransferOptions {
  std::size_t buffer_bytes = 1u << 20;  // per libssh2 read/write call: it pipelines within one
  Millis timeout{0};                    // the whole transfer; 0: none
  // Names an upload's temporary files `.NAME.odd-tmp-TAG` (letters, digits, '-' and '_', at
  // most 64), so that remove_temporaries() can find what a broken connection or a killed caller
  // left behind. Empty: a random suffix per file.
  std::string tag;
};

struct TransferStats {
  std::uint64_t files = 0;
  std::uint64_t directories = 0;
  std::uint64_t bytes = 0;
};

// Uploads the local file or directory tree `local` to `remote` (relative paths are relative to
// the user's home). A file lands at `remote`; a tree's contents land under `remote`, created as
// needed. Modes are kept unless `mode` is set (applied to files; directories keep theirs).
// Symlinks in the tree are refused. Each file is written to a temporary name beside its target
// and moved over it only once complete. Errors name the host and the path: not_found
// (local path), permission_denied, unavailable, deadline_exceeded, cancelled — and never leave
// a partial file at a target name.
asio::awaitable<Result<TransferStats>> upload(std::shared_ptr<Session> session,
                                              std::filesystem::path local, std::string remote,
                                              std::optional<unsigned> mode,
                                              TransferOptions options);

// Writes `content` to the remote file `remote` with `mode` (default 0600), through a temporary
// name as upload() does. For secrets: the bytes never touch the local disk.
asio::awaitable<Status> upload_content(std::shared_ptr<Session> session, std::string_view content,
                                       std::string remote, unsigned mode, TransferOptions options);

// Downloads the remote file or tree `remote` into `local_root` / `dest` (a relative path; ""
// means `local_root` itself). `dest` and every remote name must stay inside `local_root`: an
// absolute path, a `..` component, or a name with '/' is refused (permission_denied naming it),
// remote symlinks are skipped, and nothing is written through a local symlink. Modes are kept
// (masked to 0777). Errors as upload().
asio::awaitable<Result<TransferStats>> download(std::shared_ptr<Session> session,
                                                std::string remote,
                                                std::filesystem::path local_root, std::string dest,
                                                TransferOptions options);

// Removes the temporary files an upload to `remote` tagged `tag` left behind: the one beside
// `remote` and, when `remote` is a directory, those anywhere under it (symlinks not followed).
// Returns how many it removed. invalid_argument for an empty or malformed tag; otherwise errors
// as upload(), naming the host and the path.
asio::awaitable<Result<std::uint64_t>> remove_temporaries(std::shared_ptr<Session> session,
                                                          std::string remote, std::string tag,
                                                          TransferOptions options);

// The same with default options. Plain functions, not default arguments: GCC 12 destroys a
// defaulted class argument of a coroutine twice.
inline asio::awaitable<Result<TransferStats>> upload(std::shared_ptr<Session> session,
                                                     std::filesystem::path local,
                                                     std::string remote,
                                                     std::optional<unsigned> mode) {
  return upload(std::move(session), std::move(local), std::move(remote), mode, TransferOptions());
}
inline asio::awaitable<Status> upload_content(std::shared_ptr<Session> session,
                                              std::string_view content, std::string remote,
                                              unsigned mode = 0600) {
  return upload_content(std::move(session), content, std::move(remote), mode, TransferOptions());
}
inline asio::awaitable<Result<TransferStats>> download(std::shared_ptr<Session> session,
                                                       std::string remote,
                                                       std::filesystem::path local_root,
                                                       std::string dest) {
  return download(std::move(session), std::move(remote), std::move(local_root), std::move(dest),
                  TransferOptions());
}
inline asio::awaitable<Result<std::uint64_t>> remove_temporaries(std::shared_ptr<Session> session,
                                                                 std::string remote,
                                                                 std::string tag) {
  return remove_temporaries(std::move(session), std::move(remote), std::move(tag),
                            TransferOptions());
}

}  // namespace odd::sshx
