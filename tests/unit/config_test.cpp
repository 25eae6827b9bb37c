#include <gtest/gtest.h>
#include "config.h"
TEST(Config, Defaults) { auto c = smtpscope::default_config(); EXPECT_EQ(c.store.batch_size, 512u); }
