"""cc_library from a .proto through the system protoc (no protobuf source repo offline)."""

load("//bazel:copts.bzl", "SHARDLM_COPTS")

def shardlm_cc_proto(name, src, deps = [], visibility = None):
    """Generates <src>.pb.{h,cc} with /usr/bin/protoc and wraps them in cc_library `name`."""
    base = src[:-len(".proto")]
    native.genrule(
        name = name + "_gen",
        srcs = [src],
        outs = [base + ".pb.h", base + ".pb.cc"],
        cmd = "/usr/bin/protoc --proto_path=. --cpp_out=$(GENDIR) $(location %s)" % src,
    )
    native.cc_library(
        name = name,
        srcs = [base + ".pb.cc"],
        hdrs = [base + ".pb.h"],
        copts = ["-Wno-unused-parameter"],
        deps = deps + ["//third_party:protobuf"],
        visibility = visibility,
    )
