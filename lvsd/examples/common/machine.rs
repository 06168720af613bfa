//! Shared by the hand-run benchmarks (`#[path]`-included, not an example of its own): the
//! line that says which machine the figures come from.

/// `machine: 2 x AMD EPYC …, Linux 6.x`.
pub fn print_machine() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    println!(
        "machine: {} x {cpu}, Linux {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        kernel.trim()
    );
}
