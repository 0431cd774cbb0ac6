// The C++ near cache (Dict::Cached, statehub/dict.h; ValueCell::Cached and
// Namespace::Cached) against the real server, over the transport the test run
// chooses (testing/transport.h): hits served from memory (counted, and no rpc
// sent), another client's writes seen once their invalidation arrives, this
// handle's own writes read at once, the placeholder race made deterministic by
// a test hook and raced for real by threads, Clear/Update/deletion, the
// eviction bound, ttl deadlines, handles without a cache, moves and
// destruction, and a server restart that empties the cache until the watch is
// back; for value cells and namespaces, hits, another client's writes and
// deletion, own writes, handles without a cache, and moves.
//
// Nothing here asserts timing: what another client changes is polled for
// with a deadline of 10 s.

#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "statehub/internal/cache_testing.h"
#include "statehub/statehub.h"
#include "tests/e2e/shared_server.h"
#include "tests/testing/server_process.h"
#include "tests/testing/transport.h"

namespace statehub {
namespace {

constexpr absl::Duration kPatience = absl::Seconds(10);

// Eventually polls `ok` until it holds, for up to kPatience.
bool Eventually(const std::function<bool()>& ok) {
  const absl::Time give_up = absl::Now() + kPatience;
  while (absl::Now() < give_up) {
    if (ok()) return true;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return ok();
}

// Counts is what CountingObserver counts.
struct Counts {
  std::atomic<int64_t> dict_gets{0};
  std::atomic<int64_t> value_gets{0};
  std::atomic<int64_t> namespace_gets{0};
  std::atomic<int64_t> hits{0};
  std::atomic<int64_t> misses{0};
  std::atomic<int64_t> invalidations{0};
  std::atomic<int64_t> entries{0};
};

// CountingObserver counts the DictGet, ValueGet and NamespaceGet rpcs a
// client sends and what its near caches report.
class CountingObserver final : public CallObserver {
 public:
  explicit CountingObserver(std::shared_ptr<Counts> counts)
      : counts_(std::move(counts)) {}

  void CallDone(absl::string_view rpc, absl::Duration,
                absl::StatusCode) override {
    if (rpc == "DictGet") counts_->dict_gets++;
    if (rpc == "ValueGet") counts_->value_gets++;
    if (rpc == "NamespaceGet") counts_->namespace_gets++;
  }
  void AcquireDone(absl::string_view, absl::Duration, bool) override {}
  std::shared_ptr<CacheObserver> CacheOpened(absl::string_view) override {
    return std::make_shared<Cache>(counts_);
  }

 private:
  class Cache final : public CacheObserver {
   public:
    explicit Cache(std::shared_ptr<Counts> counts)
        : counts_(std::move(counts)) {}
    void Hit() override { counts_->hits++; }
    void Miss() override { counts_->misses++; }
    void Invalidated() override { counts_->invalidations++; }
    void EntriesChanged(int64_t delta) override { counts_->entries += delta; }

   private:
    std::shared_ptr<Counts> counts_;
  };

  std::shared_ptr<Counts> counts_;
};

class CacheE2eTest : public testing::SharedServerTest {
 protected:
  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    counts_ = std::make_shared<Counts>();
    ClientOptions options;
    options.label = "cache-test:reader";
    options.observer = std::make_shared<CountingObserver>(counts_);
    client_ = Connect(server_->unix_address(), options);
    ASSERT_NE(client_, nullptr);
    options = {};
    options.label = "cache-test:other";
    other_ = Connect(server_->unix_address(), options);
    ASSERT_NE(other_, nullptr);
  }

  // Open returns a cached handle on dict `name` (made with `initial`) of
  // client_, and an uncached one of other_.
  std::pair<Dict, Dict> Open(const std::string& name,
                             Value::Entries initial = {},
                             CacheOptions options = {}) {
    absl::StatusOr<Dict> plain = client_->OpenDict(name, std::move(initial));
    EXPECT_TRUE(plain.ok()) << plain.status();
    absl::StatusOr<Dict> cached = plain->Cached(options);
    EXPECT_TRUE(cached.ok()) << cached.status();
    absl::StatusOr<Dict> theirs = other_->OpenDict(name);
    EXPECT_TRUE(theirs.ok()) << theirs.status();
    return {*std::move(cached), *std::move(theirs)};
  }

  // ExpectCounted checks a cached handle's `info` and what the client's
  // observer counted: `hits`, `misses` and `entries`, and that only the
  // misses made a call (`calls` is the get rpcs the reads sent).
  void ExpectCounted(const std::optional<CacheInfo>& info, int64_t hits,
                     int64_t misses, int64_t entries, int64_t calls) {
    ASSERT_TRUE(info.has_value());
    EXPECT_EQ(info->hits, hits);
    EXPECT_EQ(info->misses, misses);
    EXPECT_EQ(info->entries, entries);
    EXPECT_EQ(info->invalidations, 0);
    EXPECT_EQ(info->max_entries, 100000);
    EXPECT_EQ(calls, misses);
    EXPECT_EQ(counts_->hits, hits);
    EXPECT_EQ(counts_->misses, misses);
    EXPECT_EQ(counts_->entries, entries);
  }

  std::shared_ptr<Counts> counts_;
  std::unique_ptr<Client> client_;
  std::unique_ptr<Client> other_;
};

TEST_F(CacheE2eTest, ReadsAfterTheFirstAreServedFromMemory) {
  auto opened = Open(Name("d"), {{"k", 1}});
  Dict& cached = opened.first;
  Dict& theirs = opened.second;
  const int64_t gets = counts_->dict_gets;

  EXPECT_EQ(*cached.Get("k"), Value(1));  // a miss: to the server
  EXPECT_EQ(*cached.Get("k"), Value(1));
  EXPECT_EQ(*cached.Get("k", 7), Value(1));
  EXPECT_TRUE(*cached.Contains("k"));
  // A missing key is remembered too, with the server's KEY_ERROR.
  absl::StatusOr<Value> missing = cached.Get("missing");
  EXPECT_EQ(GetErrorKind(missing.status()), ErrorKind::kKeyError);
  absl::StatusOr<Value> again = cached.Get("missing");
  EXPECT_EQ(GetErrorKind(again.status()), ErrorKind::kKeyError);
  EXPECT_EQ(again.status().message(), missing.status().message());
  EXPECT_EQ(*cached.Get("missing", 7), Value(7));
  EXPECT_FALSE(*cached.Contains("missing"));
  // 1.0 is the key 1, as in Python.
  EXPECT_EQ(*cached.Get(1.0, "none"), Value("none"));
  EXPECT_EQ(*cached.Get(1, "none"), Value("none"));

  ExpectCounted(cached.cache_info(), /*hits=*/7, /*misses=*/3, /*entries=*/3,
                counts_->dict_gets - gets);

  cached.ClearCache();
  EXPECT_EQ(cached.cache_info()->entries, 0);
  EXPECT_EQ(counts_->entries, 0);
  EXPECT_EQ(*cached.Get("k"), Value(1));
  EXPECT_EQ(cached.cache_info()->misses, 4);
}

TEST_F(CacheE2eTest, AHandleWithoutACacheKeepsNothing) {
  absl::StatusOr<Dict> plain = client_->OpenDict(Name("d"), {{"k", 1}});
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->cache_info().has_value());
  const int64_t gets = counts_->dict_gets;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(*plain->Get("k"), Value(1));
  EXPECT_EQ(counts_->dict_gets - gets, 3);
  EXPECT_EQ(counts_->hits + counts_->misses, 0);
  plain->ClearCache();  // nothing to clear

