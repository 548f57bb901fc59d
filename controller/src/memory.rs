//! How Weft's processes ask the kernel for memory.

/// Turns transparent huge pages off for this process; call it first thing in `main`.
///
/// mimalloc asks for huge pages on its arenas (`MADV_HUGEPAGE`) and gives freed pages
/// back to the kernel after a second. Weft's allocations come and go in bursts (flow
/// tables, OVSDB monitor updates, compiler rounds; in the simulator, flow dumps and
/// monitors for thousands of nodes), so the same memory is faulted in again and again,
/// and with huge pages each fault zeroes 2 MiB:
/// - at 300 simulated hypervisors shared by 3 weftd instances, that zeroing was about a
///   quarter of an instance's sampled CPU (sim/README.md, "Where a cluster instance's CPU
///   goes": 15% less CPU, 8% less memory without huge pages);
/// - in weft-bench's simulator, it was a quarter of its samples in a reconnect storm.
///
/// Without huge pages a fault zeroes 4 KiB. The kernel checks the flag at each fault, so
/// it also covers the arena mimalloc reserved before `main`. Failure (an old kernel) only
/// leaves huge pages on, and is reported on stderr.
pub fn no_transparent_huge_pages(program: &str) {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        eprintln!("{program}: cannot turn transparent huge pages off: {e}");
    }
}
