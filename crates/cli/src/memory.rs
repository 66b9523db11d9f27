//! Where the process's memory comes from: one allocator, mimalloc, for Rust
//! and for SQLite, and no transparent huge pages.

use std::ffi::{c_int, c_void};

use libmimalloc_sys as mi;
use rusqlite::ffi;

// glibc's malloc took about a quarter of the server's instructions per
// created user (callgrind, docs/benchmarks.md): every request builds and drops
// many small JSON maps and strings across threads.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc asks for transparent huge pages on the 1 GiB arena it reserves
/// (`madvise(MADV_HUGEPAGE)`), and khugepaged, as Linux configures it by
/// default, turns any 2 MiB range holding even one used page into a whole
/// huge page. The server's heap is small and sparse: in the soak, mimalloc's
/// arena stepped from 34 to 70 MiB resident about 11 minutes after start, the
/// time khugepaged takes to reach the arena, while Roster's live heap stayed
/// under 1.1 MiB (docs/benchmarks.md, "No transparent huge pages"). Memory
/// that follows what the server holds is worth more here than fewer TLB misses.
pub fn disable_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes integers only and sets a flag on
        // this process; no memory of ours is read or written.
        let rc = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
        if rc != 0 {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                "cannot turn transparent huge pages off; resident memory may grow in 2 MiB steps"
            );
        }
    }
}

/// SQLite's page caches and sorters allocate with the C library's `malloc`
/// unless told otherwise. Each SQLite reader runs on its own thread, so glibc
/// gave each one its own arena, and an arena keeps the pages a dropped cache
/// freed: in the soak the readers' arenas grew 1 → 2 → 4 MiB each over
/// ten minutes while they held 70 KiB. mimalloc returns whole free pages to
/// the OS after a short delay, so resident memory follows what SQLite holds.
///
/// Must run before the first SQLite connection opens; SQLite refuses the
/// setting afterwards and keeps using `malloc`, which is only a warning.
/// Returns whether SQLite took it.
pub fn route_sqlite_to_mimalloc() -> bool {
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(sqlite_malloc),
        xFree: Some(sqlite_free),
        xRealloc: Some(sqlite_realloc),
        xSize: Some(sqlite_size),
        xRoundup: Some(sqlite_roundup),
        xInit: Some(sqlite_init),
        xShutdown: Some(sqlite_shutdown),
        pAppData: std::ptr::null_mut(),
    };
    // SAFETY: SQLITE_CONFIG_MALLOC takes a pointer to a sqlite3_mem_methods,
    // which SQLite copies before returning; every function in it is below and
    // follows SQLite's contract (sizes are positive ints, pointers come from
    // xMalloc/xRealloc).
    let rc = unsafe { ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods) };
    if rc != ffi::SQLITE_OK {
        tracing::warn!(
            code = rc,
            "SQLite was already initialised; it keeps allocating with the C library's malloc"
        );
    }
    rc == ffi::SQLITE_OK
}

extern "C" fn sqlite_malloc(n: c_int) -> *mut c_void {
    // SAFETY: mi_malloc accepts any size and returns null when out of memory,
    // which SQLite handles.
    unsafe { mi::mi_malloc(n.max(0) as usize) }
}

extern "C" fn sqlite_free(p: *mut c_void) {
    // SAFETY: SQLite only frees what sqlite_malloc or sqlite_realloc returned.
    unsafe { mi::mi_free(p) }
}

extern "C" fn sqlite_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    // SAFETY: as sqlite_free (mi_realloc also takes null, as a malloc).
    unsafe { mi::mi_realloc(p, n.max(0) as usize) }
}

extern "C" fn sqlite_size(p: *mut c_void) -> c_int {
    // SAFETY: as sqlite_free. SQLite's allocations are capped far below
    // i32::MAX (SQLITE_MAX_ALLOCATION_SIZE), so the size fits.
    unsafe { mi::mi_usable_size(p) as c_int }
}

extern "C" fn sqlite_roundup(n: c_int) -> c_int {
    // SAFETY: mi_good_size only computes a size.
    let good = unsafe { mi::mi_good_size(n.max(0) as usize) };
    c_int::try_from(good).unwrap_or(n)
}

extern "C" fn sqlite_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

extern "C" fn sqlite_shutdown(_: *mut c_void) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// nextest runs each test in its own process, so SQLite is not yet
    /// initialised here.
    #[test]
    fn sqlite_allocates_through_mimalloc_once_routed() {
        assert!(route_sqlite_to_mimalloc(), "SQLite refused the allocator");
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t(x TEXT);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)
             INSERT INTO t SELECT printf('%.*c', 1000, 'x') FROM n;",
        )
        .unwrap();
        // SQLite counts what it holds with xSize (mi_usable_size): a block
        // from another allocator, or a wrong size, would not add up to the
        // two megabytes the table holds in memory.
        // SAFETY: reads SQLite's counter of its own outstanding allocations.
        let used = unsafe { ffi::sqlite3_memory_used() };
        assert!(used > 2_000_000, "SQLite holds {used} bytes");
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2000);
    }
}
