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
pub const AUTHENTICATION: Code = -117;

// ---- broker errors used by the engine by name ----
pub const UNKNOWN_SERVER_ERROR: Code = -1;
pub const CORRUPT_MESSAGE: Code = 2;
pub const UNKNOWN_TOPIC_OR_PARTITION: Code = 3;
pub const LEADER_NOT_AVAILABLE: Code = 5;
pub const NOT_LEADER_OR_FOLLOWER: Code = 6;
pub const REQUEST_TIMED_OUT: Code = 7;
pub const MESSAGE_TOO_LARGE: Code = 10;
pub const NETWORK_EXCEPTION: Code = 13;
pub const COORDINATOR_LOAD_IN_PROGRESS: Code = 14;
pub const COORDINATOR_NOT_AVAILABLE: Code = 15;
pub const NOT_COORDINATOR: Code = 16;
pub const INVALID_TOPIC_EXCEPTION: Code = 17;
pub const NOT_ENOUGH_REPLICAS: Code = 19;
pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: Code = 20;
pub const TOPIC_AUTHORIZATION_FAILED: Code = 29;
pub const CLUSTER_AUTHORIZATION_FAILED: Code = 31;
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
pub const KAFKA_STORAGE_ERROR: Code = 56;
pub const FENCED_LEADER_EPOCH: Code = 74;
pub const UNKNOWN_LEADER_EPOCH: Code = 75;
pub const THROTTLING_QUOTA_EXCEEDED: Code = 89;
pub const PRODUCER_FENCED: Code = 90;
pub const TRANSACTION_ABORTABLE: Code = 120;

