//! pool: the process backend and ProcessPool
