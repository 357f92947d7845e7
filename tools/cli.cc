#include "tools/cli.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "gflags/gflags.h"
#include "glog/logging.h"

namespace shardlm::cli {
namespace {

constexpr char kDefaultModel[] = "../shared/models/stories260K.gguf";

bool FileExists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

bool BelongsTo(const gflags::CommandLineFlagInfo& flag, const Command& cmd) {
  for (const std::string& f : cmd.flag_files) {
    if (absl::EndsWith(flag.filename, f)) return true;
  }
  return false;
}

void PrintCommandHelp(const Command& cmd) {
  std::cout << "usage: shardlm " << cmd.name << " " << cmd.synopsis << "\n\n"
            << cmd.summary << "\n\nflags:\n";
  std::vector<gflags::CommandLineFlagInfo> flags;
  gflags::GetAllFlags(&flags);
  for (const auto& f : flags) {
    if (!BelongsTo(f, cmd)) continue;
    const std::string name = absl::StrReplaceAll(f.name, {{"_", "-"}});
    std::string shown = f.default_value.empty() ? "\"\"" : f.default_value;
    double as_double;
    if (f.type == "double" && absl::SimpleAtod(f.default_value, &as_double)) {
      shown = absl::StrFormat("%g", as_double);  // 0.8, not 0.80000000000000004
    }
    std::cout << "  --" << name << " (" << f.type << ", default " << shown << ")\n      "
              << f.description << "\n";
  }
}

void PrintUsage(const std::vector<Command>& commands) {
  std::cout << "shardlm: tensor-parallel LLM inference across machines\n\n"
            << "usage: shardlm <command> [flags]\n\ncommands:\n";
  for (const Command& c : commands) {
    std::cout << "  " << c.name << std::string(10 - std::min<size_t>(9, strlen(c.name)), ' ')
              << c.summary << "\n";
  }
  std::cout << "\n`shardlm <command> --help` lists a command's flags.\n";
}

// Flags use dashes on the command line (--top-p); gflags names use '_'.
std::vector<std::string> NormalizeFlagNames(int argc, char** argv) {
  std::vector<std::string> out;
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (i > 0 && absl::StartsWith(a, "--") && a.size() > 2) {
      const size_t eq = a.find('=');
      std::string name = a.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      std::replace(name.begin(), name.end(), '-', '_');
      a = "--" + name + (eq == std::string::npos ? "" : a.substr(eq));
    }
    out.push_back(a);
  }
  return out;
}

// Rejects flags set on the command line that belong to another subcommand.
absl::Status CheckFlagScope(const std::vector<std::string>& args, const Command& cmd) {
  for (const std::string& a : args) {
    if (!absl::StartsWith(a, "--")) continue;
    std::string name = a.substr(2, a.find('=') == std::string::npos ? std::string::npos
                                                                    : a.find('=') - 2);
    gflags::CommandLineFlagInfo info;
    if (!gflags::GetCommandLineFlagInfo(name.c_str(), &info)) {
      if (absl::StartsWith(name, "no") &&
          gflags::GetCommandLineFlagInfo(name.substr(2).c_str(), &info) && info.type == "bool") {
      } else {
        continue;  // gflags reports unknown flags itself
      }
    }
    if (!BelongsTo(info, cmd)) {
      return absl::InvalidArgumentError(
          absl::StrCat("flag --", absl::StrReplaceAll(info.name, {{"_", "-"}}),
                       " does not apply to '", cmd.name, "' (see shardlm ", cmd.name,
                       " --help)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

int Fail(const std::string& command, const absl::Status& status) {
  std::string msg(status.message());
  std::replace(msg.begin(), msg.end(), '\n', ' ');
  std::fprintf(stderr, "shardlm %s: error: %s\n", command.c_str(), msg.c_str());
  return 1;
}

absl::StatusOr<std::string> ResolveModelPath(const std::string& flag_value) {
  if (!flag_value.empty()) return flag_value;
  std::vector<std::string> tried;
  if (const char* ws = std::getenv("BUILD_WORKSPACE_DIRECTORY")) {
    tried.push_back(absl::StrCat(ws, "/", kDefaultModel));
  }
  tried.push_back(kDefaultModel);
  for (const std::string& p : tried) {
    if (FileExists(p)) return p;
  }
  return absl::NotFoundError(absl::StrCat("no --model given and the default model ",
                                          tried.front(),
                                          " is missing; pass --model PATH to a GGUF file or a Hugging Face folder"));
}

int Main(int argc, char** argv, const std::vector<Command>& commands) {
  FLAGS_logtostderr = true;
  FLAGS_minloglevel = 1;  // warnings and errors only, unless --v
  google::InitGoogleLogging(argv[0]);
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" ||
      std::string(argv[1]) == "help") {
    PrintUsage(commands);
    return argc < 2 ? 1 : 0;
  }
  const std::string name = argv[1];
  const Command* cmd = nullptr;
  for (const Command& c : commands) {
    if (name == c.name) cmd = &c;
  }
  if (cmd == nullptr) {
    std::fprintf(stderr, "shardlm: error: unknown command '%s' (try shardlm --help)\n",
                 name.c_str());
    return 1;
  }
  for (const auto& [flag, value] : cmd->flag_defaults) {
    gflags::SetCommandLineOptionWithMode(flag.c_str(), value.c_str(), gflags::SET_FLAGS_DEFAULT);
  }
  std::vector<std::string> args = NormalizeFlagNames(argc - 1, argv + 1);
  for (const std::string& a : args) {
    if (a == "--help" || a == "-h" || a == "--helpfull") {
      PrintCommandHelp(*cmd);
      return 0;
    }
  }
  if (absl::Status s = CheckFlagScope(args, *cmd); !s.ok()) return Fail(cmd->name, s);
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  int cargc = static_cast<int>(cargs.size());
  char** cargv = cargs.data();
  gflags::SetUsageMessage(absl::StrCat("shardlm ", cmd->name, " ", cmd->synopsis));
  gflags::ParseCommandLineFlags(&cargc, &cargv, /*remove_flags=*/true);
  std::vector<std::string> positional(cargv + 1, cargv + cargc);
  return cmd->run(positional);
}

}  // namespace shardlm::cli
