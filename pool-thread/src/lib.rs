//! pool: the thread backend and ThreadPool
