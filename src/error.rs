//! Error codes: Kafka's own protocol error numbers for broker errors, negative
//! numbers (-100 and below) for errors kp detects locally, 0 for success.

use std::fmt;

/// Error code type shared by every kp call and delivery report.
pub type Code = i32;

pub const OK: Code = 0;

// ---- local errors (kp detected them; never sent by a broker) ----
pub const INVALID_ARG: Code = -100;
pub const QUEUE_FULL: Code = -101;
pub const RECORD_TOO_LARGE: Code = -102;
pub const INVALID_TOPIC: Code = -103;
pub const UNKNOWN_PARTITION: Code = -104;
pub const TIMED_OUT: Code = -105;
pub const TRANSPORT: Code = -106;
pub const ALL_BROKERS_DOWN: Code = -107;
pub const PURGED_QUEUED: Code = -108;
pub const PURGED_IN_FLIGHT: Code = -109;
pub const CLOSED: Code = -110;
pub const FATAL: Code = -111;
pub const STATE: Code = -112;
pub const INTERNAL: Code = -113;
pub const UNSUPPORTED_FEATURE: Code = -114;
pub const BAD_RESPONSE: Code = -115;
pub const PARTITIONER_FAILED: Code = -116;
pub const FORKED: Code = -117;
pub const AUTHENTICATION: Code = -118;

// ---- broker errors used by the engine by name ----
pub const UNKNOWN_TOPIC_OR_PARTITION: Code = 3;
pub const NOT_LEADER_OR_FOLLOWER: Code = 6;
pub const REQUEST_TIMED_OUT: Code = 7;
pub const MESSAGE_TOO_LARGE: Code = 10;
pub const COORDINATOR_LOAD_IN_PROGRESS: Code = 14;
pub const COORDINATOR_NOT_AVAILABLE: Code = 15;
pub const NOT_COORDINATOR: Code = 16;
pub const NOT_ENOUGH_REPLICAS: Code = 19;
pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: Code = 20;
pub const TOPIC_AUTHORIZATION_FAILED: Code = 29;
pub const UNSUPPORTED_VERSION: Code = 35;
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: Code = 45;
pub const OPERATION_NOT_ATTEMPTED: Code = 55;
pub const DUPLICATE_SEQUENCE_NUMBER: Code = 46;
pub const INVALID_PRODUCER_EPOCH: Code = 47;
pub const INVALID_TXN_STATE: Code = 48;
pub const INVALID_PRODUCER_ID_MAPPING: Code = 49;
pub const CONCURRENT_TRANSACTIONS: Code = 51;
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: Code = 53;
pub const UNKNOWN_PRODUCER_ID: Code = 59;
pub const PRODUCER_FENCED: Code = 90;
pub const TRANSACTION_ABORTABLE: Code = 120;
pub const FENCED_LEADER_EPOCH: Code = 74;
pub const REBOOTSTRAP_REQUIRED: Code = 129;

/// What a caller can do about an error, after KIP-1050 (the Java client's
/// error classes since Kafka 4.1).
/// The discriminants are the C ABI's KP_ERROR_CLASS_* values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(i32)]
pub enum ErrorClass {
    /// Success (code 0).
    None = 0,
    /// Transient: the same call or record may succeed when retried.
    Retriable = 1,
    /// Transient once the metadata is refreshed (kp refreshes it itself).
    RefreshRetriable = 2,
    /// Inside a transaction: abort it, then the producer can go on.
    Abortable = 3,
    /// The application decides: fix or drop the record, recreate the producer.
    ApplicationRecoverable = 4,
    /// A setting, permission or broker feature is wrong or missing.
    InvalidConfiguration = 5,
    /// The producer cannot be used any more: destroy it.
    Fatal = 6,
}

impl ErrorClass {
    /// Whether retrying the same operation can succeed.
    pub const fn is_retriable(self) -> bool {
        matches!(self, ErrorClass::Retriable | ErrorClass::RefreshRetriable)
    }
}

/// One row of the error table.
#[derive(Debug)]
pub struct ErrorInfo {
    pub code: Code,
    /// Symbolic name; the C header's constant is `KP_ERR_<name>`.
    pub name: &'static str,
    pub class: ErrorClass,
    /// Whether include/kp.h defines `KP_ERR_<name>` for it.
    pub c_abi: bool,
    /// What kp_err_str() returns.
    pub message: &'static str,
}

const fn e(code: Code, name: &'static str, class: ErrorClass, message: &'static str) -> ErrorInfo {
    ErrorInfo { code, name, class, c_abi: false, message }
}

