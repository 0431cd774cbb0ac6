// Watches through the C++ client (statehub/watch.h) against the real
// server, over the transport the test run chooses (testing/transport.h):
// the events of each type in revision order, initial contents that race
// writes without a gap or a repeat, prefix watches, resuming with `since`
// and across a server restart, WATCH_TOO_OLD, Close from another thread,
// missing objects; and `statehub-cli watch`.

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "statehub/statehub.h"
#include "tests/e2e/shared_server.h"
#include "tests/testing/server_process.h"
#include "tests/testing/shell.h"
#include "tests/testing/transport.h"

namespace statehub {
namespace {

using ::testing::ElementsAre;

constexpr char kLabel[] = "watch-test:writer";

// Seen is an event reduced to what the tests compare.
struct Seen {
  std::string op;
  Value key;
  Value value;
  bool operator==(const Seen& other) const {
    return op == other.op && key == other.key && value == other.value;
  }
};

void PrintTo(const Seen& seen, std::ostream* os) {
  *os << seen.op << " " << seen.key.Repr() << " " << seen.value.Repr();
}

// Events reads `n` events (failing the test if they do not come within
// a few seconds each).
std::vector<WatchEvent> Events(Watch& watch, int n) {
  std::vector<WatchEvent> events;
  while (static_cast<int>(events.size()) < n) {
    absl::StatusOr<std::optional<WatchEvent>> event =
        watch.Next(absl::Seconds(10));
    EXPECT_TRUE(event.ok()) << event.status();
    if (!event.ok()) break;
    EXPECT_TRUE(event->has_value()) << "no event in time";
    if (!event->has_value()) break;
    events.push_back(**std::move(event));
  }
  return events;
}

std::vector<Seen> Reduce(const std::vector<WatchEvent>& events) {
  std::vector<Seen> seen;
  for (const WatchEvent& e : events) {
    seen.push_back(Seen{std::string(WatchOpName(e.op)), e.key, e.value});
  }
  return seen;
}

// ExpectQuiet checks that no event comes within a short while.
void ExpectQuiet(Watch& watch) {
  absl::StatusOr<std::optional<WatchEvent>> event =
      watch.Next(absl::Milliseconds(200));
  ASSERT_TRUE(event.ok()) << event.status();
  EXPECT_FALSE(event->has_value()) << "unexpected " << WatchOpName((*event)->op)
                                   << " " << (*event)->key.Repr();
}

class WatchE2eTest : public testing::SharedServerTest {
 protected:
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    client_ = Connect(server_->unix_address());
    ASSERT_NE(client_, nullptr);
  }

  // Connect returns a client labelled kLabel, or null.
  static std::unique_ptr<Client> Connect(const std::string& address) {
    ClientOptions options;
    options.label = kLabel;
    return SharedServerTest::Connect(address, options);
  }

  std::unique_ptr<Client> client_;
};

TEST_F(WatchE2eTest, DictEventsComeInRevisionOrderWithWhoMadeThem) {
  absl::StatusOr<Dict> d = client_->OpenDict(Name("d"));
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<Watch> watch = d->Watch();
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_EQ(watch->revision(), watch->start_revision());

  ASSERT_TRUE(d->Set("a", 1).ok());
  ASSERT_TRUE(d->Set("b", Value::List({1, "x"})).ok());
  ASSERT_TRUE(d->Update({{"c", 3}, {"d", 4}}).ok());
  ASSERT_TRUE(d->Delete("a").ok());
  ASSERT_TRUE(d->Pop("b").ok());
  ASSERT_TRUE(d->Increment("c", 2).ok());
  ASSERT_TRUE(d->Clear().ok());

  std::vector<WatchEvent> events = Events(*watch, 8);
  EXPECT_THAT(
      Reduce(events),
      ElementsAre(Seen{"set", "a", 1}, Seen{"set", "b", Value::List({1, "x"})},
                  Seen{"set", "c", 3}, Seen{"set", "d", 4},
                  Seen{"delete", "a", Value()}, Seen{"delete", "b", Value()},
                  Seen{"set", "c", 5}, Seen{"clear", Value(), Value()}));
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(events[i].session, kLabel);
    EXPECT_EQ(events[i].object, d->name());
    if (i > 0) EXPECT_GE(events[i].revision, events[i - 1].revision);
  }
  // One update, one revision; every other call a revision of its own.
  EXPECT_EQ(events[2].revision, events[3].revision);
  EXPECT_GT(events[1].revision, events[0].revision);
  EXPECT_GT(events[4].revision, events[3].revision);
  // Every change of the dict up to its last event was delivered (and maybe
  // a progress notice took revision() further).
  EXPECT_GE(watch->revision(), events.back().revision);
  ExpectQuiet(*watch);
}

