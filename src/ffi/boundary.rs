//! The one place where the C boundary's `unsafe` lives: the panic boundary,
//! NULL checks, handle casting, C strings, byte buffers, versioned output
//! structs and timeouts. The per-type modules call these helpers and carry
//! (almost) no `unsafe` of their own.
//!
//! Handle types. Every opaque C handle is a Rust struct whose ownership is
//! fixed by the [`Handle`] marker it implements:
//! - [`Owned`]: kp allocates it with `Box` ([`into_handle`]) and frees it in
//!   the matching `kp_*_destroy` ([`free_handle`]) or when a call consumes it
//!   ([`take_handle`]); the caller only passes the pointer back.
//! - [`Borrowed`]: the pointer is lent to C for one call (a delivery report
//!   during its callback); kp never frees it through the handle.
//!
//! The pointer macros ([`handle!`], [`handle_mut!`], [`c_str!`], ...) turn
//! a raw pointer into `Option<&T>`: `None` for NULL. Their `unsafe` is
//! justified by the `# Safety` contract of the `unsafe extern "C"` function
//! they expand in: each pointer argument is NULL or valid as kp.h documents.

use std::cell::Cell;
use std::ffi::{c_char, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;
use std::time::Duration;

use super::errors::{kp_err_t, KP_ERR_INTERNAL};
use super::report::in_delivery_callback;
use crate::log::{kp_thread_log, Log};

/// The value a C function returns when a panic was caught inside it, chosen
/// by its return type: NULL for pointers, `false`, 0 for sizes and
/// KP_ERR_INTERNAL for error codes. Functions whose `i32`/`i64` result is not
/// an error code (a partition, an offset, a count) use [`guard_or`].
pub(crate) trait OnPanic {
    fn on_panic() -> Self;
}

impl<T> OnPanic for *mut T {
    fn on_panic() -> Self {
        std::ptr::null_mut()
    }
}

impl<T> OnPanic for *const T {
    fn on_panic() -> Self {
        std::ptr::null()
    }
}

impl OnPanic for bool {
    fn on_panic() -> Self {
        false
    }
}

impl OnPanic for () {
    fn on_panic() -> Self {}
}

impl OnPanic for usize {
    fn on_panic() -> Self {
        0
    }
}

impl OnPanic for kp_err_t {
    fn on_panic() -> Self {
        KP_ERR_INTERNAL
    }
}

/// Runs `f`; a panic inside it becomes the return type's [`OnPanic`] value,
/// never an unwind across the C boundary (and is logged, never printed:
/// see [`install_panic_hook`]).
pub(crate) fn guard<T: OnPanic>(f: impl FnOnce() -> T) -> T {
    run_guarded(f).unwrap_or_else(T::on_panic)
}

/// [`guard`] with an explicit panic value, for results that are not error
/// codes (partition -1, count 0, ...).
pub(crate) fn guard_or<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    run_guarded(f).unwrap_or(on_panic)
}

/// Runs `f` marked as a kp call on this thread (None if it panicked). One
/// thread-local access for entering and leaving: in the shared library each
/// access is a call to `__tls_get_addr`, and kp_send is on the hot path.
fn run_guarded<T>(f: impl FnOnce() -> T) -> Option<T> {
    static HOOK: Once = Once::new();
    HOOK.call_once(install_panic_hook);
    CALL.with(|c| {
        let outer = c.get();
        c.set(Call { depth: outer.depth + 1, log: outer.log });
        let r = catch_unwind(AssertUnwindSafe(f));
        c.set(outer);
        r.ok()
    })
}

/// The kp calls running on this thread: how deep, and the log of the
/// producer the innermost one works on (NULL until it looked at one).
#[derive(Clone, Copy)]
struct Call {
    depth: u32,
    log: *const Log,
}

thread_local! {
    static CALL: Cell<Call> = const { Cell::new(Call { depth: 0, log: std::ptr::null() }) };
}

/// Names the producer the running call works on: a panic caught in the
/// call is logged to its log. `log` lives as long as the producer, which
/// outlives the call (the caller's contract).
pub(crate) fn calling_producer(log: &Log) {
    CALL.with(|c| c.set(Call { depth: c.get().depth, log }));
}

/// Installs (once) a panic hook in front of the process's: a panic inside
/// kp (in a kp call on the application's thread, or on kp's own I/O and
/// delivery threads) is logged to its producer's log callback (level
/// KP_LOG_CRIT, with where it happened) and not printed; every other panic,
/// including one in the application's callbacks, goes to the previous hook
/// as before. A hook the application sets later replaces this one.
pub(super) fn install_panic_hook() {
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let call = CALL.try_with(Cell::get).unwrap_or(Call { depth: 0, log: std::ptr::null() });
        let thread_log = kp_thread_log();
        if in_delivery_callback() || (call.depth == 0 && thread_log.is_none()) {
            return previous(info);
        }
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line()));
        let what = info.payload_as_str().unwrap_or("(no message)");
        let message = format!("internal error: kp panicked{}: {what}", at.unwrap_or_default());
        if call.depth > 0 {
            // SAFETY: set by calling_producer() in a call still running on
            // this thread, whose producer outlives it.
            if let Some(log) = unsafe { call.log.as_ref() } {
                log.write_from_panic(format!("{message}; the call failed (KP_ERR_INTERNAL)"));
            }
        } else if let Some(log) = thread_log {
            log.write_from_panic(message);
        }
    }));
}

