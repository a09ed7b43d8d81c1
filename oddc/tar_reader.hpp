#pragma once
// TarExtractor: unpacks a tar stream (512-byte blocks, ustar headers, PAX "path"/"size" records
// and GNU long names) into a directory while it arrives, for `oddc artifacts`. Only regular files
// and directories are extracted; an absolute name, a ".." part or any other entry type (links,
// devices, FIFOs) stops extraction with an error naming the entry. Files are created by this
// process, so they belong to the calling user. Blocking file I/O; one owner.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace odd::oddc {

class TarExtractor {
 public:
  // Creates `dir` and its parents when missing. invalid_argument naming the directory when it
  // cannot be created or is not a directory. With `strip` set ("logs"), entries under that
  // leading folder land directly in `dir` (the folder itself becomes `dir`).
  static Result<std::unique_ptr<TarExtractor>> create(const std::string& dir,
                                                      std::string strip = "");

  ~TarExtractor();
  TarExtractor(const TarExtractor&) = delete;
  TarExtractor& operator=(const TarExtractor&) = delete;

  // Consumes the next bytes of the stream, in any split. invalid_argument for a refused entry
  // ("refusing tar entry \"../x\": it has a \"..\" part") or a malformed header; internal when
  // a file cannot be written (naming it). After an error, every later call returns it again.
  Status write(std::string_view bytes);
  // The stream ended: invalid_argument unless the end-of-archive blocks were read.
  Status finish();

  std::size_t files_written() const { return files_; }
  std::size_t directories_created() const { return directories_; }

 private:
  TarExtractor(std::string dir, std::string strip)
      : dir_(std::move(dir)), strip_(std::move(strip)) {}

  enum class State { kHeader, kData, kMeta, kSkip, kEnd };
  enum class Meta { kPax, kGnuLongName, kIgnored };

  Status header_block();
  Status start_entry(char type, std::string name, std::uint64_t size, unsigned mode);
  Status end_data();
  Status fail(Status status);

  std::string dir_;
  std::string strip_;
  State state_ = State::kHeader;
  std::string block_;  // the header block being assembled
  int zero_blocks_ = 0;
  std::uint64_t remaining_ = 0;  // bytes of the entry's data still to come
  std::uint64_t padding_ = 0;    // bytes after the data up to the next block
  // The file being written (kData) or the metadata being read (kMeta).
  int fd_ = -1;
  std::string entry_name_;
  std::string meta_;
  Meta meta_kind_ = Meta::kIgnored;
  // Overrides for the next entry, from PAX or GNU records.
  std::string next_name_;
  bool has_next_size_ = false;
  std::uint64_t next_size_ = 0;
  Status error_;
  std::size_t files_ = 0;
  std::size_t directories_ = 0;
};

}  // namespace odd::oddc