TEST_F(WatchE2eTest, AnExpiredEntryIsAnExpireEventOfTheServer) {
  absl::StatusOr<Dict> d = client_->OpenDict(Name("ttl"));
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<Watch> watch = d->Watch({});
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_TRUE(d->Set("k", "v", absl::Milliseconds(100)).ok());
  std::vector<WatchEvent> events = Events(*watch, 2);
  EXPECT_THAT(Reduce(events),
              ElementsAre(Seen{"set", "k", "v"}, Seen{"expire", "k", Value()}));
  EXPECT_EQ(events[0].session, kLabel);
  EXPECT_EQ(events[1].session, "");  // the server's own change
  EXPECT_GT(events[1].revision, events[0].revision);
}

TEST_F(WatchE2eTest, WatchesWorkOverTcpAndWithoutASession) {
  ClientOptions options;
  options.open_session = false;
  auto client =
      Client::Connect(server_->tcp_address(), testing::TestOptions(options));
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<Dict> d = (*client)->OpenDict(Name("d"));
  ASSERT_TRUE(d.ok()) << d.status();
  absl::StatusOr<Watch> watch = d->Watch({.initial = true});
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_TRUE(watch->initial().entries.empty());
  ASSERT_TRUE(client_->OpenDict(d->name())->Set("k", "v").ok());
  EXPECT_THAT(Reduce(Events(*watch, 1)), ElementsAre(Seen{"set", "k", "v"}));
}

