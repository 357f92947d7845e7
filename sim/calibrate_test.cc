// Calibration through its public entry (what `shardlm sim --calibrate`
// runs) on small sets and short loops: every figure is measured and sane,
// the file it makes parses back, and bad options are errors. The figures
// themselves are this host's and are not checked against constants.
#include "sim/calibrate.h"

#include <string>
#include <vector>

#include "core/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "google/protobuf/text_format.h"
#include "sim/cost_model.h"

namespace shardlm::sim {
namespace {

using ::testing::HasSubstr;

CalibrateOptions SmallOptions(Clock* clock, std::vector<std::string>* lines) {
  CalibrateOptions o;
  o.clock = clock;
  o.progress = [lines](const std::string& line) { lines->push_back(line); };
  o.min_seconds = 0.02;
  o.decode_matrix_mib = 16;
  o.footprint_mib = {4, 8, 16};
  o.product_set_mib = 8;
  o.collective_set_mib = 4;
  return o;
}

TEST(CalibrateTest, AWholeModelIsMeasuredAndParsesBack) {
  RealClock clock;
  std::vector<std::string> lines;
  absl::StatusOr<CostModel> model = Calibrate(SmallOptions(&clock, &lines));
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_GE(model->cores_per_host(), 1);
  ASSERT_EQ(model->matmul_size(), 4);
  for (const MatMulRate& r : model->matmul()) {
    EXPECT_GT(r.decode_gbps(), 0) << r.type();
    EXPECT_GE(r.decode_product_us(), 0) << r.type();
    ASSERT_GE(r.decode_footprint_size(), 1) << r.type();
    double last = 0;
    for (const DecodeFootprint& f : r.decode_footprint()) {
      EXPECT_GT(f.weight_mib(), last) << r.type();
      EXPECT_GE(f.weight_mib(), 4) << r.type();
      EXPECT_GT(f.gbps(), 0) << r.type();
      EXPECT_GT(f.host_gbps(), 0) << r.type();
      last = f.weight_mib();
    }
  }
  EXPECT_GE(model->busy_collective_us(), 0);
  EXPECT_GE(model->oversubscribed_wakeup_us(), 0);
  EXPECT_GT(model->link().bandwidth_gbps(), 0);
  std::string text;
  ASSERT_TRUE(google::protobuf::TextFormat::PrintToString(*model, &text));
  absl::StatusOr<CostModel> parsed = ParseCostModel(text, "calibrated");
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  EXPECT_TRUE(OpCosts::Create(*parsed, PlanWeightInfo(DType::kQ4_0)).ok());
  // Progress names each measurement.
  std::string all;
  for (const std::string& l : lines) all += l + "\n";
  EXPECT_THAT(all, HasSubstr("decode q4_0"));
  EXPECT_THAT(all, HasSubstr("computing nodes"));
}

TEST(CalibrateTest, BadFootprintsAreErrors) {
  RealClock clock;
  std::vector<std::string> lines;
  CalibrateOptions o = SmallOptions(&clock, &lines);
  MatMulRate rate;
  o.footprint_mib = {8, 4};
  EXPECT_THAT(CalibrateDecode(o, DType::kQ4_0, 2, &rate).message(), HasSubstr("ascending"));
  o.footprint_mib = {};
  EXPECT_THAT(CalibrateDecode(o, DType::kQ4_0, 2, &rate).message(), HasSubstr("no footprints"));
  EXPECT_EQ(rate.decode_footprint_size(), 0);
}

}  // namespace
}  // namespace shardlm::sim
