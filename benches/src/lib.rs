//! pool: criterion benches and the comparison binary