/// (code, name, retriable, description). Broker entries follow Apache Kafka's
/// `Errors` enum; `retriable` follows its RetriableException hierarchy.
static TABLE: &[(Code, &str, bool, &str)] = &[
    (OK, "NO_ERROR", false, "Success"),
    (INVALID_ARG, "INVALID_ARG", false, "Invalid argument (NULL pointer or bad value)"),
    (QUEUE_FULL, "QUEUE_FULL", true, "The producer's buffer (buffer.memory) is full"),
    (RECORD_TOO_LARGE, "RECORD_TOO_LARGE", false, "The record is larger than max.request.size or buffer.memory"),
    (INVALID_TOPIC, "INVALID_TOPIC", false, "The topic name is not a valid Kafka topic name"),
    (UNKNOWN_PARTITION, "UNKNOWN_PARTITION", false, "The requested partition does not exist in the topic"),
    (TIMED_OUT, "TIMED_OUT", true, "The operation timed out"),
    (TRANSPORT, "TRANSPORT", true, "Broker connection failed or was lost"),
    (ALL_BROKERS_DOWN, "ALL_BROKERS_DOWN", true, "No broker could be reached"),
    (PURGED_QUEUED, "PURGED_QUEUED", false, "The record was purged from the queue before it was sent"),
    (PURGED_IN_FLIGHT, "PURGED_IN_FLIGHT", false, "The record was purged while a request carrying it was in flight"),
    (CLOSED, "CLOSED", false, "The producer is closed or closing"),
    (FATAL, "FATAL", false, "The producer is in a fatal state; see kp_producer_fatal_error"),
    (STATE, "STATE", false, "The call is not valid in the producer's current state"),
    (INTERNAL, "INTERNAL", false, "Internal error inside kp (a bug; please report)"),
    (UNSUPPORTED_FEATURE, "UNSUPPORTED_FEATURE", false, "The broker or this build of kp does not support the feature"),
    (BAD_RESPONSE, "BAD_RESPONSE", true, "The broker sent a response kp could not decode"),
    (PARTITIONER_FAILED, "PARTITIONER_FAILED", false, "The custom partitioner returned an invalid partition"),
    (AUTHENTICATION, "AUTHENTICATION", false, "TLS or SASL authentication with a broker failed (credentials, certificates or security.protocol)"),
    (-1, "UNKNOWN_SERVER_ERROR", false, "The server experienced an unexpected error when processing the request"),
    (1, "OFFSET_OUT_OF_RANGE", false, "The requested offset is not within the range of offsets maintained by the server"),
    (2, "CORRUPT_MESSAGE", true, "The message contents does not match the message CRC or the message is otherwise corrupt"),
    (3, "UNKNOWN_TOPIC_OR_PARTITION", true, "This server does not host this topic-partition"),
    (4, "INVALID_FETCH_SIZE", false, "The requested fetch size is invalid"),
    (5, "LEADER_NOT_AVAILABLE", true, "There is no leader for this topic-partition as we are in the middle of a leadership election"),
    (6, "NOT_LEADER_OR_FOLLOWER", true, "This server is not the leader or follower for that topic-partition"),
    (7, "REQUEST_TIMED_OUT", true, "The request timed out"),
    (8, "BROKER_NOT_AVAILABLE", false, "The broker is not available"),
    (9, "REPLICA_NOT_AVAILABLE", true, "The replica is not available for the requested topic-partition"),
    (10, "MESSAGE_TOO_LARGE", false, "The request included a message larger than the max message size the server will accept"),
    (11, "STALE_CONTROLLER_EPOCH", false, "The controller moved to another broker"),
    (12, "OFFSET_METADATA_TOO_LARGE", false, "The metadata field of the offset request was too large"),
    (13, "NETWORK_EXCEPTION", true, "The server disconnected before a response was received"),
    (14, "COORDINATOR_LOAD_IN_PROGRESS", true, "The coordinator is loading and hence can't process requests"),
    (15, "COORDINATOR_NOT_AVAILABLE", true, "The coordinator is not available"),
    (16, "NOT_COORDINATOR", true, "This is not the correct coordinator"),
    (17, "INVALID_TOPIC_EXCEPTION", false, "The request attempted to perform an operation on an invalid topic"),
    (18, "RECORD_LIST_TOO_LARGE", false, "The request included message batch larger than the configured segment size on the server"),
    (19, "NOT_ENOUGH_REPLICAS", true, "Messages are rejected since there are fewer in-sync replicas than required"),
    (20, "NOT_ENOUGH_REPLICAS_AFTER_APPEND", true, "Messages are written to the log, but to fewer in-sync replicas than required"),
    (21, "INVALID_REQUIRED_ACKS", false, "Produce request specified an invalid value for required acks"),
    (22, "ILLEGAL_GENERATION", false, "Specified group generation id is not valid"),
    (24, "INVALID_GROUP_ID", false, "The configured groupId is invalid"),
    (25, "UNKNOWN_MEMBER_ID", false, "The coordinator is not aware of this member"),
    (27, "REBALANCE_IN_PROGRESS", false, "The group is rebalancing"),
    (29, "TOPIC_AUTHORIZATION_FAILED", false, "Topic authorization failed"),
    (30, "GROUP_AUTHORIZATION_FAILED", false, "Group authorization failed"),
    (31, "CLUSTER_AUTHORIZATION_FAILED", false, "Cluster authorization failed"),
    (32, "INVALID_TIMESTAMP", false, "The timestamp of the message is out of acceptable range"),
    (35, "UNSUPPORTED_VERSION", false, "The version of API is not supported"),
    (36, "TOPIC_ALREADY_EXISTS", false, "Topic with this name already exists"),
    (37, "INVALID_PARTITIONS", false, "Number of partitions is below 1"),
    (40, "INVALID_CONFIG", false, "Configuration is invalid"),
    (41, "NOT_CONTROLLER", true, "This is not the correct controller for this cluster"),
    (42, "INVALID_REQUEST", false, "This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker"),
    (43, "UNSUPPORTED_FOR_MESSAGE_FORMAT", false, "The message format version on the broker does not support the request"),
    (44, "POLICY_VIOLATION", false, "Request parameters do not satisfy the configured policy"),
    (45, "OUT_OF_ORDER_SEQUENCE_NUMBER", false, "The broker received an out of order sequence number"),
    (46, "DUPLICATE_SEQUENCE_NUMBER", false, "The broker received a duplicate sequence number"),
    (47, "INVALID_PRODUCER_EPOCH", false, "Producer attempted to produce with an old epoch"),
    (48, "INVALID_TXN_STATE", false, "The producer attempted a transactional operation in an invalid state"),
    (49, "INVALID_PRODUCER_ID_MAPPING", false, "The producer attempted to use a producer id which is not currently assigned to its transactional id"),
    (50, "INVALID_TRANSACTION_TIMEOUT", false, "The transaction timeout is larger than the maximum value allowed by the broker"),
    (51, "CONCURRENT_TRANSACTIONS", true, "The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing"),
    (52, "TRANSACTION_COORDINATOR_FENCED", false, "Indicates that the transaction coordinator sending a WriteTxnMarker is no longer the current coordinator"),
    (53, "TRANSACTIONAL_ID_AUTHORIZATION_FAILED", false, "Transactional Id authorization failed"),
    (54, "SECURITY_DISABLED", false, "Security features are disabled"),
    (55, "OPERATION_NOT_ATTEMPTED", false, "The broker did not attempt to execute this operation"),
    (56, "KAFKA_STORAGE_ERROR", true, "Disk error when trying to access log file on the disk"),
    (58, "SASL_AUTHENTICATION_FAILED", false, "SASL Authentication failed"),
    (59, "UNKNOWN_PRODUCER_ID", false, "The broker could not locate the producer metadata associated with the producerId in question"),
    (60, "REASSIGNMENT_IN_PROGRESS", false, "A partition reassignment is in progress"),
    (72, "LISTENER_NOT_FOUND", true, "There is no listener on the leader broker that matches the listener on which metadata request was processed"),
    (74, "FENCED_LEADER_EPOCH", true, "The leader epoch in the request is older than the epoch on the broker"),
    (75, "UNKNOWN_LEADER_EPOCH", true, "The leader epoch in the request is newer than the epoch on the broker"),
    (76, "UNSUPPORTED_COMPRESSION_TYPE", false, "The requesting client does not support the compression type of given partition"),
    (83, "ELIGIBLE_LEADERS_NOT_AVAILABLE", true, "Eligible topic partition leaders are not available"),
    (87, "INVALID_RECORD", false, "This record has failed the validation on broker and hence will be rejected"),
    (89, "THROTTLING_QUOTA_EXCEEDED", true, "The throttling quota has been exceeded"),
    (90, "PRODUCER_FENCED", false, "There is a newer producer with the same transactionalId which fences the current one"),
    (100, "UNKNOWN_TOPIC_ID", true, "This server does not host this topic ID"),
    (103, "INCONSISTENT_TOPIC_ID", true, "The log's topic ID did not match the topic ID in the request"),
    (105, "TRANSACTIONAL_ID_NOT_FOUND", false, "The transactionalId could not be found"),
    (108, "NEW_LEADER_ELECTED", false, "A new leader was elected"),
    (120, "TRANSACTION_ABORTABLE", false, "The server encountered an error with the transaction; the client can abort the transaction to continue using this transactional ID"),
];