  // Cached() leaves the handle it was called on as it was.
  absl::StatusOr<Dict> cached = plain->Cached();
  ASSERT_TRUE(cached.ok()) << cached.status();
  EXPECT_FALSE(plain->cache_info().has_value());
  EXPECT_TRUE(cached->cache_info().has_value());

  EXPECT_EQ(GetErrorKind(plain->Cached({.max_entries = 0}).status()),
            ErrorKind::kValueError);
  absl::StatusOr<Dict> gone = client_->DictFromRef(
      Value(Ref{Name("never-made"), ObjectType::kDict, nullptr}));
  ASSERT_TRUE(gone.ok());
  EXPECT_EQ(GetErrorKind(gone->Cached().status()), ErrorKind::kObjectNotFound);
}

TEST_F(CacheE2eTest, AnotherClientsWriteIsSeenOnceItsInvalidationArrives) {
  auto opened = Open(Name("d"), {{"k", 1}, {2, "two"}});
  Dict& cached = opened.first;
  Dict& theirs = opened.second;
  EXPECT_EQ(*cached.Get("k"), Value(1));
  EXPECT_EQ(*cached.Get(2), Value("two"));
  EXPECT_EQ(GetErrorKind(cached.Get("new").status()), ErrorKind::kKeyError);

  ASSERT_TRUE(theirs.Set("k", 2).ok());
  ASSERT_TRUE(theirs.Set(2.0, "deux").ok());  // the key 2
  ASSERT_TRUE(theirs.Set("new", "here").ok());
  EXPECT_TRUE(Eventually([&] { return *cached.Get("k") == Value(2); }));
  EXPECT_TRUE(Eventually([&] { return *cached.Get(2) == Value("deux"); }));
  EXPECT_TRUE(Eventually([&] { return cached.Get("new").ok(); }));
  EXPECT_EQ(*cached.Get("new"), Value("here"));

  ASSERT_TRUE(theirs.Delete("k").ok());
  EXPECT_TRUE(Eventually([&] { return !*cached.Contains("k"); }));
  EXPECT_GE(cached.cache_info()->invalidations, 4);
}

TEST_F(CacheE2eTest, OwnWritesAreReadAtOnce) {
  auto opened = Open(Name("d"), {{"k", 0}});
  Dict& cached = opened.first;
  Dict& theirs = opened.second;
  // Each write is followed at once by a read of what it changed, which must
  // not be the value the cache held before.
  for (int i = 1; i <= 50; ++i) {
    ASSERT_EQ(*cached.Get("k"), Value(i - 1));
    ASSERT_TRUE(cached.Increment("k").ok());
  }
  EXPECT_EQ(*cached.Get("k"), Value(50));
  ASSERT_TRUE(cached.Set("k", "set").ok());
  EXPECT_EQ(*cached.Get("k"), Value("set"));
  ASSERT_TRUE(cached.Set("k", "ttl", absl::Seconds(60)).ok());
  EXPECT_EQ(*cached.Get("k"), Value("ttl"));
  ASSERT_TRUE(cached.Delete("k").ok());
  EXPECT_FALSE(*cached.Contains("k"));
  EXPECT_EQ(*cached.SetDefault("k", "default"), Value("default"));
  EXPECT_EQ(*cached.Get("k"), Value("default"));
  ASSERT_TRUE(cached.GetAndSet("k", "swapped").ok());
  EXPECT_EQ(*cached.Get("k"), Value("swapped"));
  ASSERT_TRUE(*cached.CompareAndSet("k", Value("swapped"), "cas"));
  EXPECT_EQ(*cached.Get("k"), Value("cas"));
  ASSERT_TRUE(cached.Pop("k").ok());
  EXPECT_EQ(*cached.Get("k", "gone"), Value("gone"));
  EXPECT_EQ(*cached.Pop("k", "none"), Value("none"));
  ASSERT_TRUE(cached.Set("k", 1).ok());
  EXPECT_TRUE(*cached.Expire("k", absl::Seconds(60)));
  EXPECT_EQ(*cached.Get("k"), Value(1));

  // The writes that drop everything.
  EXPECT_EQ(*cached.Get("a", 0), Value(0));
  ASSERT_TRUE(cached.Update({{"a", 1}, {"b", 2}}).ok());
  EXPECT_EQ(*cached.Get("a"), Value(1));
  EXPECT_EQ(*cached.Get("b"), Value(2));
  absl::StatusOr<std::pair<Value, Value>> last = cached.PopItem();
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->first, Value("b"));
  EXPECT_FALSE(*cached.Contains("b"));
  ASSERT_TRUE(cached.Clear().ok());
  EXPECT_EQ(cached.cache_info()->entries, 0);
  EXPECT_FALSE(*cached.Contains("a"));
  EXPECT_FALSE(*cached.Contains("k"));
}

