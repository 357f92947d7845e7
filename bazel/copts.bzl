"""Compiler options shared by every shardlm target."""

SHARDLM_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-sign-compare",
    "-Wno-unused-parameter",
    "-Werror=return-type",
    "-march=x86-64-v2",
]
