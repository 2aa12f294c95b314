//! Unit tests of the C ABI through its exported functions.

use std::ffi::{c_char, CStr};
use std::ptr;

use super::*;
use crate::engine::{Persistence, PARTITION_ANY};
use crate::error;

#[test]
fn abi_constants_match_the_engine() {
    let pairs = [
        (KP_OK, error::OK),
        (KP_ERR_INVALID_ARG, error::INVALID_ARG),
        (KP_ERR_QUEUE_FULL, error::QUEUE_FULL),
        (KP_ERR_RECORD_TOO_LARGE, error::RECORD_TOO_LARGE),
        (KP_ERR_INVALID_TOPIC, error::INVALID_TOPIC),
        (KP_ERR_UNKNOWN_PARTITION, error::UNKNOWN_PARTITION),
        (KP_ERR_TIMED_OUT, error::TIMED_OUT),
        (KP_ERR_TRANSPORT, error::TRANSPORT),
        (KP_ERR_ALL_BROKERS_DOWN, error::ALL_BROKERS_DOWN),
        (KP_ERR_PURGED_QUEUED, error::PURGED_QUEUED),
        (KP_ERR_PURGED_IN_FLIGHT, error::PURGED_IN_FLIGHT),
        (KP_ERR_CLOSED, error::CLOSED),
        (KP_ERR_FATAL, error::FATAL),
        (KP_ERR_STATE, error::STATE),
        (KP_ERR_INTERNAL, error::INTERNAL),
        (KP_ERR_UNSUPPORTED_FEATURE, error::UNSUPPORTED_FEATURE),
        (KP_ERR_BAD_RESPONSE, error::BAD_RESPONSE),
        (KP_ERR_PARTITIONER_FAILED, error::PARTITIONER_FAILED),
        (KP_ERR_MESSAGE_TOO_LARGE, error::MESSAGE_TOO_LARGE),
        (KP_ERR_NOT_ENOUGH_REPLICAS, error::NOT_ENOUGH_REPLICAS),
        (KP_ERR_UNKNOWN_TOPIC_OR_PARTITION, error::UNKNOWN_TOPIC_OR_PARTITION),
    ];
    for (abi, engine) in pairs {
        assert_eq!(abi, engine);
    }
    assert_eq!(KP_PARTITION_ANY, PARTITION_ANY);
    assert_eq!(KP_NOT_PERSISTED, Persistence::NotPersisted as i32);
    assert_eq!(KP_POSSIBLY_PERSISTED, Persistence::PossiblyPersisted as i32);
    assert_eq!(KP_PERSISTED, Persistence::Persisted as i32);
    assert_eq!(kp_version(), crate::VERSION_NUMBER);
    assert_eq!(crate::VERSION_NUMBER, 0x000100);
}

#[test]
fn null_arguments_are_errors_not_crashes() {
    unsafe {
        assert_eq!(
            kp_config_set(ptr::null_mut(), ptr::null(), ptr::null(), ptr::null_mut(), 0),
            KP_CONFIG_INVALID
        );
        assert!(kp_producer_new(ptr::null_mut(), ptr::null_mut(), 0).is_null());
        assert_eq!(
            kp_send(ptr::null_mut(), ptr::null(), None, ptr::null_mut()),
            KP_ERR_INVALID_ARG
        );
        assert_eq!(kp_flush(ptr::null_mut(), 0), KP_ERR_INVALID_ARG);
        assert_eq!(kp_poll(ptr::null_mut(), 0), KP_ERR_INVALID_ARG);
        assert_eq!(kp_producer_close(ptr::null_mut(), 0), KP_ERR_INVALID_ARG);
        kp_producer_destroy(ptr::null_mut());
        kp_config_destroy(ptr::null_mut());
        kp_topic_info_destroy(ptr::null_mut());
        assert_eq!(kp_report_error(ptr::null()), KP_ERR_INVALID_ARG);
        assert!(kp_report_topic(ptr::null()).is_null());
        assert_eq!(kp_topic_info_partition_count(ptr::null()), 0);
        let mut size = 0usize;
        assert_eq!(
            kp_config_get(ptr::null(), ptr::null(), ptr::null_mut(), &mut size),
            KP_ERR_INVALID_ARG
        );
        let cfg = kp_config_new();
        let mut err = [0 as c_char; 128];
        assert_eq!(
            kp_config_set(cfg, ptr::null(), ptr::null(), err.as_mut_ptr(), err.len()),
            KP_CONFIG_INVALID
        );
        // errstr of size 1 gets just the terminator; size 0 / NULL is fine.
        let n = c"nope";
        let v = c"1";
        assert_eq!(
            kp_config_set(cfg, n.as_ptr(), v.as_ptr(), err.as_mut_ptr(), 1),
            KP_CONFIG_UNKNOWN
        );
        assert_eq!(err[0], 0);
        assert_eq!(
            kp_config_set(cfg, n.as_ptr(), v.as_ptr(), ptr::null_mut(), 0),
            KP_CONFIG_UNKNOWN
        );
        // A config without bootstrap.servers is refused and stays owned by the caller.
        assert!(kp_producer_new(cfg, err.as_mut_ptr(), err.len()).is_null());
        assert!(CStr::from_ptr(err.as_ptr()).to_str().unwrap().contains("bootstrap.servers"));
        kp_config_destroy(cfg);
    }
}