// The race of a read in flight with an invalidation of its key, made
// deterministic: the reply hook holds the reader after its reply came until
// the watch has delivered another client's change of the key.
TEST_F(CacheE2eTest, AReplyOlderThanAnInvalidationIsReturnedButNotKept) {
  auto opened = Open(Name("d"), {{"k", 1}, {"other", 1}});
  Dict& cached = opened.first;
  Dict& theirs = opened.second;
  bool raced = false;
  client_internal::CacheTesting::SetReplyHook(cached, [&](const Value& key) {
    if (raced || key != Value("k")) return;
    raced = true;
    const int64_t before = cached.cache_info()->invalidations;
    ASSERT_TRUE(theirs.Set("k", 2).ok());
    EXPECT_TRUE(Eventually(
        [&] { return cached.cache_info()->invalidations > before; }));
  });
  EXPECT_EQ(*cached.Get("k"), Value(1));  // the reply, returned...
  ASSERT_TRUE(raced);
  EXPECT_EQ(cached.cache_info()->entries, 0);  // ...but not kept
  EXPECT_EQ(*cached.Get("k"), Value(2));       // a miss again
  EXPECT_EQ(cached.cache_info()->misses, 2);
  EXPECT_EQ(*cached.Get("k"), Value(2));  // now kept
  EXPECT_EQ(cached.cache_info()->hits, 1);

  // An invalidation of another key spoils nothing.
  raced = false;
  client_internal::CacheTesting::SetReplyHook(cached, [&](const Value& key) {
    if (raced) return;
    raced = true;
    const int64_t before = cached.cache_info()->invalidations;
    ASSERT_TRUE(theirs.Set("unrelated", 2).ok());
    EXPECT_TRUE(Eventually(
        [&] { return cached.cache_info()->invalidations > before; }));
  });
  EXPECT_EQ(*cached.Get("other"), Value(1));
  ASSERT_TRUE(raced);
  EXPECT_EQ(cached.cache_info()->entries, 2);

  // Nor does this handle's own write of another key; its write of the key
  // does.
  client_internal::CacheTesting::SetReplyHook(cached, [&](const Value& key) {
    if (key == Value("mine")) ASSERT_TRUE(cached.Set("mine", 2).ok());
  });
  EXPECT_EQ(GetErrorKind(cached.Get("mine").status()), ErrorKind::kKeyError);
  EXPECT_EQ(*cached.Get("mine"), Value(2));
}

