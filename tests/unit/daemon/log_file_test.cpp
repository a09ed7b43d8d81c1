#include "daemon/log_file.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "log_test_support.hpp"

namespace odd::daemon {
namespace {

using testing::random_bytes;
using testing::read_file;
using testing::stored_text;
using testing::TempDir;
using testing::write_file;
using testing::zstd_decompress;
using testing::ZstdOutput;

std::uint64_t le(std::string_view bytes) {
  std::uint64_t v = 0;
  for (std::size_t i = bytes.size(); i-- > 0;) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

// Random chunks of random binary data, some empty, some compressible, one over 1 MiB.
std::vector<std::string> random_chunks(std::mt19937_64& rng, std::size_t count) {
  std::vector<std::string> chunks;
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t size = i == 3 ? (std::size_t{1} << 20) + 17 : rng() % 5000;
    std::string chunk = random_bytes(rng, size);
    if (i % 4 == 1) {
      for (std::size_t k = 0; k < chunk.size(); ++k) chunk[k] = static_cast<char>('a' + k % 7);
    }
    chunks.push_back(std::move(chunk));
  }
  return chunks;
}

// Writes `chunks` as pairs; totals count bytes and '\n's. Returns the concatenation.
std::string write_chunks(LogFileWriter& writer, const std::vector<std::string>& chunks,
                         LogTotals& totals) {
  std::string all;
  for (const std::string& chunk : chunks) {
    totals.bytes += chunk.size();
    totals.lines += static_cast<std::uint64_t>(std::count(chunk.begin(), chunk.end(), '\n'));
    REQUIRE(writer.append(chunk, totals).ok());
    all += chunk;
  }
  return all;
}

// Reads everything complete through one reader, `max` bytes a call at most.
std::string read_all(LogFileReader& reader, std::size_t max) {
  std::string out;
  for (;;) {
    auto n = reader.read(out, max);
    REQUIRE_MESSAGE(n.has_value(), n.error().to_string());
    CHECK(*n <= max);
    if (*n == 0) return out;
  }
}

TEST_CASE("random binary data round-trips byte-exact through the writer and the reader") {
  TempDir dir;
  std::mt19937_64 rng(7);
  const auto chunks = random_chunks(rng, 40);
  auto writer = LogFileWriter::create(dir / "a.log.zst");
  REQUIRE(writer.has_value());
  LogTotals totals;
  const std::string all = write_chunks(**writer, chunks, totals);
  CHECK((*writer)->totals() == totals);

  for (std::size_t max : {std::size_t{1}, std::size_t{777}, std::size_t{65536}}) {
    auto reader = LogFileReader::open(dir / "a.log.zst");
    REQUIRE(reader.has_value());
    CHECK(read_all(**reader, max) == all);
    CHECK((*reader)->totals() == totals);
    CHECK((*reader)->offset() == (*writer)->size());
  }
  REQUIRE((*writer)->close().ok());
  CHECK(stored_text(dir / "a.log.zst") == all);
}

TEST_CASE("zstd -dc gives the stored bytes, also while the file is still open for writing") {
  TempDir dir;
  std::mt19937_64 rng(11);
  const auto path = dir / "b.log.zst";
  auto writer = LogFileWriter::create(path);
  REQUIRE(writer.has_value());

  const ZstdOutput fresh = zstd_decompress(path);
  CHECK(fresh.ok);
  CHECK(fresh.out.empty());

  LogTotals totals;
  const std::string first = write_chunks(**writer, random_chunks(rng, 12), totals);
  const ZstdOutput live = zstd_decompress(path);
  CHECK(live.ok);
  CHECK(live.out == first);

  const std::string second = write_chunks(**writer, random_chunks(rng, 5), totals);
  REQUIRE((*writer)->close().ok());
  const ZstdOutput done = zstd_decompress(path);
  CHECK(done.ok);
  CHECK(done.out == first + second);
}

TEST_CASE("every pair ends with a skippable frame carrying version 1 and the totals") {
  TempDir dir;
  std::mt19937_64 rng(3);
  const auto path = dir / "c.log.zst";
  auto writer = LogFileWriter::create(path);
  REQUIRE(writer.has_value());
  LogTotals totals;
  for (const std::string& chunk : random_chunks(rng, 8)) {
    totals.bytes += chunk.size() * 3;  // anything: the frame records what it is given
    totals.lines += 5;
    REQUIRE((*writer)->append(chunk, totals).ok());
    const std::string file = read_file(path);
    REQUIRE(file.size() == (*writer)->size());
    const std::string_view t = std::string_view(file).substr(file.size() - kLogTotalsFrameSize);
    CHECK(le(t.substr(0, 4)) == 0x184D2A50);
    CHECK(le(t.substr(4, 4)) == 20);
    CHECK(le(t.substr(8, 4)) == 1);
    CHECK(le(t.substr(12, 8)) == totals.bytes);
    CHECK(le(t.substr(20, 8)) == totals.lines);
  }
  auto info = inspect_log_file(path);
  REQUIRE(info.has_value());
  CHECK(info->totals == totals);
  CHECK(info->valid_bytes == (*writer)->size());
}

TEST_CASE("a torn last pair is truncated on reopen, wherever the file was cut") {
  TempDir dir;
  std::mt19937_64 rng(5);
  const auto path = dir / "d.log.zst";
  std::string before;
  std::string last = random_bytes(rng, 300);
  LogTotals totals_before;
  LogTotals totals_after;
  std::uint64_t good_end = 0;
  {
    auto writer = LogFileWriter::create(path);
    REQUIRE(writer.has_value());
    before = write_chunks(**writer, random_chunks(rng, 3), totals_before);
    good_end = (*writer)->size();
    totals_after = totals_before;
    write_chunks(**writer, {last}, totals_after);
  }
  const std::string whole = read_file(path);
  const std::string extra = "appended after the restart\n";

  for (std::size_t cut = good_end; cut <= whole.size(); ++cut) {
    CAPTURE(cut);
    const auto copy = dir / "cut.log.zst";
    write_file(copy, std::string_view(whole).substr(0, cut));
    auto writer = LogFileWriter::reopen(copy);
    REQUIRE_MESSAGE(writer.has_value(), writer.error().to_string());
    const bool complete = cut == whole.size();
    CHECK((*writer)->totals() == (complete ? totals_after : totals_before));
    CHECK((*writer)->size() == (complete ? whole.size() : good_end));
    CHECK((*writer)->truncated_bytes() == (complete ? 0 : cut - good_end));
    CHECK(std::filesystem::file_size(copy) == (*writer)->size());

    LogTotals next = (*writer)->totals();
    next.bytes += extra.size();
    REQUIRE((*writer)->append(extra, next).ok());
    REQUIRE((*writer)->close().ok());
    CHECK(stored_text(copy) == (complete ? before + last : before) + extra);
    auto info = inspect_log_file(copy);
    REQUIRE(info.has_value());
    CHECK(info->totals == next);
  }
}

TEST_CASE("reopen cuts zeros and garbage after the last pair, and keeps an intact file") {
  TempDir dir;
  const auto path = dir / "e.log.zst";
  {
    auto writer = LogFileWriter::create(path);
    REQUIRE(writer.has_value());
    REQUIRE((*writer)->append("one\n", {4, 1}).ok());
  }
  const std::string good = read_file(path);
  for (const std::string& tail : {std::string(4096, '\0'), std::string("garbage, not zstd")}) {
    write_file(path, good + tail);
    auto writer = LogFileWriter::reopen(path);
    REQUIRE(writer.has_value());
    CHECK((*writer)->truncated_bytes() == tail.size());
    CHECK((*writer)->totals() == LogTotals{4, 1});
  }
  CHECK(read_file(path) == good);
  auto again = LogFileWriter::reopen(path);
  REQUIRE(again.has_value());
  CHECK((*again)->truncated_bytes() == 0);
}

TEST_CASE("reopen refuses to cut more than one torn write's worth, but any run of zeros") {
  TempDir dir;
  std::mt19937_64 rng(29);
  const auto path = dir / "p.log.zst";
  {
    auto writer = LogFileWriter::create(path);
    REQUIRE(writer.has_value());
    REQUIRE((*writer)->append("kept\n", {5, 1}).ok());
  }
  const std::string good = read_file(path);
  // A damaged totals frame in the middle of a long log must not cost everything after it.
  const std::string damaged = good + random_bytes(rng, 9u << 20);
  write_file(path, damaged);
  auto refused = LogFileWriter::reopen(path);
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().code() == Code::kFailedPrecondition);
  CHECK(refused.error().message().find(path.string()) != std::string::npos);
  CHECK(read_file(path) == damaged);