TEST_F(WatchE2eTest, EventsOfListsValuesQueuesAndSynchronization) {
  absl::StatusOr<List> list = client_->OpenList(Name("list"), {1, 2});
  absl::StatusOr<ValueCell> cell = client_->OpenValue(Name("value"), 0, "i");
  absl::StatusOr<Queue> queue = client_->OpenQueue(Name("queue"));
  absl::StatusOr<Lock> lock = client_->OpenLock(Name("lock"));
  absl::StatusOr<Event> event = client_->OpenEvent(Name("event"));
  absl::StatusOr<Semaphore> semaphore =
      client_->OpenSemaphore(Name("semaphore"), 2);
  ASSERT_TRUE(list.ok() && cell.ok() && queue.ok() && lock.ok() && event.ok() &&
              semaphore.ok());
  absl::StatusOr<Watch> lw = list->Watch();
  absl::StatusOr<Watch> cw = cell->Watch();
  absl::StatusOr<Watch> qw = queue->Watch();
  absl::StatusOr<Watch> kw = lock->Watch();
  absl::StatusOr<Watch> ew = event->Watch();
  absl::StatusOr<Watch> sw = semaphore->Watch();
  ASSERT_TRUE(lw.ok() && cw.ok() && qw.ok() && kw.ok() && ew.ok() && sw.ok())
      << lw.status() << cw.status() << qw.status() << kw.status() << ew.status()
      << sw.status();

  ASSERT_TRUE(list->Append(3).ok());
  ASSERT_TRUE(list->Set(0, "zero").ok());
  ASSERT_TRUE(list->Pop(1).ok());
  EXPECT_THAT(Reduce(Events(*lw, 3)),
              ElementsAre(Seen{"insert", 2, Value::List({3})},
                          Seen{"set", 0, "zero"}, Seen{"remove", 1, Value()}));

  ASSERT_TRUE(cell->Set(7).ok());
  EXPECT_THAT(Reduce(Events(*cw, 1)), ElementsAre(Seen{"set", Value(), 7}));

  ASSERT_TRUE(queue->Put("job").ok());
  ASSERT_TRUE(queue->Get().ok());
  // Every queue counts unfinished tasks (a joinable one lets them be
  // waited for).
  EXPECT_THAT(
      Reduce(Events(*qw, 3)),
      ElementsAre(Seen{"put", Value(), "job"}, Seen{"tasks", Value(), 1},
                  Seen{"get", Value(), Value()}));

  absl::StatusOr<Acquisition> held = lock->Acquire();
  ASSERT_TRUE(held.ok() && held->acquired);
  ASSERT_TRUE(lock->Release().ok());
  std::vector<WatchEvent> lock_events = Events(*kw, 2);
  ASSERT_EQ(lock_events.size(), 2u);
  EXPECT_EQ(lock_events[0].op, WatchOp::kAcquire);
  EXPECT_TRUE(lock_events[0].value.is_string());
  EXPECT_EQ(lock_events[1].op, WatchOp::kRelease);

  ASSERT_TRUE(event->Set().ok());
  ASSERT_TRUE(event->Clear().ok());
  EXPECT_THAT(Reduce(Events(*ew, 2)),
              ElementsAre(Seen{"set", Value(), Value()},
                          Seen{"clear", Value(), Value()}));

  absl::StatusOr<bool> taken = semaphore->Acquire();
  ASSERT_TRUE(taken.ok() && *taken);
  EXPECT_THAT(Reduce(Events(*sw, 1)),
              ElementsAre(Seen{"semaphore", Value(), 1}));
  ASSERT_TRUE(semaphore->Release().ok());
}

TEST_F(WatchE2eTest, InitialContentsRacingWritesHaveNoGapAndNoRepeat) {
  constexpr int kWrites = 300;
  absl::StatusOr<Dict> d = client_->OpenDict(Name("d"));
  ASSERT_TRUE(d.ok()) << d.status();
  std::unique_ptr<Client> writer_client = Connect(server_->unix_address());
  ASSERT_NE(writer_client, nullptr);
  absl::StatusOr<Dict> writes = writer_client->OpenDict(d->name());
  ASSERT_TRUE(writes.ok());
  std::atomic<int> written{0};
  std::thread writer([&] {
    for (int i = 0; i < kWrites; ++i) {
      ASSERT_TRUE(writes->Set(absl::StrCat("k", i), i).ok());
      written.store(i + 1);
    }
  });
  // Start the watch in the middle of the writes.
  while (written.load() < kWrites / 3) absl::SleepFor(absl::Milliseconds(1));
  absl::StatusOr<Watch> watch = d->Watch({.initial = true});
  ASSERT_TRUE(watch.ok()) << watch.status();
  writer.join();

  EXPECT_EQ(watch->initial().type, ObjectType::kDict);
  std::multiset<std::string> keys;
  for (const auto& [key, value] : watch->initial().entries) {
    keys.insert(key.AsString());
  }
  const size_t initial = keys.size();
  EXPECT_GE(initial, static_cast<size_t>(kWrites / 3));
  for (const WatchEvent& e : Events(*watch, kWrites - initial)) {
    EXPECT_EQ(e.op, WatchOp::kSet);
    EXPECT_GT(e.revision, watch->start_revision());
    keys.insert(e.key.AsString());
  }
  ExpectQuiet(*watch);
  ASSERT_EQ(keys.size(), static_cast<size_t>(kWrites));
  for (int i = 0; i < kWrites; ++i) {
    EXPECT_EQ(keys.count(absl::StrCat("k", i)), 1u) << i;
  }
}

