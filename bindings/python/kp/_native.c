/*
 * kp._native: the per-record path of kp.Producer in C (produce(), poll(), the
 * delivery callback and the Message it hands over). Everything else of the binding
 * stays in Python on cffi (kp/_ffi.py); both use the one libkp that kp/_ffi.py
 * loaded: bind() looks its functions up in that same file with dlopen/dlsym
 * (so this module is built against kp.h but does not link libkp).
 *
 * Why C: through cffi each record cost several Python-level steps (a dict entry to
 * find its callback, a cffi callback that takes the GIL back, a Python Message,
 * struct fields set one by one). Here a record is one kp_send() call whose ctx is
 * its Message (the reference kp holds until the report), and the report is one C
 * function that fills that Message and calls the Python callback.
 *
 * Delivery reports run only on the thread calling kp_poll()/kp_flush()/
 * kp_producer_close()/kp_producer_destroy() (the producer uses
 * delivery.report.mode=poll), never on a kp thread. on_report() takes the GIL
 * with PyGILState_Ensure(), so it works both under poll(0) (GIL held) and inside
 * calls that released it (cffi releases it around every libkp call).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <dlfcn.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "kp.h"

static struct {
    kp_err_t (*send)(kp_producer_t *, const kp_record_t *, kp_delivery_cb_t, void *);
    int (*poll)(kp_producer_t *, int32_t);
    kp_err_t (*flush)(kp_producer_t *, int32_t);
    size_t (*outstanding)(const kp_producer_t *);
    int32_t (*report_partition)(const kp_report_t *);
    int64_t (*report_offset)(const kp_report_t *);
    int64_t (*report_timestamp)(const kp_report_t *);
    kp_err_t (*report_error)(const kp_report_t *);
    const char *(*report_error_message)(const kp_report_t *);
    bool (*report_is_retriable)(const kp_report_t *);
} kp;

/* kp._errors.KafkaError, kp._producer._headers_list: set by bind(). */
static PyObject *kafka_error_type;
static PyObject *headers_fn;
static PyObject *str_in_report, *str_retriable, *str_handle, *str_exc_key;

#define SLICE_MS 100
/* flush() waits in shorter slices: the reports of one slice are held in memory. */
#define FLUSH_SLICE_MS 20

static int64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---- An exception raised by a delivery callback ----
 * Kept per thread (in the thread state's dict) and raised by the call that ran
 * the callback (poll, flush, close, the transactional calls): the first one
 * wins, later ones are dropped, as before. */

/* How many threads have a kept exception (changed under the GIL): lets poll()
 * skip the look-up in the thread's dict when there is none, the usual case. */
static Py_ssize_t kept_count;

static void keep_exception(void) {
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb && value)
        PyException_SetTraceback(value, tb);
    PyObject *d = PyThreadState_GetDict();
    if (d && value && !PyDict_GetItemWithError(d, str_exc_key) && !PyErr_Occurred() &&
        PyDict_SetItem(d, str_exc_key, value) == 0)
        kept_count++;
    PyErr_Clear();
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
}

/* The kept exception (a new reference), or NULL when there is none. */
static PyObject *take_kept(void) {
    if (kept_count == 0)
        return NULL;
    PyObject *d = PyThreadState_GetDict();
    if (!d)
        return NULL;
    PyObject *e = PyDict_GetItemWithError(d, str_exc_key);
    if (!e)
        return NULL;
    Py_INCREF(e);
    if (PyDict_DelItem(d, str_exc_key) == 0)
        kept_count--;
    return e;
}

/* Sets the kept exception as the current one: returns -1 if there was one. */
static int raise_kept(void) {
    PyObject *e = take_kept();
    if (!e)
        return PyErr_Occurred() ? -1 : 0;
    PyErr_SetObject((PyObject *)Py_TYPE(e), e);
    Py_DECREF(e);
    return -1;
}

static PyObject *take_exception(PyObject *self, PyObject *unused) {
    PyObject *e = take_kept();
    if (!e && !PyErr_Occurred())
        Py_RETURN_NONE;
    return e;
}

/* ---- Message ---- */

