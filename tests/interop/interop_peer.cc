// interop_peer: the C++ side of the Python <-> C++ interop tests
// (tests/python/test_interop.py). Each command opens named objects through
// the C++ client, acts on them, and prints one line per step on stdout so
// the Python test can follow it. Exit status 0 on success, 1 on any error
// (printed to stderr).
//
//   interop_peer ADDRESS dict-set NAME KEY INT     d[KEY] = INT
//   interop_peer ADDRESS dict-get NAME KEY         prints d[KEY]
//   interop_peer ADDRESS lock-hold NAME            acquires, prints
//       "held TOKEN", waits for a line on stdin, releases, prints "released"
//   interop_peer ADDRESS lock-acquire NAME         acquires (waiting as
//       long as it takes), prints "acquired TOKEN OWNER_DIED", releases
//   interop_peer ADDRESS lock-pair FIRST SECOND [TIMEOUT_S]
//       acquires lock FIRST, prints "held FIRST", waits for a line on stdin,
//       then acquires lock SECOND (for at most TIMEOUT_S seconds if given,
//       else as long as it takes) and prints "acquired SECOND", "timeout
//       SECOND", or "deadlock MESSAGE" when the server refused it with
//       DEADLOCK (--deadlock=fail); releases what it holds
//   interop_peer ADDRESS pong CONDITION LOCK STATE ROUNDS
//       ping-pong with Python: under LOCK, waits on CONDITION until dict
//       STATE["turn"] == "cpp", sets it to "py", counts, notifies; ROUNDS
//       times; prints "rounds N"
//   interop_peer ADDRESS consume QUEUE N           gets N ints, calls
//       task_done for each, prints "sum S"
//   interop_peer ADDRESS produce QUEUE N           puts 0 .. N-1, prints
//       "put N"

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/time/time.h"
#include "statehub/statehub.h"

namespace {

[[noreturn]] void Die(const absl::Status& status) {
  std::fprintf(stderr, "interop_peer: %s\n", status.ToString().c_str());
  std::exit(1);
}

template <typename T>
T Check(absl::StatusOr<T> result) {
  if (!result.ok()) Die(result.status());
  return *std::move(result);
}

void Check(const absl::Status& status) {
  if (!status.ok()) Die(status);
}

int64_t ToInt(const std::string& text) {
  int64_t n;
  if (!absl::SimpleAtoi(text, &n)) Die(absl::InvalidArgumentError(text));
  return n;
}

void Say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int Run(statehub::Client& client, const std::vector<std::string>& args) {
  const std::string& command = args[0];
  if (command == "dict-set" && args.size() == 4) {
    statehub::Dict d = Check(client.OpenDict(args[1]));
    Check(d.Set(args[2], ToInt(args[3])));
    Say("ok");
  } else if (command == "dict-get" && args.size() == 3) {
    statehub::Dict d = Check(client.OpenDict(args[1]));
    Say(std::to_string(Check(d.Get(args[2])).AsInt()));
  } else if (command == "lock-hold" && args.size() == 2) {
    statehub::Lock lock = Check(client.OpenLock(args[1]));
    const statehub::Acquisition held = Check(lock.Acquire());
    Say("held " + std::to_string(held.fencing_token));
    std::string line;
    std::getline(std::cin, line);
    Check(lock.Release());
    Say("released");
  } else if (command == "lock-acquire" && args.size() == 2) {
    statehub::Lock lock = Check(client.OpenLock(args[1]));
    const statehub::Acquisition held = Check(lock.Acquire());
    Say("acquired " + std::to_string(held.fencing_token) + " " +
        (held.owner_died ? "1" : "0"));
    Check(lock.Release());
  } else if (command == "lock-pair" && (args.size() == 3 || args.size() == 4)) {
    std::optional<absl::Duration> timeout;
    if (args.size() == 4) {
      double seconds;
      if (!absl::SimpleAtod(args[3], &seconds)) {
        Die(absl::InvalidArgumentError(args[3]));
      }
      timeout = absl::Seconds(seconds);
    }
    statehub::Lock first = Check(client.OpenLock(args[1]));
    statehub::Lock second = Check(client.OpenLock(args[2]));
    Check(first.Acquire());
    Say("held " + args[1]);
    std::string line;
    std::getline(std::cin, line);
    absl::StatusOr<statehub::Acquisition> got = second.Acquire(timeout);
    if (got.ok() && got->acquired) {
      Say("acquired " + args[2]);
      Check(second.Release());
    } else if (got.ok()) {
      Say("timeout " + args[2]);
    } else if (statehub::GetErrorKind(got.status()) ==
               statehub::ErrorKind::kDeadlock) {
      Say("deadlock " + std::string(got.status().message()));
    } else {
      Die(got.status());
    }
    Check(first.Release());
  } else if (command == "pong" && args.size() == 5) {
    statehub::Lock lock = Check(client.OpenLock(args[2]));
    statehub::Condition turn = Check(client.OpenCondition(args[1], lock));
    statehub::Dict state = Check(client.OpenDict(args[3]));
    const int64_t rounds = ToInt(args[4]);
    for (int64_t i = 0; i < rounds; ++i) {
      std::unique_lock<statehub::Lock> hold(lock);
      Check(turn.Wait(hold, [&] {
        return Check(state.Get("turn")) == statehub::Value("cpp");
      }));
      Check(state.Set("turn", "py"));
      Check(turn.Notify());
    }
    Say("rounds " + std::to_string(rounds));
  } else if (command == "consume" && args.size() == 3) {
    statehub::Queue queue = Check(client.OpenJoinableQueue(args[1]));
    int64_t sum = 0;
    for (int64_t i = 0, n = ToInt(args[2]); i < n; ++i) {
      std::optional<statehub::Value> item = Check(queue.Get());
      if (!item) Die(absl::InternalError("queue.Get answered Empty"));
      sum += item->AsInt();
      Check(queue.TaskDone());
    }
    Say("sum " + std::to_string(sum));
  } else if (command == "produce" && args.size() == 3) {
    statehub::Queue queue = Check(client.OpenJoinableQueue(args[1]));
    const int64_t n = ToInt(args[2]);
    for (int64_t i = 0; i < n; ++i) {
      if (!Check(queue.Put(i))) Die(absl::InternalError("queue.Put: Full"));
    }
    Say("put " + std::to_string(n));
  } else {
    std::fprintf(stderr, "interop_peer: bad command or arguments: %s\n",
                 command.c_str());
    return 2;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: interop_peer ADDRESS COMMAND ARGS...\n");
    return 2;
  }
  statehub::ClientOptions options;
  options.label = "interop_peer";
  std::unique_ptr<statehub::Client> client =
      Check(statehub::Client::Connect(argv[1], options));
  const int status =
      Run(*client, std::vector<std::string>(argv + 2, argv + argc));
  client->Close();
  return status;
}
