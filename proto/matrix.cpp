#include "proto/matrix.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace odd::proto {

namespace {

std::string describe(const JobInstance& instance) {
  if (instance.matrix.empty()) return "job " + instance.job;
  std::string out = instance.job + " {";
  for (std::size_t i = 0; i < instance.matrix.size(); ++i) {
    if (i != 0) out += ", ";
    out += instance.matrix[i].first + ": \"" + instance.matrix[i].second + "\"";
  }
  out += '}';
  return out;
}

}  // namespace

std::string sanitize_key_part(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (const char c : value) {
    if (c >= 'A' && c <= 'Z') {
      out += static_cast<char>(c - 'A' + 'a');
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
               c == '-') {
      out += c;
    } else {
      out += '-';
    }
  }
  return out;
}

Result<std::vector<JobInstance>> expand_jobs(const RunSpec& spec) {
  std::vector<JobInstance> out;
  std::map<std::string, std::size_t> keys;  // key → index in out
  for (std::size_t j = 0; j < spec.jobs.size(); ++j) {
    const JobSpec& job = spec.jobs[j];
    const std::string path = spec_path_key("jobs", job.name);
    std::size_t product = 1;
    for (const auto& axis : job.matrix) {
      if (axis.values.empty()) {
        return invalid_argument(spec_path_key(spec_path_key(path, "matrix"), axis.key) +
                                ": expected a list of at least one value, got []");
      }
      product *= axis.values.size();
      if (product > kMaxMatrixProduct) {
        return invalid_argument(spec_path_key(path, "matrix") + ": expected at most " +
                                std::to_string(kMaxMatrixProduct) + " combinations per job, got " +
                                std::to_string(product) + " or more");
      }
    }
    if (out.size() + product > kMaxJobInstances) {
      return invalid_argument("jobs: expected at most " + std::to_string(kMaxJobInstances) +
                              " job instances after matrix expansion, got " +
                              std::to_string(out.size() + product) + " or more");
    }
    // An odometer over the axes, the last one turning fastest.
    std::vector<std::size_t> at(job.matrix.size(), 0);
    for (std::size_t n = 0; n < product; ++n) {
      JobInstance instance{job.name, job.name, j, {}};
      for (std::size_t a = 0; a < job.matrix.size(); ++a) {
        const std::string& value = job.matrix[a].values[at[a]];
        instance.key += '-';
        instance.key += sanitize_key_part(value);
        instance.matrix.emplace_back(job.matrix[a].key, value);
      }
      auto [it, inserted] = keys.emplace(instance.key, out.size());
      if (!inserted) {
        const JobInstance& other = out[it->second];
        const std::string where =
            other.job_index == j && !job.matrix.empty() ? spec_path_key(path, "matrix") : path;
        return invalid_argument(where + ": job key \"" + instance.key + "\" of " +
                                describe(instance) + " is also the key of " + describe(other));
      }
      out.push_back(std::move(instance));
      for (std::size_t a = job.matrix.size(); a-- > 0;) {
        if (++at[a] < job.matrix[a].values.size()) break;
        at[a] = 0;
      }
    }
  }
  return out;
}

std::vector<std::vector<std::string>> job_levels(const RunSpec& spec) {
  std::vector<std::vector<std::string>> levels;
  std::set<std::string, std::less<>> placed;
  std::vector<bool> done(spec.jobs.size(), false);
  while (true) {
    std::vector<std::string> level;
    std::vector<std::size_t> now;
    for (std::size_t j = 0; j < spec.jobs.size(); ++j) {
      if (done[j]) continue;
      const auto& needs = spec.jobs[j].needs;
      if (std::all_of(needs.begin(), needs.end(),
                      [&](const std::string& n) { return placed.contains(n); })) {
        level.push_back(spec.jobs[j].name);
        now.push_back(j);
      }
    }
    if (level.empty()) break;
    for (const std::size_t j : now) done[j] = true;
    placed.insert(level.begin(), level.end());
    levels.push_back(std::move(level));
  }
  return levels;
}

}  // namespace odd::proto