typedef struct {
    PyObject_HEAD
    PyObject *topic;   /* str */
    PyObject *key;     /* bytes or None */
    PyObject *value;   /* bytes or None */
    PyObject *headers; /* list of (str, bytes | None), or None */
    PyObject *error;   /* KafkaError or None */
    PyObject *cb;      /* the delivery callback until the report ran, else NULL */
    int64_t offset;
    int64_t timestamp;
    int32_t partition;
} Message;

static PyTypeObject MessageType;

/* Not tracked by the cyclic GC (one Message per record would make it run every
 * few hundred records): while the record is in flight nothing but kp refers to
 * its Message, and afterwards it holds only what produce() was given. */
static void msg_dealloc(Message *m) {
    Py_XDECREF(m->topic);
    Py_XDECREF(m->key);
    Py_XDECREF(m->value);
    Py_XDECREF(m->headers);
    Py_XDECREF(m->error);
    Py_XDECREF(m->cb);
    PyObject_Free(m);
}

#define GETTER(name, field)                                                                   \
    static PyObject *msg_##name(Message *m, PyObject *unused) {                               \
        PyObject *v = m->field ? m->field : Py_None;                                          \
        Py_INCREF(v);                                                                         \
        return v;                                                                             \
    }
GETTER(topic, topic)
GETTER(key, key)
GETTER(value, value)
GETTER(headers, headers)
GETTER(error, error)

static PyObject *msg_partition(Message *m, PyObject *unused) { return PyLong_FromLong(m->partition); }

static PyObject *msg_offset(Message *m, PyObject *unused) { return PyLong_FromLongLong(m->offset); }

/* (TIMESTAMP_CREATE_TIME, ms), or (TIMESTAMP_NOT_AVAILABLE, 0) when kp has none. */
static PyObject *msg_timestamp(Message *m, PyObject *unused) {
    if (m->timestamp < 0)
        return Py_BuildValue("(ii)", 0, 0);
    return Py_BuildValue("(iL)", 1, (long long)m->timestamp);
}

static Py_ssize_t msg_len(Message *m) {
    return m->value && m->value != Py_None ? PyBytes_GET_SIZE(m->value) : 0;
}

static PyObject *msg_repr(Message *m) {
    return PyUnicode_FromFormat("Message(topic=%R, partition=%d, offset=%lld)", m->topic ? m->topic : Py_None,
                                (int)m->partition, (long long)m->offset);
}

static PyMethodDef msg_methods[] = {
    {"topic", (PyCFunction)msg_topic, METH_NOARGS, "The record's topic."},
    {"partition", (PyCFunction)msg_partition, METH_NOARGS, "The partition it went to (-1 if none)."},
    {"offset", (PyCFunction)msg_offset, METH_NOARGS, "Its offset (-1 when unknown)."},
    {"key", (PyCFunction)msg_key, METH_NOARGS, "The key (bytes) or None."},
    {"value", (PyCFunction)msg_value, METH_NOARGS, "The value (bytes) or None."},
    {"headers", (PyCFunction)msg_headers, METH_NOARGS, "List of (name, value) or None."},
    {"timestamp", (PyCFunction)msg_timestamp, METH_NOARGS, "(timestamp type, milliseconds)."},
    {"error", (PyCFunction)msg_error, METH_NOARGS, "The KafkaError, or None when delivered."},
    {NULL},
};

static PySequenceMethods msg_as_sequence = {.sq_length = (lenfunc)msg_len};

static PyTypeObject MessageType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kp.Message",
    .tp_doc = "A delivered (or failed) record, as passed to delivery callbacks.",
    .tp_basicsize = sizeof(Message),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_dealloc = (destructor)msg_dealloc,
    .tp_repr = (reprfunc)msg_repr,
    .tp_as_sequence = &msg_as_sequence,
    .tp_methods = msg_methods,
};

/* ---- Delivery reports ----
 * A report kp hands to on_report() while this binding waits in kp_poll() or
 * kp_flush() (pb_poll, pb_flush) is only copied into the waiting thread's
 * collector: those calls run with the GIL released, and taking the GIL back
 * inside kp could deadlock against a thread that holds it and waits for a kp
 * lock (kp delivers log lines one thread at a time). The Python callbacks run
 * after kp returned, in report order. Reports served by calls made through cffi
 * (close, the transactional calls, destroy) take the GIL in on_report() itself,
 * as cffi's own callbacks do. */

typedef struct {
    Message *m;
    int64_t offset;
    int64_t timestamp;
    int32_t partition;
    kp_err_t code;
    bool retriable;
    char *text; /* malloc'ed copy of the error message, or NULL */
} report_t;

