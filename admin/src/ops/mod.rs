//! Operations shared by the CLI (`rill groups`, `rill reassign`) and the console, so both
//! surfaces give the same answer for the same inputs.

pub mod acl;
pub mod audit;
pub mod lag;
pub mod partitioner;
pub mod reassign;
pub mod reset;
