// File: server/engine/test_recorder.h
//
// For tests: a ChangeSink that keeps every published record, and a check
// that replaying them into a fresh engine gives back the same state.
//
// Example:
//
//   Engine engine(Limits{}, absl::Seconds(10));
//   RecordingSink sink(engine);          // recording from here on
//   ... mutate through engine ...
//   ExpectReplaysTo(engine, sink.records());

#ifndef STATEHUB_SERVER_ENGINE_TEST_RECORDER_H_
#define STATEHUB_SERVER_ENGINE_TEST_RECORDER_H_

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/engine/engine.h"
#include "server/engine/mutex.h"

namespace statehub {

class RecordingSink final : public ChangeSink {
 public:
  explicit RecordingSink(Engine& engine) : engine_(engine) {
    engine_.changes().set_sink(this);
  }
  ~RecordingSink() override { engine_.changes().set_sink(nullptr); }

  void Write(const v1::ChangeRecord& record) override {
    MutexLock lock(&mu_);
    records_.push_back(record);
  }
  std::vector<v1::ChangeRecord> records() const {
    MutexLock lock(&mu_);
    return records_;
  }

 private:
  Engine& engine_;
  mutable Mutex mu_;
  std::vector<v1::ChangeRecord> records_;
};

// DumpText renders an engine's Dump without revisions, for comparison.
inline std::vector<std::string> DumpText(const Engine& engine) {
  std::vector<std::string> out;
  for (v1::ChangeRecord& record : engine.Dump()) {
    record.clear_revision();
    record.clear_session();
    out.push_back(record.ShortDebugString());
  }
  return out;
}

// ExpectReplaysTo replays `records` into a fresh engine and expects its
// state (Dump) to equal `engine`'s.
inline void ExpectReplaysTo(const Engine& engine,
                            const std::vector<v1::ChangeRecord>& records) {
  Engine fresh(engine.limits(), engine.sessions().ttl());
  for (const v1::ChangeRecord& record : records) {
    const absl::Status s = fresh.Replay(record);
    ASSERT_TRUE(s.ok()) << s << " replaying " << record.ShortDebugString();
  }
  ASSERT_TRUE(fresh.FinishRecovery(absl::Now()).ok());
  EXPECT_THAT(DumpText(fresh), ::testing::ElementsAreArray(DumpText(engine)));
  if (!records.empty()) {
    EXPECT_EQ(fresh.changes().revision(), records.back().revision());
  }
}

}  // namespace statehub

#endif  // STATEHUB_SERVER_ENGINE_TEST_RECORDER_H_