typedef struct {
    report_t *v;
    size_t len, cap;
} collector_t;

/* The collector of the kp_poll/kp_flush this thread is in, if any. */
static _Thread_local collector_t *collecting;
/* A collector array kept for this thread's next call (NULL while in use). */
static _Thread_local report_t *spare;
static _Thread_local size_t spare_cap;
#define KEEP_CAP 4096

/* Fills the record's Message and runs its callback (GIL held); drops the
 * reference kp held. An exception from the callback is kept for the caller. */
static void deliver(report_t *e) {
    Message *m = e->m;
    m->partition = e->partition;
    m->offset = e->offset;
    m->timestamp = e->timestamp;
    PyObject *err = Py_None;
    Py_INCREF(err);
    if (e->code != 0) {
        Py_DECREF(err);
        PyObject *text = e->text ? PyUnicode_DecodeUTF8(e->text, (Py_ssize_t)strlen(e->text), "replace")
                                 : (Py_INCREF(Py_None), Py_None);
        PyObject *args = text ? Py_BuildValue("(iN)", (int)e->code, text) : NULL;
        PyObject *kw = args ? Py_BuildValue("{OOOO}", str_retriable, e->retriable ? Py_True : Py_False,
                                            str_in_report, Py_True)
                            : NULL;
        err = kw ? PyObject_Call(kafka_error_type, args, kw) : NULL;
        Py_XDECREF(args);
        Py_XDECREF(kw);
    }
    PyObject *cb = m->cb;
    m->cb = NULL;
    if (err) {
        Py_XSETREF(m->error, err == Py_None ? NULL : (Py_INCREF(err), err));
        PyObject *argv[2] = {err, (PyObject *)m};
        PyObject *res = PyObject_Vectorcall(cb, argv, 2, NULL);
        if (res)
            Py_DECREF(res);
        else
            keep_exception();
        Py_DECREF(err);
    } else {
        keep_exception();
    }
    Py_XDECREF(cb);
    Py_DECREF(m);
    free(e->text);
    e->text = NULL;
}

/* The delivery callback given to kp_send() for every record with a Python
 * callback: ctx is the record's Message, whose reference kp held until now. */
static void on_report(const kp_report_t *r, void *ctx) {
    report_t e = {(Message *)ctx, kp.report_offset(r), kp.report_timestamp(r), kp.report_partition(r),
                  kp.report_error(r), false, NULL};
    if (e.code != 0) {
        const char *text = kp.report_error_message(r);
        e.retriable = kp.report_is_retriable(r);
        e.text = text ? strdup(text) : NULL;
    }
    collector_t *c = collecting;
    if (c) {
        if (c->len == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 256;
            report_t *v = realloc(c->v, cap * sizeof(report_t));
            if (v) {
                c->v = v;
                c->cap = cap;
            }
        }
        if (c->len < c->cap) {
            c->v[c->len++] = e;
            return;
        }
        /* out of memory: deliver it here instead */
    }
    PyGILState_STATE g = PyGILState_Ensure();
    deliver(&e);
    PyGILState_Release(g);
}

/* Calls kp_poll (flush 0) or kp_flush (flush 1) with the GIL released, then
 * runs the callbacks of the reports it served. Returns what kp returned. */
static int serve(kp_producer_t *p, int flush, int32_t ms) {
    collector_t c = {spare, 0, spare_cap}, *outer = collecting;
    spare = NULL;
    spare_cap = 0;
    collecting = &c;
    int rc;
    Py_BEGIN_ALLOW_THREADS rc = flush ? kp.flush(p, ms) : kp.poll(p, ms);
    Py_END_ALLOW_THREADS
    collecting = outer;
    for (size_t i = 0; i < c.len; i++)
        deliver(&c.v[i]);
    if (!spare && c.cap <= KEEP_CAP) {
        spare = c.v;
        spare_cap = c.cap;
    } else {
        free(c.v);
    }
    return rc;
}

/* ---- ProducerBase: the fast calls of kp.Producer ---- */

typedef struct {
    PyObject_HEAD
    unsigned long long ptr; /* kp_producer_t *, 0 when closed */
    char forked;            /* set in a fork() child: the handle must not be used */
    char block;             /* max.block.ms != 0: kp_send may wait, release the GIL */
    PyObject *default_cb;
} ProducerBase;

