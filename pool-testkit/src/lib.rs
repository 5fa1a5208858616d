//! pool: fault fixtures, conformance suite, leak checks