// The same race for real: another client writes while threads read through
// the cache (and one writes through it). Once the writer stops and the
// cache has caught up, every read from memory equals the server's value.
TEST_F(CacheE2eTest, ReadsRacingWritesLeaveNoStaleEntry) {
  constexpr int kKeys = 8;
  Value::Entries initial;
  for (int k = 0; k < kKeys; ++k) initial.emplace_back(k, 0);
  initial.emplace_back("sentinel", 0);
  auto opened = Open(Name("d"), initial);
  Dict& cached = opened.first;
  Dict& theirs = opened.second;

  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  std::atomic<int64_t> errors{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 random(t);
      while (!stop) {
        const int key = static_cast<int>(random() % kKeys);
        absl::StatusOr<Value> value = cached.Get(key);
        if (!value.ok() &&
            GetErrorKind(value.status()) != ErrorKind::kKeyError) {
          errors++;
        }
        if (random() % 4 == 0 && !cached.Contains(key).ok()) errors++;
      }
    });
  }
  // One writer through the cached handle itself, on keys of its own.
  threads.emplace_back([&] {
    int64_t i = 0;
    while (!stop) {
      if (!cached.Set(kKeys + static_cast<int>(i % 2), i).ok()) errors++;
      ++i;
    }
  });
  // For a second of writes, and at least 2000 of them.
  std::mt19937 random(99);
  const absl::Time until = absl::Now() + absl::Seconds(1);
  for (int i = 0; i < 2000 || absl::Now() < until; ++i) {
    const int key = static_cast<int>(random() % kKeys);
    switch (random() % 4) {
      case 0: {
        const absl::Status deleted = theirs.Delete(key);
        ASSERT_TRUE(deleted.ok() ||
                    GetErrorKind(deleted) == ErrorKind::kKeyError)
            << deleted;
        break;
      }
      case 1:
        ASSERT_TRUE(theirs.Update({{key, i}, {(key + 1) % kKeys, i}}).ok());
        break;
      default:
        ASSERT_TRUE(theirs.Set(key, i).ok());
        break;
    }
  }
  stop = true;
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(errors, 0);

  // Quiescence: the sentinel, kept, then changed; once its invalidation
  // came, so had every earlier one (a watch delivers in revision order).
  ASSERT_TRUE(Eventually([&] {
    const int64_t hits = cached.cache_info()->hits;
    return cached.Get("sentinel").ok() && cached.Get("sentinel").ok() &&
           cached.cache_info()->hits > hits;
  }));
  ASSERT_TRUE(theirs.Set("sentinel", 1).ok());
  ASSERT_TRUE(Eventually([&] { return *cached.Get("sentinel") == Value(1); }));

  int stale = 0;
  for (int k = 0; k < kKeys + 2; ++k) {
    for (int twice = 0; twice < 2; ++twice) {  // the second from memory
      absl::StatusOr<Value> mine = cached.Get(k);
      absl::StatusOr<Value> server = theirs.Get(k);
      if (mine.ok() != server.ok() || (mine.ok() && *mine != *server)) {
        ++stale;
        ADD_FAILURE() << "key " << k << ": cached "
                      << (mine.ok() ? mine->Repr() : mine.status().ToString())
                      << ", server "
                      << (server.ok() ? server->Repr()
                                      : server.status().ToString());
      }
    }
  }
  EXPECT_EQ(stale, 0);
  std::optional<CacheInfo> info = cached.cache_info();
  EXPECT_GT(info->hits, 0);
  EXPECT_GT(info->invalidations, 0);
}

TEST_F(CacheE2eTest, ClearUpdateAndDeletionByAnotherClientDropWhatTheyChange) {
  const std::string name = Name("d");
  auto opened = Open(name, {{"a", 1}, {"b", 2}, {"c", 3}});
  Dict& cached = opened.first;
  Dict& theirs = opened.second;
  for (const char* key : {"a", "b", "c"}) ASSERT_TRUE(cached.Get(key).ok());
  ASSERT_EQ(cached.cache_info()->entries, 3);

  ASSERT_TRUE(theirs.Update({{"a", 10}, {"b", 20}}).ok());
  EXPECT_TRUE(Eventually([&] { return *cached.Get("a") == Value(10); }));
  EXPECT_TRUE(Eventually([&] { return *cached.Get("b") == Value(20); }));
  EXPECT_EQ(*cached.Get("c"), Value(3));

  ASSERT_TRUE(theirs.Clear().ok());
  EXPECT_TRUE(Eventually([&] { return cached.cache_info()->entries == 0; }));
  EXPECT_FALSE(*cached.Contains("a"));
  EXPECT_FALSE(*cached.Contains("c"));

  ASSERT_TRUE(theirs.Set("a", 1).ok());
  EXPECT_TRUE(Eventually([&] { return *cached.Contains("a"); }));
  ASSERT_TRUE(other_->Delete(name).ok());
  EXPECT_TRUE(Eventually([&] {
    return GetErrorKind(cached.Get("a").status()) == ErrorKind::kObjectNotFound;
  }));
  // A dict made again under the name is followed too.
  absl::StatusOr<Dict> again = other_->OpenDict(name, {{"a", "new"}});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(Eventually([&] {
    absl::StatusOr<Value> a = cached.Get("a");
    return a.ok() && *a == Value("new");
  }));
  EXPECT_EQ(*cached.Get("a"), Value("new"));
  ASSERT_TRUE(again->Set("a", "newer").ok());
  EXPECT_TRUE(Eventually([&] { return *cached.Get("a") == Value("newer"); }));
}

