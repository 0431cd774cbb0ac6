#include "reconnect.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "statehub/status.h"

namespace statehub::client_internal {
namespace {

// CallName is `Dicts.Set on "jobs"`, or the rpc alone for a request that
// names no object.
std::string CallName(const CallPlan& plan) {
  if (plan.object.empty()) return plan.rpc->name;
  return absl::StrCat(plan.rpc->name, " on \"", plan.object, "\"");
}

// Cause is a transport error's message without its "statehub: " prefix.
absl::string_view Cause(const absl::Status& cause) {
  absl::string_view message = cause.message();
  absl::ConsumePrefix(&message, "statehub: ");
  return message;
}

absl::Status Unavailable(const CallPlan& plan, std::string message) {
  return MakeError(absl::StatusCode::kUnavailable, ErrorKind::kUnspecified,
                   message, plan.object);
}

}  // namespace

CallNumber CallNumbers::Take() {
  absl::MutexLock lock(&mu_);
  const uint64_t number = next_++;
  unseen_.push_back(number);
  return CallNumber{number, unseen_.front()};
}

void CallNumbers::Done(uint64_t number) {
  absl::MutexLock lock(&mu_);
  auto it = std::find(unseen_.begin(), unseen_.end(), number);
  if (it != unseen_.end()) unseen_.erase(it);
}

absl::Status BrokenCallError(absl::string_view address, const CallPlan& plan,
                             const absl::Status& cause) {
  // Why it is not sent again: a parked call that may have been counted (a
  // barrier arrival, a put that was not numbered) or a write that was not
  // numbered because the server did not advise it.
  const absl::string_view why =
      plan.numbering_advised
          ? "it is not made again because it may have been counted"
          : "it is not retried because it changes state (the server "
            "numbers calls only where a session can outlive its "
            "connection: with --data_dir, or over TCP)";
  return Unavailable(
      plan, absl::StrCat("statehub-server at ", address,
                         ": the connection broke during ", CallName(plan), " (",
                         Cause(cause),
                         "); it may or may not have been applied, and ", why));
}

absl::Status SessionEndedError(absl::string_view address, const CallPlan& plan,
                               const absl::Status& cause) {
  return Unavailable(
      plan,
      absl::StrCat("statehub-server at ", address,
                   ": the connection broke during ", CallName(plan), " (",
                   Cause(cause),
                   "), and the session it ran in has ended (the server "
                   "restarted without --data_dir, or the lease ran out): it "
                   "may or may not have been applied"));
}

absl::Status NotBackError(absl::string_view address, const CallPlan& plan,
                          const absl::Status& cause) {
  // Only a call that was sent and changes state may have been applied.
  const bool maybe_applied = plan.after_break == AfterBreak::kResend;
  return Unavailable(
      plan,
      absl::StrCat(
          "statehub-server at ", address, " went away during ", CallName(plan),
          " and did not come back in time (", Cause(cause), ")",
          maybe_applied ? "; it may or may not have been applied" : ""));
}

}  // namespace statehub::client_internal