/// Ownership marker: kp allocated the object with `Box` and frees it.
pub(crate) enum Owned {}
/// Ownership marker: the object is lent to C for one call.
pub(crate) enum Borrowed {}

/// A C handle type and how it is owned.
pub(crate) trait Handle {
    type Ownership;
}

/// Moves `value` to the heap and returns the handle C will hold.
pub(crate) fn into_handle<T: Handle<Ownership = Owned>>(value: T) -> *mut T {
    Box::into_raw(Box::new(value))
}

/// Takes back ownership of a handle from [`into_handle`] (None for NULL).
///
/// # Safety
/// `p` is NULL or came from [`into_handle`] and was not taken back since;
/// no other reference to the object exists.
pub(crate) unsafe fn take_handle<T: Handle<Ownership = Owned>>(p: *mut T) -> Option<Box<T>> {
    // SAFETY: the caller guarantees `p` is NULL or an unconsumed pointer
    // from Box::into_raw with no other live reference.
    (!p.is_null()).then(|| unsafe { Box::from_raw(p) })
}

/// Frees a handle from [`into_handle`]; NULL is a no-op.
///
/// # Safety
/// As for [`take_handle`].
pub(crate) unsafe fn free_handle<T: Handle<Ownership = Owned>>(p: *mut T) {
    // SAFETY: forwarded from this function's contract.
    drop(unsafe { take_handle(p) });
}

/// `Option<&T>` from a handle or in-parameter pointer (None for NULL).
macro_rules! handle {
    ($p:expr) => {{
        let p = $p;
        // SAFETY: the enclosing extern "C" function's contract: the pointer
        // is NULL or points to a live, properly aligned object of its type.
        unsafe { p.as_ref() }
    }};
}

/// `Option<&mut T>` from a handle or out-parameter pointer (None for NULL).
macro_rules! handle_mut {
    ($p:expr) => {{
        let p = $p;
        // SAFETY: the enclosing extern "C" function's contract: the pointer
        // is NULL or points to a live object of its type that nothing else
        // accesses during the call.
        unsafe { p.as_mut() }
    }};
}

/// `Option<&str>` from a NUL-terminated C string (None for NULL or non-UTF-8).
macro_rules! c_str {
    ($p:expr) => {{
        let p: *const std::ffi::c_char = $p;
        // SAFETY: the enclosing extern "C" function's contract: the pointer
        // is NULL or a NUL-terminated string that outlives the call.
        unsafe { $crate::ffi::boundary::c_str_of(p) }
    }};
}

/// `Option<&[u8]>` from a C string's bytes without the NUL (None for NULL).
macro_rules! c_str_bytes {
    ($p:expr) => {{
        let p: *const std::ffi::c_char = $p;
        // SAFETY: as for c_str!.
        unsafe { $crate::ffi::boundary::c_str_bytes_of(p) }
    }};
}

/// `Option<&[T]>` from a pointer and an element count (None for NULL).
macro_rules! c_slice {
    ($p:expr, $len:expr) => {{
        let (p, len) = ($p, $len);
        // SAFETY: the enclosing extern "C" function's contract: the pointer
        // is NULL or points to `len` initialised elements that outlive the call.
        unsafe { $crate::ffi::boundary::slice_of(p, len) }
    }};
}

/// `Option<&mut [T]>` from a pointer and an element count (None for NULL).
macro_rules! c_slice_mut {
    ($p:expr, $len:expr) => {{
        let (p, len) = ($p, $len);
        // SAFETY: the enclosing extern "C" function's contract: the pointer
        // is NULL or points to `len` writable elements nothing else accesses
        // during the call.
        unsafe { $crate::ffi::boundary::slice_mut_of(p, len) }
    }};
}

/// Writes `msg` into the caller's error buffer `(dst, size)` (truncated,
/// always NUL-terminated; nothing when dst is NULL or size is 0).
macro_rules! set_errstr {
    ($dst:expr, $size:expr, $msg:expr) => {{
        let (dst, size): (*mut std::ffi::c_char, usize) = ($dst, $size);
        // SAFETY: the enclosing extern "C" function's contract: `dst` is NULL
        // or points to `size` writable bytes.
        unsafe { $crate::ffi::boundary::write_errstr(dst, size, $msg) }
    }};
}

/// Reads `struct_size`, the first field of a versioned caller struct,
/// without assuming the rest of the struct is there.
macro_rules! struct_size {
    ($p:expr) => {{
        let p = $p;
        // SAFETY: the enclosing extern "C" function's contract: `p` is a
        // non-NULL pointer to a struct that starts with a size_t struct_size.
        unsafe { $crate::ffi::boundary::read_struct_size(p) }
    }};
}

