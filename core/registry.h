// Name -> factory registry for plugins (backends, transports). Plugins register
// from an alwayslink target with a static Registrar; lookups are by name.
#ifndef SHARDLM_CORE_REGISTRY_H_
#define SHARDLM_CORE_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"

namespace shardlm {

// Registry of factories producing std::unique_ptr<T> from options `Opts`.
// Thread-safe. Names are unique; iteration order (Names()) is sorted.
template <typename T, typename Opts>
class Registry {
 public:
  using Factory = std::function<absl::StatusOr<std::unique_ptr<T>>(const Opts&)>;

  // The process-wide registry for this plugin kind.
  static Registry& Global() {
    static Registry* registry = new Registry();
    return *registry;
  }

  // Adds `factory` under `name`. Returns false if the name was taken.
  bool Register(const std::string& name, Factory factory) {
    absl::MutexLock lock(&mu_);
    return factories_.emplace(name, std::move(factory)).second;
  }

  // Creates the plugin `name`; NotFound lists the registered names.
  absl::StatusOr<std::unique_ptr<T>> Create(const std::string& name, const Opts& opts) const {
    Factory factory;
    {
      absl::MutexLock lock(&mu_);
      auto it = factories_.find(name);
      if (it == factories_.end()) {
        std::vector<std::string> names;
        for (const auto& [n, f] : factories_) names.push_back(n);
        return absl::NotFoundError(absl::StrCat("no ", T::kPluginKind, " named '", name,
                                                "' (registered: ", absl::StrJoin(names, ", "),
                                                ")"));
      }
      factory = it->second;
    }
    return factory(opts);
  }

  // Registered names, sorted.
  std::vector<std::string> Names() const {
    absl::MutexLock lock(&mu_);
    std::vector<std::string> names;
    for (const auto& [n, f] : factories_) names.push_back(n);
    return names;
  }

 private:
  Registry() = default;
  mutable absl::Mutex mu_;
  std::map<std::string, Factory> factories_;
};

// Registers a factory at static-initialisation time:
//   static Registrar<Backend, BackendOptions> reg("cpu", &MakeCpuBackend);
template <typename T, typename Opts>
struct Registrar {
  Registrar(const std::string& name, typename Registry<T, Opts>::Factory factory) {
    Registry<T, Opts>::Global().Register(name, std::move(factory));
  }
};

}  // namespace shardlm

#endif  // SHARDLM_CORE_REGISTRY_H_
