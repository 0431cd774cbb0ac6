#include "server/engine/replies.h"

#include <algorithm>
#include <utility>

namespace statehub {

std::optional<v1::CallAnswered> Replies::Begin(SessionId session,
                                               uint64_t number, uint64_t seen) {
  MutexLock lock(&mu_);
  auto it = by_session_.find(session);
  if (it == by_session_.end()) return std::nullopt;
  auto& answers = it->second;
  answers.erase(answers.begin(), answers.lower_bound(seen));
  // The session's entry stays while empty: its next call would make it
  // again (Forget drops it when the session ends).
  if (auto a = answers.find(number); a != answers.end()) return a->second;
  return std::nullopt;
}

void Replies::Remember(SessionId session, v1::CallAnswered answer) {
  MutexLock lock(&mu_);
  auto& answers = by_session_[session];
  const uint64_t number = answer.call();
  answers.insert_or_assign(number, std::move(answer));
  if (answers.size() > kMaxPerSession) answers.erase(answers.begin());
}

void Replies::Forget(SessionId session) {
  MutexLock lock(&mu_);
  by_session_.erase(session);
}

void Replies::KeepOnly(const absl::flat_hash_set<SessionId>& live) {
  MutexLock lock(&mu_);
  absl::erase_if(by_session_, [&live](const auto& entry) {
    return !live.contains(entry.first);
  });
}

void Replies::Dump(std::vector<v1::ChangeRecord>* out) const {
  MutexLock lock(&mu_);
  std::vector<SessionId> sessions;
  sessions.reserve(by_session_.size());
  for (const auto& [session, answers] : by_session_)
    sessions.push_back(session);
  std::sort(sessions.begin(), sessions.end());
  for (SessionId session : sessions) {
    for (const auto& [number, answer] : by_session_.at(session)) {
      v1::ChangeRecord& record = out->emplace_back();
      record.set_session(session);
      *record.mutable_call_answered() = answer;
    }
  }
}

size_t Replies::Count() const {
  MutexLock lock(&mu_);
  size_t n = 0;
  for (const auto& [session, answers] : by_session_) n += answers.size();
  return n;
}

}  // namespace statehub
