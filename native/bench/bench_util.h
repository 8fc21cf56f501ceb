// Small helpers the benchmarks share: comma lists from the command line, medians of timings.
#pragma once
#include <algorithm>
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
