// File: tests/testing/shell.h
//
// Shell runs a command line through /bin/sh for tests that drive a program
// the way a person would (statehub-cli, promtool), and returns what it
// printed, standard output and standard error together.
//
// Example:
//
//   int status;
//   const std::string out =
//       statehub::testing::Shell(cli + " deadlocks", &status);
//   EXPECT_EQ(status, 0) << out;
//
// Thread safety: thread-safe (popen per call).

#ifndef STATEHUB_TESTS_TESTING_SHELL_H_
#define STATEHUB_TESTS_TESTING_SHELL_H_

#include <string>

namespace statehub::testing {

// Shell runs `command` and returns its output (stdout and stderr); when
// `status` is non-null it gets the exit status (-1 if the command did not
// exit normally, or could not be started).
std::string Shell(const std::string& command, int* status = nullptr);

}  // namespace statehub::testing

#endif  // STATEHUB_TESTS_TESTING_SHELL_H_
