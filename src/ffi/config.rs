//! `kp_config_t`: building a configuration by property name, reading it
//! back, and registering a custom partitioner.

use std::ffi::{c_char, c_void};

use super::boundary::{
    c_str, free_handle, guard, guard_or, handle, handle_mut, into_handle, set_errstr, Handle, Owned,
};
use super::errors::{kp_err_t, KP_ERR_INVALID_ARG, KP_OK};
use super::interceptors::Interceptors;
use super::log::LogCallback;
use super::oauth::TokenCallback;
use crate::config::{ConfigMap, SetError};

/// Configuration object (opaque). Created by kp_config_new(), freed by
/// kp_config_destroy() or consumed by a successful kp_producer_new().
/// Not thread-safe: do not use one config from two threads at once.
pub struct kp_config_t {
    pub(crate) map: ConfigMap,
    pub(crate) interceptors: Option<Interceptors>,
    pub(crate) partitioner: Option<Partitioner>,
    pub(crate) log: Option<LogCallback>,
    pub(crate) token_refresh: Option<TokenCallback>,
}

impl Handle for kp_config_t {
    type Ownership = Owned;
}

/// A registered custom partitioner and its context pointer.
#[derive(Clone, Copy)]
pub(crate) struct Partitioner {
    pub(crate) f: PartitionerFn,
    /// The caller's `ctx` (an address: it must outlive the producer).
    pub(crate) ctx: usize,
}

pub(crate) type PartitionerFn = unsafe extern "C" fn(
    topic: *const c_char,
    key: *const c_void,
    key_len: usize,
    partition_count: i32,
    ctx: *mut c_void,
) -> i32;

/// Result of kp_config_set().
pub type kp_config_result_t = i32;
/// The property was set.
pub const KP_CONFIG_OK: kp_config_result_t = 0;
/// The property is known but the value is invalid (errstr says why).
pub const KP_CONFIG_INVALID: kp_config_result_t = -1;
/// No property of that name exists (errstr names it).
pub const KP_CONFIG_UNKNOWN: kp_config_result_t = -2;

/// Custom partitioner: return a partition in [0, partition_count). `key` is
/// NULL for a null key. Called on the thread calling kp_send().
pub type kp_partitioner_fn_t = Option<
    unsafe extern "C" fn(
        topic: *const c_char,
        key: *const c_void,
        key_len: usize,
        partition_count: i32,
        ctx: *mut c_void,
    ) -> i32,
>;

/// Creates an empty configuration (all defaults). Free it with
/// kp_config_destroy() unless kp_producer_new() consumed it.
#[no_mangle]
pub extern "C" fn kp_config_new() -> *mut kp_config_t {
    guard(|| {
        into_handle(kp_config_t {
            map: ConfigMap::default(),
            interceptors: None,
            partitioner: None,
            log: None,
            token_refresh: None,
        })
    })
}

/// Copies a configuration. Returns NULL when `cfg` is NULL.
///
/// # Safety
/// `cfg` is NULL or a live config not being modified by another thread.
#[no_mangle]
pub unsafe extern "C" fn kp_config_dup(cfg: *const kp_config_t) -> *mut kp_config_t {
    guard(|| match handle!(cfg) {
        None => std::ptr::null_mut(),
        Some(c) => into_handle(kp_config_t {
            map: c.map.clone(),
            interceptors: c.interceptors,
            partitioner: c.partitioner,
            log: c.log,
            token_refresh: c.token_refresh,
        }),
    })
}

/// Frees a configuration. NULL is a no-op.
///
/// # Safety
/// `cfg` is NULL or a config from kp_config_new()/kp_config_dup() that no
/// producer consumed; it is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn kp_config_destroy(cfg: *mut kp_config_t) {
    // SAFETY: this function's contract.
    guard(|| unsafe { free_handle(cfg) })
}

/// Sets one property by name (Java producer names; librdkafka aliases where
/// they mean the same). Returns KP_CONFIG_OK, KP_CONFIG_INVALID or
/// KP_CONFIG_UNKNOWN; on failure a message naming the property is written
/// to `errstr` (up to `errstr_size` bytes incl. NUL; may be NULL).
///
/// # Safety
/// `cfg` is NULL or a live config used by no other thread; `name` and
/// `value` are NULL or NUL-terminated strings; `errstr` is NULL or has
/// `errstr_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set(
    cfg: *mut kp_config_t,
    name: *const c_char,
    value: *const c_char,
    errstr: *mut c_char,
    errstr_size: usize,
) -> kp_config_result_t {
    guard_or(KP_CONFIG_INVALID, || {
        let Some(cfg) = handle_mut!(cfg) else {
            set_errstr!(errstr, errstr_size, "cfg is NULL");
            return KP_CONFIG_INVALID;
        };
        let (Some(n), Some(v)) = (c_str!(name), c_str!(value)) else {
            set_errstr!(errstr, errstr_size, "name and value must be non-NULL UTF-8 strings");
            return KP_CONFIG_INVALID;
        };
        match cfg.map.set(n, v) {
            Ok(()) => KP_CONFIG_OK,
            Err(SetError::Unknown(m)) => {
                set_errstr!(errstr, errstr_size, &m);
                KP_CONFIG_UNKNOWN
            }
            Err(SetError::Invalid(m)) => {
                set_errstr!(errstr, errstr_size, &m);
                KP_CONFIG_INVALID
            }
        }
    })
}

/// Reads a property's current value (or default) into `dest`. `*dest_size`
/// is the buffer size on input and the needed size (incl. NUL) on output;
/// pass dest=NULL to ask for the size. Returns KP_OK, KP_ERR_INVALID_ARG
/// (NULL arguments, unknown name, or buffer too small: then *dest_size says
/// how much is needed).
///
/// # Safety
/// `cfg` is NULL or a live config not modified meanwhile; `name` is NULL or
/// a NUL-terminated string; `dest_size` is NULL or writable; `dest` is NULL
/// or has `*dest_size` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn kp_config_get(
    cfg: *const kp_config_t,
    name: *const c_char,
    dest: *mut c_char,
    dest_size: *mut usize,
) -> kp_err_t {
    guard(|| {
        let (Some(cfg), Some(n), Some(size)) = (handle!(cfg), c_str!(name), handle_mut!(dest_size))
        else {
            return KP_ERR_INVALID_ARG;
        };
        let Some(v) = cfg.map.get(n) else { return KP_ERR_INVALID_ARG };
        let need = v.len() + 1;
        let have = *size;
        *size = need;
        if dest.is_null() {
            return KP_OK;
        }
        if have < need {
            return KP_ERR_INVALID_ARG;
        }
        set_errstr!(dest, have, &v);
        KP_OK
    })
}

/// Registers a custom partitioner used for records sent with
/// KP_PARTITION_ANY (NULL restores the configured built-in one). `ctx` must
/// outlive the producer. The function must be thread-safe when several
/// threads call kp_send().
///
/// # Safety
/// `cfg` is NULL or a live config used by no other thread.
#[no_mangle]
pub unsafe extern "C" fn kp_config_set_partitioner(
    cfg: *mut kp_config_t,
    partitioner: kp_partitioner_fn_t,
    ctx: *mut c_void,
) -> kp_err_t {
    guard(|| {
        let Some(cfg) = handle_mut!(cfg) else { return KP_ERR_INVALID_ARG };
        cfg.partitioner = partitioner.map(|f| Partitioner { f, ctx: ctx as usize });
        KP_OK
    })
}
