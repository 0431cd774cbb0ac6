#include "tests/fuzz/fake_transport.h"

#include <algorithm>
#include <utility>

#include "tests/fuzz/check.h"

namespace statehub::fuzz {

void FakeCall::Send(const absl::Status& status) {
  FUZZ_CHECK(!finished(), "a call finished twice: first '%s', then '%s'",
             status_->ToString(), status.ToString());
  status_ = status;
}

class FakeTimers::Handle final : public handlers::Timer {
 public:
  explicit Handle(std::shared_ptr<Entry> entry) : entry_(std::move(entry)) {}
  ~Handle() override { Cancel(); }
  void Cancel() override { entry_->cancelled = true; }

 private:
  const std::shared_ptr<Entry> entry_;
};

std::unique_ptr<handlers::Timer> FakeTimers::At(absl::Time deadline,
                                                std::function<void()> fire) {
  auto entry = std::make_shared<Entry>();
  entry->deadline = deadline;
  entry->fire = std::move(fire);
  entries_.push_back(entry);
  return std::make_unique<Handle>(std::move(entry));
}

void FakeTimers::FireDue(absl::Time now) {
  std::vector<std::shared_ptr<Entry>> due;
  std::vector<std::shared_ptr<Entry>> later;
  for (std::shared_ptr<Entry>& e : entries_) {
    if (e->cancelled) continue;
    (e->deadline <= now ? due : later).push_back(std::move(e));
  }
  entries_ = std::move(later);
  std::stable_sort(due.begin(), due.end(), [](const auto& a, const auto& b) {
    return a->deadline < b->deadline;
  });
  for (const std::shared_ptr<Entry>& e : due) {
    // An earlier timer's call may have cancelled this one.
    if (e->cancelled) continue;
    e->cancelled = true;
    std::function<void()> fire = std::move(e->fire);
    fire();
  }
}

size_t FakeTimers::armed() const {
  return std::count_if(entries_.begin(), entries_.end(),
                       [](const auto& e) { return !e->cancelled; });
}

}  // namespace statehub::fuzz