#[test]
fn config_get_reports_defaults_and_sizes() {
    unsafe {
        let cfg = kp_config_new();
        let name = c"linger.ms";
        let mut size = 0usize;
        assert_eq!(kp_config_get(cfg, name.as_ptr(), ptr::null_mut(), &mut size), KP_OK);
        assert_eq!(size, 2);
        let mut buf = [0 as c_char; 1];
        let mut small = buf.len();
        assert_eq!(
            kp_config_get(cfg, name.as_ptr(), buf.as_mut_ptr(), &mut small),
            KP_ERR_INVALID_ARG
        );
        let mut buf = [0 as c_char; 8];
        let mut size = buf.len();
        assert_eq!(kp_config_get(cfg, name.as_ptr(), buf.as_mut_ptr(), &mut size), KP_OK);
        assert_eq!(CStr::from_ptr(buf.as_ptr()).to_str().unwrap(), "5");
        kp_config_destroy(cfg);
    }
}

#[test]
fn metrics_fill_only_whole_fields_within_struct_size() {
    use std::mem::{offset_of, size_of};
    let word = |field: usize| field / 8;
    unsafe {
        let mut m: kp_metrics_t = std::mem::zeroed();
        m.struct_size = size_of::<kp_metrics_t>();
        assert_eq!(kp_producer_metrics(ptr::null(), &mut m), KP_ERR_INVALID_ARG);
        let cfg = kp_config_new();
        for (k, v) in [(c"bootstrap.servers", c"127.0.0.1:1"), (c"buffer.memory", c"1048576")] {
            assert_eq!(
                kp_config_set(cfg, k.as_ptr(), v.as_ptr(), ptr::null_mut(), 0),
                KP_CONFIG_OK
            );
        }
        let p = kp_producer_new(cfg, ptr::null_mut(), 0);
        assert!(!p.is_null());
        assert_eq!(kp_producer_metrics(p, ptr::null_mut()), KP_ERR_INVALID_ARG);
        // struct_size not set, or too small for the first counter.
        for size in [0, 1, offset_of!(kp_metrics_t, records_delivered) + 7] {
            m.struct_size = size;
            assert_eq!(kp_producer_metrics(p, &mut m), KP_ERR_INVALID_ARG, "struct_size {size}");
        }
        m.struct_size = size_of::<kp_metrics_t>();
        assert_eq!(kp_producer_metrics(p, &mut m), KP_OK);
        assert_eq!(m.struct_size, size_of::<kp_metrics_t>());
        assert_eq!(m.buffer_bytes_limit, 1 << 20);
        assert_eq!(
            (m.records_outstanding, m.buffer_bytes_used, m.produce_requests, m.records_failed),
            (0, 0, 0, 0)
        );

        // A record waiting for metadata (no broker) is outstanding and holds buffer.
        let mut rec: kp_record_t = std::mem::zeroed();
        rec.struct_size = size_of::<kp_record_t>();
        rec.topic = c"t".as_ptr();
        rec.partition = KP_PARTITION_ANY;
        assert_eq!(kp_send(p, &rec, None, ptr::null_mut()), KP_OK);

        // An older, shorter struct (3 counters and 3 stray bytes): only
        // whole fields inside it are written.
        let mut buf = [u64::MAX; 64];
        let short = offset_of!(kp_metrics_t, records_outstanding) + 8;
        buf[0] = (short + 3) as u64;
        assert_eq!(kp_producer_metrics(p, buf.as_mut_ptr() as *mut kp_metrics_t), KP_OK);
        assert_eq!(buf[0], short as u64, "struct_size says how much was filled");
        assert_eq!(buf[word(offset_of!(kp_metrics_t, records_delivered))], 0);
        assert_eq!(buf[word(offset_of!(kp_metrics_t, records_outstanding))], 1);
        assert!(buf[word(short)..].iter().all(|w| *w == u64::MAX), "wrote past struct_size");

        // A newer, longer struct: kp fills what it knows, leaves the rest.
        let mut buf = [u64::MAX; 64];
        buf[0] = (64 * 8) as u64;
        assert_eq!(kp_producer_metrics(p, buf.as_mut_ptr() as *mut kp_metrics_t), KP_OK);
        assert_eq!(buf[0], size_of::<kp_metrics_t>() as u64);
        assert!(buf[word(offset_of!(kp_metrics_t, buffer_bytes_used))] > 0);
        assert!(buf[word(size_of::<kp_metrics_t>())..].iter().all(|w| *w == u64::MAX));

        // Closing reports the record as failed; the handle still answers.
        kp_producer_close(p, 0);
        assert_eq!(kp_producer_metrics(p, &mut m), KP_OK);
        assert_eq!(
            (m.records_delivered, m.records_failed, m.records_outstanding, m.buffer_bytes_used),
            (0, 1, 0, 0)
        );
        kp_producer_destroy(p);
    }
}

