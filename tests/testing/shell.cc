#include "tests/testing/shell.h"

#include <sys/wait.h>

#include <cstdio>

namespace statehub::testing {

std::string Shell(const std::string& command, int* status) {
  std::string output;
  if (status != nullptr) *status = -1;
  FILE* pipe = popen((command + " 2>&1").c_str(), "r");
  if (pipe == nullptr) return output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) {
    output.append(buffer, n);
  }
  const int wait_status = pclose(pipe);
  if (status != nullptr && wait_status != -1 && WIFEXITED(wait_status)) {
    *status = WEXITSTATUS(wait_status);
  }
  return output;
}

}  // namespace statehub::testing
