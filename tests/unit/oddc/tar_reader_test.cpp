// The tar reader of `oddc artifacts`: what it extracts, in any split of the stream, and every
// entry it refuses. Archives come from a small writer here and, for a differential check, from
// GNU tar.
#include "oddc/tar_reader.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/unit/oddc/test_io.hpp"

namespace odd::oddc {
namespace {

using testing::TempDir;

void put_octal(std::string& block, std::size_t offset, std::size_t width, std::uint64_t value) {
  char text[32];
  std::snprintf(text, sizeof text, "%0*llo", static_cast<int>(width - 1),
                static_cast<unsigned long long>(value));
  block.replace(offset, width - 1, text, width - 1);
}

std::string header(const std::string& name, char type, std::uint64_t size, unsigned mode = 0644,
                   const std::string& prefix = "") {
  std::string h(512, '\0');
  h.replace(0, std::min<std::size_t>(name.size(), 100), name.substr(0, 100));
  put_octal(h, 100, 8, mode);
  put_octal(h, 108, 8, 0);
  put_octal(h, 116, 8, 0);
  put_octal(h, 124, 12, size);
  put_octal(h, 136, 12, 1795357230);
  h[156] = type;
  h.replace(257, 6, std::string("ustar\0", 6));
  h.replace(263, 2, "00");
  h.replace(345, prefix.size(), prefix);
  h.replace(148, 8, "        ");
  unsigned sum = 0;
  for (const char c : h) sum += static_cast<unsigned char>(c);
  char text[16];
  std::snprintf(text, sizeof text, "%06o", sum);
  h.replace(148, 7, std::string(text, 6) + '\0');
  return h;
}

std::string padded(const std::string& data) {
  return data + std::string((512 - data.size() % 512) % 512, '\0');
}

std::string entry(const std::string& name, char type, const std::string& data = "",
                  unsigned mode = 0644, const std::string& prefix = "") {
  return header(name, type, data.size(), mode, prefix) + padded(data);
}

std::string pax(const std::string& key, const std::string& value) {
  std::string record = " " + key + "=" + value + "\n";
  std::size_t length = record.size() + 1;
  while (std::to_string(length).size() + record.size() != length) ++length;
  record = std::to_string(length) + record;
  return entry("././@PaxHeader", 'x', record);
}

const std::string kEnd(1024, '\0');

std::string read(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Status extract_in_pieces(const std::string& archive, const std::string& dir, std::size_t piece) {
  auto extractor = TarExtractor::create(dir);
  if (!extractor) return extractor.error();
  for (std::size_t at = 0; at < archive.size(); at += piece) {
    if (Status s = (*extractor)->write(std::string_view(archive).substr(at, piece)); !s.ok()) {
      return s;
    }
  }
  return (*extractor)->finish();
}

Status extract(const std::string& archive, const std::string& dir) {
  return extract_in_pieces(archive, dir, archive.size() + 1);
}

const std::string kSample =
    entry("logs/", '5') + entry("logs/test-arch/", '5') +
    entry("logs/test-arch/odd-x-test-arch-stdout-20261122-142030Z.log", '0', "hello\nworld\n") +
    entry("logs/test-arch/empty.log", '0') +
    entry("logs/aggregate-20261122-142030Z-3f2a.json", '\0', std::string(1500, 'j')) +
    entry("./logs/files/deep/er/raw.bin", '0', std::string("\0\x01\x02", 3)) + kEnd +
    std::string(8192, '\0');

void check_sample(const std::string& dir) {
  CHECK(read(dir + "/logs/test-arch/odd-x-test-arch-stdout-20261122-142030Z.log") ==
        "hello\nworld\n");
  CHECK(std::filesystem::is_regular_file(dir + "/logs/test-arch/empty.log"));
  CHECK(read(dir + "/logs/test-arch/empty.log").empty());
  CHECK(read(dir + "/logs/aggregate-20261122-142030Z-3f2a.json") == std::string(1500, 'j'));
  CHECK(read(dir + "/logs/files/deep/er/raw.bin") == std::string("\0\x01\x02", 3));
}

TEST_CASE("regular files and directories are extracted into a directory it creates") {
  TempDir tmp;
  const std::string dir = tmp.path() + "/out/a";
  auto extractor = TarExtractor::create(dir);
  REQUIRE(extractor.has_value());
  CHECK((*extractor)->write(kSample).ok());
  CHECK((*extractor)->finish().ok());
  CHECK((*extractor)->files_written() == 4);
  CHECK((*extractor)->directories_created() == 2);
  check_sample(dir);
}

TEST_CASE("a stripped leading folder puts its contents straight into the directory") {
  TempDir tmp;
  auto extractor = TarExtractor::create(tmp.path(), "logs");
  REQUIRE(extractor.has_value());
  CHECK((*extractor)->write(kSample).ok());
  CHECK((*extractor)->finish().ok());
  CHECK(read(tmp.path() + "/test-arch/odd-x-test-arch-stdout-20261122-142030Z.log") ==
        "hello\nworld\n");
  CHECK(read(tmp.path() + "/aggregate-20261122-142030Z-3f2a.json") == std::string(1500, 'j'));
  CHECK(read(tmp.path() + "/files/deep/er/raw.bin") == std::string("\0\x01\x02", 3));
  CHECK_FALSE(std::filesystem::exists(tmp.path() + "/logs"));
}

TEST_CASE("any split of the stream extracts the same files") {
  for (std::size_t piece : {1u, 7u, 511u, 512u, 513u, 4096u}) {
    TempDir tmp;
    CHECK(extract_in_pieces(kSample, tmp.path(), piece).ok());
    check_sample(tmp.path());
  }
}

TEST_CASE("long names come from the ustar prefix, PAX path records and GNU long names") {
  TempDir tmp;
  const std::string long_dir = "logs/" + std::string(120, 'd');
  const std::string long_name = long_dir + "/" + std::string(150, 'f') + ".log";
  const std::string archive =
      entry("x.log", '0', "prefixed", 0644, "logs/sub") + pax("path", long_name) +
      pax("mtime", "1.5") + entry("ignored-short-name", '0', "pax") + "" +
      entry("././@LongLink", 'L', long_dir + "/gnu.log" + '\0') + entry("ignored", '0', "gnu") +
      entry("pax_global", 'g', "9 a=bcd\n") + kEnd;
  CHECK(extract(archive, tmp.path()).ok());
  CHECK(read(tmp.path() + "/logs/sub/x.log") == "prefixed");
  CHECK(read(tmp.path() + "/" + long_name) == "pax");
  CHECK(read(tmp.path() + "/" + long_dir + "/gnu.log") == "gnu");
  CHECK_FALSE(std::filesystem::exists(tmp.path() + "/ignored"));
}

TEST_CASE("a PAX size overrides the header's") {
  TempDir tmp;
  std::string archive = pax("size", "5") + header("big.bin", '0', 0) + padded("12345") + kEnd;
  CHECK(extract(archive, tmp.path()).ok());
  CHECK(read(tmp.path() + "/big.bin") == "12345");
}

Status refused(const std::string& archive, const std::string& dir) {
  auto extractor = TarExtractor::create(dir);
  REQUIRE(extractor.has_value());
  Status s = (*extractor)->write(archive);
  // The error sticks: nothing more is extracted after a refusal.
  CHECK((*extractor)->write(entry("after.txt", '0', "x") + kEnd) == s);
  CHECK((*extractor)->finish() == s);
  CHECK_FALSE(std::filesystem::exists(dir + "/after.txt"));
  return s;
}

TEST_CASE("every entry that is absolute, has a .. part or is not a file or directory is refused") {
  struct Case {
    std::string archive;
    std::string message;
  };
  const std::vector<Case> cases{
      {entry("/etc/cron.d/x", '0', "x"),
       "refusing tar entry \"/etc/cron.d/x\": it is an absolute path"},
      {entry("logs/../../x", '0', "x"),
       "refusing tar entry \"logs/../../x\": it has a \"..\" part"},
      {entry("..", '5'), "refusing tar entry \"..\": it has a \"..\" part"},
      {entry("a/..", '5'), "refusing tar entry \"a/..\": it has a \"..\" part"},
      {pax("path", "../escape") + entry("fine", '0', "x"),
       "refusing tar entry \"../escape\": it has a \"..\" part"},
      {entry("logs/link", '2'), "refusing tar entry \"logs/link\": it is a symbolic link"},
      {entry("logs/hard", '1'), "refusing tar entry \"logs/hard\": it is a hard link"},
      {entry("tty", '3'), "refusing tar entry \"tty\": it is a character device"},
      {entry("sda", '4'), "refusing tar entry \"sda\": it is a block device"},
      {entry("pipe", '6'), "refusing tar entry \"pipe\": it is a FIFO"},
      {entry("vol", 'V'),
       "refusing tar entry \"vol\": its type 'V' is neither a regular file nor a directory"},
      {entry("", '0', "x"), "refusing tar entry \"\": it has an empty name"},
      {entry(".", '0', "x"),
       "refusing tar entry \".\": a file cannot be the target directory itself"},
      {entry("a\x1b[2J", '2'), "refusing tar entry \"a\\x1b[2J\": it is a symbolic link"},
  };
  for (const auto& c : cases) {
    TempDir tmp;
    const std::string dir = tmp.path() + "/out";
    const Status s = refused(entry("ok.txt", '0', "fine") + c.archive + kEnd, dir);
    CHECK(s == invalid_argument(c.message));
    CHECK(read(dir + "/ok.txt") == "fine");
    CHECK_FALSE(std::filesystem::exists(tmp.path() + "/escape"));
    CHECK_FALSE(std::filesystem::exists(tmp.path() + "/x"));
  }
}

TEST_CASE("a stream cut in the middle of a file is an error and the partial file is removed") {
  TempDir tmp;
  const std::string archive = entry("a.txt", '0', "complete") + header("b.txt", '0', 100) + "abc";
  auto extractor = TarExtractor::create(tmp.path());
  REQUIRE(extractor.has_value());
  CHECK((*extractor)->write(archive).ok());
  CHECK((*extractor)->finish() ==
        invalid_argument("the tar stream ended in the middle of \"b.txt\""));
  CHECK(read(tmp.path() + "/a.txt") == "complete");
  CHECK_FALSE(std::filesystem::exists(tmp.path() + "/b.txt"));
}

TEST_CASE("a stream without its end-of-archive blocks is an error") {
  TempDir tmp;
  CHECK(extract(entry("a.txt", '0', "x"), tmp.path()) ==
        invalid_argument("the tar stream ended without its end-of-archive blocks"));
  TempDir half;
  CHECK(extract(entry("a.txt", '0', "x") + std::string(100, '\0'), half.path()).code() ==
        Code::kInvalidArgument);
  TempDir one_block;
  CHECK(extract(entry("a.txt", '0', "x") + std::string(512, '\0'), one_block.path()).ok());
}

TEST_CASE("a header with a wrong checksum or a bad size is refused") {
  TempDir tmp;
  std::string bad = entry("a.txt", '0', "x");
  bad[0] = 'b';
  CHECK(extract(bad + kEnd, tmp.path()) ==
        invalid_argument("malformed tar header: checksum mismatch"));
  std::string no_number = header("a.txt", '0', 1);
  no_number.replace(148, 8, "zzzzzzz\0");
  CHECK(extract(no_number + kEnd, tmp.path()).message() ==
        "malformed tar header: its checksum field is not a number");
  CHECK(extract(pax("size", "12x") + entry("a", '0') + kEnd, tmp.path()) ==
        invalid_argument("malformed PAX size in the tar stream"));
  CHECK(extract(entry("././@PaxHeader", 'x', "garbage") + entry("a", '0') + kEnd, tmp.path()) ==
        invalid_argument("malformed PAX header in the tar stream"));
}

TEST_CASE("files get the entry's permission bits without setuid or write for others") {
  TempDir tmp;
  CHECK(extract(entry("run.sh", '0', "#!/bin/sh\n", 06777) + entry("ro.txt", '0', "x", 0400) + kEnd,
                tmp.path())
            .ok());
  struct stat st {};
  REQUIRE(::stat((tmp.path() + "/run.sh").c_str(), &st) == 0);
  CHECK((st.st_mode & 07000) == 0);
  CHECK((st.st_mode & S_IWOTH) == 0);
  CHECK((st.st_mode & S_IXUSR) != 0);
  CHECK(st.st_uid == ::geteuid());
  REQUIRE(::stat((tmp.path() + "/ro.txt").c_str(), &st) == 0);
  CHECK((st.st_mode & 0600) == 0600);
}

TEST_CASE("a file is never written through a symbolic link already in the directory") {
  TempDir tmp;
  const std::string outside = tmp.path() + "/outside.txt";
  std::ofstream(outside) << "keep";
  std::filesystem::create_directories(tmp.path() + "/out");
  std::filesystem::create_symlink(outside, tmp.path() + "/out/a.txt");
  const Status s = extract(entry("a.txt", '0', "overwrite") + kEnd, tmp.path() + "/out");
  CHECK(s.code() == Code::kInternal);
  CHECK(s.message().find("cannot create " + tmp.path() + "/out/a.txt: ") == 0);
  CHECK(read(outside) == "keep");
}

TEST_CASE("the target must be a directory it can create") {
  TempDir tmp;
  std::ofstream(tmp.path() + "/file") << "x";
  auto extractor = TarExtractor::create(tmp.path() + "/file/sub");
  REQUIRE_FALSE(extractor.has_value());
  CHECK(extractor.error().message().find("cannot create directory " + tmp.path() + "/file/sub: ") ==
        0);
}

TEST_CASE("archives written by GNU tar extract to the same tree") {
  if (std::system("tar --version > /dev/null 2>&1") != 0) return;
  TempDir tmp;
  const std::string src = tmp.path() + "/src";
  const std::string long_part = std::string(90, 'l');
  tmp.file("src/logs/aggregate.json", "{\"a\": 1}\n");
  tmp.file("src/logs/" + long_part + "/" + long_part + "/job.log", std::string(70000, 'q'));
  tmp.file("src/logs/empty", "");
  for (const std::string format : {"gnu", "pax", "ustar"}) {
    const std::string archive = tmp.path() + "/a-" + format + ".tar";
    const std::string command =
        "tar --format=" + format + " -C " + src + " -cf " + archive + " . 2>/dev/null";
    if (std::system(command.c_str()) != 0) {
      CHECK(format == "ustar");  // ustar cannot hold a 200-character name
      continue;
    }
    const std::string out = tmp.path() + "/out-" + format;
    CHECK(extract_in_pieces(read(archive), out, 1000).ok());
    CHECK(read(out + "/logs/aggregate.json") == "{\"a\": 1}\n");
    CHECK(read(out + "/logs/" + long_part + "/" + long_part + "/job.log") ==
          std::string(70000, 'q'));
    CHECK(std::filesystem::is_regular_file(out + "/logs/empty"));
  }
}

}  // namespace
}  // namespace odd::oddc