/// A row whose code the C header defines as `KP_ERR_<name>`.
const fn c(code: Code, name: &'static str, class: ErrorClass, message: &'static str) -> ErrorInfo {
    ErrorInfo { code, name, class, c_abi: true, message }
}

/// The one error table of kp: the FFI layer (kp_err_name/kp_err_str, the
/// header's KP_ERR_* constants, generated from it by build.rs), the engine
/// and the protocol layer all read it. Broker entries follow Apache Kafka's
/// `Errors` enum; `retriable` follows its RetriableException hierarchy.
#[rustfmt::skip]
pub static TABLE: &[ErrorInfo] = {
    use ErrorClass::*;
    &[
        e(0, "NO_ERROR", None, "Success"),
        c(-100, "INVALID_ARG", ApplicationRecoverable, "Invalid argument (NULL pointer or bad value)"),
        c(-101, "QUEUE_FULL", Retriable, "The producer's buffer (buffer.memory) is full"),
        c(-102, "RECORD_TOO_LARGE", ApplicationRecoverable, "The record is larger than max.request.size or buffer.memory"),
        c(-103, "INVALID_TOPIC", ApplicationRecoverable, "The topic name is not a valid Kafka topic name"),
        c(-104, "UNKNOWN_PARTITION", ApplicationRecoverable, "The requested partition does not exist in the topic"),
        c(-105, "TIMED_OUT", Retriable, "The operation timed out"),
        c(-106, "TRANSPORT", Retriable, "Broker connection failed or was lost"),
        c(-107, "ALL_BROKERS_DOWN", Retriable, "No broker could be reached"),
        c(-108, "PURGED_QUEUED", ApplicationRecoverable, "The record was purged from the queue before it was sent"),
        c(-109, "PURGED_IN_FLIGHT", ApplicationRecoverable, "The record was purged while a request carrying it was in flight"),
        c(-110, "CLOSED", ApplicationRecoverable, "The producer is closed or closing"),
        c(-111, "FATAL", Fatal, "The producer is in a fatal state; see kp_producer_fatal_error"),
        c(-112, "STATE", ApplicationRecoverable, "The call is not valid in the producer's current state"),
        c(-113, "INTERNAL", Fatal, "Internal error inside kp (a bug; please report)"),
        c(-114, "UNSUPPORTED_FEATURE", InvalidConfiguration, "The broker or this build of kp does not support the feature"),
        c(-115, "BAD_RESPONSE", Retriable, "The broker sent a response kp could not decode"),
        c(-116, "PARTITIONER_FAILED", ApplicationRecoverable, "The custom partitioner returned an invalid partition"),
        c(-117, "FORKED", Fatal, "The producer was created in another process (before fork()); create a new producer in this process"),
        c(-118, "AUTHENTICATION", InvalidConfiguration, "TLS or SASL authentication with a broker failed (credentials, certificates or security.protocol)"),
        e(-1, "UNKNOWN_SERVER_ERROR", ApplicationRecoverable, "The server experienced an unexpected error when processing the request"),
        e(1, "OFFSET_OUT_OF_RANGE", ApplicationRecoverable, "The requested offset is not within the range of offsets maintained by the server"),
        e(2, "CORRUPT_MESSAGE", Retriable, "The message contents does not match the message CRC or the message is otherwise corrupt"),
        c(3, "UNKNOWN_TOPIC_OR_PARTITION", RefreshRetriable, "This server does not host this topic-partition"),
        e(4, "INVALID_FETCH_SIZE", ApplicationRecoverable, "The requested fetch size is invalid"),
        e(5, "LEADER_NOT_AVAILABLE", RefreshRetriable, "There is no leader for this topic-partition as we are in the middle of a leadership election"),
        e(6, "NOT_LEADER_OR_FOLLOWER", RefreshRetriable, "This server is not the leader or follower for that topic-partition"),
        e(7, "REQUEST_TIMED_OUT", Retriable, "The request timed out"),
        e(8, "BROKER_NOT_AVAILABLE", ApplicationRecoverable, "The broker is not available"),
        e(9, "REPLICA_NOT_AVAILABLE", Retriable, "The replica is not available for the requested topic-partition"),
        c(10, "MESSAGE_TOO_LARGE", ApplicationRecoverable, "The request included a message larger than the max message size the server will accept"),
        e(11, "STALE_CONTROLLER_EPOCH", ApplicationRecoverable, "The controller moved to another broker"),
        e(12, "OFFSET_METADATA_TOO_LARGE", ApplicationRecoverable, "The metadata field of the offset request was too large"),
        e(13, "NETWORK_EXCEPTION", Retriable, "The server disconnected before a response was received"),
        e(14, "COORDINATOR_LOAD_IN_PROGRESS", Retriable, "The coordinator is loading and hence can't process requests"),
        e(15, "COORDINATOR_NOT_AVAILABLE", Retriable, "The coordinator is not available"),
        e(16, "NOT_COORDINATOR", Retriable, "This is not the correct coordinator"),
        e(17, "INVALID_TOPIC_EXCEPTION", ApplicationRecoverable, "The request attempted to perform an operation on an invalid topic"),
        e(18, "RECORD_LIST_TOO_LARGE", ApplicationRecoverable, "The request included message batch larger than the configured segment size on the server"),
        c(19, "NOT_ENOUGH_REPLICAS", Retriable, "Messages are rejected since there are fewer in-sync replicas than required"),
        e(20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", Retriable, "Messages are written to the log, but to fewer in-sync replicas than required"),
        e(21, "INVALID_REQUIRED_ACKS", InvalidConfiguration, "Produce request specified an invalid value for required acks"),
        e(22, "ILLEGAL_GENERATION", ApplicationRecoverable, "Specified group generation id is not valid"),
        e(24, "INVALID_GROUP_ID", InvalidConfiguration, "The configured groupId is invalid"),
        e(25, "UNKNOWN_MEMBER_ID", ApplicationRecoverable, "The coordinator is not aware of this member"),
        e(27, "REBALANCE_IN_PROGRESS", ApplicationRecoverable, "The group is rebalancing"),
        e(29, "TOPIC_AUTHORIZATION_FAILED", InvalidConfiguration, "Topic authorization failed"),
        e(30, "GROUP_AUTHORIZATION_FAILED", InvalidConfiguration, "Group authorization failed"),
        e(31, "CLUSTER_AUTHORIZATION_FAILED", InvalidConfiguration, "Cluster authorization failed"),
        e(32, "INVALID_TIMESTAMP", ApplicationRecoverable, "The timestamp of the message is out of acceptable range"),
        e(35, "UNSUPPORTED_VERSION", InvalidConfiguration, "The version of API is not supported"),
        e(36, "TOPIC_ALREADY_EXISTS", ApplicationRecoverable, "Topic with this name already exists"),
        e(37, "INVALID_PARTITIONS", ApplicationRecoverable, "Number of partitions is below 1"),
        e(40, "INVALID_CONFIG", InvalidConfiguration, "Configuration is invalid"),
        e(41, "NOT_CONTROLLER", Retriable, "This is not the correct controller for this cluster"),
        e(42, "INVALID_REQUEST", ApplicationRecoverable, "This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker"),
        e(43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", InvalidConfiguration, "The message format version on the broker does not support the request"),
        e(44, "POLICY_VIOLATION", ApplicationRecoverable, "Request parameters do not satisfy the configured policy"),
        e(45, "OUT_OF_ORDER_SEQUENCE_NUMBER", Abortable, "The broker received an out of order sequence number"),
        e(46, "DUPLICATE_SEQUENCE_NUMBER", ApplicationRecoverable, "The broker received a duplicate sequence number"),
        e(47, "INVALID_PRODUCER_EPOCH", ApplicationRecoverable, "Producer attempted to produce with an old epoch"),
        e(48, "INVALID_TXN_STATE", Abortable, "The producer attempted a transactional operation in an invalid state"),
        e(49, "INVALID_PRODUCER_ID_MAPPING", Abortable, "The producer attempted to use a producer id which is not currently assigned to its transactional id"),
        e(50, "INVALID_TRANSACTION_TIMEOUT", InvalidConfiguration, "The transaction timeout is larger than the maximum value allowed by the broker"),
        e(51, "CONCURRENT_TRANSACTIONS", Retriable, "The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing"),
        e(52, "TRANSACTION_COORDINATOR_FENCED", ApplicationRecoverable, "Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator"),
        e(53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", InvalidConfiguration, "Transactional Id authorization failed"),
        e(54, "SECURITY_DISABLED", InvalidConfiguration, "Security features are disabled"),
        e(55, "OPERATION_NOT_ATTEMPTED", ApplicationRecoverable, "The broker did not attempt to execute this operation"),
        e(56, "KAFKA_STORAGE_ERROR", RefreshRetriable, "Disk error when trying to access log file on the disk"),
        e(58, "SASL_AUTHENTICATION_FAILED", InvalidConfiguration, "SASL Authentication failed"),
        e(59, "UNKNOWN_PRODUCER_ID", Abortable, "The broker could not locate the producer metadata associated with the producerId in question"),
        e(60, "REASSIGNMENT_IN_PROGRESS", ApplicationRecoverable, "A partition reassignment is in progress"),
        e(72, "LISTENER_NOT_FOUND", RefreshRetriable, "There is no listener on the leader broker that matches the listener on which metadata request was processed"),
        e(74, "FENCED_LEADER_EPOCH", RefreshRetriable, "The leader epoch in the request is older than the epoch on the broker"),
        e(75, "UNKNOWN_LEADER_EPOCH", RefreshRetriable, "The leader epoch in the request is newer than the epoch on the broker"),
        e(76, "UNSUPPORTED_COMPRESSION_TYPE", InvalidConfiguration, "The requesting client does not support the compression type of given partition"),
        e(83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", Retriable, "Eligible topic partition leaders are not available"),
        e(87, "INVALID_RECORD", ApplicationRecoverable, "This record has failed the validation on broker and hence will be rejected"),
        e(89, "THROTTLING_QUOTA_EXCEEDED", Retriable, "The throttling quota has been exceeded"),
        e(90, "PRODUCER_FENCED", ApplicationRecoverable, "There is a newer producer with the same transactionalId which fences the current one"),
        e(100, "UNKNOWN_TOPIC_ID", RefreshRetriable, "This server does not host this topic ID"),
        e(103, "INCONSISTENT_TOPIC_ID", RefreshRetriable, "The log's topic ID did not match the topic ID in the request"),
        e(105, "TRANSACTIONAL_ID_NOT_FOUND", ApplicationRecoverable, "The transactionalId could not be found"),
        e(108, "NEW_LEADER_ELECTED", ApplicationRecoverable, "A new leader was elected"),
        e(120, "TRANSACTION_ABORTABLE", Abortable, "The server encountered an error with the transaction; the client can abort the transaction to continue using this transactional ID"),
        e(129, "REBOOTSTRAP_REQUIRED", Retriable, "Client metadata is stale; the client should rebootstrap to obtain new metadata"),
    ]
};

/// The table row of `code`.
pub fn info(code: Code) -> Option<&'static ErrorInfo> {
    TABLE.iter().find(|e| e.code == code)
}

/// Symbolic name, e.g. "NOT_LEADER_OR_FOLLOWER"; "UNKNOWN_ERROR_CODE" when unknown.
pub fn name(code: Code) -> &'static str {
    info(code).map(|e| e.name).unwrap_or("UNKNOWN_ERROR_CODE")
}

/// Human description of the code.
pub fn description(code: Code) -> &'static str {
    info(code).map(|e| e.message).unwrap_or("Unknown error code")
}

/// Whether retrying the same operation can succeed.
pub fn is_retriable(code: Code) -> bool {
    info(code).is_some_and(|e| e.class.is_retriable())
}

/// The error class of a code (ApplicationRecoverable when unknown).
pub fn class(code: Code) -> ErrorClass {
    info(code).map(|e| e.class).unwrap_or(ErrorClass::ApplicationRecoverable)
}

/// The class of a failed record's report: inside a transaction a retriable
/// error that ran out of retries (delivery.timeout.ms) only leaves the
/// transaction to abort (the Java client does the same since Kafka 4.1).
pub fn report_class(code: Code, transactional: bool) -> ErrorClass {
    match class(code) {
        c if transactional && c.is_retriable() => ErrorClass::Abortable,
        c => c,
    }
}

/// Whether the broker error means our metadata (leader, partition set) is stale.
pub fn needs_metadata_refresh(code: Code) -> bool {
    class(code) == ErrorClass::RefreshRetriable
}

/// An error with a code and a message that says what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    pub code: Code,
    pub message: String,
}

impl Error {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Error { code, message: message.into() }
    }
    pub fn retriable(&self) -> bool {
        is_retriable(self.code)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", name(self.code), self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_classes() {
        assert_eq!(name(NOT_LEADER_OR_FOLLOWER), "NOT_LEADER_OR_FOLLOWER");
        assert!(is_retriable(NOT_ENOUGH_REPLICAS));
        assert!(!is_retriable(MESSAGE_TOO_LARGE));
        assert!(!is_retriable(TOPIC_AUTHORIZATION_FAILED));
        assert_eq!(name(12345), "UNKNOWN_ERROR_CODE");
        for (i, a) in TABLE.iter().enumerate() {
            for b in &TABLE[i + 1..] {
                assert_ne!(a.code, b.code, "duplicate code {}", a.code);
                assert_ne!(a.name, b.name, "duplicate name {}", a.name);
            }
        }
        // The codes the engine treats as stale metadata.
        for code in [3, 5, 6, 56, 72, 74, 75, 100, 103] {
            assert!(needs_metadata_refresh(code), "{code}");
        }
        assert_eq!(TABLE.iter().filter(|e| needs_metadata_refresh(e.code)).count(), 9);
    }
}
