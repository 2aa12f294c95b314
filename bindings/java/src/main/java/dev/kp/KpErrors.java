package dev.kp;

import org.apache.kafka.clients.producer.BufferExhaustedException;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.errors.ApiException;
import org.apache.kafka.common.errors.AuthenticationException;
import org.apache.kafka.common.errors.InvalidProducerEpochException;
import org.apache.kafka.common.errors.InvalidTopicException;
import org.apache.kafka.common.errors.NetworkException;
import org.apache.kafka.common.errors.ProducerFencedException;
import org.apache.kafka.common.errors.RecordTooLargeException;
import org.apache.kafka.common.errors.TimeoutException;
import org.apache.kafka.common.errors.TransactionAbortedException;
import org.apache.kafka.common.errors.UnsupportedVersionException;
import org.apache.kafka.common.protocol.Errors;

/** kp error codes (kp.h) to the exceptions the Java producer raises for the same cause. */
final class KpErrors {
    static final int INVALID_ARG = -100;
    static final int QUEUE_FULL = -101;
    static final int RECORD_TOO_LARGE = -102;
    static final int INVALID_TOPIC = -103;
    static final int UNKNOWN_PARTITION = -104;
    static final int TIMED_OUT = -105;
    static final int TRANSPORT = -106;
    static final int ALL_BROKERS_DOWN = -107;
    static final int PURGED_QUEUED = -108;
    static final int PURGED_IN_FLIGHT = -109;
    static final int CLOSED = -110;
    static final int FATAL = -111;
    static final int STATE = -112;
    static final int UNSUPPORTED_FEATURE = -114;
    static final int AUTHENTICATION = -118;
    // Kafka protocol codes
    static final int UNKNOWN_TOPIC_OR_PARTITION = 3;
    // ... and those the Java client turns into ProducerFencedException in a producer
    static final int INVALID_PRODUCER_EPOCH = 47;
    static final int PRODUCER_FENCED = 90;

    private KpErrors() {}

    /**
     * The exception for code {@code code} (kp's negative codes or Kafka's positive
     * protocol codes) with message {@code msg}.
     *
     * @param transactional whether the producer has a transactional.id (purged
     *     records of an aborted transaction then fail as in the Java client)
     */
    static RuntimeException of(int code, String msg, boolean transactional) {
        if (msg == null || msg.isEmpty()) {
            msg = Native.errStr(code);
        }
        if (code > 0) {
            if (code == PRODUCER_FENCED || (code == INVALID_PRODUCER_EPOCH && transactional)) {
                return new ProducerFencedException(msg);
            }
            if (code == INVALID_PRODUCER_EPOCH) {
                return new InvalidProducerEpochException(msg);
            }
            Errors e = Errors.forCode((short) code);
            ApiException ex = e == Errors.UNKNOWN_SERVER_ERROR && code != Errors.UNKNOWN_SERVER_ERROR.code()
                    ? null
                    : e.exception(msg);
            return ex != null ? ex : new KafkaException(msg + " (Kafka error " + code + ")");
        }
        switch (code) {
            case INVALID_ARG:
                return new IllegalArgumentException(msg);
            case QUEUE_FULL:
                return new BufferExhaustedException(msg);
            case RECORD_TOO_LARGE:
                return new RecordTooLargeException(msg);
            case INVALID_TOPIC:
                return new InvalidTopicException(msg);
            case TIMED_OUT:
            case ALL_BROKERS_DOWN:
                return new TimeoutException(msg);
            case TRANSPORT:
                return new NetworkException(msg);
            case PURGED_QUEUED:
            case PURGED_IN_FLIGHT:
                return transactional ? new TransactionAbortedException(msg) : new KafkaException(msg);
            case STATE:
                return new IllegalStateException(msg);
            case UNSUPPORTED_FEATURE:
                return new UnsupportedVersionException(msg);
            case AUTHENTICATION:
                return new AuthenticationException(msg);
            default:
                return new KafkaException(msg + " (" + Native.errName(code) + ")");
        }
    }
}