static int pb_traverse(ProducerBase *s, visitproc visit, void *arg) {
    Py_VISIT(s->default_cb);
    return 0;
}

static int pb_clear(ProducerBase *s) {
    Py_CLEAR(s->default_cb);
    return 0;
}

static void pb_dealloc(ProducerBase *s) {
    PyObject_GC_UnTrack(s);
    pb_clear(s);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

/* The producer handle, or NULL with the Python-level error of _handle() set. */
static kp_producer_t *handle(ProducerBase *s) {
    if (s->ptr && !s->forked)
        return (kp_producer_t *)(uintptr_t)s->ptr;
    PyObject *r = PyObject_CallMethodNoArgs((PyObject *)s, str_handle);
    Py_XDECREF(r);
    if (r && !PyErr_Occurred())
        PyErr_SetString(PyExc_RuntimeError, "kp: the producer is not usable");
    return NULL;
}

/* bytes for a key or value: bytes as they are, str as UTF-8, else bytes(x);
 * None stays None. Returns a new reference or NULL with an error set. */
static PyObject *as_bytes(PyObject *x) {
    if (x == Py_None || PyBytes_CheckExact(x)) {
        Py_INCREF(x);
        return x;
    }
    if (PyUnicode_Check(x))
        return PyUnicode_AsUTF8String(x);
    return PyBytes_FromObject(x);
}

enum { A_TOPIC, A_VALUE, A_KEY, A_PARTITION, A_ON_DELIVERY, A_TIMESTAMP, A_HEADERS, A_CALLBACK, N_ARGS };
static const char *const arg_names[N_ARGS] = {"topic",     "value",   "key",      "partition",
                                              "on_delivery", "timestamp", "headers", "callback"};
static PyObject *arg_strs[N_ARGS];
static PyObject *timeout_names[1];

/* Puts positional and keyword arguments into slots (NULL: not given); `names`
 * are the parameters' names, interned. */
static int parse_args(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                      PyObject **slots, int nslots, PyObject **names) {
    if (nargs > nslots) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %d arguments (%zd given)", fname, nslots, nargs);
        return -1;
    }
    for (int i = 0; i < nslots; i++)
        slots[i] = i < nargs ? args[i] : NULL;
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    for (Py_ssize_t k = 0; k < nkw; k++) {
        PyObject *name = PyTuple_GET_ITEM(kwnames, k);
        int i = 0;
        while (i < nslots && names[i] != name)
            i++;
        if (i == nslots)
            for (i = 0; i < nslots; i++) {
                int eq = PyObject_RichCompareBool(name, names[i], Py_EQ);
                if (eq < 0)
                    return -1;
                if (eq)
                    break;
            }
        if (i == nslots) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", fname, name);
            return -1;
        }
        if (slots[i]) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument %R", fname, name);
            return -1;
        }
        slots[i] = args[nargs + k];
    }
    return 0;
}

/* Raises the KafkaException for kp error `code` (kp.Producer._raise). */
static PyObject *raise_kp(ProducerBase *s, int code) {
    PyObject *r = PyObject_CallMethod((PyObject *)s, "_raise", "i", code);
    Py_XDECREF(r);
    if (r && !PyErr_Occurred())
        PyErr_Format(PyExc_RuntimeError, "kp: error %d", code);
    return NULL;
}

#define MAX_STACK_HEADERS 16

