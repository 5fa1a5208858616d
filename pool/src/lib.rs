//! pool: robust, reusable thread and process pools (facade crate)