TEST_F(CacheE2eTest, AtMostMaxEntriesAreKeptTheOldestDroppedFirst) {
  Value::Entries initial;
  for (int k = 0; k < 10; ++k) initial.emplace_back(k, k * k);
  auto opened = Open(Name("d"), initial, {.max_entries = 3});
  Dict& cached = opened.first;
  Dict& theirs = opened.second;
  for (int k = 0; k < 10; ++k) ASSERT_EQ(*cached.Get(k), Value(k * k));
  EXPECT_EQ(cached.cache_info()->entries, 3);
  EXPECT_EQ(cached.cache_info()->max_entries, 3);
  EXPECT_EQ(counts_->entries, 3);
  const int64_t misses = cached.cache_info()->misses;
  for (int k : {7, 8, 9}) ASSERT_EQ(*cached.Get(k), Value(k * k));
  EXPECT_EQ(cached.cache_info()->misses, misses);  // 7, 8, 9 kept
  ASSERT_EQ(*cached.Get(0), Value(0));
  EXPECT_EQ(cached.cache_info()->misses, misses + 1);  // 0 was not
  EXPECT_EQ(cached.cache_info()->entries, 3);
  ASSERT_EQ(*cached.Get(7), Value(49));  // 7, the oldest, went for 0
  EXPECT_EQ(cached.cache_info()->misses, misses + 2);
}

TEST_F(CacheE2eTest, AnEntryWithATtlIsNotServedPastItsDeadline) {
  // A long ttl, set before the cache starts (so that no event of the set
  // can come after the first read): kept and served from memory.
  absl::StatusOr<Dict> before = other_->OpenDict(Name("d"));
  ASSERT_TRUE(before.ok()) << before.status();
  ASSERT_TRUE(before->Set("long", "v", absl::Seconds(600)).ok());
  auto opened = Open(Name("d"));
  Dict& cached = opened.first;
  Dict& theirs = opened.second;
  EXPECT_EQ(*cached.Get("long"), Value("v"));
  EXPECT_EQ(*cached.Get("long"), Value("v"));
  EXPECT_EQ(cached.cache_info()->hits, 1);

  // A short one: kept, and never served once the server's deadline (at
  // most the ttl after Set returned) has passed, expire event or not.
  ASSERT_TRUE(theirs.Set("short", "v", absl::Milliseconds(300)).ok());
  const absl::Time deadline = absl::Now() + absl::Milliseconds(300);
  absl::StatusOr<Value> first = cached.Get("short");
  if (first.ok()) {
    EXPECT_EQ(*first, Value("v"));
    while (absl::Now() < deadline) {
      absl::StatusOr<Value> value = cached.Get("short");
      if (value.ok()) EXPECT_EQ(*value, Value("v"));
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  absl::SleepFor(deadline - absl::Now() + absl::Milliseconds(1));
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(GetErrorKind(cached.Get("short").status()), ErrorKind::kKeyError);
  }
}

TEST_F(CacheE2eTest, AMovedHandleTakesItsCacheAndDestructionStopsIt) {
  auto opened = Open(Name("d"), {{"k", 1}});
  Dict& cached = opened.first;
  Dict& theirs = opened.second;
  ASSERT_EQ(*cached.Get("k"), Value(1));
  Dict moved = std::move(cached);
  EXPECT_FALSE(cached.cache_info().has_value());  // NOLINT: moved from
  EXPECT_TRUE(absl::IsFailedPrecondition(cached.Get("k").status()));
  EXPECT_EQ(*moved.Get("k"), Value(1));
  EXPECT_EQ(moved.cache_info()->hits, 1);
  ASSERT_TRUE(theirs.Set("k", 2).ok());
  EXPECT_TRUE(Eventually([&] { return *moved.Get("k") == Value(2); }));

  // Assigning over a cached handle stops its cache; so does destruction,
  // also of caches that never read, many times over.
  absl::StatusOr<Dict> plain = client_->OpenDict(Name("d"));
  ASSERT_TRUE(plain.ok());
  moved = *std::move(plain);
  EXPECT_FALSE(moved.cache_info().has_value());
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<Dict> c = moved.Cached();
    ASSERT_TRUE(c.ok()) << c.status();
    if (i % 2 == 0) EXPECT_EQ(*c->Get("k"), Value(2));
  }
  EXPECT_EQ(counts_->entries, 0);
}

TEST_F(CacheE2eTest, AValueCellsReadsAfterTheFirstAreServedFromMemory) {
  absl::StatusOr<ValueCell> plain = client_->OpenValue(Name("v"), 1);
  ASSERT_TRUE(plain.ok()) << plain.status();
  absl::StatusOr<ValueCell> cached = plain->Cached();
  ASSERT_TRUE(cached.ok()) << cached.status();
  const int64_t gets = counts_->value_gets;

  for (int i = 0; i < 4; ++i) EXPECT_EQ(*cached->Get(), Value(1));
  ExpectCounted(cached->cache_info(), /*hits=*/3, /*misses=*/1, /*entries=*/1,
                counts_->value_gets - gets);

  cached->ClearCache();
  EXPECT_EQ(cached->cache_info()->entries, 0);
  EXPECT_EQ(counts_->entries, 0);
  EXPECT_EQ(*cached->Get(), Value(1));
  EXPECT_EQ(cached->cache_info()->misses, 2);
}