fn lookup(code: Code) -> Option<&'static (Code, &'static str, bool, &'static str)> {
    TABLE.iter().find(|e| e.0 == code)
}

/// Symbolic name, e.g. "NOT_LEADER_OR_FOLLOWER"; "UNKNOWN_ERROR_CODE" when unknown.
pub fn name(code: Code) -> &'static str {
    lookup(code).map(|e| e.1).unwrap_or("UNKNOWN_ERROR_CODE")
}

/// Human description of the code.
pub fn description(code: Code) -> &'static str {
    lookup(code).map(|e| e.3).unwrap_or("Unknown error code")
}

/// Whether retrying the same operation can succeed.
pub fn is_retriable(code: Code) -> bool {
    lookup(code).map(|e| e.2).unwrap_or(false)
}

/// Whether the broker error means our metadata (leader, partition set) is stale.
pub fn needs_metadata_refresh(code: Code) -> bool {
    matches!(
        code,
        UNKNOWN_TOPIC_OR_PARTITION
            | LEADER_NOT_AVAILABLE
            | NOT_LEADER_OR_FOLLOWER
            | FENCED_LEADER_EPOCH
            | UNKNOWN_LEADER_EPOCH
            | KAFKA_STORAGE_ERROR
            | 72
            | 100
            | 103
    )
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
                assert_ne!(a.0, b.0, "duplicate code {}", a.0);
                assert_ne!(a.1, b.1, "duplicate name {}", a.1);
            }
        }
    }
}
