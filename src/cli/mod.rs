//! The command line. (Skeleton: to be written.)

/// Entry of the CLI role; returns the process exit code.
pub fn main() -> i32 {
    todo!()
}