TEST_F(WatchE2eTest, PrefixWatchSeesObjectsCreatedAndDeletedUnderIt) {
  const std::string prefix = Name("");
  ASSERT_TRUE(client_->OpenDict(prefix + "a").ok());
  absl::StatusOr<Watch> watch = client_->WatchNames(prefix, {.initial = true});
  ASSERT_TRUE(watch.ok()) << watch.status();
  ASSERT_EQ(watch->initial().objects.size(), 1u);
  EXPECT_EQ(watch->initial().objects[0].first, prefix + "a");
  EXPECT_EQ(watch->initial().objects[0].second, ObjectType::kDict);

  ASSERT_TRUE(client_->OpenList(prefix + "b").ok());
  ASSERT_TRUE(client_->OpenDict("watch/elsewhere").ok());
  absl::StatusOr<Dict> a = client_->OpenDict(prefix + "a");
  ASSERT_TRUE(a->Set("not", "seen").ok());
  ASSERT_TRUE(client_->Delete(prefix + "a").ok());

  std::vector<WatchEvent> events = Events(*watch, 2);
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].op, WatchOp::kCreated);
  EXPECT_EQ(events[0].object, prefix + "b");
  EXPECT_EQ(events[0].value, Value("list"));
  EXPECT_EQ(events[1].op, WatchOp::kDeleted);
  EXPECT_EQ(events[1].object, prefix + "a");
  ExpectQuiet(*watch);
}

TEST_F(WatchE2eTest, SinceGoesOnWhereAnEarlierWatchStopped) {
  absl::StatusOr<Dict> d = client_->OpenDict(Name("d"));
  ASSERT_TRUE(d.ok());
  absl::StatusOr<Watch> first = d->Watch();
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(d->Set("a", 1).ok());
  ASSERT_TRUE(d->Update({{"b", 2}, {"c", 3}}).ok());
  ASSERT_TRUE(d->Set("d", 4).ok());
  // Stop in the middle of the update: its revision is not wholly returned.
  std::vector<WatchEvent> read = Events(*first, 2);
  ASSERT_EQ(read.size(), 2u);
  EXPECT_EQ(read[1].key, Value("b"));
  EXPECT_EQ(first->revision(), read[1].revision - 1);
  const uint64_t since = first->revision();
  first->Close();

  absl::StatusOr<Watch> second = d->Watch({.since = since});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(Reduce(Events(*second, 3)),
              ElementsAre(Seen{"set", "b", 2}, Seen{"set", "c", 3},
                          Seen{"set", "d", 4}));
  ExpectQuiet(*second);

  // A revision the server has not reached is refused.
  absl::StatusOr<Watch> future = d->Watch({.since = second->revision() + 1000});
  EXPECT_FALSE(future.ok());
  EXPECT_EQ(GetErrorKind(future.status()), ErrorKind::kValueError)
      << future.status();
  // So is since with initial.
  absl::StatusOr<Watch> both = d->Watch({.since = since, .initial = true});
  EXPECT_FALSE(both.ok());
}

TEST_F(WatchE2eTest, CloseFromAnotherThreadUnblocksNext) {
  absl::StatusOr<Dict> d = client_->OpenDict(Name("d"));
  ASSERT_TRUE(d.ok());
  absl::StatusOr<Watch> watch = d->Watch();
  ASSERT_TRUE(watch.ok()) << watch.status();
  std::atomic<bool> returned{false};
  absl::Status status;
  std::thread reader([&] {
    absl::StatusOr<std::optional<WatchEvent>> event = watch->Next();
    status = event.status();
    returned.store(true);
  });
  absl::SleepFor(absl::Milliseconds(200));
  EXPECT_FALSE(returned.load());
  const absl::Time closed = absl::Now();
  watch->Close();
  reader.join();
  EXPECT_LT(absl::Now() - closed, absl::Seconds(5));
  EXPECT_TRUE(absl::IsCancelled(status)) << status;
  // Closed for good; Close again is harmless.
  watch->Close();
  EXPECT_TRUE(absl::IsCancelled(watch->Next(absl::ZeroDuration()).status()));
}

