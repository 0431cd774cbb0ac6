// File: tests/testing/scrape.h
//
// Reading a server's Prometheus metrics in tests: HttpGet fetches a page
// over plain HTTP/1.0 on loopback, MetricValue picks one sample out of the
// text exposition format.
//
// Example:
//
//   const std::string scrape =
//   statehub::testing::HttpGet(server->metrics_url()); std::optional<double>
//   parked = statehub::testing::MetricValue(
//       scrape, R"(statehub_parked_calls{type="event"})");
//
// Thread safety: both are thread-safe (no shared state).

#ifndef STATEHUB_TESTS_TESTING_SCRAPE_H_
#define STATEHUB_TESTS_TESTING_SCRAPE_H_

#include <optional>
#include <string>

#include "absl/strings/string_view.h"

namespace statehub::testing {

// HttpGet fetches `url` ("http://<ipv4>:<port>/<path>") and returns the
// body, or "" on any failure.
std::string HttpGet(const std::string& url);

// MetricValue returns the sample `series` (name and labels exactly as
// exposed, labels sorted) from `scrape`, or nullopt when absent.
std::optional<double> MetricValue(absl::string_view scrape,
                                  absl::string_view series);

}  // namespace statehub::testing

#endif  // STATEHUB_TESTS_TESTING_SCRAPE_H_
