#include "core/registry.h"

#include "core/clock.h"
#include "core/status_macros.h"
#include "gtest/gtest.h"

namespace shardlm {
namespace {

struct Widget {
  static constexpr const char* kPluginKind = "widget";
  int size;
};
struct WidgetOptions {
  int size = 1;
};

const Registrar<Widget, WidgetOptions> kSmall(
    "small", [](const WidgetOptions& o) -> absl::StatusOr<std::unique_ptr<Widget>> {
      return std::make_unique<Widget>(Widget{o.size});
    });

TEST(RegistryTest, CreatesByNameAndListsNames) {
  auto w = Registry<Widget, WidgetOptions>::Global().Create("small", WidgetOptions{3});
  ASSERT_TRUE(w.ok());
  EXPECT_EQ((*w)->size, 3);
  using WidgetRegistry = Registry<Widget, WidgetOptions>;
  EXPECT_EQ(WidgetRegistry::Global().Names(), std::vector<std::string>{"small"});
  EXPECT_FALSE(WidgetRegistry::Global().Register("small", nullptr));
}

TEST(RegistryTest, UnknownNameListsRegistered) {
  auto w = Registry<Widget, WidgetOptions>::Global().Create("big", WidgetOptions{});
  EXPECT_EQ(w.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(w.status().message(), "no widget named 'big' (registered: small)");
}

absl::StatusOr<int> Half(int x) {
  if (x % 2) return absl::InvalidArgumentError("odd");
  return x / 2;
}

absl::Status Quarter(int x, int* out) {
  ASSIGN_OR_RETURN(int h, Half(x));
  ASSIGN_OR_RETURN(*out, Half(h));
  RETURN_IF_ERROR(absl::OkStatus());
  return absl::OkStatus();
}

TEST(StatusMacrosTest, PropagateErrorsAndValues) {
  int out = 0;
  EXPECT_TRUE(Quarter(8, &out).ok());
  EXPECT_EQ(out, 2);
  EXPECT_EQ(Quarter(6, &out).message(), "odd");
  EXPECT_EQ(Quarter(5, &out).message(), "odd");
}

TEST(ClockTest, ManualClockMovesOnlyWhenTold) {
  ManualClock clock;
  const absl::Time t0 = clock.Now();
  clock.SleepFor(absl::Seconds(2));
  clock.Advance(absl::Milliseconds(5));
  EXPECT_EQ(clock.Now() - t0, absl::Milliseconds(2005));
  RealClock real;
  const absl::Time a = real.Now();
  real.SleepFor(absl::Milliseconds(1));
  EXPECT_GE(real.Now() - a, absl::Milliseconds(1));
}

}  // namespace
}  // namespace shardlm