static PyObject *pb_produce(ProducerBase *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    PyObject *a[N_ARGS];
    if (parse_args("produce", args, nargs, kwnames, a, N_ARGS, arg_strs) < 0)
        return NULL;
    if (!a[A_TOPIC]) {
        PyErr_SetString(PyExc_TypeError, "produce() missing required argument 'topic'");
        return NULL;
    }
    kp_record_t rec = {sizeof(kp_record_t), NULL, -1, NULL, 0, NULL, 0, NULL, 0, 0, NULL, NULL};
    rec.topic = PyUnicode_AsUTF8(a[A_TOPIC]);
    if (!rec.topic)
        return NULL;
    if (a[A_PARTITION] && a[A_PARTITION] != Py_None) {
        long part = PyLong_AsLong(a[A_PARTITION]);
        if (part == -1 && PyErr_Occurred())
            return NULL;
        if (part < INT32_MIN || part > INT32_MAX) {
            PyErr_SetString(PyExc_OverflowError, "produce(): partition out of range");
            return NULL;
        }
        rec.partition = (int32_t)part;
    }
    if (a[A_TIMESTAMP] && a[A_TIMESTAMP] != Py_None) {
        long long ts = PyLong_AsLongLong(a[A_TIMESTAMP]);
        if (ts == -1 && PyErr_Occurred())
            return NULL;
        rec.timestamp_ms = ts;
    }
    PyObject *key = NULL, *value = NULL, *hdrs = NULL, *ret = NULL;
    kp_header_t stack_headers[MAX_STACK_HEADERS];
    kp_header_t *harr = stack_headers;
    if (!(value = as_bytes(a[A_VALUE] ? a[A_VALUE] : Py_None)) || !(key = as_bytes(a[A_KEY] ? a[A_KEY] : Py_None)))
        goto done;
    if (value != Py_None) {
        rec.value = PyBytes_AS_STRING(value);
        rec.value_len = (size_t)PyBytes_GET_SIZE(value);
    }
    if (key != Py_None) {
        rec.key = PyBytes_AS_STRING(key);
        rec.key_len = (size_t)PyBytes_GET_SIZE(key);
    }
    PyObject *h = a[A_HEADERS];
    if (h && h != Py_None) {
        int truth = PyObject_IsTrue(h);
        if (truth < 0)
            goto done;
        if (truth) {
            /* a list of (str, bytes | None), made by kp._producer._headers_list */
            if (!(hdrs = PyObject_CallOneArg(headers_fn, h)))
                goto done;
            Py_ssize_t n = PyList_GET_SIZE(hdrs);
            if (n > MAX_STACK_HEADERS && !(harr = PyMem_Malloc(sizeof(kp_header_t) * (size_t)n))) {
                harr = stack_headers;
                PyErr_NoMemory();
                goto done;
            }
            for (Py_ssize_t i = 0; i < n; i++) {
                PyObject *item = PyList_GET_ITEM(hdrs, i);
                Py_ssize_t klen;
                const char *k = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(item, 0), &klen);
                if (!k)
                    goto done;
                PyObject *v = PyTuple_GET_ITEM(item, 1);
                harr[i].key = k;
                harr[i].key_len = (size_t)klen;
                harr[i].value = v == Py_None ? NULL : PyBytes_AS_STRING(v);
                harr[i].value_len = v == Py_None ? 0 : (size_t)PyBytes_GET_SIZE(v);
            }
            rec.headers = harr;
            rec.header_count = (size_t)n;
        }
    }
    PyObject *cb = a[A_ON_DELIVERY];
    if (!cb || cb == Py_None)
        cb = a[A_CALLBACK];
    if (!cb || cb == Py_None)
        cb = s->default_cb;
    /* Looked up last: converting the arguments may have run Python code. */
    kp_producer_t *p = handle(s);
    if (!p)
        goto done;
    kp_err_t err;
    if (cb && cb != Py_None) {
        Message *m = PyObject_New(Message, &MessageType);
        if (!m)
            goto done;
        Py_INCREF(a[A_TOPIC]);
        m->topic = a[A_TOPIC];
        m->key = key == Py_None ? NULL : (Py_INCREF(key), key);
        m->value = value == Py_None ? NULL : (Py_INCREF(value), value);
        m->headers = hdrs ? (Py_INCREF(hdrs), hdrs) : NULL;
        m->error = NULL;
        Py_INCREF(cb);
        m->cb = cb;
        m->partition = rec.partition;
        m->offset = -1;
        m->timestamp = -1;
        /* On success kp owns the reference in `m` until on_report() drops it. */
        if (s->block) {
            Py_BEGIN_ALLOW_THREADS err = kp.send(p, &rec, on_report, m);
            Py_END_ALLOW_THREADS
        } else {
            err = kp.send(p, &rec, on_report, m);
        }
        if (err != 0)
            Py_DECREF(m);
    } else if (s->block) {
        Py_BEGIN_ALLOW_THREADS err = kp.send(p, &rec, NULL, NULL);
        Py_END_ALLOW_THREADS
    } else {
        err = kp.send(p, &rec, NULL, NULL);
    }
    if (err == 0) {
        Py_INCREF(Py_None);
        ret = Py_None;
    } else if (err == KP_ERR_QUEUE_FULL) {
        PyErr_SetString(PyExc_BufferError, "kp: the producer's buffer is full (buffer.memory); call poll()");
    } else {
        raise_kp(s, err);
    }
