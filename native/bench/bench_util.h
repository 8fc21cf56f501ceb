// Small helpers the benchmarks share: flag values and comma lists from the command line, medians
// of timings.
#pragma once
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

// The items of a comma list ("1024,,4096" -> {"1024", "4096"}): empty items are dropped.
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> v;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) v.push_back(x);
  return v;
}

// The median of v (the upper middle one for an even count); 0 for none.
inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// The value after flag argv[i] ("--steps 20"): advances i past it, or exits with status 2 and
// "<prog>: <flag> needs a value" when the command line ends at the flag.
inline const char* flag_value(int argc, char** argv, int& i, const char* prog) {
  if (i + 1 >= argc) {
    std::fprintf(stderr, "%s: %s needs a value\n", prog, argv[i]);
    std::exit(2);
  }
  return argv[++i];
}