/// Copies the first `len` bytes of `value` to the caller's struct `out`.
macro_rules! write_prefix {
    ($out:expr, $value:expr, $len:expr) => {{
        let (out, value, len) = ($out, $value, $len);
        // SAFETY: the enclosing extern "C" function's contract: `out` is
        // non-NULL with at least struct_size writable bytes, and `len` is
        // at most both struct_size and size_of_val(value).
        unsafe { $crate::ffi::boundary::copy_prefix(out, value, len) }
    }};
}

/// Copies the first `len` bytes of `value` to element `index` of a caller
/// array whose elements are `stride` bytes apart.
macro_rules! write_element {
    ($base:expr, $index:expr, $stride:expr, $value:expr, $len:expr) => {{
        let (base, index, stride, value, len) = ($base, $index, $stride, $value, $len);
        // SAFETY: the enclosing extern "C" function's contract: `base`
        // points to more than `index` writable elements of `stride` bytes,
        // and `len` is at most both `stride` and size_of_val(value).
        unsafe { $crate::ffi::boundary::copy_prefix(base.byte_add(index * stride), value, len) }
    }};
}

pub(crate) use {
    c_slice, c_slice_mut, c_str, c_str_bytes, handle, handle_mut, set_errstr, struct_size,
};
pub(crate) use {write_element, write_prefix};

/// # Safety
/// `p` is NULL or a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn c_str_of<'a>(p: *const c_char) -> Option<&'a str> {
    // SAFETY: forwarded from this function's contract.
    unsafe { c_str_bytes_of(p) }.and_then(|b| std::str::from_utf8(b).ok())
}

/// # Safety
/// `p` is NULL or a NUL-terminated string valid for `'a`.
pub(crate) unsafe fn c_str_bytes_of<'a>(p: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: non-NULL here; validity and lifetime are the caller's contract.
    (!p.is_null()).then(|| unsafe { CStr::from_ptr(p) }.to_bytes())
}

/// `bytes` as `&str` when it is ASCII (Kafka topic names are): an ASCII scan
/// is cheaper than full UTF-8 validation on the send path.
pub(crate) fn ascii_str(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        Some(unsafe { std::str::from_utf8_unchecked(bytes) })
    } else {
        None
    }
}

/// # Safety
/// `p` is NULL or points to `len` initialised `T`s valid for `'a`.
pub(crate) unsafe fn slice_of<'a, T>(p: *const T, len: usize) -> Option<&'a [T]> {
    if p.is_null() {
        None
    } else if len == 0 {
        Some(&[])
    } else {
        // SAFETY: non-NULL with `len` elements, per the caller's contract.
        Some(unsafe { std::slice::from_raw_parts(p, len) })
    }
}

/// # Safety
/// `p` is NULL or points to `len` initialised `T`s valid for `'a`, not
/// otherwise accessed meanwhile.
pub(crate) unsafe fn slice_mut_of<'a, T>(p: *mut T, len: usize) -> Option<&'a mut [T]> {
    if p.is_null() {
        None
    } else if len == 0 {
        Some(&mut [])
    } else {
        // SAFETY: non-NULL with `len` elements, per the caller's contract.
        Some(unsafe { std::slice::from_raw_parts_mut(p, len) })
    }
}

/// # Safety
/// `dst` is NULL or points to `size` writable bytes.
pub(crate) unsafe fn write_errstr(dst: *mut c_char, size: usize, msg: &str) {
    if dst.is_null() || size == 0 {
        return;
    }
    let bytes = msg.as_bytes();
    let n = bytes.len().min(size - 1);
    // SAFETY: n + 1 <= size bytes are writable at `dst` (caller's contract);
    // `bytes` is a distinct Rust allocation, so the ranges do not overlap.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), dst.cast::<u8>(), n);
        *dst.add(n) = 0;
    }
}

/// # Safety
/// `p` is non-NULL, aligned, and points to at least a `usize`.
pub(crate) unsafe fn read_struct_size<T>(p: *const T) -> usize {
    // SAFETY: caller's contract; only the leading usize is read, so an
    // older, shorter struct is fine.
    unsafe { p.cast::<usize>().read() }
}

/// # Safety
/// `out` is non-NULL with `len` writable bytes; `len <= size_of::<T>()`.
pub(crate) unsafe fn copy_prefix<T>(out: *mut T, value: &T, len: usize) {
    debug_assert!(len <= std::mem::size_of::<T>());
    // SAFETY: caller's contract; `value` is a Rust value, so no overlap.
    unsafe {
        std::ptr::copy_nonoverlapping((value as *const T).cast::<u8>(), out.cast::<u8>(), len)
    }
}

/// A C timeout in milliseconds as a Duration (negative means 0).
pub(crate) fn timeout(ms: i32) -> Duration {
    Duration::from_millis(ms.max(0) as u64)
}