TEST_F(CacheE2eTest, AValueCellSeesOthersWritesAndDeletionAndItsOwnAtOnce) {
  const std::string name = Name("v");
  absl::StatusOr<ValueCell> plain = client_->OpenValue(name, 0);
  ASSERT_TRUE(plain.ok()) << plain.status();
  absl::StatusOr<ValueCell> cached = plain->Cached();
  ASSERT_TRUE(cached.ok()) << cached.status();
  absl::StatusOr<ValueCell> theirs = other_->OpenValue(name);
  ASSERT_TRUE(theirs.ok()) << theirs.status();

  // Another client's write, seen once its invalidation arrives.
  ASSERT_EQ(*cached->Get(), Value(0));
  ASSERT_TRUE(theirs->Set("theirs").ok());
  EXPECT_TRUE(Eventually([&] { return *cached->Get() == Value("theirs"); }));
  EXPECT_GE(cached->cache_info()->invalidations, 1);

  // This handle's own writes, read at once (each after a read that kept
  // the value before).
  ASSERT_TRUE(cached->Set(0).ok());
  for (int i = 1; i <= 20; ++i) {
    ASSERT_EQ(*cached->Get(), Value(i - 1));
    ASSERT_EQ(*cached->Increment(), Value(i));
  }
  EXPECT_EQ(*cached->Get(), Value(20));
  EXPECT_TRUE(*cached->CompareAndSet(20, "cas"));
  EXPECT_EQ(*cached->Get(), Value("cas"));
  EXPECT_EQ(*cached->GetAndSet("swapped"), Value("cas"));
  EXPECT_EQ(*cached->Get(), Value("swapped"));
  ASSERT_TRUE(cached->Set("set").ok());
  EXPECT_EQ(*cached->Get(), Value("set"));
  EXPECT_EQ(*cached->Get(), Value("set"));

  // Deletion drops everything; reads then fail as the server says.
  ASSERT_TRUE(other_->Delete(name).ok());
  EXPECT_TRUE(Eventually([&] {
    return GetErrorKind(cached->Get().status()) == ErrorKind::kObjectNotFound;
  }));
  EXPECT_EQ(cached->cache_info()->entries, 0);
  // A cell made again under the name is followed too.
  absl::StatusOr<ValueCell> again = other_->OpenValue(name, "new");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(Eventually([&] {
    absl::StatusOr<Value> v = cached->Get();
    return v.ok() && *v == Value("new");
  }));
  ASSERT_TRUE(again->Set("newer").ok());
  EXPECT_TRUE(Eventually([&] { return *cached->Get() == Value("newer"); }));
}

TEST_F(CacheE2eTest, ANamespacesReadsAfterTheFirstAreServedFromMemory) {
  absl::StatusOr<Namespace> plain =
      client_->OpenNamespace(Name("ns"), {{"a", 1}, {"b", "two"}});
  ASSERT_TRUE(plain.ok()) << plain.status();
  absl::StatusOr<Namespace> cached = plain->Cached();
  ASSERT_TRUE(cached.ok()) << cached.status();
  const int64_t gets = counts_->namespace_gets;

  EXPECT_EQ(*cached->Get("a"), Value(1));
  EXPECT_EQ(*cached->Get("a"), Value(1));
  EXPECT_EQ(*cached->Get("b"), Value("two"));
  EXPECT_EQ(*cached->Get("b"), Value("two"));
  // An unset attribute is remembered too, with the server's error.
  absl::StatusOr<Value> unset = cached->Get("unset");
  EXPECT_EQ(GetErrorKind(unset.status()), ErrorKind::kAttributeError);
  absl::StatusOr<Value> again = cached->Get("unset");
  EXPECT_EQ(GetErrorKind(again.status()), ErrorKind::kAttributeError);
  EXPECT_EQ(again.status().message(), unset.status().message());
  // A bad attribute name is the server's VALUE_ERROR, every time: not kept.
  EXPECT_EQ(GetErrorKind(cached->Get("_private").status()),
            ErrorKind::kValueError);
  EXPECT_EQ(GetErrorKind(cached->Get("_private").status()),
            ErrorKind::kValueError);

  ExpectCounted(cached->cache_info(), /*hits=*/3, /*misses=*/5, /*entries=*/3,
                counts_->namespace_gets - gets);

  cached->ClearCache();
  EXPECT_EQ(cached->cache_info()->entries, 0);
  EXPECT_EQ(counts_->entries, 0);
  EXPECT_EQ(*cached->Get("a"), Value(1));
  EXPECT_EQ(cached->cache_info()->misses, 6);
}

