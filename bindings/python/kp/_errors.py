"""KafkaError and KafkaException, shaped like confluent_kafka's.

Broker errors keep Kafka's numbers (as in confluent_kafka). Errors kp detects
itself (its codes -100 and below) are reported under librdkafka's code and
name for the same condition, so code written against confluent_kafka
(`err.code() == KafkaError._MSG_TIMED_OUT`) keeps working; `kp_code()` gives
kp's own code.
"""

from __future__ import annotations

import builtins
from typing import Optional

from ._ffi import ffi, lib

# kp code -> (librdkafka code, librdkafka name)
_LOCAL = {
    -100: (-186, "_INVALID_ARG"),
    -101: (-184, "_QUEUE_FULL"),
    -102: (10, "MSG_SIZE_TOO_LARGE"),
    -103: (17, "TOPIC_EXCEPTION"),
    -104: (-190, "_UNKNOWN_PARTITION"),
    -105: (-185, "_TIMED_OUT"),
    -106: (-195, "_TRANSPORT"),
    -107: (-187, "_ALL_BROKERS_DOWN"),
    -108: (-152, "_PURGE_QUEUE"),
    -109: (-151, "_PURGE_INFLIGHT"),
    -110: (-197, "_DESTROY"),
    -111: (-150, "_FATAL"),
    -112: (-172, "_STATE"),
    -113: (-196, "_FAIL"),
    -114: (-165, "_UNSUPPORTED_FEATURE"),
    -115: (-199, "_BAD_MSG"),
    -116: (-196, "_FAIL"),
}
# A record whose delivery timed out: librdkafka says _MSG_TIMED_OUT there.
_MSG_TIMED_OUT = (-192, "_MSG_TIMED_OUT")

KP_ERR_TIMED_OUT = -105
KP_ERR_QUEUE_FULL = -101


class KafkaError:
    """An error: a code, a name, a message and what the caller may do about it."""

    NO_ERROR = 0
    MSG_SIZE_TOO_LARGE = 10
    TOPIC_EXCEPTION = 17
    UNKNOWN_TOPIC_OR_PART = 3
    NOT_ENOUGH_REPLICAS = 19
    _INVALID_ARG = -186
    _QUEUE_FULL = -184
    _UNKNOWN_PARTITION = -190
    _TIMED_OUT = -185
    _MSG_TIMED_OUT = -192
    _TRANSPORT = -195
    _ALL_BROKERS_DOWN = -187
    _PURGE_QUEUE = -152
    _PURGE_INFLIGHT = -151
    _DESTROY = -197
    _FATAL = -150
    _STATE = -172
    _FAIL = -196
    _UNSUPPORTED_FEATURE = -165
    _BAD_MSG = -199

    __slots__ = ("_code", "_name", "_str", "_retriable", "_fatal", "_abort", "_kp_code")

    def __init__(
        self,
        kp_code: int,
        message: Optional[str] = None,
        *,
        retriable: Optional[bool] = None,
        fatal: bool = False,
        txn_requires_abort: bool = False,
        in_report: bool = False,
    ) -> None:
        self._kp_code = kp_code
        if in_report and kp_code == KP_ERR_TIMED_OUT:
            self._code, self._name = _MSG_TIMED_OUT
        elif kp_code in _LOCAL:
            self._code, self._name = _LOCAL[kp_code]
        else:
            self._code = kp_code
            self._name = ffi.string(lib.kp_err_name(kp_code)).decode()
        self._str = message if message else ffi.string(lib.kp_err_str(kp_code)).decode()
        self._retriable = bool(lib.kp_err_is_retriable(kp_code)) if retriable is None else retriable
        self._fatal = fatal
        self._abort = txn_requires_abort

    def code(self) -> int:
        return self._code

    def name(self) -> str:
        return self._name

    def str(self) -> str:
        return self._str

    def kp_code(self) -> int:
        """kp's own error code (see kp.h)."""
        return self._kp_code

    def retriable(self) -> bool:
        return self._retriable

    def fatal(self) -> bool:
        return self._fatal

    def txn_requires_abort(self) -> bool:
        return self._abort

    def __eq__(self, other: object) -> bool:
        if isinstance(other, KafkaError):
            return self._code == other._code
        if isinstance(other, int):
            return self._code == other
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._code)

    def __str__(self) -> builtins.str:
        return self._str

    def __repr__(self) -> builtins.str:
        return f'KafkaError{{code={self._name},val={self._code},str="{self._str}"}}'


class KafkaException(Exception):
    """Raised for errors of calls; `args[0]` is the KafkaError."""

    def __init__(self, error: KafkaError) -> None:
        super().__init__(error)

    @property
    def error(self) -> KafkaError:
        err: KafkaError = self.args[0]
        return err


def from_kp_error(e: object) -> KafkaError:
    """Converts (and frees) a kp_error_t*."""
    try:
        return KafkaError(
            int(lib.kp_error_code(e)),
            ffi.string(lib.kp_error_message(e)).decode(errors="replace"),
            retriable=bool(lib.kp_error_is_retriable(e)),
            fatal=bool(lib.kp_error_is_fatal(e)),
            txn_requires_abort=bool(lib.kp_error_txn_requires_abort(e)),
        )
    finally:
        lib.kp_error_destroy(e)