TEST_F(WatchE2eTest, MissingObjectIsObjectNotFound) {
  absl::StatusOr<Watch> watch = client_->WatchObject(Name("missing"));
  EXPECT_FALSE(watch.ok());
  EXPECT_EQ(GetErrorKind(watch.status()), ErrorKind::kObjectNotFound)
      << watch.status();

  absl::StatusOr<Dict> d = client_->OpenDict(Name("d"));
  ASSERT_TRUE(d.ok());
  ASSERT_TRUE(client_->Delete(d->name()).ok());
  watch = d->Watch();
  EXPECT_EQ(GetErrorKind(watch.status()), ErrorKind::kObjectNotFound)
      << watch.status();

  // A moved-from handle and a moved-from watch fail plainly.
  Dict moved = *std::move(d);
  EXPECT_TRUE(absl::IsFailedPrecondition(d->Watch().status()));
  absl::StatusOr<Watch> live = client_->WatchNames(Name(""));
  ASSERT_TRUE(live.ok()) << live.status();
  Watch taken = *std::move(live);
  EXPECT_TRUE(absl::IsFailedPrecondition(live->Next().status()));
}

TEST_F(WatchE2eTest, AWatchFollowsItsNameThroughDeletionAndRecreation) {
  const std::string name = Name("d");
  absl::StatusOr<Dict> d = client_->OpenDict(name, {{"x", 1}});
  ASSERT_TRUE(d.ok());
  absl::StatusOr<Watch> watch = client_->WatchObject(name, {.initial = true});
  ASSERT_TRUE(watch.ok()) << watch.status();
  EXPECT_EQ(watch->initial().type, ObjectType::kDict);
  ASSERT_EQ(watch->initial().entries.size(), 1u);
  ASSERT_TRUE(client_->Delete(name).ok());
  ASSERT_TRUE(client_->OpenList(name).ok());
  EXPECT_THAT(Reduce(Events(*watch, 2)),
              ElementsAre(Seen{"deleted", Value(), Value()},
                          Seen{"created", Value(), "list"}));
}

