//! The heap: Mbed TLS allocates its record buffers, contexts and parsed certificates with
//! `calloc` and `free`, which this module provides over Rust's global allocator, itself an
//! `embedded-alloc` linked-list heap wrapped in a counter.
//!
//! The counter sees every block as the allocator is asked for it (`Layout::size()`, which for
//! `calloc` includes an 8-byte header that remembers the size for `free`): the bytes in use and
//! their high-water mark. It does not see the allocator's own overhead (rounding, free-list
//! nodes) nor fragmentation, so the arena a device reserves must be somewhat larger than the
//! peak; here the arena is [`ARENA_LEN`] bytes and the run fails if an allocation is refused.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::c_void;
use core::ptr::{addr_of, addr_of_mut, null_mut};

use embedded_alloc::LlffHeap;

/// The heap's size: a static, counted apart from the program's other statics (see .ci/qemu).
pub const ARENA_LEN: usize = 96 * 1024;

#[link_section = ".bss.heap_arena"]
static mut HEAP_ARENA: [u8; ARENA_LEN] = [0; ARENA_LEN];

/// The allocator's counters, in the harness's memory (not counted as the program's RAM).
struct Counters {
    in_use: usize,
    peak: usize,
    /// The highest `in_use` since [`mark`].
    peak_since_mark: usize,
    allocations: usize,
    refused: usize,
}

#[link_section = ".harness"]
static mut COUNTERS: Counters = Counters {
    in_use: 0,
    peak: 0,
    peak_since_mark: 0,
    allocations: 0,
    refused: 0,
};

fn counters() -> &'static mut Counters {
    // SAFETY: one hart, no interrupts; each call makes a reference used briefly, never kept
    // across another call.
    unsafe { &mut *addr_of_mut!(COUNTERS) }
}

/// `embedded-alloc`'s linked-list heap, counted.
struct Counted(LlffHeap);

unsafe impl GlobalAlloc for Counted {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = self.0.alloc(layout);
        let c = counters();
        if p.is_null() {
            c.refused += 1;
        } else {
            c.allocations += 1;
            c.in_use += layout.size();
            c.peak = c.peak.max(c.in_use);
            c.peak_since_mark = c.peak_since_mark.max(c.in_use);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.0.dealloc(ptr, layout);
        counters().in_use -= layout.size();
    }
}

#[global_allocator]
static ALLOCATOR: Counted = Counted(LlffHeap::empty());

/// Gives the arena to the allocator; called once, first thing.
pub fn init() {
    // SAFETY: called once, before any allocation; the arena is used by nothing else.
    unsafe {
        ALLOCATOR
            .0
            .init(addr_of_mut!(HEAP_ARENA) as usize, ARENA_LEN)
    }
}

/// Bytes in use now.
pub fn in_use() -> usize {
    counters().in_use
}

/// The high-water mark of the whole run.
pub fn peak() -> usize {
    counters().peak
}

/// Starts a measured step: its peak is counted from the bytes in use now.
pub fn mark() {
    let c = counters();
    c.peak_since_mark = c.in_use;
}

/// The highest number of bytes in use since [`mark`].
pub fn peak_since_mark() -> usize {
    counters().peak_since_mark
}

/// Allocations made, and refused (the arena was full), in the whole run.
pub fn allocations() -> (usize, usize) {
    let c = counters();
    (c.allocations, c.refused)
}

/// The arena's address range, for the report's check that it is the only large static.
pub fn arena() -> (usize, usize) {
    (addr_of!(HEAP_ARENA) as usize, ARENA_LEN)
}

// ---------------------------------------------------------------------------------------------
// The C allocator Mbed TLS calls (`mbedtls_calloc` and `mbedtls_free` call these).

/// Each block starts with its size (8 bytes, so the data stays 8-byte aligned, as C's `calloc`
/// promises for any type).
const HEADER: usize = 8;

#[no_mangle]
unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
    let Some(len) = count.checked_mul(size).and_then(|n| n.checked_add(HEADER)) else {
        return null_mut();
    };
    let Ok(layout) = Layout::from_size_align(len, HEADER) else {
        return null_mut();
    };
    // SAFETY: `len` is at least HEADER, not zero.
    let block = unsafe { alloc::alloc::alloc_zeroed(layout) };
    if block.is_null() {
        return null_mut();
    }
    // SAFETY: the block is `len` bytes, 8-aligned; the size goes into its first word.
    unsafe {
        (block as *mut usize).write(len);
        block.add(HEADER) as *mut c_void
    }
}

#[no_mangle]
unsafe extern "C" fn free(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    // SAFETY: `ptr` came from `calloc` above: the header is right before it.
    unsafe {
        let block = (ptr as *mut u8).sub(HEADER);
        let len = (block as *const usize).read();
        alloc::alloc::dealloc(block, Layout::from_size_align_unchecked(len, HEADER));
    }
}
