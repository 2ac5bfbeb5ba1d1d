//! The verification log as the hub writes it: the batching writer every step appends
//! through (`trail`), the published checkpoints and their signed notes (`checkpoints`),
//! and archiving then pruning (`retention`). Storage and the tree are `store` and `audit`.

pub mod checkpoints;
pub mod retention;
pub mod trail;