#[test]
fn metrics_init_in_the_header_lists_every_field() {
    let h = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/include/kp.h")).unwrap();
    let init =
        h.lines().find(|l| l.starts_with("#define KP_METRICS_INIT")).expect("KP_METRICS_INIT");
    let counters = (std::mem::size_of::<kp_metrics_t>()
        - std::mem::offset_of!(kp_metrics_t, records_delivered))
        / 8;
    assert_eq!(init.matches(',').count(), counters, "{init}");
}

#[test]
fn error_names() {
    unsafe {
        assert_eq!(CStr::from_ptr(kp_err_name(KP_ERR_QUEUE_FULL)).to_str().unwrap(), "QUEUE_FULL");
        assert_eq!(CStr::from_ptr(kp_err_name(19)).to_str().unwrap(), "NOT_ENOUGH_REPLICAS");
        assert!(kp_err_is_retriable(19));
        assert!(!kp_err_is_retriable(KP_ERR_RECORD_TOO_LARGE));
        assert_eq!(CStr::from_ptr(kp_version_str()).to_str().unwrap(), env!("CARGO_PKG_VERSION"));
    }
}

#[test]
fn every_c_error_code_is_a_table_row_of_its_name() {
    let codes = [
        (KP_ERR_INVALID_ARG, "INVALID_ARG"),
        (KP_ERR_QUEUE_FULL, "QUEUE_FULL"),
        (KP_ERR_RECORD_TOO_LARGE, "RECORD_TOO_LARGE"),
        (KP_ERR_INVALID_TOPIC, "INVALID_TOPIC"),
        (KP_ERR_UNKNOWN_PARTITION, "UNKNOWN_PARTITION"),
        (KP_ERR_TIMED_OUT, "TIMED_OUT"),
        (KP_ERR_TRANSPORT, "TRANSPORT"),
        (KP_ERR_ALL_BROKERS_DOWN, "ALL_BROKERS_DOWN"),
        (KP_ERR_PURGED_QUEUED, "PURGED_QUEUED"),
        (KP_ERR_PURGED_IN_FLIGHT, "PURGED_IN_FLIGHT"),
        (KP_ERR_CLOSED, "CLOSED"),
        (KP_ERR_FATAL, "FATAL"),
        (KP_ERR_STATE, "STATE"),
        (KP_ERR_INTERNAL, "INTERNAL"),
        (KP_ERR_UNSUPPORTED_FEATURE, "UNSUPPORTED_FEATURE"),
        (KP_ERR_BAD_RESPONSE, "BAD_RESPONSE"),
        (KP_ERR_PARTITIONER_FAILED, "PARTITIONER_FAILED"),
        (KP_ERR_MESSAGE_TOO_LARGE, "MESSAGE_TOO_LARGE"),
        (KP_ERR_NOT_ENOUGH_REPLICAS, "NOT_ENOUGH_REPLICAS"),
        (KP_ERR_UNKNOWN_TOPIC_OR_PARTITION, "UNKNOWN_TOPIC_OR_PARTITION"),
        (KP_ERR_FORKED, "FORKED"),
        (KP_ERR_AUTHENTICATION, "AUTHENTICATION"),
    ];
    for (code, name) in codes {
        let row = error::info(code).expect("a table row");
        assert_eq!((row.name, row.c_abi), (name, true));
        // SAFETY: kp_err_name returns a static NUL-terminated string.
        let c = unsafe { CStr::from_ptr(kp_err_name(code)) };
        assert_eq!(c.to_str().unwrap(), name);
    }
    assert_eq!(error::TABLE.iter().filter(|e| e.c_abi).count(), codes.len());
}