TEST_F(CacheE2eTest, ANamespaceSeesOthersWritesAndDeletionAndItsOwnAtOnce) {
  const std::string name = Name("ns");
  absl::StatusOr<Namespace> plain =
      client_->OpenNamespace(name, {{"a", 1}, {"b", 2}});
  ASSERT_TRUE(plain.ok()) << plain.status();
  absl::StatusOr<Namespace> cached = plain->Cached();
  ASSERT_TRUE(cached.ok()) << cached.status();
  absl::StatusOr<Namespace> theirs = other_->OpenNamespace(name);
  ASSERT_TRUE(theirs.ok()) << theirs.status();
  ASSERT_EQ(*cached->Get("a"), Value(1));
  ASSERT_EQ(*cached->Get("b"), Value(2));
  ASSERT_EQ(GetErrorKind(cached->Get("c").status()),
            ErrorKind::kAttributeError);

  // Another client's set and delete drop the attribute they name, and
  // only it.
  ASSERT_TRUE(theirs->Set("b", 20).ok());
  ASSERT_TRUE(theirs->Set("c", 30).ok());
  EXPECT_TRUE(Eventually([&] { return *cached->Get("b") == Value(20); }));
  EXPECT_TRUE(Eventually([&] { return cached->Get("c").ok(); }));
  EXPECT_EQ(*cached->Get("c"), Value(30));
  const int64_t hits = cached->cache_info()->hits;
  EXPECT_EQ(*cached->Get("a"), Value(1));
  EXPECT_EQ(cached->cache_info()->hits, hits + 1);  // "a" was kept
  ASSERT_TRUE(theirs->Delete("a").ok());
  EXPECT_TRUE(Eventually([&] {
    return GetErrorKind(cached->Get("a").status()) ==
           ErrorKind::kAttributeError;
  }));

  // This handle's own writes, read at once.
  for (int i = 1; i <= 20; ++i) {
    ASSERT_EQ(*cached->Get("b"), Value(i == 1 ? 20 : i - 1));
    ASSERT_TRUE(cached->Set("b", i).ok());
  }
  EXPECT_EQ(*cached->Get("b"), Value(20));
  ASSERT_TRUE(cached->Delete("b").ok());
  EXPECT_EQ(GetErrorKind(cached->Get("b").status()),
            ErrorKind::kAttributeError);
  ASSERT_TRUE(cached->Set("b", "back").ok());
  EXPECT_EQ(*cached->Get("b"), Value("back"));

  // Deletion of the namespace drops everything.
  ASSERT_TRUE(cached->Get("c").ok());
  ASSERT_GE(cached->cache_info()->entries, 2);
  ASSERT_TRUE(other_->Delete(name).ok());
  EXPECT_TRUE(Eventually([&] {
    return GetErrorKind(cached->Get("b").status()) ==
               ErrorKind::kObjectNotFound &&
           GetErrorKind(cached->Get("c").status()) ==
               ErrorKind::kObjectNotFound;
  }));
  EXPECT_EQ(cached->cache_info()->entries, 0);
}

TEST_F(CacheE2eTest, ValueCellAndNamespaceHandlesWithoutACacheKeepNothing) {
  absl::StatusOr<ValueCell> value = client_->OpenValue(Name("v"), 1);
  ASSERT_TRUE(value.ok()) << value.status();
  absl::StatusOr<Namespace> ns = client_->OpenNamespace(Name("ns"), {{"a", 1}});
  ASSERT_TRUE(ns.ok()) << ns.status();
  EXPECT_FALSE(value->cache_info().has_value());
  EXPECT_FALSE(ns->cache_info().has_value());
  const int64_t value_gets = counts_->value_gets;
  const int64_t namespace_gets = counts_->namespace_gets;
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(*value->Get(), Value(1));
    EXPECT_EQ(*ns->Get("a"), Value(1));
  }
  EXPECT_EQ(counts_->value_gets - value_gets, 3);
  EXPECT_EQ(counts_->namespace_gets - namespace_gets, 3);
  EXPECT_EQ(counts_->hits + counts_->misses, 0);
  value->ClearCache();  // nothing to clear
  ns->ClearCache();

  // Cached() leaves the handle it was called on as it was.
  absl::StatusOr<ValueCell> cached_value = value->Cached();
  ASSERT_TRUE(cached_value.ok()) << cached_value.status();
  absl::StatusOr<Namespace> cached_ns = ns->Cached({.max_entries = 1});
  ASSERT_TRUE(cached_ns.ok()) << cached_ns.status();
  EXPECT_FALSE(value->cache_info().has_value());
  EXPECT_FALSE(ns->cache_info().has_value());
  EXPECT_EQ(cached_ns->cache_info()->max_entries, 1);

  EXPECT_EQ(GetErrorKind(value->Cached({.max_entries = 0}).status()),
            ErrorKind::kValueError);
  EXPECT_EQ(GetErrorKind(ns->Cached({.max_entries = -1}).status()),
            ErrorKind::kValueError);
  absl::StatusOr<ValueCell> gone_value = client_->ValueFromRef(
      Value(Ref{Name("never-made"), ObjectType::kValue, nullptr}));
  ASSERT_TRUE(gone_value.ok());
  EXPECT_EQ(GetErrorKind(gone_value->Cached().status()),
            ErrorKind::kObjectNotFound);
  absl::StatusOr<Namespace> gone_ns = client_->NamespaceFromRef(
      Value(Ref{Name("never-made"), ObjectType::kNamespace, nullptr}));
  ASSERT_TRUE(gone_ns.ok());
  EXPECT_EQ(GetErrorKind(gone_ns->Cached().status()),
            ErrorKind::kObjectNotFound);
}

