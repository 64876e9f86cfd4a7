//! Guest address spaces: VMAs, the page map, faults, and copies to and from
//! guest virtual memory.

pub mod memory;
