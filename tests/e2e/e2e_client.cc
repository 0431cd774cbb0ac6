// A client process that end-to-end tests start, stop (SIGSTOP) and kill
// (SIGKILL), to show what the server does when a real process misbehaves.
//
//   e2e_client hold-anonymous ADDRESS
//       opens an anonymous dict, prints its name, then waits forever.
//   e2e_client hammer ADDRESS DICT
//       prints "ready", then writes DICT's keys 0..99 to one value per
//       update, forever (each Update is atomic: a reader must never see
//       mixed values).

#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "statehub/statehub.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: e2e_client MODE ADDRESS [ARGS]\n");
    return 2;
  }
  auto client = statehub::Client::Connect(argv[2]);
  if (!client.ok()) {
    std::fprintf(stderr, "connect: %s\n", client.status().ToString().c_str());
    return 1;
  }
  if (std::strcmp(argv[1], "hold-anonymous") == 0) {
    auto dict = (*client)->OpenDict("");
    if (!dict.ok()) return 1;
    std::printf("%s\n", dict->name().c_str());
    std::fflush(stdout);
    for (;;) pause();
  }
  if (std::strcmp(argv[1], "hammer") == 0 && argc == 4) {
    auto dict = (*client)->OpenDict(argv[3]);
    if (!dict.ok()) return 1;
    std::printf("ready\n");
    std::fflush(stdout);
    for (int64_t round = 1;; ++round) {
      statehub::Value::Entries entries;
      for (int k = 0; k < 100; ++k) entries.emplace_back(k, round);
      if (!dict->Update(entries).ok()) return 1;
    }
  }
  std::fprintf(stderr, "unknown mode %s\n", argv[1]);
  return 2;
}
