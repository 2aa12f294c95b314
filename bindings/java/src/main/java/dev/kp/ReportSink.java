package dev.kp;

/**
 * Receives delivery reports that libkp serves through its callback (inside
 * kp_flush, kp_producer_close, kp_commit_transaction, kp_abort_transaction).
 * The JNI glue calls it only on the Java thread that made that call, which
 * is always the producer's I/O thread.
 */
interface ReportSink {
    void onReport(long ctx, int partition, long offset, long timestamp, int error);
}