TEST(WatchTooOldE2eTest, ASinceTheServerNoLongerKeepsIsWatchTooOld) {
  auto server = testing::ServerProcess::Start({"--watch_history=5"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto client =
      Client::Connect((*server)->unix_address(), testing::TestOptions());
  ASSERT_TRUE(client.ok()) << client.status();
  absl::StatusOr<Dict> d = (*client)->OpenDict("d");
  ASSERT_TRUE(d.ok());
  absl::StatusOr<Watch> watch = d->Watch();
  ASSERT_TRUE(watch.ok()) << watch.status();
  const uint64_t start = watch->start_revision();
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(d->Set("k", i).ok());

  absl::StatusOr<Watch> old = d->Watch({.since = start});
  ASSERT_FALSE(old.ok());
  EXPECT_EQ(GetErrorKind(old.status()), ErrorKind::kWatchTooOld)
      << old.status();
  EXPECT_TRUE(absl::IsOutOfRange(old.status())) << old.status();
  const auto [revision, oldest] = GetWatchRevisions(old.status());
  EXPECT_GE(revision, start + 20);
  EXPECT_GT(oldest, start);
  // The watch that kept up is fine.
  EXPECT_EQ(Events(*watch, 20).size(), 20u);
}

TEST(WatchRestartE2eTest, AWatchResumesAcrossAServerRestart) {
  char dir[] = "/tmp/statehub-watch-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  {
    auto server =
        testing::ServerProcess::Start({absl::StrCat("--data_dir=", dir)});
    ASSERT_TRUE(server.ok()) << server.status();
    auto client =
        Client::Connect((*server)->unix_address(), testing::TestOptions());
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<Dict> d = (*client)->OpenDict("d");
    ASSERT_TRUE(d.ok());
    absl::StatusOr<Watch> watch = d->Watch();
    ASSERT_TRUE(watch.ok()) << watch.status();
    ASSERT_TRUE(d->Set("before", 1).ok());
    ASSERT_EQ(Events(*watch, 1).size(), 1u);

    ASSERT_TRUE((*server)->KillAndRestart().ok());
    // Written by another client while the watch is away.
    auto other =
        Client::Connect((*server)->unix_address(), testing::TestOptions());
    ASSERT_TRUE(other.ok()) << other.status();
    absl::StatusOr<Dict> od = (*other)->OpenDict("d");
    ASSERT_TRUE(od.ok());
    ASSERT_TRUE(od->Set("after", 2).ok());
    ASSERT_TRUE(od->Set("later", 3).ok());

    std::vector<WatchEvent> events;
    for (int i = 0; i < 2; ++i) {
      absl::StatusOr<std::optional<WatchEvent>> event =
          watch->Next(absl::Seconds(30));
      ASSERT_TRUE(event.ok()) << event.status();
      ASSERT_TRUE(event->has_value());
      events.push_back(**event);
    }
    EXPECT_EQ(events[0].key, Value("after"));
    EXPECT_EQ(events[1].key, Value("later"));
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

// --- statehub-cli watch -------------------------------------------------

std::string Cli(const std::string& address, const std::string& args,
                int* status) {
  return testing::Shell(
      absl::StrCat("timeout --preserve-status -s INT 3 ", STATEHUB_CLI_PATH,
                   " --address=", address, " ", args),
      status);
}

TEST_F(WatchE2eTest, CliPrintsInitialContentsThenEachChange) {
  absl::StatusOr<Dict> d = client_->OpenDict(Name("d"), {{"k1", 1}});
  ASSERT_TRUE(d.ok());
  int status = -1;
  std::string out;
  std::thread cli([&] {
    out = Cli(server_->unix_address(),
              absl::StrCat("watch --initial ", d->name()), &status);
  });
  // Each change is in the initial contents or an event, whenever the CLI
  // starts watching: never both, never neither.
  absl::SleepFor(absl::Milliseconds(500));
  ASSERT_TRUE(d->Set("k2", "two").ok());
  ASSERT_TRUE(d->Delete("k1").ok());
  cli.join();
  EXPECT_EQ(status, 0) << out;
  const bool k2_initial = absl::StrContains(out, " initial 'k2' 'two'\n");
  const bool k2_set =
      absl::StrContains(out, " set 'k2' 'two' watch-test:writer\n");
  EXPECT_NE(k2_initial, k2_set) << out;
  EXPECT_EQ(absl::StrContains(out, " initial 'k1' 1\n"),
            absl::StrContains(out, " delete 'k1' - watch-test:writer\n"))
      << out;
  EXPECT_TRUE(absl::StrContains(out, "initial") || k2_set) << out;
}

TEST_F(WatchE2eTest, CliWatchesNamesUnderAPrefixAndFailsOnAMissingObject) {
  const std::string prefix = Name("");
  int status = -1;
  std::string out;
  std::thread cli([&] {
    out = Cli(server_->unix_address(),
              absl::StrCat("watch --initial --prefix ", prefix), &status);
  });
  absl::SleepFor(absl::Milliseconds(500));
  ASSERT_TRUE(client_->OpenQueue(prefix + "q").ok());
  cli.join();
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(
      absl::StrContains(out, absl::StrCat(" initial ", prefix, "q 'queue'\n")),
      absl::StrContains(out, absl::StrCat(" created ", prefix,
                                          "q 'queue' watch-test:writer\n")))
      << out;

  out = Cli(server_->unix_address(), "watch " + Name("missing"), &status);
  EXPECT_EQ(status, 1) << out;
  EXPECT_TRUE(absl::StrContains(out, "not found")) << out;
}

}  // namespace
}  // namespace statehub
