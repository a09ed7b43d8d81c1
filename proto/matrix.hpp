#pragma once
// Matrix expansion: one run spec's jobs as the job instances the scheduler runs, each with its
// job key ("test-arch"), and the order `needs` imposes on jobs. Values only; any thread.

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.hpp"
#include "proto/spec.hpp"

namespace odd::proto {

// One instance of a job: its key, the job it comes from (RunSpec::jobs[job_index]) and its
// matrix values as written, in the matrix's declared key order.
struct JobInstance {
  std::string key;
  std::string job;
  std::size_t job_index = 0;
  std::vector<std::pair<std::string, std::string>> matrix;

  friend bool operator==(const JobInstance&, const JobInstance&) = default;
};

// A matrix value as a job-key part: ASCII letters lowercased, [a-z0-9_.-] kept, every other byte
// '-' ("ubuntu:22.04" → "ubuntu-22.04", "Fedora 40" → "fedora-40").
std::string sanitize_key_part(std::string_view value);

// Every job's instances, jobs in spec order, a job's combinations with the first matrix key
// varying slowest. Key: the job name, then "-" and each sanitised value in key order; the name
// alone without a matrix. invalid_argument when two instances get one key (naming both), over
// kMaxMatrixProduct per job or kMaxJobInstances in all. Never fails for a parse_spec result.
Result<std::vector<JobInstance>> expand_jobs(const RunSpec& spec);

// Job names in levels: level 0 needs nothing, each later level needs only jobs of earlier levels;
// within a level, spec order. Jobs on a `needs` cycle or needing an unknown job (which parse_spec
// rejects) appear in no level.
std::vector<std::vector<std::string>> job_levels(const RunSpec& spec);

}  // namespace odd::proto