done:
    if (harr != stack_headers)
        PyMem_Free(harr);
    Py_XDECREF(hdrs);
    Py_XDECREF(key);
    Py_XDECREF(value);
    return ret;
}

/* The timeout argument of poll() and flush() in seconds (negative: none). */
static int timeout_arg(const char *fname, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                       double *timeout) {
    PyObject *a[1];
    if (parse_args(fname, args, nargs, kwnames, a, 1, timeout_names) < 0)
        return -1;
    *timeout = -1;
    if (a[0] && a[0] != Py_None) {
        *timeout = PyFloat_AsDouble(a[0]);
        if (*timeout == -1 && PyErr_Occurred())
            return -1;
    }
    return 0;
}

/* The next wait in ms (at most `slice`, so that signals are seen between
 * waits) until `deadline` (0: none; -1: now, without reading the clock); sets
 * *last when it reaches the deadline. */
static int32_t next_slice(int64_t deadline, int32_t slice, int *last) {
    if (deadline == 0) {
        *last = 0;
        return slice;
    }
    int64_t left = deadline < 0 ? 0 : deadline - now_ms();
    *last = left <= slice;
    return left > slice ? slice : left > 0 ? (int32_t)left : 0;
}

/* now + timeout in ms; 0 (no deadline) for a negative or huge timeout, -1 for
 * 0 (poll(0) is the hot path: no clock read). */
static int64_t deadline_of(double timeout) {
    if (timeout == 0)
        return -1;
    return timeout < 0 || timeout > 1e9 ? 0 : now_ms() + (int64_t)(timeout * 1000);
}

/* poll() (flush 0) and flush() (flush 1): waits in slices, with signals
 * (Ctrl-C) checked between them, until poll served a report or flush has
 * nothing outstanding, or the timeout passed. */
static PyObject *wait_reports(ProducerBase *s, const char *fname, PyObject *const *args, Py_ssize_t nargs,
                              PyObject *kwnames, int flush) {
    double timeout;
    if (timeout_arg(fname, args, nargs, kwnames, &timeout) < 0)
        return NULL;
    kp_producer_t *p = handle(s);
    if (!p)
        return NULL;
    int64_t deadline = deadline_of(timeout);
    for (;;) {
        int last = 0;
        int rc = serve(p, flush, next_slice(deadline, flush ? FLUSH_SLICE_MS : SLICE_MS, &last));
        if (raise_kept() < 0)
            return NULL;
        if (flush ? rc != 0 && rc != KP_ERR_TIMED_OUT : rc < 0)
            return raise_kp(s, rc);
        if (flush ? rc == 0 : rc > 0)
            return PyLong_FromLong(rc);
        if (last)
            return flush ? PyLong_FromSize_t(kp.outstanding(p)) : PyLong_FromLong(0);
        if (PyErr_CheckSignals() < 0 || !(p = handle(s)))
            return NULL;
    }
}

/* poll(timeout=None): serves delivery reports (runs their callbacks), waiting
 * up to `timeout` seconds (None or negative: until one comes) for the first.
 * Returns how many. */
static PyObject *pb_poll(ProducerBase *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    return wait_reports(s, "poll", args, nargs, kwnames, 0);
}

/* flush(timeout=None): sends everything queued and serves reports until none
 * is outstanding or `timeout` seconds (None or negative: no limit) passed.
 * Returns how many are still outstanding. */
static PyObject *pb_flush(ProducerBase *s, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
    return wait_reports(s, "flush", args, nargs, kwnames, 1);
}