#[test]
fn error_class_constants_are_the_table_classes() {
    use crate::error::ErrorClass::*;
    let pairs = [
        (KP_ERROR_CLASS_NONE, None),
        (KP_ERROR_CLASS_RETRIABLE, Retriable),
        (KP_ERROR_CLASS_REFRESH_RETRIABLE, RefreshRetriable),
        (KP_ERROR_CLASS_ABORTABLE, Abortable),
        (KP_ERROR_CLASS_APPLICATION_RECOVERABLE, ApplicationRecoverable),
        (KP_ERROR_CLASS_INVALID_CONFIGURATION, InvalidConfiguration),
        (KP_ERROR_CLASS_FATAL, Fatal),
    ];
    for (c, class) in pairs {
        assert_eq!(c, class as i32);
    }
    assert_eq!(kp_err_class(KP_OK), KP_ERROR_CLASS_NONE);
    assert_eq!(kp_err_class(KP_ERR_NOT_ENOUGH_REPLICAS), KP_ERROR_CLASS_RETRIABLE);
    assert_eq!(kp_err_class(KP_ERR_UNKNOWN_TOPIC_OR_PARTITION), KP_ERROR_CLASS_REFRESH_RETRIABLE);
    assert_eq!(kp_err_class(KP_ERR_FORKED), KP_ERROR_CLASS_FATAL);
    assert_eq!(kp_err_class(120), KP_ERROR_CLASS_ABORTABLE);
    assert_eq!(kp_err_class(53), KP_ERROR_CLASS_INVALID_CONFIGURATION);
    // Inside a transaction a retriable error that ran out of retries is abortable.
    assert_eq!(error::report_class(KP_ERR_TIMED_OUT, true), crate::error::ErrorClass::Abortable);
    assert_eq!(error::report_class(KP_ERR_TIMED_OUT, false), crate::error::ErrorClass::Retriable);
    assert_eq!(error::report_class(KP_ERR_RECORD_TOO_LARGE, true), ApplicationRecoverable);
}

#[test]
fn the_panic_hook_keeps_kp_panics_quiet_and_logs_them_and_passes_the_hosts_on() {
    use std::sync::{Arc, Mutex};
    use std::thread::ThreadId;

    use super::boundary::{calling_producer, guard, install_panic_hook};
    use crate::log::{Filter, Log};

    // The hook the host had: records which threads it saw panic (other
    // tests run in parallel and may panic too).
    static HOST_SAW: Mutex<Vec<ThreadId>> = Mutex::new(Vec::new());
    let saw =
        || HOST_SAW.lock().unwrap().iter().filter(|t| **t == std::thread::current().id()).count();
    let before = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| HOST_SAW.lock().unwrap().push(std::thread::current().id())));
    install_panic_hook();

    let lines: Arc<Mutex<Vec<(i32, String)>>> = Arc::default();
    let l = lines.clone();
    let log = Log::new(
        Filter::default(),
        Box::new(move |level, _, m| l.lock().unwrap().push((level, m.to_string_lossy().into()))),
    );
    // Inside a kp call: caught, logged, not passed on.
    let rc: kp_err_t = guard(|| {
        calling_producer(&log);
        panic!("inside a call")
    });
    assert_eq!(rc, KP_ERR_INTERNAL);
    assert_eq!(saw(), 0, "a kp panic does not reach the host's hook");
    // On a kp thread: logged to that thread's producer log.
    let l2 = log.clone();
    let t = std::thread::spawn(move || {
        l2.enter_kp_thread();
        let _ = std::panic::catch_unwind(|| panic!("on a kp thread"));
        HOST_SAW.lock().unwrap().iter().filter(|t| **t == std::thread::current().id()).count()
    });
    assert_eq!(t.join().unwrap(), 0);
    // The host's own panic goes to its hook as before.
    let _ = std::panic::catch_unwind(|| panic!("the host's own"));
    assert_eq!(saw(), 1, "the host's panic reaches its hook");

    let _ = std::panic::take_hook();
    std::panic::set_hook(before);
    log.deliver();
    let lines = lines.lock().unwrap().clone();
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines.iter().all(|(level, _)| *level == crate::log::CRIT));
    assert!(lines[0].1.contains("inside a call") && lines[0].1.contains("src/ffi/tests.rs"));
    assert!(lines[0].1.ends_with("the call failed (KP_ERR_INTERNAL)"));
    assert!(lines[1].1.contains("on a kp thread"));
}