  write_file(path, good + random_bytes(rng, 1000) + std::string(20u << 20, '\0'));
  auto cut = LogFileWriter::reopen(path);
  REQUIRE(cut.has_value());
  CHECK((*cut)->totals() == LogTotals{5, 1});
  CHECK(read_file(path) == good);
}

TEST_CASE("reopen refuses a totals frame of another format version and leaves the file alone") {
  TempDir dir;
  const auto path = dir / "f.log.zst";
  {
    auto writer = LogFileWriter::create(path);
    REQUIRE(writer.has_value());
    REQUIRE((*writer)->append("x\n", {2, 1}).ok());
  }
  std::string file = read_file(path);
  file[file.size() - kLogTotalsFrameSize + 8] = 2;
  write_file(path, file);
  auto writer = LogFileWriter::reopen(path);
  REQUIRE_FALSE(writer.has_value());
  CHECK(writer.error().code() == Code::kFailedPrecondition);
  CHECK(writer.error().message().find(path.string()) != std::string::npos);
  CHECK(read_file(path) == file);
}

TEST_CASE("the reader stops at an incomplete tail and resumes when the file has grown") {
  TempDir dir;
  std::mt19937_64 rng(13);
  const auto source = dir / "g.log.zst";
  std::string all;
  {
    auto writer = LogFileWriter::create(source);
    REQUIRE(writer.has_value());
    LogTotals totals;
    std::vector<std::string> chunks;
    for (int i = 0; i < 6; ++i) chunks.push_back(random_bytes(rng, rng() % 200));
    all = write_chunks(**writer, chunks, totals);
  }
  const std::string whole = read_file(source);
  const auto growing = dir / "growing.log.zst";
  write_file(growing, "");
  auto reader = LogFileReader::open(growing);
  REQUIRE(reader.has_value());
  std::string out;
  std::ofstream append(growing, std::ios::binary | std::ios::app);
  for (std::size_t at = 0; at < whole.size();) {
    const std::size_t step = 1 + rng() % 23;
    append.write(whole.data() + at,
                 static_cast<std::streamsize>(std::min(step, whole.size() - at)));
    append.flush();
    at += step;
    auto n = (*reader)->read(out, 100);
    REQUIRE_MESSAGE(n.has_value(), n.error().to_string());
    // Never more than the complete frames so far hold.
    CHECK(all.starts_with(out));
  }
  out += read_all(**reader, 100);
  CHECK(out == all);
}

TEST_CASE("bytes that are not a log are an invalid_argument naming the file and offset") {
  TempDir dir;
  const auto path = dir / "h.log.zst";
  {
    auto writer = LogFileWriter::create(path);
    REQUIRE(writer.has_value());
    REQUIRE((*writer)->append("fine\n", {5, 1}).ok());
  }
  const std::string good = read_file(path);
  write_file(path, good + "this is not zstd at all");
  auto reader = LogFileReader::open(path);
  REQUIRE(reader.has_value());
  std::string out;
  auto first = (*reader)->read(out, 1024);
  REQUIRE_FALSE(first.has_value());
  CHECK(first.error().code() == Code::kInvalidArgument);
  CHECK(first.error().message().find(path.string()) != std::string::npos);
  CHECK(first.error().message().find(std::to_string(good.size())) != std::string::npos);
  CHECK(out == "fine\n");
}

TEST_CASE("a frame with a corrupt block is reported, not decoded into garbage") {
  TempDir dir;
  const auto path = dir / "i.log.zst";
  std::mt19937_64 rng(17);
  const std::string data = random_bytes(rng, 10000) + std::string(10000, 'z');
  {
    auto writer = LogFileWriter::create(path);
    REQUIRE(writer.has_value());
    REQUIRE((*writer)->append(data, {data.size(), 0}).ok());
  }
  std::string file = read_file(path);
  // Flip a byte in the middle of the data frame: the checksum or the block decoder objects.
  file[file.size() - kLogTotalsFrameSize - 100] ^= 0x55;
  write_file(path, file);
  auto reader = LogFileReader::open(path);
  REQUIRE(reader.has_value());
  std::string out;
  Result<std::size_t> n = std::size_t{1};
  while (n.has_value() && *n > 0) n = (*reader)->read(out, 4096);
  REQUIRE_FALSE(n.has_value());
  CHECK(n.error().code() == Code::kInvalidArgument);
}

TEST_CASE("create refuses an existing file and names a missing directory") {
  TempDir dir;
  const auto path = dir / "j.log.zst";
  write_file(path, "precious");
  auto exists = LogFileWriter::create(path);
  REQUIRE_FALSE(exists.has_value());
  CHECK(exists.error().code() == Code::kAlreadyExists);
  CHECK(exists.error().message().find(path.string()) != std::string::npos);
  CHECK(read_file(path) == "precious");

  auto missing = LogFileWriter::create(dir / "no/such/dir/k.log.zst");
  REQUIRE_FALSE(missing.has_value());
  CHECK(missing.error().code() == Code::kNotFound);

  auto reader = LogFileReader::open(dir / "absent.log.zst");
  REQUIRE_FALSE(reader.has_value());
  CHECK(reader.error().code() == Code::kNotFound);
  CHECK(reader.error().message().find("absent.log.zst") != std::string::npos);
}

TEST_CASE("a new file has mode 0640") {
  TempDir dir;
  const auto path = dir / "m.log.zst";
  auto writer = LogFileWriter::create(path);
  REQUIRE(writer.has_value());
  const auto mode = std::filesystem::status(path).permissions();
  using std::filesystem::perms;
  // The umask may take bits away, never add any.
  CHECK((mode & ~(perms::owner_read | perms::owner_write | perms::group_read)) == perms::none);
  CHECK((mode & perms::owner_read) != perms::none);
}

TEST_CASE("inspect counts the data of the complete pairs and the whole file") {
  TempDir dir;
  const auto path = dir / "n.log.zst";
  std::mt19937_64 rng(19);
  LogTotals totals;
  std::string all;
  {
    auto writer = LogFileWriter::create(path);
    REQUIRE(writer.has_value());
    all = write_chunks(**writer, random_chunks(rng, 6), totals);
  }
  const auto valid = std::filesystem::file_size(path);
  std::ofstream(path, std::ios::binary | std::ios::app) << "torn";
  auto info = inspect_log_file(path);
  REQUIRE(info.has_value());
  CHECK(info->totals == totals);
  CHECK(info->data_bytes == all.size());
  CHECK(info->valid_bytes == valid);
  CHECK(info->file_bytes == valid + 4);
}

TEST_CASE("decompress_log_file stops at the sink's error and returns it") {
  TempDir dir;
  const auto path = dir / "o.log.zst";
  {
    auto writer = LogFileWriter::create(path);
    REQUIRE(writer.has_value());
    REQUIRE((*writer)->append(std::string(200000, 'q'), {200000, 0}).ok());
  }
  int calls = 0;
  const Status s = decompress_log_file(path, [&](std::string_view piece) {
    CHECK(piece.size() <= 65536);
    ++calls;
    return unavailable("sink full");
  });
  CHECK(s.code() == Code::kUnavailable);
  CHECK(calls == 1);
}

}  // namespace
}  // namespace odd::daemon
