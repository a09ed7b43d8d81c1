// Throughput of the log capture (DESIGN §7, §13): a flood of 100-byte lines on stdout through
// daemon::LogCapture (line split, masking, line-protocol scan, zstd level 1, write) into a temp
// dir, with no secrets, with two secrets that never occur and with two that occur in 1% of the
// lines; and, for comparison, zstd alone on the same bytes in the same 1 MiB frames.
//
// Usage: odd_bench_log_capture [MB] [DIR]   (default 550 MB under /tmp)

#include <stdlib.h>
#include <zstd.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "daemon/log_capture.hpp"

namespace {

using odd::daemon::CaptureOptions;
using odd::daemon::LogCapture;
using odd::daemon::OutputStream;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kPiece = 64 * 1024;

// 32 MiB of varied 100-byte lines, so that a 1 MiB frame never sees its own bytes repeated.
std::string make_corpus(bool with_secrets) {
  std::mt19937_64 rng(42);
  std::string corpus;
  constexpr std::size_t kSize = std::size_t{32} << 20;
  corpus.reserve(kSize + 128);
  const char* words[] = {"test_case", "assert", "checking", "worker", "result",
                         "ok",        "retry",  "config",   "value",  "elapsed"};
  char line[128];
  std::uint64_t n = 0;
  while (corpus.size() < kSize) {
    const bool secret = with_secrets && rng() % 100 == 0;
    int len = std::snprintf(
        line, sizeof line, "%08llu [w%llu] %s_%05llu %s=0x%08llx %s",
        static_cast<unsigned long long>(n++), static_cast<unsigned long long>(rng() % 8),
        words[rng() % 10], static_cast<unsigned long long>(rng() % 100000), words[rng() % 10],
        static_cast<unsigned long long>(rng() & 0xffffffffu),
        secret ? (rng() % 2 ? "tok=ghp_S3cretT0ken" : "pw=hunter2-hunter2") : "status");
    std::string s(line, static_cast<std::size_t>(len));
    s.resize(99, '.');
    corpus += s;
    corpus += '\n';
  }
  return corpus;
}

double run_capture(const std::string& corpus, std::size_t total, const std::filesystem::path& dir,
                   std::vector<std::string> secrets, const std::string& name) {
  boost::asio::io_context io;
  CaptureOptions o;
  o.dir = dir;
  o.container_name = name;
  o.stamp = "20261122-142030Z";
  o.secrets = std::move(secrets);
  auto capture = LogCapture::open(io.get_executor(), o, {}, nullptr);
  if (!capture) {
    std::fprintf(stderr, "%s\n", capture.error().to_string().c_str());
    std::exit(1);
  }
  const auto start = Clock::now();
  std::size_t done = 0;
  std::size_t at = 0;
  while (done < total) {
    if (at + kPiece > corpus.size()) at = 0;
    (*capture)->write(OutputStream::kStdout, std::string_view(corpus).substr(at, kPiece));
    at += kPiece;
    done += kPiece;
  }
  if (auto s = (*capture)->close(); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.to_string().c_str());
    std::exit(1);
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  const auto stored = std::filesystem::file_size((*capture)->stdout_path());
  std::printf("  %-36s %8.1f MB/s  (%.2f s, stored %.1f MB)\n", name.c_str(),
              static_cast<double>(done) / 1e6 / secs, secs, static_cast<double>(stored) / 1e6);
  std::filesystem::remove((*capture)->stdout_path());
  std::filesystem::remove((*capture)->stderr_path());
  return secs;
}

void run_zstd_only(const std::string& corpus, std::size_t total) {
  ZSTD_CCtx* cctx = ZSTD_createCCtx();
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, 1);
  ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
  constexpr std::size_t kFrame = std::size_t{1} << 20;
  std::string out(ZSTD_compressBound(kFrame), '\0');
  const auto start = Clock::now();
  std::size_t done = 0;
  std::size_t at = 0;
  std::size_t stored = 0;
  while (done < total) {
    if (at + kFrame > corpus.size()) at = 0;
    stored += ZSTD_compress2(cctx, out.data(), out.size(), corpus.data() + at, kFrame);
    at += kFrame;
    done += kFrame;
  }
  const double secs = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("  %-36s %8.1f MB/s  (%.2f s, %.1f MB)\n", "zstd -1 alone, 1 MiB frames",
              static_cast<double>(done) / 1e6 / secs, secs, static_cast<double>(stored) / 1e6);
  ZSTD_freeCCtx(cctx);
}

}  // namespace

int main(int argc, char** argv) {
  const std::size_t mb = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 550;
  std::string dir_pattern =
      argc > 2 ? std::string(argv[2]) + "/odd-bench-XXXXXX" : std::string("/tmp/odd-bench-XXXXXX");
  if (::mkdtemp(dir_pattern.data()) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  const std::filesystem::path dir = dir_pattern;
  const std::size_t total = mb * 1000 * 1000;
  const std::string plain = make_corpus(false);
  const std::string with = make_corpus(true);
  std::printf("log capture: %zu MB of 100-byte lines on stdout, %zu KiB writes, zstd level 1\n", mb,
              kPiece / 1024);
  run_capture(plain, total, dir, {}, "no secrets");
  run_capture(plain, total, dir, {"ghp_S3cretT0ken", "hunter2-hunter2"}, "2 secrets, never seen");
  run_capture(with, total, dir, {"ghp_S3cretT0ken", "hunter2-hunter2"},
              "2 secrets, in 1% of lines");
  run_zstd_only(plain, total);
  std::filesystem::remove_all(dir);
  return 0;
}
