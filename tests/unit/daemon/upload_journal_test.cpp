#include "daemon/upload_journal.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/unit/daemon/log_test_support.hpp"

namespace odd::daemon {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

TEST_CASE("UploadJournal: an intact upload's note goes, a cut-off one waits for a sweep") {
  TempDir dir;
  const fs::path notes = dir / "uploads" / "vm";
  UploadJournal journal(notes);
  CHECK_FALSE(journal.has_left_behind());

  auto intact = journal.begin("/srv/app");
  auto cut = journal.begin("relative/dir with space");
  REQUIRE(intact.has_value());
  REQUIRE(cut.has_value());
  CHECK(intact->size() == 16);
  CHECK(intact->find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(*intact != *cut);
  CHECK(fs::exists(notes / (*intact + ".json")));
  CHECK(fs::exists(notes / (*cut + ".json")));
  CHECK((fs::status(notes).permissions() & fs::perms::all) == static_cast<fs::perms>(0750));
  CHECK((fs::status(notes.parent_path()).permissions() & fs::perms::all) ==
        static_cast<fs::perms>(0750));
  CHECK((fs::status(notes / (*cut + ".json")).permissions() & fs::perms::all) ==
        static_cast<fs::perms>(0640));
  // Running uploads are not left behind, though their notes are on disk.
  CHECK_FALSE(journal.has_left_behind());

  CHECK(journal.finish(*intact, true).ok());
  CHECK_FALSE(fs::exists(notes / (*intact + ".json")));
  CHECK(journal.finish(*cut, false).ok());
  CHECK(fs::exists(notes / (*cut + ".json")));
  REQUIRE(journal.has_left_behind());

  auto taken = journal.take_left_behind();
  CHECK(taken == std::vector<UploadJournal::Upload>{{*cut, "relative/dir with space"}});
  CHECK_FALSE(journal.has_left_behind());
  journal.put_back(taken);
  CHECK(journal.take_left_behind() == taken);
  CHECK(journal.swept(*cut).ok());
  CHECK(journal.swept(*cut).ok());
  CHECK(fs::is_empty(notes));
}

TEST_CASE("UploadJournal: a new daemon sweeps what the last one noted, never a running upload") {
  TempDir dir;
  std::string earlier_tag;
  {
    UploadJournal earlier(dir.path());
    auto tag = earlier.begin("/srv/killed-midway");
    REQUIRE(tag.has_value());
    earlier_tag = *tag;
  }
  UploadJournal journal(dir.path());
  auto running = journal.begin("/srv/now");
  REQUIRE(running.has_value());
  CHECK(journal.take_left_behind() ==
        std::vector<UploadJournal::Upload>{{earlier_tag, "/srv/killed-midway"}});
  // The disk is read once: a later take has nothing new, and the running upload stays its own.
  CHECK(journal.take_left_behind().empty());
  CHECK(journal.swept(earlier_tag).ok());
  CHECK(journal.finish(*running, true).ok());
  CHECK(fs::is_empty(dir.path()));
}

TEST_CASE("UploadJournal skips and reports notes it cannot read, ignores other files") {
  TempDir dir;
  UploadJournal journal(dir.path());
  auto good = journal.begin("/srv/ok");
  REQUIRE(good.has_value());
  testing::write_file(dir / "0123456789abcdef.json", "{not json");
  testing::write_file(dir / "fedcba9876543210.json", R"({"format":2,"dest":"/x"})");
  testing::write_file(dir / "00000000000000aa.json", R"({"format":1,"dest":7})");
  testing::write_file(dir / "not-a-tag.json", R"({"format":1,"dest":"/y"})");
  testing::write_file(dir / "0123456789abcdef.json.tmp", R"({"format":1,"dest":"/z"})");

  REQUIRE(journal.finish(*good, false).ok());
  std::vector<std::string> unreadable;
  CHECK(journal.take_left_behind(&unreadable) ==
        std::vector<UploadJournal::Upload>{{*good, "/srv/ok"}});
  REQUIRE(unreadable.size() == 3);
  std::set<std::string> named;
  for (const std::string& problem : unreadable) {
    CHECK(problem.find(dir.path().native()) == 0);
    named.insert(fs::path(problem.substr(0, problem.find(':'))).filename());
  }
  CHECK(named == std::set<std::string>{"0123456789abcdef.json", "fedcba9876543210.json",
                                       "00000000000000aa.json"});
}

TEST_CASE("UploadJournal::begin names the path it cannot write") {
  TempDir dir;
  testing::write_file(dir / "uploads", "a file where the directory should be");
  UploadJournal journal(dir / "uploads" / "vm");
  auto tag = journal.begin("/srv/app");
  REQUIRE_FALSE(tag.has_value());
  CHECK(tag.error().message().find((dir / "uploads").native()) != std::string::npos);
  CHECK_FALSE(journal.has_left_behind());
}

TEST_CASE("unconfigured_uploads: hosts with notes that the config does not name") {
  TempDir dir;
  const fs::path uploads = dir / "uploads";
  UploadJournal kept(uploads / "vm");
  UploadJournal gone(uploads / "gone");
  UploadJournal finished(uploads / "finished");
  REQUIRE(kept.begin("/a").has_value());
  REQUIRE(gone.begin("/b").has_value());
  REQUIRE(gone.begin("/c").has_value());
  auto tag = finished.begin("/d");
  REQUIRE(tag.has_value());
  REQUIRE(finished.finish(*tag, true).ok());
  fs::create_directories(uploads / "stray");
  testing::write_file(uploads / "stray" / "notes.txt", "not a note");
  testing::write_file(uploads / "plain-file", "x");

  const auto found = unconfigured_uploads(uploads, {"vm"});
  CHECK(found == std::map<std::string, std::size_t>{{"gone", 2}});
  CHECK(unconfigured_uploads(uploads, {"vm", "gone"}).empty());
  CHECK(unconfigured_uploads(dir / "nothing-here", {}).empty());
}

}  // namespace
}  // namespace odd::daemon