static PyMethodDef pb_methods[] = {
    {"produce", (PyCFunction)(void (*)(void))pb_produce, METH_FASTCALL | METH_KEYWORDS,
     "produce(topic, value=None, key=None, partition=-1, on_delivery=None, timestamp=0, headers=None, "
     "callback=None)\n\nQueues a record. Raises BufferError when the buffer is full (call poll()), "
     "KafkaException when the record is rejected."},
    {"poll", (PyCFunction)(void (*)(void))pb_poll, METH_FASTCALL | METH_KEYWORDS,
     "poll(timeout=None)\n\nServes delivery reports (runs their callbacks), waiting up to `timeout` "
     "seconds (None or -1: until one comes) for the first. Returns how many."},
    {"flush", (PyCFunction)(void (*)(void))pb_flush, METH_FASTCALL | METH_KEYWORDS,
     "flush(timeout=None)\n\nSends everything queued and serves reports until none is outstanding or "
     "`timeout` seconds (None or -1: no limit) passed. Returns len(self)."},
    {NULL},
};

static PyMemberDef pb_members[] = {
    {"_ptr", T_ULONGLONG, offsetof(ProducerBase, ptr), 0, "address of the kp_producer_t (0: closed)"},
    {"_forked", T_BOOL, offsetof(ProducerBase, forked), 0, "used in a fork() child"},
    {"_block", T_BOOL, offsetof(ProducerBase, block), 0, "kp_send may block (max.block.ms != 0)"},
    {"_default_cb", T_OBJECT, offsetof(ProducerBase, default_cb), 0, "the configured on_delivery"},
    {NULL},
};

static PyTypeObject ProducerBaseType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "kp._native.ProducerBase",
    .tp_doc = "produce() and poll() of kp.Producer.",
    .tp_basicsize = sizeof(ProducerBase),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)pb_dealloc,
    .tp_traverse = (traverseproc)pb_traverse,
    .tp_clear = (inquiry)pb_clear,
    .tp_methods = pb_methods,
    .tp_members = pb_members,
};

/* bind(path, KafkaError, headers_list): looks libkp's functions up in the file
 * kp/_ffi.py loaded (dlopen of a loaded path returns that same library). */
static PyObject *bind(PyObject *self, PyObject *args) {
    const char *path;
    PyObject *err_type, *hfn;
    if (!PyArg_ParseTuple(args, "sOO", &path, &err_type, &hfn))
        return NULL;
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h)
        return PyErr_Format(PyExc_ImportError, "kp: dlopen(%s): %s", path, dlerror());
#define SYM(field, name)                                                                        \
    if (!(*(void **)&kp.field = dlsym(h, name)))                                                \
        return PyErr_Format(PyExc_ImportError, "kp: %s has no %s", path, name);
    SYM(send, "kp_send")
    SYM(poll, "kp_poll")
    SYM(flush, "kp_flush")
    SYM(outstanding, "kp_producer_outstanding")
    SYM(report_partition, "kp_report_partition")
    SYM(report_offset, "kp_report_offset")
    SYM(report_timestamp, "kp_report_timestamp")
    SYM(report_error, "kp_report_error")
    SYM(report_error_message, "kp_report_error_message")
    SYM(report_is_retriable, "kp_report_is_retriable")
#undef SYM
    Py_INCREF(err_type);
    Py_XSETREF(kafka_error_type, err_type);
    Py_INCREF(hfn);
    Py_XSETREF(headers_fn, hfn);
    Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
    {"bind", bind, METH_VARARGS, "bind(path, KafkaError, headers_list): use the libkp at `path`."},
    {"take_exception", take_exception, METH_NOARGS,
     "The first exception a delivery callback raised on this thread since the last call, or None."},
    {NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "kp._native", "The per-record path of kp.Producer (see _native.c).", -1,
    module_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    if (PyType_Ready(&MessageType) < 0 || PyType_Ready(&ProducerBaseType) < 0)
        return NULL;
    for (int i = 0; i < N_ARGS; i++)
        if (!(arg_strs[i] = PyUnicode_InternFromString(arg_names[i])))
            return NULL;
    if (!(timeout_names[0] = PyUnicode_InternFromString("timeout")))
        return NULL;
    if (!(str_in_report = PyUnicode_InternFromString("in_report")) ||
        !(str_retriable = PyUnicode_InternFromString("retriable")) ||
        !(str_handle = PyUnicode_InternFromString("_handle")) ||
        !(str_exc_key = PyUnicode_InternFromString("kp.callback_exception")))
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m)
        return NULL;
    Py_INCREF(&MessageType);
    Py_INCREF(&ProducerBaseType);
    if (PyModule_AddObject(m, "Message", (PyObject *)&MessageType) < 0 ||
        PyModule_AddObject(m, "ProducerBase", (PyObject *)&ProducerBaseType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
