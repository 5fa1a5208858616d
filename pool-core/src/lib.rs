//! pool: shared vocabulary and the policy engine (Task, Executor, Future, errors, Worker)