TEST_F(CacheE2eTest, AMovedValueCellOrNamespaceTakesItsCache) {
  absl::StatusOr<ValueCell> value = client_->OpenValue(Name("v"), 1);
  ASSERT_TRUE(value.ok()) << value.status();
  absl::StatusOr<Namespace> ns = client_->OpenNamespace(Name("ns"), {{"a", 1}});
  ASSERT_TRUE(ns.ok()) << ns.status();
  absl::StatusOr<ValueCell> cached_value = value->Cached();
  ASSERT_TRUE(cached_value.ok()) << cached_value.status();
  absl::StatusOr<Namespace> cached_ns = ns->Cached();
  ASSERT_TRUE(cached_ns.ok()) << cached_ns.status();
  ASSERT_EQ(*cached_value->Get(), Value(1));
  ASSERT_EQ(*cached_ns->Get("a"), Value(1));

  ValueCell moved_value = *std::move(cached_value);
  Namespace moved_ns = *std::move(cached_ns);
  // NOLINTBEGIN: moved from
  EXPECT_FALSE(cached_value->cache_info().has_value());
  EXPECT_TRUE(absl::IsFailedPrecondition(cached_value->Get().status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(cached_value->Cached().status()));
  EXPECT_FALSE(cached_ns->cache_info().has_value());
  EXPECT_TRUE(absl::IsFailedPrecondition(cached_ns->Get("a").status()));
  EXPECT_TRUE(absl::IsFailedPrecondition(cached_ns->Cached().status()));
  // NOLINTEND
  EXPECT_EQ(*moved_value.Get(), Value(1));
  EXPECT_EQ(*moved_ns.Get("a"), Value(1));
  EXPECT_EQ(moved_value.cache_info()->hits, 1);
  EXPECT_EQ(moved_ns.cache_info()->hits, 1);

  // Assigning over a cached handle stops its cache; so does destruction,
  // many times over.
  moved_value = *std::move(value);
  moved_ns = *std::move(ns);
  EXPECT_FALSE(moved_value.cache_info().has_value());
  EXPECT_FALSE(moved_ns.cache_info().has_value());
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<ValueCell> v = moved_value.Cached();
    ASSERT_TRUE(v.ok()) << v.status();
    absl::StatusOr<Namespace> n = moved_ns.Cached();
    ASSERT_TRUE(n.ok()) << n.status();
    if (i % 2 == 0) {
      EXPECT_EQ(*v->Get(), Value(1));
      EXPECT_EQ(*n->Get("a"), Value(1));
    }
  }
  EXPECT_EQ(counts_->entries, 0);
}

TEST(CacheRestartE2eTest, AServerRestartEmptiesTheCacheWhichThenRefills) {
  char dir[] = "/tmp/statehub-cache-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  {
    auto server =
        testing::ServerProcess::Start({absl::StrCat("--data_dir=", dir)});
    ASSERT_TRUE(server.ok()) << server.status();
    auto client =
        Client::Connect((*server)->unix_address(), testing::TestOptions());
    ASSERT_TRUE(client.ok()) << client.status();
    absl::StatusOr<Dict> d = (*client)->OpenDict("d", {{"k", 1}});
    ASSERT_TRUE(d.ok()) << d.status();
    absl::StatusOr<Dict> cached = d->Cached();
    ASSERT_TRUE(cached.ok()) << cached.status();
    ASSERT_EQ(*cached->Get("k"), Value(1));
    ASSERT_EQ(*cached->Get("k"), Value(1));
    ASSERT_EQ(cached->cache_info()->hits, 1);

    ASSERT_TRUE((*server)->KillAndRestart().ok());
    // Written by another client once the server is back.
    auto other =
        Client::Connect((*server)->unix_address(), testing::TestOptions());
    ASSERT_TRUE(other.ok()) << other.status();
    absl::StatusOr<Dict> od = (*other)->OpenDict("d");
    ASSERT_TRUE(od.ok()) << od.status();
    ASSERT_TRUE(od->Set("k", 2).ok());

    // The cache went dark as the watch broke: the reads go to the server
    // (failing while it is away) and see the new value...
    EXPECT_TRUE(Eventually([&] {
      absl::StatusOr<Value> k = cached->Get("k");
      return k.ok() && *k == Value(2);
    }));
    // ...and once the watch runs again, are kept again and stay right.
    EXPECT_TRUE(Eventually([&] {
      const int64_t hits = cached->cache_info()->hits;
      return cached->Get("k").ok() && cached->Get("k").ok() &&
             cached->cache_info()->hits > hits;
    }));
    ASSERT_TRUE(od->Set("k", 3).ok());
    EXPECT_TRUE(Eventually([&] {
      absl::StatusOr<Value> k = cached->Get("k");
      return k.ok() && *k == Value(3);
    }));
  }
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

}  // namespace
}  // namespace statehub
