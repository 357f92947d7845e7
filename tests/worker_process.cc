#include "tests/worker_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "tests/test_util.h"

namespace shardlm::testing {

std::string ShardlmBinary() {
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const char* ws = std::getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/", ws ? ws : "shardlm", "/tools/shardlm");
}

absl::StatusOr<std::unique_ptr<WorkerProcess>> WorkerProcess::Start(
    const std::vector<std::string>& extra_args) {
  static int counter = 0;
  const std::string log_path = TempPath(absl::StrCat("worker", ++counter, ".log"));
  std::vector<std::string> args = {ShardlmBinary(), "worker", "--port", "0", "--bind",
                                   "127.0.0.1"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) dup2(fd, 2);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  std::unique_ptr<WorkerProcess> w(new WorkerProcess(pid, log_path));
  const std::string marker = "listening on 127.0.0.1:";
  for (int i = 0; i < 400; ++i) {  // up to 20 s
    const std::string log = w->Log();
    const size_t at = log.find(marker);
    if (at != std::string::npos) {
      const size_t begin = at + marker.size();
      const size_t end = log.find_first_not_of("0123456789", begin);
      if (absl::SimpleAtoi(log.substr(begin, end - begin), &w->port_)) return w;
    }
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      w->pid_ = -1;
      return absl::InternalError(absl::StrCat("worker exited at startup: ", log));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("worker did not start listening: ", w->Log()));
}

WorkerProcess::~WorkerProcess() { Kill(); }

void WorkerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

std::string WorkerProcess::address() const { return absl::StrCat("127.0.0.1:", port_); }

std::string WorkerProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace shardlm::testing
