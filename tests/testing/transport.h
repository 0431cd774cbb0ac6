// File: tests/testing/transport.h
//
// The transport the C++ end-to-end tests run their clients on, so that one
// suite covers both: the lane by default, gRPC with
// STATEHUB_TEST_TRANSPORT=grpc in the environment (CTest registers the e2e
// suite once per transport; child processes inherit the variable).
//
// Example:
//
//   auto client = Client::Connect(server->unix_address(), TestOptions());
//
// Thread safety: safe from any thread (reads the environment only).

#ifndef STATEHUB_TESTS_TESTING_TRANSPORT_H_
#define STATEHUB_TESTS_TESTING_TRANSPORT_H_

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "statehub/client.h"

namespace statehub::testing {

// TestTransport is STATEHUB_TEST_TRANSPORT: "grpc" or "lane" (also when
// unset or empty). Anything else aborts, so a typo never tests the wrong
// transport quietly.
inline Transport TestTransport() {
  const char* name = std::getenv("STATEHUB_TEST_TRANSPORT");
  if (name == nullptr || *name == '\0' || std::strcmp(name, "lane") == 0) {
    return Transport::kLane;
  }
  if (std::strcmp(name, "grpc") == 0) return Transport::kGrpc;
  std::fprintf(stderr,
               "STATEHUB_TEST_TRANSPORT=%s: expected \"lane\" or \"grpc\"\n",
               name);
  std::abort();
}

// TestOptions returns `options` with the transport under test.
inline ClientOptions TestOptions(ClientOptions options = {}) {
  options.transport = TestTransport();
  return options;
}

}  // namespace statehub::testing

#endif  // STATEHUB_TESTS_TESTING_TRANSPORT_H_
