// Many clients at once against the real server.

#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "statehub/statehub.h"
#include "tests/testing/server_process.h"
#include "tests/testing/transport.h"

namespace statehub {
namespace {

TEST(ConcurrencyTest, EightThreadsTimesTenThousandIncrementsEndExact) {
  auto server = testing::ServerProcess::Start();
  ASSERT_TRUE(server.ok()) << server.status();
  // Half the threads share one client (one channel); half have their own,
  // half over TCP: the count must be exact either way.
  auto shared =
      Client::Connect((*server)->unix_address(), testing::TestOptions());
  ASSERT_TRUE(shared.ok());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      std::unique_ptr<Client> own;
      Client* client = shared->get();
      if (t % 2 == 1) {
        auto c = Client::Connect(
            t % 4 == 1 ? (*server)->tcp_address() : (*server)->unix_address(),
            testing::TestOptions());
        if (!c.ok()) {
          ++failures;
          return;
        }
        own = *std::move(c);
        client = own.get();
      }
      auto counters = client->OpenDict("counters");
      if (!counters.ok()) {
        ++failures;
        return;
      }
      for (int i = 0; i < 10'000; ++i) {
        if (!counters->Increment("hits").ok()) ++failures;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  auto counters = (*shared)->OpenDict("counters");
  EXPECT_EQ(*counters->Get("hits"), Value(80'000));
}

}  // namespace
}  // namespace statehub
