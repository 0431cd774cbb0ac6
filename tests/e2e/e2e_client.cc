// A client process that end-to-end tests start, stop (SIGSTOP) and kill
// (SIGKILL), to show what the server does when a real process misbehaves.
//
//   e2e_client hold-anonymous ADDRESS
//       opens an anonymous dict, prints its name, then waits forever.
//   e2e_client hold-lock ADDRESS LOCK
//       acquires LOCK (a lock object), prints its fencing token, then waits
//       forever holding it.
//   e2e_client hammer ADDRESS DICT
//       prints "ready", then writes DICT's keys 0..99 to one value per
//       update, forever (each Update is atomic: a reader must never see
//       mixed values).

#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "grpcpp/grpcpp.h"
#include "statehub/internal/wire.h"
#include "statehub/statehub.h"
#include "statehub/v1/objects.grpc.pb.h"
#include "statehub/v1/sync.grpc.pb.h"

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
  if (std::strcmp(argv[1], "hold-lock") == 0 && argc == 4) {
    // Raw stubs: the C++ client has no Lock handle yet.
    auto channel =
        grpc::CreateChannel(argv[2], grpc::InsecureChannelCredentials());
    statehub::v1::OpenRequest open;
    open.set_name(argv[3]);
    open.set_type(statehub::v1::LOCK);
    statehub::v1::OpenResponse opened;
    grpc::ClientContext open_ctx;
    if (!statehub::v1::Objects::NewStub(channel)
             ->Open(&open_ctx, open, &opened)
             .ok()) {
      return 1;
    }
    statehub::v1::LockAcquireRequest req;
    req.set_name(argv[3]);
    req.set_blocking(true);
    statehub::v1::LockAcquireResponse resp;
    grpc::ClientContext ctx;
    ctx.AddMetadata(statehub::internal::kSessionKey, (*client)->session_id());
    if (!statehub::v1::Locks::NewStub(channel)
             ->Acquire(&ctx, req, &resp)
             .ok() ||
        !resp.acquired()) {
      return 1;
    }
    std::printf("%llu\n",
                static_cast<unsigned long long>(resp.fencing_token()));
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
