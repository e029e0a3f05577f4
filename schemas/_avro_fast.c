/*
 * schemas._avro_fast: an Avro binary encoder and decoder driven by a program compiled once per schema.
 *
 * The program is built in Python by schemas/fast_encoder.py from the fastavro-parsed schema: a tuple
 * of node specs, children referenced by index (so recursive schemas are just cycles of indices). This
 * module only interprets it; every decision that needs the schema as JSON is made there, once. The
 * Decoder (see "decoding" below) reads the same program, plus one logical-type entry per node from
 * schemas/fast_decoder.py.
 *
 * Semantics follow fastavro's Cython schemaless_writer byte for byte for every value fastavro accepts
 * as valid Avro: union branches are chosen with fastavro's rules (first branch whose deep validation
 * passes, records by most matching fields, float branches yield to a later double, tuple notation),
 * logical types go through the same conversions (simple cases in C, the rest through fastavro's own
 * LOGICAL_WRITERS functions). Values fastavro silently mangles are refused instead (a float for an int,
 * an int outside int32 for "int", a non-bool for "boolean", a non-None for "null", a str or dict for an
 * array, a negative decimal too large for its fixed), and Decimal("-0") in a fixed is written as zero
 * (fastavro writes -2 units there). __int128 is used for decimals, so this needs GCC or Clang; without
 * them the optional build is skipped and fast_encoder falls back to fastavro.
 *
 * Errors are ValueError or TypeError naming the field path ("new_address.postal_code: expected str,
 * got int"); nothing here may crash on any input.
 *
 * It also provides new_event_id(): a version-7 UUID string (Unix milliseconds, then random bits from a
 * buffer of os.urandom bytes refilled in bulk and discarded in a forked child).
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>
#include <time.h>
#ifndef _WIN32
#include <pthread.h>
#endif

#define PROGRAM_FORMAT 1

enum {
    OP_NULL = 0,
    OP_BOOLEAN = 1,
    OP_INT = 2,
    OP_LONG = 3,
    OP_FLOAT = 4,
    OP_DOUBLE = 5,
    OP_STRING = 6,
    OP_BYTES = 7,
    OP_FIXED = 8,
    OP_ENUM = 9,
    OP_RECORD = 10,
    OP_UNION = 11,
    OP_ARRAY = 12,
    OP_MAP = 13,
    OP_COUNT
};

enum {
    LT_NONE = 0,
    LT_DATE = 1,          /* int-date: datetime.date -> days since epoch */
    LT_TS_MILLIS = 2,     /* long-timestamp-millis: UTC datetime in C, other datetimes via prepare */
    LT_TS_MICROS = 3,     /* long-timestamp-micros */
    LT_DECIMAL = 4,       /* bytes-decimal: Decimal -> minimal two's complement, big endian */
    LT_FIXED_DECIMAL = 5, /* fixed-decimal: Decimal -> two's complement sign-extended to the size */
    LT_PYTHON = 6,        /* any other logical type fastavro converts: always call prepare */
    LT_COUNT
};

typedef struct {
    PyObject *name;   /* interned field name */
    int node;
    PyObject *deflt;  /* the schema default, or NULL when the field has none */
    int missing_null; /* no default, but fastavro writes None when missing ("null" in the type) */
    int coerce_float; /* type is exactly "float"/"double": fastavro applies float() first */
} Field;

typedef struct {
    int op;
    int logical;
    PyObject *name;         /* type name for messages: "string", "govbus.common.Address", ... */
    Py_ssize_t size;        /* fixed */
    int precision;          /* decimal; -1: let prepare do it */
    int scale;
    PyObject *prepare;      /* fastavro's LOGICAL_WRITERS function, or NULL */
    PyObject *schema;       /* the schema passed to prepare */
    PyObject *symbols;      /* enum: dict symbol -> index */
    Py_ssize_t nchildren;
    int *children;          /* union branches, or the array item / map value node */
    Py_ssize_t nfields;
    Field *fields;
    PyObject **write_names; /* union: names for tuple notation when writing (NULL entries never match) */
    PyObject **check_names; /* union: names for tuple notation when validating */
    char *record_branch;    /* union: branch is a record (fastavro picks the most matching fields) */
    /* decoder only */
    PyObject **symbol_list; /* enum: the symbols by index */
    Py_ssize_t nsymbols;
    PyObject *reader;       /* fastavro's LOGICAL_READERS function for this node, or NULL */
    int c_logical;          /* the logical type is converted in C (reader is only the fallback) */
    Py_ssize_t min_size;    /* fewest bytes a value of this node takes (a lower bound) */
} Node;

typedef struct {
    PyObject_HEAD
    Py_ssize_t nnodes;
    Node *nodes;
    int root;
} EncoderObject;

/* ------------------------------------------------------------------------------------------------ */
/* module state (one interpreter; the types and constants are immutable after init)                 */

static PyObject *Decimal_type;      /* decimal.Decimal */
static PyObject *Integral_abc;      /* numbers.Integral */
static PyObject *Real_abc;          /* numbers.Real */
static PyObject *Mapping_abc;       /* collections.abc.Mapping */
static PyObject *Sequence_abc;      /* collections.abc.Sequence */
static PyObject *array_type;        /* array.array */
static PyObject *urandom_func;      /* os.urandom */
static PyObject *str_as_tuple;      /* "as_tuple" */
static PyObject *str_utcoffset;     /* "utcoffset" */

/* ------------------------------------------------------------------------------------------------ */
/* encoding context: output buffer and field path                                                    */

#define MAX_PATH 64
#define STACK_BUFFER 1024
#define MAX_NESTING 500 /* records, arrays, maps and unions inside each other */

typedef struct {
    PyObject *field; /* field name, or NULL */
    PyObject *key;   /* map key, or NULL */
    Py_ssize_t index;
} PathEntry;

typedef struct {
    char *buf;
    Py_ssize_t len;
    Py_ssize_t cap;
    int heap;
    int depth;   /* entries on the path (may exceed MAX_PATH; only the first ones are kept) */
    int nesting; /* containers being written or validated */
    PathEntry path[MAX_PATH];
} Ctx;

static int fail(Ctx *c, PyObject *exc_type, const char *format, ...);

static inline int
enter(Ctx *c)
{
    if (++c->nesting > MAX_NESTING) {
        c->nesting--;
        return fail(c, PyExc_ValueError, "nested deeper than %d levels (does the value contain itself?)",
                    MAX_NESTING);
    }
    return 0;
}

#define LEAVE(c) ((c)->nesting--)

static int
grow(Ctx *c, Py_ssize_t need)
{
    Py_ssize_t cap = c->cap;
    while (cap - c->len < need) {
        if (cap > PY_SSIZE_T_MAX / 2) {
            PyErr_NoMemory();
            return -1;
        }
        cap *= 2;
    }
    char *buf;
    if (c->heap) {
        buf = PyMem_Realloc(c->buf, (size_t)cap);
    } else {
        buf = PyMem_Malloc((size_t)cap);
        if (buf != NULL) {
            memcpy(buf, c->buf, (size_t)c->len);
        }
    }
    if (buf == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    c->buf = buf;
    c->cap = cap;
    c->heap = 1;
    return 0;
}

#define ENSURE(c, n)                                                    \
    do {                                                                \
        if ((c)->cap - (c)->len < (Py_ssize_t)(n) && grow((c), (n)) < 0) \
            return -1;                                                  \
    } while (0)

static inline void
put_varint(Ctx *c, uint64_t n)
{
    char *p = c->buf + c->len;
    while (n & ~(uint64_t)0x7F) {
        *p++ = (char)((n & 0x7F) | 0x80);
        n >>= 7;
    }
    *p++ = (char)n;
    c->len = p - c->buf;
}

static inline int
write_long(Ctx *c, int64_t v)
{
    ENSURE(c, 10);
    put_varint(c, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
    return 0;
}

static inline int
write_raw(Ctx *c, const char *data, Py_ssize_t n)
{
    ENSURE(c, n);
    memcpy(c->buf + c->len, data, (size_t)n);
    c->len += n;
    return 0;
}

static inline int
write_blob(Ctx *c, const char *data, Py_ssize_t n)
{
    ENSURE(c, n + 10);
    put_varint(c, (uint64_t)n << 1);
    memcpy(c->buf + c->len, data, (size_t)n);
    c->len += n;
    return 0;
}

static inline void
path_push_field(Ctx *c, PyObject *name)
{
    if (c->depth < MAX_PATH) {
        c->path[c->depth].field = name;
        c->path[c->depth].key = NULL;
    }
    c->depth++;
}

static inline void
path_push_index(Ctx *c, Py_ssize_t index)
{
    if (c->depth < MAX_PATH) {
        c->path[c->depth].field = NULL;
        c->path[c->depth].key = NULL;
        c->path[c->depth].index = index;
    }
    c->depth++;
}

static inline void
path_push_key(Ctx *c, PyObject *key)
{
    if (c->depth < MAX_PATH) {
        c->path[c->depth].field = NULL;
        c->path[c->depth].key = key;
    }
    c->depth++;
}

#define PATH_POP(c) ((c)->depth--)

/* The dotted path of the value being written ("" at the top), or NULL with an exception set. */
static PyObject *
format_path(Ctx *c)
{
    PyObject *parts = PyList_New(0);
    if (parts == NULL) {
        return NULL;
    }
    int shown = c->depth < MAX_PATH ? c->depth : MAX_PATH;
    for (int i = 0; i < shown; i++) {
        PathEntry *e = &c->path[i];
        PyObject *part;
        if (e->field != NULL) {
            part = i == 0 ? (Py_INCREF(e->field), e->field) : PyUnicode_FromFormat(".%U", e->field);
        } else if (e->key != NULL) {
            part = PyUnicode_FromFormat("[%R]", e->key);
        } else {
            part = PyUnicode_FromFormat("[%zd]", e->index);
        }
        if (part == NULL || PyList_Append(parts, part) < 0) {
            Py_XDECREF(part);
            Py_DECREF(parts);
            return NULL;
        }
        Py_DECREF(part);
    }
    if (c->depth > MAX_PATH) {
        PyObject *more = PyUnicode_FromString("...");
        if (more == NULL || PyList_Append(parts, more) < 0) {
            Py_XDECREF(more);
            Py_DECREF(parts);
            return NULL;
        }
        Py_DECREF(more);
    }
    PyObject *empty = PyUnicode_FromString("");
    if (empty == NULL) {
        Py_DECREF(parts);
        return NULL;
    }
    PyObject *joined = PyUnicode_Join(empty, parts);
    Py_DECREF(empty);
    Py_DECREF(parts);
    return joined;
}

/* Raise exc_type with "path: message". Always returns -1. */
static int
fail(Ctx *c, PyObject *exc_type, const char *format, ...)
{
    va_list va;
    va_start(va, format);
    PyObject *message = PyUnicode_FromFormatV(format, va);
    va_end(va);
    if (message == NULL) {
        return -1;
    }
    PyObject *path = format_path(c);
    if (path == NULL) {
        Py_DECREF(message);
        return -1;
    }
    if (PyUnicode_GET_LENGTH(path) == 0) {
        PyErr_SetObject(exc_type, message);
    } else {
        PyErr_Format(exc_type, "%U: %U", path, message);
    }
    Py_DECREF(path);
    Py_DECREF(message);
    return -1;
}

/* Re-raise the pending exception (from Python code we called) as ValueError/TypeError naming the path,
 * with the original as __cause__. MemoryError, KeyboardInterrupt and the like pass unchanged. Returns -1. */
static int
fail_from(Ctx *c, const char *what)
{
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    if (type == NULL) {
        return fail(c, PyExc_ValueError, "%s failed", what);
    }
    PyErr_NormalizeException(&type, &value, &tb);
    PyObject *target;
    if (PyErr_GivenExceptionMatches(type, PyExc_TypeError)) {
        target = PyExc_TypeError;
    } else if (PyErr_GivenExceptionMatches(type, PyExc_ValueError) ||
               PyErr_GivenExceptionMatches(type, PyExc_ArithmeticError) ||
               PyErr_GivenExceptionMatches(type, PyExc_LookupError) ||
               PyErr_GivenExceptionMatches(type, PyExc_AttributeError) ||
               PyErr_GivenExceptionMatches(type, PyExc_RecursionError)) {
        target = PyExc_ValueError;
    } else {
        PyErr_Restore(type, value, tb);
        return -1;
    }
    if (tb != NULL && value != NULL) {
        PyException_SetTraceback(value, tb);
    }
    Py_XDECREF(tb);
    Py_DECREF(type);
    if (what != NULL) {
        fail(c, target, "%s: %S", what, value);
    } else {
        fail(c, target, "%S", value);
    }
    if (value != NULL) {
        PyObject *t2, *v2, *tb2;
        PyErr_Fetch(&t2, &v2, &tb2);
        PyErr_NormalizeException(&t2, &v2, &tb2);
        if (v2 != NULL) {
            Py_INCREF(value);
            PyException_SetCause(v2, value); /* steals */
            Py_INCREF(value);
            PyException_SetContext(v2, value); /* steals */
        }
        PyErr_Restore(t2, v2, tb2);
        Py_DECREF(value);
    }
    return -1;
}

static inline const char *
type_name(PyObject *o)
{
    return Py_TYPE(o)->tp_name;
}

/* ------------------------------------------------------------------------------------------------ */
/* type tests (fastavro's validation rules)                                                         */

static inline int
is_instance(PyObject *o, PyObject *cls)
{
    return cls != NULL ? PyObject_IsInstance(o, cls) : 0;
}

static inline int
is_integral(PyObject *o)
{
    if (PyLong_Check(o)) {
        return 1;
    }
    if (PyFloat_Check(o) || PyUnicode_Check(o) || o == Py_None) {
        return 0;
    }
    return is_instance(o, Integral_abc);
}

static inline int
is_real(PyObject *o)
{
    if (PyLong_Check(o) || PyFloat_Check(o)) {
        return 1;
    }
    if (PyUnicode_Check(o) || o == Py_None) {
        return 0;
    }
    return is_instance(o, Real_abc);
}

static inline int
is_mapping(PyObject *o)
{
    if (PyDict_Check(o)) {
        return 1;
    }
    if (PyUnicode_Check(o) || PyList_Check(o) || PyTuple_Check(o) || o == Py_None) {
        return 0;
    }
    return is_instance(o, Mapping_abc);
}

/* ------------------------------------------------------------------------------------------------ */
/* logical types                                                                                    */

static int64_t
days_from_civil(int64_t y, int64_t m, int64_t d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const int64_t yoe = y - era * 400;
    const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static PyObject *
call_prepare(Ctx *c, Node *n, PyObject *datum)
{
    if (n->prepare == NULL) {
        Py_INCREF(datum);
        return datum;
    }
    PyObject *r = PyObject_CallFunctionObjArgs(n->prepare, datum, n->schema, NULL);
    if (r == NULL) {
        fail_from(c, NULL);
    }
    return r;
}

static int
int128_bitlen(unsigned __int128 v)
{
    int bits = 0;
    while (v) {
        bits++;
        v >>= 1;
    }
    return bits;
}

#define U128_LIMIT ((((unsigned __int128)1) << 127) - 1)

/* A Decimal as sign, number of coefficient digits, exponent and coefficient (as fastavro reads it from
 * as_tuple()). *finite is 0 for NaN/Infinity; *big is 1 when the coefficient needs more than 127 bits. */
typedef struct {
    int sign;
    int finite;
    int big;
    Py_ssize_t ndigits;
    long long exp;
    unsigned __int128 mag;
} DecimalParts;

static inline void
add_digit(DecimalParts *p, int d)
{
    if (p->mag == 0 && d == 0) {
        return; /* leading zero */
    }
    p->ndigits++;
    if (p->big || p->mag > (U128_LIMIT - (unsigned __int128)d) / 10) {
        p->big = 1;
    } else {
        p->mag = p->mag * 10 + (unsigned __int128)d;
    }
}

/* From str(decimal): the scientific string is exact (coefficient and exponent round-trip) and
 * far cheaper than as_tuple(), whose DecimalTuple is a Python named tuple. 1 parsed, 0 not, -1 error. */
static int
decimal_from_text(Ctx *c, PyObject *datum, DecimalParts *p)
{
    PyObject *text = PyObject_Str(datum);
    if (text == NULL) {
        return fail_from(c, NULL);
    }
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(text, &len);
    if (s == NULL) {
        Py_DECREF(text);
        return fail_from(c, NULL);
    }
    Py_ssize_t i = 0, fraction = -1;
    int seen = 0, ok = 1;
    long long e = 0;
    memset(p, 0, sizeof(*p));
    p->finite = 1;
    if (i < len && s[i] == '-') {
        p->sign = 1;
        i++;
    }
    for (; i < len; i++) {
        char ch = s[i];
        if (ch >= '0' && ch <= '9') {
            add_digit(p, ch - '0');
            seen = 1;
            if (fraction >= 0) {
                fraction++;
            }
        } else if (ch == '.' && fraction < 0) {
            fraction = 0;
        } else {
            break;
        }
    }
    if (i < len && (s[i] == 'E' || s[i] == 'e')) {
        int negative = 0, exp_digits = 0;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            negative = s[i] == '-';
            i++;
        }
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            if (++exp_digits > 15) {
                ok = 0; /* an absurd exponent: let as_tuple() and fastavro deal with it */
                break;
            }
            e = e * 10 + (s[i] - '0');
        }
        if (exp_digits == 0) {
            ok = 0;
        }
        e = negative ? -e : e;
    }
    if (i != len || !seen) {
        /* NaN, sNaN, Infinity (or anything unexpected): not finite if it names one */
        ok = 0;
        for (Py_ssize_t j = 0; j < len; j++) {
            if (s[j] == 'N' || s[j] == 'I' || s[j] == 'n' || s[j] == 'i') {
                p->finite = 0;
                ok = 1;
                break;
            }
        }
    }
    Py_DECREF(text);
    if (!ok) {
        return 0;
    }
    if (p->ndigits == 0) {
        p->ndigits = 1; /* the coefficient 0 is one digit */
    }
    p->exp = e - (fraction > 0 ? fraction : 0);
    return 1;
}

/* From as_tuple(), for Decimal subclasses (whose str() may be overridden). 1 parsed, -1 error. */
static int
decimal_from_tuple(Ctx *c, PyObject *datum, DecimalParts *p)
{
    memset(p, 0, sizeof(*p));
    PyObject *t = PyObject_CallMethodNoArgs(datum, str_as_tuple);
    if (t == NULL) {
        return fail_from(c, "Decimal.as_tuple()");
    }
    int r = -1;
    if (!PyTuple_Check(t) || PyTuple_GET_SIZE(t) != 3 || !PyTuple_Check(PyTuple_GET_ITEM(t, 1))) {
        fail(c, PyExc_TypeError, "unexpected Decimal.as_tuple() result");
        goto done;
    }
    long sign = PyLong_AsLong(PyTuple_GET_ITEM(t, 0));
    if (sign == -1 && PyErr_Occurred()) {
        fail_from(c, NULL);
        goto done;
    }
    p->sign = sign != 0;
    PyObject *digits = PyTuple_GET_ITEM(t, 1);
    PyObject *exp_obj = PyTuple_GET_ITEM(t, 2);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(digits); i++) {
        long d = PyLong_AsLong(PyTuple_GET_ITEM(digits, i));
        if (d == -1 && PyErr_Occurred()) {
            fail_from(c, NULL);
            goto done;
        }
        if (d < 0 || d > 9) {
            fail(c, PyExc_ValueError, "unexpected digit %ld in %R", d, datum);
            goto done;
        }
        p->ndigits++;
        if (p->big || p->mag > (U128_LIMIT - (unsigned __int128)d) / 10) {
            p->big = 1;
        } else {
            p->mag = p->mag * 10 + (unsigned __int128)d;
        }
    }
    p->finite = PyLong_Check(exp_obj);
    if (p->finite) {
        int overflow = 0;
        p->exp = PyLong_AsLongLongAndOverflow(exp_obj, &overflow);
        if (p->exp == -1 && PyErr_Occurred()) {
            fail_from(c, NULL);
            goto done;
        }
        if (overflow) {
            p->exp = overflow > 0 ? LLONG_MAX / 2 : LLONG_MIN / 2;
        }
    }
    r = 1;
done:
    Py_DECREF(t);
    return r;
}

/* Decimal -> bytes as fastavro's prepare_bytes_decimal / prepare_fixed_decimal, computed in C when the
 * unscaled value fits in 127 bits (else fastavro's own function runs). New reference or NULL. */
static PyObject *
decimal_bytes(Ctx *c, Node *n, PyObject *datum)
{
    if (n->precision < 0) {
        return call_prepare(c, n, datum);
    }
    DecimalParts p;
    int r = 0;
    if (Py_IS_TYPE(datum, (PyTypeObject *)Decimal_type)) {
        r = decimal_from_text(c, datum, &p);
    }
    if (r == 0) {
        r = decimal_from_tuple(c, datum, &p);
    }
    if (r < 0) {
        return NULL;
    }
    /* fastavro's order: precision, then the exponent (a TypeError for NaN/Infinity), then scale */
    if (p.ndigits > n->precision) {
        fail(c, PyExc_ValueError, "The decimal precision is bigger than allowed by schema");
        return NULL;
    }
    if (!p.finite) {
        fail(c, PyExc_TypeError, "cannot encode %R as an Avro decimal", datum);
        return NULL;
    }
    if (p.exp + n->scale < 0) {
        fail(c, PyExc_ValueError, "Scale provided in schema does not match the decimal");
        return NULL;
    }
    if (p.big || p.exp > 1000000) {
        return call_prepare(c, n, datum);
    }
    unsigned __int128 mag = p.mag;
    long long delta = p.exp + n->scale;
    for (long long i = 0; i < delta && mag != 0; i++) {
        if (mag > U128_LIMIT / 10) {
            return call_prepare(c, n, datum);
        }
        mag *= 10;
    }
    int sign = mag != 0 && p.sign; /* -0 is written as 0 */
    Py_ssize_t bits = int128_bitlen(mag);
    Py_ssize_t width;
    if (n->logical == LT_DECIMAL) {
        width = (bits + 8) / 8; /* fastavro: (bit_length + 8) // 8 bytes, even for negatives */
    } else {
        width = n->size;
        /* the two's complement value must be representable in size bytes: 0 <= mag < 2^(8w-1) for
         * positives, mag <= 2^(8w-1) for negatives */
        int fits = sign ? (bits < width * 8 || (bits == width * 8 && (mag & (mag - 1)) == 0))
                        : bits + 1 <= width * 8;
        if (!fits) {
            fail(c, PyExc_ValueError, "decimal %R does not fit in fixed %U of size %zd", datum, n->name,
                 n->size);
            return NULL;
        }
    }
    PyObject *result = PyBytes_FromStringAndSize(NULL, width);
    if (result == NULL) {
        return NULL;
    }
    unsigned char *out = (unsigned char *)PyBytes_AS_STRING(result);
    unsigned __int128 v = sign ? (unsigned __int128)0 - mag : mag; /* two's complement */
    for (Py_ssize_t i = width - 1; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xFF);
        if (sign) {
            v = (v >> 8) | ((unsigned __int128)0xFF << 120); /* arithmetic shift */
        } else {
            v >>= 8;
        }
    }
    return result;
}

/* The datum after fastavro's logical-type conversion for node n: new reference, or NULL. */
static PyObject *
apply_logical(Ctx *c, Node *n, PyObject *datum)
{
    switch (n->logical) {
    case LT_DATE:
        if (PyDate_Check(datum)) {
            return PyLong_FromLongLong(days_from_civil(PyDateTime_GET_YEAR(datum),
                                                       PyDateTime_GET_MONTH(datum),
                                                       PyDateTime_GET_DAY(datum)));
        }
        if (PyUnicode_Check(datum)) {
            return call_prepare(c, n, datum);
        }
        break;
    case LT_TS_MILLIS:
    case LT_TS_MICROS:
        if (PyDateTime_Check(datum)) {
            /* fastavro: (datum - epoch) in whole milliseconds (floored) or microseconds */
            PyObject *tz = PyDateTime_DATE_GET_TZINFO(datum);
            int64_t offset = 0; /* microseconds east of UTC */
            if (tz == Py_None) {
                return call_prepare(c, n, datum); /* naive: fastavro reads it as local time */
            }
            if (tz != PyDateTime_TimeZone_UTC) {
                PyObject *delta = PyObject_CallMethodOneArg(tz, str_utcoffset, datum);
                if (delta == NULL) {
                    fail_from(c, NULL);
                    return NULL;
                }
                if (!PyDelta_Check(delta)) {
                    Py_DECREF(delta);
                    return call_prepare(c, n, datum);
                }
                int64_t offset_seconds =
                    (int64_t)PyDateTime_DELTA_GET_DAYS(delta) * 86400 + PyDateTime_DELTA_GET_SECONDS(delta);
                offset = offset_seconds * 1000000 + PyDateTime_DELTA_GET_MICROSECONDS(delta);
                Py_DECREF(delta);
            }
            int64_t seconds = days_from_civil(PyDateTime_GET_YEAR(datum), PyDateTime_GET_MONTH(datum),
                                              PyDateTime_GET_DAY(datum)) * 86400 +
                              PyDateTime_DATE_GET_HOUR(datum) * 3600 +
                              PyDateTime_DATE_GET_MINUTE(datum) * 60 + PyDateTime_DATE_GET_SECOND(datum);
            int64_t micros = seconds * 1000000 + PyDateTime_DATE_GET_MICROSECOND(datum) - offset;
            if (n->logical == LT_TS_MILLIS) {
                int64_t millis = micros / 1000;
                if (micros % 1000 < 0) {
                    millis--; /* floor */
                }
                return PyLong_FromLongLong(millis);
            }
            return PyLong_FromLongLong(micros);
        }
        break;
    case LT_DECIMAL:
    case LT_FIXED_DECIMAL:
        if (Decimal_type != NULL) {
            int is_decimal = Py_IS_TYPE(datum, (PyTypeObject *)Decimal_type);
            if (!is_decimal && !PyLong_Check(datum) && !PyBytes_Check(datum) && datum != Py_None) {
                is_decimal = PyObject_IsInstance(datum, Decimal_type);
                if (is_decimal < 0) {
                    fail_from(c, NULL);
                    return NULL;
                }
            }
            if (is_decimal) {
                return decimal_bytes(c, n, datum);
            }
        }
        break;
    case LT_PYTHON:
        return call_prepare(c, n, datum);
    default:
        break;
    }
    Py_INCREF(datum);
    return datum;
}

/* ------------------------------------------------------------------------------------------------ */
/* validation: fastavro's _validate, used to pick union branches                                    */

static int validate(EncoderObject *e, Ctx *c, int ni, PyObject *datum);

static int
int_in_range(Ctx *c, PyObject *datum, int64_t lo, int64_t hi)
{
    PyObject *index = NULL;
    if (!PyLong_Check(datum)) {
        index = PyNumber_Index(datum);
        if (index == NULL) {
            PyErr_Clear();
            return 0;
        }
        datum = index;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(datum, &overflow);
    Py_XDECREF(index);
    if (v == -1 && PyErr_Occurred()) {
        fail_from(c, NULL);
        return -1;
    }
    return overflow == 0 && v >= lo && v <= hi;
}

/* Validation of an already-converted datum against node ni (1 valid, 0 not, -1 error). */
static int
validate_body(EncoderObject *e, Ctx *c, int ni, PyObject *datum)
{
    Node *n = &e->nodes[ni];
    int r;
    switch (n->op) {
    case OP_NULL:
        return datum == Py_None;
    case OP_BOOLEAN:
        return PyBool_Check(datum);
    case OP_STRING:
        return PyUnicode_Check(datum);
    case OP_BYTES:
        return PyBytes_Check(datum) || PyByteArray_Check(datum);
    case OP_INT:
    case OP_LONG:
        if (PyBool_Check(datum)) {
            return 0;
        }
        r = is_integral(datum);
        if (r <= 0) {
            return r < 0 ? fail_from(c, NULL) : 0;
        }
        return n->op == OP_INT ? int_in_range(c, datum, INT32_MIN, INT32_MAX)
                               : int_in_range(c, datum, INT64_MIN, INT64_MAX);
    case OP_FLOAT:
    case OP_DOUBLE:
        if (PyBool_Check(datum)) {
            return 0;
        }
        r = is_real(datum);
        return r < 0 ? fail_from(c, NULL) : r;
    case OP_FIXED:
        if (PyBytes_Check(datum)) {
            return PyBytes_GET_SIZE(datum) == n->size;
        }
        if (PyByteArray_Check(datum)) {
            return PyByteArray_GET_SIZE(datum) == n->size;
        }
        return 0;
    case OP_ENUM:
        if (!PyUnicode_Check(datum)) {
            return 0;
        }
        r = PyDict_Contains(n->symbols, datum);
        return r < 0 ? fail_from(c, NULL) : r;
    case OP_ARRAY: {
        if (PyUnicode_Check(datum) || PyBytes_Check(datum) || PyByteArray_Check(datum)) {
            return 0;
        }
        if (!PyList_Check(datum) && !PyTuple_Check(datum)) {
            r = is_instance(datum, Sequence_abc);
            if (r == 0) {
                r = is_instance(datum, array_type);
            }
            if (r <= 0) {
                return r < 0 ? fail_from(c, NULL) : 0;
            }
        }
        PyObject *seq = PySequence_Fast(datum, "not a sequence");
        if (seq == NULL) {
            return fail_from(c, NULL);
        }
        int ok = 1;
        for (Py_ssize_t i = 0; ok == 1 && i < PySequence_Fast_GET_SIZE(seq); i++) {
            PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
            Py_INCREF(item);
            ok = validate(e, c, n->children[0], item);
            Py_DECREF(item);
        }
        Py_DECREF(seq);
        return ok;
    }
    case OP_MAP: {
        r = is_mapping(datum);
        if (r <= 0) {
            return r < 0 ? fail_from(c, NULL) : 0;
        }
        PyObject *items = PyMapping_Items(datum);
        if (items == NULL) {
            return fail_from(c, NULL);
        }
        int ok = 1;
        for (Py_ssize_t i = 0; ok == 1 && i < PyList_GET_SIZE(items); i++) {
            PyObject *pair = PyList_GET_ITEM(items, i);
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2 ||
                !PyUnicode_Check(PyTuple_GET_ITEM(pair, 0))) {
                ok = 0;
                break;
            }
            ok = validate(e, c, n->children[0], PyTuple_GET_ITEM(pair, 1));
        }
        Py_DECREF(items);
        return ok;
    }
    case OP_RECORD: {
        int dict = PyDict_Check(datum);
        if (!dict) {
            r = is_mapping(datum);
            if (r <= 0) {
                return r < 0 ? fail_from(c, NULL) : 0;
            }
        }
        for (Py_ssize_t i = 0; i < n->nfields; i++) {
            Field *f = &n->fields[i];
            PyObject *value;
            if (dict) {
                value = PyDict_GetItemWithError(datum, f->name);
                if (value == NULL && PyErr_Occurred()) {
                    return fail_from(c, NULL);
                }
                Py_XINCREF(value);
            } else {
                value = PyObject_GetItem(datum, f->name);
                if (value == NULL) {
                    if (!PyErr_ExceptionMatches(PyExc_KeyError)) {
                        return fail_from(c, NULL);
                    }
                    PyErr_Clear();
                }
            }
            if (value == NULL) {
                value = f->deflt != NULL ? f->deflt : Py_None;
                Py_INCREF(value);
            }
            r = validate(e, c, f->node, value);
            Py_DECREF(value);
            if (r != 1) {
                return r;
            }
        }
        return 1;
    }
    case OP_UNION: {
        if (PyTuple_Check(datum)) {
            if (PyTuple_GET_SIZE(datum) != 2) {
                return fail(c, PyExc_ValueError, "a union value given as a tuple must be (type name, value)");
            }
            PyObject *name = PyTuple_GET_ITEM(datum, 0);
            for (Py_ssize_t i = 0; i < n->nchildren; i++) {
                if (n->check_names[i] == NULL) {
                    continue;
                }
                r = PyObject_RichCompareBool(n->check_names[i], name, Py_EQ);
                if (r < 0) {
                    return fail_from(c, NULL);
                }
                if (r) {
                    return validate(e, c, n->children[i], PyTuple_GET_ITEM(datum, 1));
                }
            }
            return 0;
        }
        for (Py_ssize_t i = 0; i < n->nchildren; i++) {
            r = validate(e, c, n->children[i], datum);
            if (r != 0) {
                return r;
            }
        }
        return 0;
    }
    default:
        return fail(c, PyExc_ValueError, "corrupt encoder program (op %d)", n->op);
    }
}

static int
validate(EncoderObject *e, Ctx *c, int ni, PyObject *datum)
{
    Node *n = &e->nodes[ni];
    if (n->logical == LT_NONE) {
        if (n->op >= OP_RECORD && enter(c) < 0) {
            return -1;
        }
        int r = validate_body(e, c, ni, datum);
        if (n->op >= OP_RECORD) {
            LEAVE(c);
        }
        return r;
    }
    PyObject *converted = apply_logical(c, n, datum);
    if (converted == NULL) {
        return -1;
    }
    int r = validate_body(e, c, ni, converted);
    Py_DECREF(converted);
    return r;
}

/* ------------------------------------------------------------------------------------------------ */
/* writing                                                                                          */

static int encode_node(EncoderObject *e, Ctx *c, int ni, PyObject *datum);
static int encode_body(EncoderObject *e, Ctx *c, int ni, PyObject *datum);

static int
encode_integer(Ctx *c, Node *n, PyObject *datum)
{
    long long v;
    int overflow = 0;
    if (PyLong_Check(datum)) {
        v = PyLong_AsLongLongAndOverflow(datum, &overflow);
    } else if (PyFloat_Check(datum) || PyUnicode_Check(datum) || datum == Py_None ||
               Py_TYPE(datum)->tp_as_number == NULL || Py_TYPE(datum)->tp_as_number->nb_index == NULL) {
        return fail(c, PyExc_TypeError, "expected int, got %s", type_name(datum));
    } else {
        PyObject *index = PyNumber_Index(datum);
        if (index == NULL) {
            return fail_from(c, NULL);
        }
        v = PyLong_AsLongLongAndOverflow(index, &overflow);
        Py_DECREF(index);
    }
    if (v == -1 && PyErr_Occurred()) {
        return fail_from(c, NULL);
    }
    if (n->op == OP_INT) {
        if (overflow || v < INT32_MIN || v > INT32_MAX) {
            return fail(c, PyExc_ValueError, "%S is out of range for an Avro int (32 bits)", datum);
        }
    } else if (overflow) {
        return fail(c, PyExc_ValueError, "%S is out of range for an Avro long (64 bits)", datum);
    }
    return write_long(c, (int64_t)v);
}

static int
encode_real(Ctx *c, Node *n, PyObject *datum)
{
    double d;
    if (PyFloat_CheckExact(datum)) {
        d = PyFloat_AS_DOUBLE(datum);
    } else if (PyUnicode_Check(datum) || PyBytes_Check(datum) || datum == Py_None) {
        return fail(c, PyExc_TypeError, "expected float, got %s", type_name(datum));
    } else {
        d = PyFloat_AsDouble(datum);
        if (d == -1.0 && PyErr_Occurred()) {
            return fail_from(c, NULL);
        }
    }
    if (n->op == OP_FLOAT) {
        union {
            float f;
            uint32_t u;
        } bits;
        bits.f = (float)d;
        ENSURE(c, 4);
        unsigned char *p = (unsigned char *)c->buf + c->len;
        p[0] = (unsigned char)(bits.u & 0xFF);
        p[1] = (unsigned char)((bits.u >> 8) & 0xFF);
        p[2] = (unsigned char)((bits.u >> 16) & 0xFF);
        p[3] = (unsigned char)((bits.u >> 24) & 0xFF);
        c->len += 4;
    } else {
        union {
            double d;
            uint64_t u;
        } bits;
        bits.d = d;
        ENSURE(c, 8);
        unsigned char *p = (unsigned char *)c->buf + c->len;
        for (int i = 0; i < 8; i++) {
            p[i] = (unsigned char)((bits.u >> (8 * i)) & 0xFF);
        }
        c->len += 8;
    }
    return 0;
}

/* bytes (length-prefixed) or fixed (exactly n->size bytes) from any buffer. */
static int
encode_buffer(Ctx *c, Node *n, PyObject *datum)
{
    if (PyBytes_CheckExact(datum)) {
        if (n->op == OP_FIXED) {
            if (PyBytes_GET_SIZE(datum) != n->size) {
                return fail(c, PyExc_ValueError, "expected %zd bytes for fixed %U, got %zd", n->size,
                            n->name, PyBytes_GET_SIZE(datum));
            }
            return write_raw(c, PyBytes_AS_STRING(datum), n->size);
        }
        return write_blob(c, PyBytes_AS_STRING(datum), PyBytes_GET_SIZE(datum));
    }
    if (PyUnicode_Check(datum) || !PyObject_CheckBuffer(datum)) {
        return fail(c, PyExc_TypeError, "expected bytes, got %s", type_name(datum));
    }
    Py_buffer view;
    if (PyObject_GetBuffer(datum, &view, PyBUF_SIMPLE) < 0) {
        return fail_from(c, NULL);
    }
    int r;
    if (n->op == OP_FIXED) {
        if (view.len != n->size) {
            r = fail(c, PyExc_ValueError, "expected %zd bytes for fixed %U, got %zd", n->size, n->name,
                     view.len);
        } else {
            r = write_raw(c, view.buf, view.len);
        }
    } else {
        r = write_blob(c, view.buf, view.len);
    }
    PyBuffer_Release(&view);
    return r;
}

static int
encode_string(Ctx *c, PyObject *datum)
{
    if (!PyUnicode_Check(datum)) {
        return fail(c, PyExc_TypeError, "expected str, got %s", type_name(datum));
    }
    Py_ssize_t size;
    const char *utf8 = PyUnicode_AsUTF8AndSize(datum, &size);
    if (utf8 == NULL) {
        return fail_from(c, NULL);
    }
    return write_blob(c, utf8, size);
}

static int
encode_enum(Ctx *c, Node *n, PyObject *datum)
{
    if (!PyUnicode_Check(datum)) {
        return fail(c, PyExc_TypeError, "expected a symbol of enum %U (str), got %s", n->name,
                    type_name(datum));
    }
    PyObject *index = PyDict_GetItemWithError(n->symbols, datum);
    if (index == NULL) {
        if (PyErr_Occurred()) {
            return fail_from(c, NULL);
        }
        return fail(c, PyExc_ValueError, "%R is not a symbol of enum %U", datum, n->name);
    }
    return write_long(c, PyLong_AsLongLong(index));
}

static int
encode_array(EncoderObject *e, Ctx *c, Node *n, PyObject *datum)
{
    PyObject *seq;
    if (PyList_Check(datum) || PyTuple_Check(datum)) {
        seq = datum;
        Py_INCREF(seq);
    } else if (PyUnicode_Check(datum) || PyBytes_Check(datum) || PyByteArray_Check(datum) ||
               PyDict_Check(datum) || datum == Py_None) {
        return fail(c, PyExc_TypeError, "expected a list for array, got %s", type_name(datum));
    } else {
        int mapping = is_instance(datum, Mapping_abc);
        if (mapping != 0) {
            return mapping < 0 ? fail_from(c, NULL)
                               : fail(c, PyExc_TypeError, "expected a list for array, got %s",
                                      type_name(datum));
        }
        if (Py_TYPE(datum)->tp_iter == NULL && !PySequence_Check(datum)) {
            return fail(c, PyExc_TypeError, "expected a list for array, got %s", type_name(datum));
        }
        seq = PySequence_Fast(datum, "expected an iterable for array");
        if (seq == NULL) {
            return fail_from(c, NULL);
        }
    }
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    int r = 0;
    if (count > 0) {
        r = write_long(c, count);
        int item_node = n->children[0];
        for (Py_ssize_t i = 0; r == 0 && i < count; i++) {
            if (i >= PySequence_Fast_GET_SIZE(seq)) {
                r = fail(c, PyExc_ValueError, "the list changed size while it was encoded");
                break;
            }
            PyObject *item = PySequence_Fast_GET_ITEM(seq, i);
            Py_INCREF(item);
            path_push_index(c, i);
            r = encode_node(e, c, item_node, item);
            PATH_POP(c);
            Py_DECREF(item);
        }
    }
    Py_DECREF(seq);
    if (r == 0) {
        r = write_long(c, 0);
    }
    return r;
}

static int
encode_map_entry(EncoderObject *e, Ctx *c, int value_node, PyObject *key, PyObject *value)
{
    if (!PyUnicode_Check(key)) {
        return fail(c, PyExc_TypeError, "map keys must be str, got %s", type_name(key));
    }
    if (encode_string(c, key) < 0) {
        return -1;
    }
    path_push_key(c, key);
    int r = encode_node(e, c, value_node, value);
    PATH_POP(c);
    return r;
}

static int
encode_map(EncoderObject *e, Ctx *c, Node *n, PyObject *datum)
{
    int value_node = n->children[0];
    if (PyDict_Check(datum)) {
        Py_ssize_t count = PyDict_GET_SIZE(datum);
        if (count > 0) {
            if (write_long(c, count) < 0) {
                return -1;
            }
            Py_ssize_t pos = 0, seen = 0;
            PyObject *key, *value;
            while (PyDict_Next(datum, &pos, &key, &value)) {
                if (++seen > count) {
                    return fail(c, PyExc_ValueError, "the dict changed size while it was encoded");
                }
                Py_INCREF(key);
                Py_INCREF(value);
                int r = encode_map_entry(e, c, value_node, key, value);
                Py_DECREF(key);
                Py_DECREF(value);
                if (r < 0) {
                    return -1;
                }
            }
            if (seen != count) {
                return fail(c, PyExc_ValueError, "the dict changed size while it was encoded");
            }
        }
        return write_long(c, 0);
    }
    int mapping = is_mapping(datum);
    if (mapping <= 0) {
        return mapping < 0 ? fail_from(c, NULL)
                           : fail(c, PyExc_TypeError, "expected a dict for map, got %s", type_name(datum));
    }
    PyObject *items = PyMapping_Items(datum);
    if (items == NULL) {
        return fail_from(c, NULL);
    }
    Py_ssize_t count = PyList_GET_SIZE(items);
    int r = 0;
    if (count > 0) {
        r = write_long(c, count);
        for (Py_ssize_t i = 0; r == 0 && i < count; i++) {
            PyObject *pair = PyList_GET_ITEM(items, i);
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
                r = fail(c, PyExc_TypeError, "mapping items() must yield (key, value) pairs");
                break;
            }
            r = encode_map_entry(e, c, value_node, PyTuple_GET_ITEM(pair, 0), PyTuple_GET_ITEM(pair, 1));
        }
    }
    Py_DECREF(items);
    if (r == 0) {
        r = write_long(c, 0);
    }
    return r;
}

static int
encode_field(EncoderObject *e, Ctx *c, Field *f, PyObject *value)
{
    int r;
    path_push_field(c, f->name);
    if (f->coerce_float && !PyFloat_CheckExact(value)) {
        /* fastavro writes float(value) for a field typed "float"/"double" (so "NaN" is accepted) */
        PyObject *converted;
        int convertible = PyUnicode_Check(value) || PyBytes_Check(value) || PyByteArray_Check(value) ||
                          PyNumber_Check(value);
        if (value == Py_None || !convertible) {
            r = fail(c, PyExc_TypeError, "expected float, got %s", type_name(value));
        } else if ((converted = PyNumber_Float(value)) == NULL) {
            r = fail_from(c, NULL);
        } else {
            r = encode_node(e, c, f->node, converted);
            Py_DECREF(converted);
        }
    } else {
        r = encode_node(e, c, f->node, value);
    }
    PATH_POP(c);
    return r;
}

static int
missing_field(EncoderObject *e, Ctx *c, Node *n, Field *f)
{
    if (f->deflt != NULL) {
        return encode_field(e, c, f, f->deflt);
    }
    if (f->missing_null) {
        return encode_field(e, c, f, Py_None);
    }
    path_push_field(c, f->name);
    fail(c, PyExc_ValueError, "required field is missing (no default in %U)", n->name);
    PATH_POP(c);
    return -1;
}

static int
encode_record(EncoderObject *e, Ctx *c, Node *n, PyObject *datum)
{
    if (PyDict_Check(datum)) {
        for (Py_ssize_t i = 0; i < n->nfields; i++) {
            Field *f = &n->fields[i];
            PyObject *value = PyDict_GetItemWithError(datum, f->name);
            int r;
            if (value == NULL) {
                if (PyErr_Occurred()) {
                    return fail_from(c, NULL);
                }
                r = missing_field(e, c, n, f);
            } else {
                Py_INCREF(value);
                r = encode_field(e, c, f, value);
                Py_DECREF(value);
            }
            if (r < 0) {
                return -1;
            }
        }
        return 0;
    }
    int mapping = is_mapping(datum);
    if (mapping <= 0) {
        return mapping < 0 ? fail_from(c, NULL)
                           : fail(c, PyExc_TypeError, "expected a dict for record %U, got %s", n->name,
                                  type_name(datum));
    }
    for (Py_ssize_t i = 0; i < n->nfields; i++) {
        Field *f = &n->fields[i];
        int r = PySequence_Contains(datum, f->name);
        if (r < 0) {
            return fail_from(c, NULL);
        }
        if (r == 0) {
            r = missing_field(e, c, n, f);
        } else {
            PyObject *value = PyObject_GetItem(datum, f->name);
            if (value == NULL) {
                return fail_from(c, NULL);
            }
            r = encode_field(e, c, f, value);
            Py_DECREF(value);
        }
        if (r < 0) {
            return -1;
        }
    }
    return 0;
}

/* How many of a record's fields are keys of datum (fastavro's tie-break between record branches). */
static Py_ssize_t
matching_fields(Ctx *c, Node *record, PyObject *datum)
{
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i < record->nfields; i++) {
        int r = PyDict_Check(datum) ? PyDict_Contains(datum, record->fields[i].name)
                                    : PySequence_Contains(datum, record->fields[i].name);
        if (r < 0) {
            fail_from(c, NULL);
            return -1;
        }
        count += r;
    }
    return count;
}

static int
union_mismatch(Ctx *c, Node *n, PyObject *datum)
{
    return fail(c, PyExc_TypeError, "expected %U, got %s", n->name, type_name(datum));
}

static int
encode_union(EncoderObject *e, Ctx *c, Node *n, PyObject *datum)
{
    Py_ssize_t best = -1;
    if (PyTuple_Check(datum)) {
        /* fastavro's tuple notation: (type name, value) */
        if (PyTuple_GET_SIZE(datum) != 2) {
            return fail(c, PyExc_ValueError, "a union value given as a tuple must be (type name, value)");
        }
        PyObject *name = PyTuple_GET_ITEM(datum, 0);
        for (Py_ssize_t i = 0; i < n->nchildren; i++) {
            if (n->write_names[i] == NULL) {
                continue;
            }
            int r = PyObject_RichCompareBool(n->write_names[i], name, Py_EQ);
            if (r < 0) {
                return fail_from(c, NULL);
            }
            if (r) {
                best = i;
                break;
            }
        }
        if (best < 0) {
            return fail(c, PyExc_ValueError, "provided union type name %R is not a branch of %U", name,
                        n->name);
        }
        if (write_long(c, best) < 0) {
            return -1;
        }
        return encode_node(e, c, n->children[best], PyTuple_GET_ITEM(datum, 1));
    }
    /* fast path: None goes to the first null branch (no other branch without a logical type, which
     * could convert it, validates None) */
    if (datum == Py_None) {
        for (Py_ssize_t i = 0; i < n->nchildren; i++) {
            Node *b = &e->nodes[n->children[i]];
            if (b->logical != LT_NONE) {
                break;
            }
            if (b->op == OP_NULL) {
                return write_long(c, i);
            }
        }
    }
    PyObject *chosen = NULL; /* the converted datum of the best branch */
    Py_ssize_t most_fields = -1;
    int could_be_float = 0;
    for (Py_ssize_t i = 0; i < n->nchildren; i++) {
        int bi = n->children[i];
        Node *b = &e->nodes[bi];
        if (could_be_float) {
            if (b->op == OP_DOUBLE) {
                Py_XDECREF(chosen);
                Py_INCREF(datum);
                chosen = datum;
                best = i;
                break;
            }
            continue;
        }
        PyObject *converted;
        if (b->logical == LT_NONE) {
            converted = datum;
            Py_INCREF(converted);
        } else if ((converted = apply_logical(c, b, datum)) == NULL) {
            Py_XDECREF(chosen);
            return -1;
        }
        int valid;
        if (b->op >= OP_RECORD) {
            if (enter(c) < 0) {
                Py_DECREF(converted);
                Py_XDECREF(chosen);
                return -1;
            }
            valid = validate_body(e, c, bi, converted);
            LEAVE(c);
        } else {
            valid = validate_body(e, c, bi, converted);
        }
        if (valid < 0) {
            Py_DECREF(converted);
            Py_XDECREF(chosen);
            return -1;
        }
        if (!valid) {
            Py_DECREF(converted);
            continue;
        }
        if (n->record_branch[i]) {
            Py_ssize_t count = matching_fields(c, b, converted);
            if (count < 0) {
                Py_DECREF(converted);
                Py_XDECREF(chosen);
                return -1;
            }
            if (count > most_fields) {
                most_fields = count;
                best = i;
                Py_XDECREF(chosen);
                chosen = converted;
            } else {
                Py_DECREF(converted);
            }
        } else if (b->op == OP_FLOAT) {
            best = i;
            could_be_float = 1;
            Py_XDECREF(chosen);
            chosen = converted;
        } else {
            best = i;
            Py_XDECREF(chosen);
            chosen = converted;
            break;
        }
    }
    if (best < 0) {
        return union_mismatch(c, n, datum);
    }
    int r = write_long(c, best);
    if (r == 0) {
        /* the chosen datum is already converted for its branch's logical type */
        r = encode_body(e, c, n->children[best], chosen);
    }
    Py_DECREF(chosen);
    return r;
}

static int
encode_body(EncoderObject *e, Ctx *c, int ni, PyObject *datum)
{
    Node *n = &e->nodes[ni];
    int r;
    switch (n->op) {
    case OP_STRING:
        return encode_string(c, datum);
    case OP_INT:
    case OP_LONG:
        return encode_integer(c, n, datum);
    case OP_NULL:
        if (datum != Py_None) {
            return fail(c, PyExc_TypeError, "expected None, got %s", type_name(datum));
        }
        return 0;
    case OP_BOOLEAN:
        if (datum == Py_True) {
            r = 1;
        } else if (datum == Py_False) {
            r = 0;
        } else if (PyLong_Check(datum)) {
            r = PyObject_IsTrue(datum);
        } else {
            return fail(c, PyExc_TypeError, "expected bool, got %s", type_name(datum));
        }
        ENSURE(c, 1);
        c->buf[c->len++] = (char)(r ? 1 : 0);
        return 0;
    case OP_FLOAT:
    case OP_DOUBLE:
        return encode_real(c, n, datum);
    case OP_BYTES:
    case OP_FIXED:
        return encode_buffer(c, n, datum);
    case OP_ENUM:
        return encode_enum(c, n, datum);
    case OP_RECORD:
    case OP_UNION:
    case OP_ARRAY:
    case OP_MAP:
        if (enter(c) < 0) {
            return -1;
        }
        if (n->op == OP_RECORD) {
            r = encode_record(e, c, n, datum);
        } else if (n->op == OP_UNION) {
            r = encode_union(e, c, n, datum);
        } else if (n->op == OP_ARRAY) {
            r = encode_array(e, c, n, datum);
        } else {
            r = encode_map(e, c, n, datum);
        }
        LEAVE(c);
        return r;
    default:
        return fail(c, PyExc_ValueError, "corrupt encoder program (op %d)", n->op);
    }
}

static int
encode_node(EncoderObject *e, Ctx *c, int ni, PyObject *datum)
{
    Node *n = &e->nodes[ni];
    if (n->logical == LT_NONE) {
        return encode_body(e, c, ni, datum);
    }
    PyObject *converted = apply_logical(c, n, datum);
    if (converted == NULL) {
        return -1;
    }
    int r = encode_body(e, c, ni, converted);
    Py_DECREF(converted);
    return r;
}

/* ------------------------------------------------------------------------------------------------ */
/* Encoder type                                                                                     */

static void
free_program(Node *nodes, Py_ssize_t nnodes)
{
    if (nodes == NULL) {
        return;
    }
    for (Py_ssize_t i = 0; i < nnodes; i++) {
        Node *n = &nodes[i];
        Py_CLEAR(n->name);
        Py_CLEAR(n->prepare);
        Py_CLEAR(n->schema);
        Py_CLEAR(n->symbols);
        Py_CLEAR(n->reader);
        for (Py_ssize_t j = 0; j < n->nfields; j++) {
            Py_CLEAR(n->fields[j].name);
            Py_CLEAR(n->fields[j].deflt);
        }
        if (n->write_names != NULL) {
            for (Py_ssize_t j = 0; j < n->nchildren; j++) {
                Py_CLEAR(n->write_names[j]);
                Py_CLEAR(n->check_names[j]);
            }
        }
        if (n->symbol_list != NULL) {
            for (Py_ssize_t j = 0; j < n->nsymbols; j++) {
                Py_CLEAR(n->symbol_list[j]);
            }
        }
        PyMem_Free(n->fields);
        PyMem_Free(n->children);
        PyMem_Free(n->write_names);
        PyMem_Free(n->check_names);
        PyMem_Free(n->record_branch);
        PyMem_Free(n->symbol_list);
    }
    PyMem_Free(nodes);
}

static void
free_nodes(EncoderObject *self)
{
    free_program(self->nodes, self->nnodes);
    self->nodes = NULL;
    self->nnodes = 0;
}

static int
traverse_program(Node *nodes, Py_ssize_t nnodes, visitproc visit, void *arg)
{
    for (Py_ssize_t i = 0; i < nnodes; i++) {
        Node *n = &nodes[i];
        Py_VISIT(n->prepare);
        Py_VISIT(n->schema);
        Py_VISIT(n->symbols);
        Py_VISIT(n->reader);
        for (Py_ssize_t j = 0; j < n->nfields; j++) {
            Py_VISIT(n->fields[j].deflt);
        }
    }
    return 0;
}

static int
Encoder_traverse(EncoderObject *self, visitproc visit, void *arg)
{
    return traverse_program(self->nodes, self->nnodes, visit, arg);
}

static int
Encoder_clear(EncoderObject *self)
{
    free_nodes(self);
    return 0;
}

static void
Encoder_dealloc(EncoderObject *self)
{
    PyObject_GC_UnTrack(self);
    free_nodes(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
check_index(long value, Py_ssize_t nnodes, const char *what)
{
    if (value < 0 || value >= nnodes) {
        PyErr_Format(PyExc_ValueError, "encoder program: %s index %ld out of range", what, value);
        return -1;
    }
    return 0;
}

static PyObject *
optional(PyObject *o)
{
    if (o == Py_None) {
        return NULL;
    }
    Py_INCREF(o);
    return o;
}

/* node spec: (op, logical, name, size, precision, scale, prepare, schema, symbols, children, fields,
 *             write_names, check_names, record_branch)
 * field spec: (name, node, has_default, default, missing_null, coerce_float) */
static int
load_node(Node *n, PyObject *spec, Py_ssize_t nnodes)
{
    int op, logical, precision, scale;
    Py_ssize_t size;
    PyObject *name, *prepare, *schema, *symbols, *children, *fields;
    PyObject *write_names, *check_names, *record_branch;
    if (!PyTuple_Check(spec)) {
        PyErr_SetString(PyExc_TypeError, "encoder program: a node must be a tuple");
        return -1;
    }
    if (!PyArg_ParseTuple(spec, "iiUniiOOOO!O!OOO;encoder program: malformed node", &op, &logical, &name,
                          &size, &precision, &scale, &prepare, &schema, &symbols, &PyTuple_Type, &children,
                          &PyTuple_Type, &fields, &write_names, &check_names, &record_branch)) {
        return -1;
    }
    if (op < 0 || op >= OP_COUNT || logical < 0 || logical >= LT_COUNT || size < 0) {
        PyErr_SetString(PyExc_ValueError, "encoder program: bad op, logical type or size");
        return -1;
    }
    n->op = op;
    n->logical = logical;
    n->size = size;
    n->precision = precision;
    n->scale = scale;
    Py_INCREF(name);
    n->name = name;
    n->prepare = optional(prepare);
    n->schema = optional(schema);
    if (n->prepare != NULL && !PyCallable_Check(n->prepare)) {
        PyErr_SetString(PyExc_TypeError, "encoder program: prepare must be callable");
        return -1;
    }
    if (op == OP_ENUM) {
        if (!PyDict_Check(symbols)) {
            PyErr_SetString(PyExc_TypeError, "encoder program: enum symbols must be a dict");
            return -1;
        }
        Py_INCREF(symbols);
        n->symbols = symbols;
        PyObject *key, *value;
        Py_ssize_t pos = 0;
        while (PyDict_Next(symbols, &pos, &key, &value)) {
            if (!PyUnicode_Check(key) || !PyLong_Check(value)) {
                PyErr_SetString(PyExc_TypeError, "encoder program: enum symbols must map str to int");
                return -1;
            }
        }
        /* the decoder's index -> symbol table: the indices must be exactly 0..n-1 */
        Py_ssize_t nsymbols = PyDict_GET_SIZE(symbols);
        n->symbol_list = PyMem_Calloc((size_t)(nsymbols > 0 ? nsymbols : 1), sizeof(PyObject *));
        if (n->symbol_list == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        n->nsymbols = nsymbols;
        pos = 0;
        while (PyDict_Next(symbols, &pos, &key, &value)) {
            Py_ssize_t index = PyLong_AsSsize_t(value);
            if (index == -1 && PyErr_Occurred()) {
                return -1;
            }
            if (index < 0 || index >= nsymbols || n->symbol_list[index] != NULL) {
                PyErr_SetString(PyExc_ValueError, "encoder program: enum symbol indices must be 0..n-1");
                return -1;
            }
            Py_INCREF(key);
            n->symbol_list[index] = key;
        }
    }
    Py_ssize_t nchildren = PyTuple_GET_SIZE(children);
    if ((op == OP_ARRAY || op == OP_MAP) && nchildren != 1) {
        PyErr_SetString(PyExc_ValueError, "encoder program: array/map needs exactly one child");
        return -1;
    }
    if (op == OP_UNION && nchildren == 0) {
        PyErr_SetString(PyExc_ValueError, "encoder program: empty union");
        return -1;
    }
    if (nchildren > 0) {
        n->children = PyMem_Calloc((size_t)nchildren, sizeof(int));
        if (n->children == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        n->nchildren = nchildren;
        for (Py_ssize_t i = 0; i < nchildren; i++) {
            long child = PyLong_AsLong(PyTuple_GET_ITEM(children, i));
            if ((child == -1 && PyErr_Occurred()) || check_index(child, nnodes, "child") < 0) {
                return -1;
            }
            n->children[i] = (int)child;
        }
    }
    if (op == OP_UNION) {
        if (!PyTuple_Check(write_names) || !PyTuple_Check(check_names) || !PyTuple_Check(record_branch) ||
            PyTuple_GET_SIZE(write_names) != nchildren || PyTuple_GET_SIZE(check_names) != nchildren ||
            PyTuple_GET_SIZE(record_branch) != nchildren) {
            PyErr_SetString(PyExc_ValueError, "encoder program: union metadata does not match its branches");
            return -1;
        }
        n->write_names = PyMem_Calloc((size_t)nchildren, sizeof(PyObject *));
        n->check_names = PyMem_Calloc((size_t)nchildren, sizeof(PyObject *));
        n->record_branch = PyMem_Calloc((size_t)nchildren, 1);
        if (n->write_names == NULL || n->check_names == NULL || n->record_branch == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < nchildren; i++) {
            n->write_names[i] = optional(PyTuple_GET_ITEM(write_names, i));
            n->check_names[i] = optional(PyTuple_GET_ITEM(check_names, i));
            int flag = PyObject_IsTrue(PyTuple_GET_ITEM(record_branch, i));
            if (flag < 0) {
                return -1;
            }
            n->record_branch[i] = (char)flag;
        }
    }
    Py_ssize_t nfields = PyTuple_GET_SIZE(fields);
    if (nfields > 0 && op != OP_RECORD) {
        PyErr_SetString(PyExc_ValueError, "encoder program: only records have fields");
        return -1;
    }
    if (nfields > 0) {
        n->fields = PyMem_Calloc((size_t)nfields, sizeof(Field));
        if (n->fields == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        n->nfields = nfields;
        for (Py_ssize_t i = 0; i < nfields; i++) {
            PyObject *fspec = PyTuple_GET_ITEM(fields, i);
            PyObject *fname, *deflt;
            long node;
            int has_default, missing_null, coerce_float;
            if (!PyTuple_Check(fspec) ||
                !PyArg_ParseTuple(fspec, "UlpOpp;encoder program: malformed field", &fname, &node,
                                  &has_default, &deflt, &missing_null, &coerce_float)) {
                if (!PyErr_Occurred()) {
                    PyErr_SetString(PyExc_TypeError, "encoder program: a field must be a tuple");
                }
                return -1;
            }
            if (check_index(node, nnodes, "field") < 0) {
                return -1;
            }
            Field *f = &n->fields[i];
            Py_INCREF(fname);
            PyUnicode_InternInPlace(&fname);
            f->name = fname;
            f->node = (int)node;
            if (has_default) {
                Py_INCREF(deflt);
                f->deflt = deflt;
            }
            f->missing_null = missing_null;
            f->coerce_float = coerce_float;
        }
    }
    return 0;
}

/* Loads every node of a program; on failure nothing is kept and -1 is returned with an exception set. */
static int
load_program(PyObject *program, int root, Node **nodes_out, Py_ssize_t *nnodes_out, int *root_out)
{
    Py_ssize_t nnodes = PyTuple_GET_SIZE(program);
    if (nnodes == 0 || check_index(root, nnodes, "root") < 0) {
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_ValueError, "encoder program: no nodes");
        }
        return -1;
    }
    Node *nodes = PyMem_Calloc((size_t)nnodes, sizeof(Node));
    if (nodes == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    for (Py_ssize_t i = 0; i < nnodes; i++) {
        if (load_node(&nodes[i], PyTuple_GET_ITEM(program, i), nnodes) < 0) {
            free_program(nodes, nnodes);
            return -1;
        }
    }
    *nodes_out = nodes;
    *nnodes_out = nnodes;
    *root_out = root;
    return 0;
}

static int
Encoder_init(EncoderObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"program", "root", NULL};
    PyObject *program;
    int root;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!i:Encoder", kwlist, &PyTuple_Type, &program, &root)) {
        return -1;
    }
    if (self->nodes != NULL) {
        /* another thread may be encoding with the current program: it stays immutable */
        PyErr_SetString(PyExc_RuntimeError, "Encoder is already initialised");
        return -1;
    }
    return load_program(program, root, &self->nodes, &self->nnodes, &self->root);
}

static PyObject *
run(EncoderObject *self, const char *prefix, Py_ssize_t prefix_len, PyObject *record)
{
    if (self->nodes == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Encoder was not initialised");
        return NULL;
    }
    char stack[STACK_BUFFER];
    Ctx c;
    c.buf = stack;
    c.len = 0;
    c.cap = STACK_BUFFER;
    c.heap = 0;
    c.depth = 0;
    c.nesting = 0;
    PyObject *result = NULL;
    if ((prefix_len == 0 || write_raw(&c, prefix, prefix_len) == 0) &&
        encode_node(self, &c, self->root, record) == 0) {
        result = PyBytes_FromStringAndSize(c.buf, c.len);
    }
    if (c.heap) {
        PyMem_Free(c.buf);
    }
    return result;
}

static PyObject *
Encoder_encode(EncoderObject *self, PyObject *record)
{
    return run(self, NULL, 0, record);
}

static PyObject *
Encoder_encode_framed(EncoderObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "encode_framed() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    PyObject *prefix = args[0];
    if (PyBytes_CheckExact(prefix)) {
        return run(self, PyBytes_AS_STRING(prefix), PyBytes_GET_SIZE(prefix), args[1]);
    }
    Py_buffer view;
    if (PyObject_GetBuffer(prefix, &view, PyBUF_SIMPLE) < 0) {
        return NULL;
    }
    PyObject *result = run(self, view.buf, view.len, args[1]);
    PyBuffer_Release(&view);
    return result;
}

static PyObject *
Encoder_get_accelerated(EncoderObject *self, void *closure)
{
    Py_RETURN_TRUE;
}

static PyObject *
Encoder_get_nodes(EncoderObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->nnodes);
}

static PyMethodDef Encoder_methods[] = {
    {"encode", (PyCFunction)Encoder_encode, METH_O,
     "encode(record) -> bytes: the Avro binary encoding of record."},
    {"encode_framed", (PyCFunction)(void (*)(void))Encoder_encode_framed, METH_FASTCALL,
     "encode_framed(prefix, record) -> bytes: prefix followed by the encoding, in one allocation."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Encoder_getset[] = {
    {"accelerated", (getter)Encoder_get_accelerated, NULL, "True: this encoder runs in C.", NULL},
    {"nodes", (getter)Encoder_get_nodes, NULL, "Number of nodes in the compiled program.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject EncoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "schemas._avro_fast.Encoder",
    .tp_basicsize = sizeof(EncoderObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Encoder(program, root): an Avro binary encoder for one compiled schema.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Encoder_init,
    .tp_dealloc = (destructor)Encoder_dealloc,
    .tp_traverse = (traverseproc)Encoder_traverse,
    .tp_clear = (inquiry)Encoder_clear,
    .tp_methods = Encoder_methods,
    .tp_getset = Encoder_getset,
};

/* ------------------------------------------------------------------------------------------------ */
/* decoding                                                                                         */
/*                                                                                                  */
/* Reads Avro binary into the values fastavro's schemaless_reader returns for the same schema as   */
/* writer and reader: dicts for records (fields in schema order), lists, dicts, str, bytes, int,    */
/* float, bool, None, enum symbols as str, a union's branch value, and logical types converted as   */
/* fastavro's LOGICAL_READERS do (date, UTC datetime and Decimal in C, every other one by calling   */
/* fastavro's own function). Every read is bounds-checked; a body that is truncated, has bytes left */
/* over, a union or enum index out of range, a negative or oversized length, invalid UTF-8 or a     */
/* varint longer than 64 bits raises ValueError (fastavro accepts some of these: it reads a negative */
/* union index from the end of the list, for instance). Nothing here may crash on any bytes.        */

typedef struct {
    PyObject_HEAD
    Py_ssize_t nnodes;
    Node *nodes;
    int root;
    PyObject *trailing_error; /* raised (a ValueError subclass) when bytes follow the value */
} DecoderObject;

typedef struct {
    const unsigned char *start;
    const unsigned char *p;
    const unsigned char *end;
    Py_ssize_t empty_items; /* array items that took no bytes (e.g. nulls), across the body */
    Ctx c;                  /* the path and nesting for messages; its output buffer is unused */
} DCtx;

#define MAX_EMPTY_ITEMS (1 << 20)
#define MIN_SIZE_CAP ((Py_ssize_t)1 << 30)
#define EPOCH_ORDINAL 719163                            /* date(1970, 1, 1).toordinal() */
#define MIN_DAYS (1 - EPOCH_ORDINAL)                    /* 0001-01-01 */
#define MAX_DAYS (3652059 - EPOCH_ORDINAL)              /* 9999-12-31 */
#define MIN_MICROS ((int64_t)MIN_DAYS * 86400000000LL)  /* 0001-01-01T00:00:00 UTC */
#define MAX_MICROS ((int64_t)(MAX_DAYS + 1) * 86400000000LL - 1)

static inline Py_ssize_t
offset_of(DCtx *d)
{
    return (Py_ssize_t)(d->p - d->start);
}

static int
truncated(DCtx *d, const char *what)
{
    return fail(&d->c, PyExc_ValueError, "the body ends inside %s at byte %zd (truncated)", what,
                offset_of(d));
}

static inline int
read_long(DCtx *d, int64_t *out)
{
    const unsigned char *p = d->p;
    uint64_t n;
    if (p < d->end && *p < 0x80) {
        n = *p;
        d->p = p + 1;
    } else {
        n = 0;
        for (int shift = 0;; shift += 7) {
            if (p >= d->end) {
                truncated(d, "a varint");
                return -1;
            }
            unsigned char b = *p++;
            if (shift == 63 && b > 1) {
                fail(&d->c, PyExc_ValueError, "the varint at byte %zd is longer than 64 bits", offset_of(d));
                return -1;
            }
            n |= (uint64_t)(b & 0x7F) << shift;
            if (b < 0x80) {
                break;
            }
        }
        d->p = p;
    }
    *out = (int64_t)((n >> 1) ^ ((uint64_t)0 - (n & 1)));
    return 0;
}

/* A byte count for string/bytes that is not negative and fits in what is left of the body. */
static inline int
read_length(DCtx *d, Py_ssize_t *out, const char *what)
{
    Py_ssize_t at = offset_of(d);
    int64_t n;
    if (read_long(d, &n) < 0) {
        return -1;
    }
    if (n < 0) {
        fail(&d->c, PyExc_ValueError, "negative length %lld for %s at byte %zd", (long long)n, what, at);
        return -1;
    }
    if (n > (int64_t)(d->end - d->p)) {
        fail(&d->c, PyExc_ValueError, "%s of %lld bytes at byte %zd runs past the end of the body", what,
             (long long)n, at);
        return -1;
    }
    *out = (Py_ssize_t)n;
    return 0;
}

static inline int
need(DCtx *d, Py_ssize_t n, const char *what)
{
    if (d->end - d->p < n) {
        return truncated(d, what);
    }
    return 0;
}

static PyObject *
read_string(DCtx *d)
{
    Py_ssize_t len;
    if (read_length(d, &len, "a string") < 0) {
        return NULL;
    }
    const char *s = (const char *)d->p;
    d->p += len;
    PyObject *r = PyUnicode_DecodeUTF8(s, len, NULL);
    if (r == NULL) {
        fail_from(&d->c, "invalid UTF-8");
    }
    return r;
}

/* days since 1970-01-01 -> proleptic Gregorian year, month, day (H. Hinnant's civil_from_days) */
static void
civil_from_days(int64_t z, int *year, int *month, int *day)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const int64_t doe = z - era * 146097;
    const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const int64_t mp = (5 * doy + 2) / 153;
    *day = (int)(doy - (153 * mp + 2) / 5 + 1);
    *month = (int)(mp < 10 ? mp + 3 : mp - 9);
    *year = (int)(yoe + era * 400 + (*month <= 2));
}

/* fastavro's read_date: date.fromordinal(days + 719163) */
static PyObject *
date_from_days(DCtx *d, int64_t days)
{
    if (days < MIN_DAYS || days > MAX_DAYS) {
        fail(&d->c, PyExc_ValueError, "date %lld days from 1970-01-01 is outside years 1 to 9999",
             (long long)days);
        return NULL;
    }
    int year, month, day;
    civil_from_days(days, &year, &month, &day);
    return PyDate_FromDate(year, month, day);
}

/* fastavro's read_timestamp_micros: epoch + timedelta(microseconds=...), tz-aware UTC */
static PyObject *
datetime_from_micros(DCtx *d, int64_t micros)
{
    if (micros < MIN_MICROS || micros > MAX_MICROS) {
        fail(&d->c, PyExc_ValueError,
             "timestamp %lld microseconds from 1970-01-01 is outside years 1 to 9999", (long long)micros);
        return NULL;
    }
    int64_t days = micros / 86400000000LL;
    int64_t rest = micros % 86400000000LL;
    if (rest < 0) {
        rest += 86400000000LL;
        days--;
    }
    int year, month, day;
    civil_from_days(days, &year, &month, &day);
    int64_t seconds = rest / 1000000;
    return PyDateTimeAPI->DateTime_FromDateAndTime(year, month, day, (int)(seconds / 3600),
                                                   (int)(seconds / 60 % 60), (int)(seconds % 60),
                                                   (int)(rest % 1000000), PyDateTime_TimeZone_UTC,
                                                   PyDateTimeAPI->DateTimeType);
}

/* Calls fastavro's reader function for node n on the raw value: reader(value, schema, None). */
static PyObject *
call_reader(DCtx *d, Node *n, PyObject *value)
{
    PyObject *r = PyObject_CallFunctionObjArgs(n->reader, value, n->schema != NULL ? n->schema : Py_None,
                                               Py_None, NULL);
    Py_DECREF(value);
    if (r == NULL) {
        fail_from(&d->c, NULL);
    }
    return r;
}

static uint64_t
pow10_u64(int exponent)
{
    uint64_t p = 1;
    while (exponent-- > 0) {
        p *= 10;
    }
    return p;
}

/* fastavro's read_decimal: the big-endian two's complement unscaled value over 10^scale, as
 * Context(prec=precision).create_decimal(unscaled).scaleb(-scale). In C when the value fits in 128 bits
 * and has no more digits than the precision (so nothing is rounded); otherwise fastavro's function. */
static PyObject *
decimal_from_bytes(DCtx *d, Node *n, const unsigned char *b, Py_ssize_t len)
{
    if (n->precision > 0 && len <= 16 && n->scale <= 999) {
        int negative = len > 0 && (b[0] & 0x80);
        unsigned __int128 u = negative ? ~(unsigned __int128)0 : 0;
        for (Py_ssize_t i = 0; i < len; i++) {
            u = (u << 8) | b[i];
        }
        unsigned __int128 mag = negative ? (unsigned __int128)0 - u : u;
        int fits = mag < ((unsigned __int128)1 << 63) &&
                   (n->precision >= 19 || mag < pow10_u64(n->precision));
        if (n->scale == 0 && fits) {
            /* Decimal(int) is three times faster than parsing text, and equal: exponent 0, no rounding */
            PyObject *i = PyLong_FromLongLong(negative ? -(long long)mag : (long long)mag);
            if (i == NULL) {
                return NULL;
            }
            PyObject *r = PyObject_CallOneArg(Decimal_type, i);
            Py_DECREF(i);
            if (r == NULL) {
                fail_from(&d->c, NULL);
            }
            return r;
        }
        char digits[48];
        int ndigits = 0;
        do {
            digits[ndigits++] = (char)('0' + (int)(mag % 10));
            mag /= 10;
        } while (mag != 0);
        if (ndigits <= n->precision) {
            char text[64];
            int t = 0;
            if (negative) {
                text[t++] = '-';
            }
            while (ndigits > 0) {
                text[t++] = digits[--ndigits];
            }
            t += snprintf(text + t, sizeof(text) - (size_t)t, "E-%d", n->scale);
            PyObject *s = PyUnicode_FromStringAndSize(text, t);
            if (s == NULL) {
                return NULL;
            }
            PyObject *r = PyObject_CallOneArg(Decimal_type, s);
            Py_DECREF(s);
            if (r == NULL) {
                fail_from(&d->c, NULL);
            }
            return r;
        }
    }
    if (n->reader == NULL) {
        fail(&d->c, PyExc_ValueError, "no reader for the decimal %U", n->name);
        return NULL;
    }
    PyObject *raw = PyBytes_FromStringAndSize((const char *)b, len);
    if (raw == NULL) {
        return NULL;
    }
    return call_reader(d, n, raw);
}

static PyObject *read_node(DecoderObject *e, DCtx *d, int ni);

static inline int
enter_decode(DCtx *d)
{
    if (++d->c.nesting > MAX_NESTING) {
        d->c.nesting--;
        return fail(&d->c, PyExc_ValueError, "the value is nested deeper than %d levels", MAX_NESTING);
    }
    return 0;
}

/* The item count of the next array or map block (0 at the end); a negative count is followed by the
 * block's size in bytes, which is read and not used (as fastavro does). */
static int
read_block_count(DCtx *d, Py_ssize_t item_min_size, int64_t *count, const char *what)
{
    Py_ssize_t at = offset_of(d);
    if (read_long(d, count) < 0) {
        return -1;
    }
    if (*count < 0) {
        int64_t size;
        if (*count == INT64_MIN) {
            return fail(&d->c, PyExc_ValueError, "%s block count at byte %zd is out of range", what, at);
        }
        *count = -*count;
        if (read_long(d, &size) < 0) {
            return -1;
        }
    }
    Py_ssize_t left = (Py_ssize_t)(d->end - d->p);
    if (item_min_size > 0) {
        if (*count > (int64_t)(left / item_min_size)) {
            return fail(&d->c, PyExc_ValueError,
                        "%s block of %lld items at byte %zd cannot fit in the %zd bytes left", what,
                        (long long)*count, at, left);
        }
    } else {
        if (*count > (int64_t)(MAX_EMPTY_ITEMS - d->empty_items)) {
            return fail(&d->c, PyExc_ValueError,
                        "%s block of %lld items at byte %zd: more than %d empty items", what,
                        (long long)*count, at, MAX_EMPTY_ITEMS);
        }
        d->empty_items += (Py_ssize_t)*count;
    }
    return 0;
}

static PyObject *
read_array(DecoderObject *e, DCtx *d, Node *n)
{
    int item = n->children[0];
    Py_ssize_t item_min = e->nodes[item].min_size;
    PyObject *list = PyList_New(0);
    if (list == NULL) {
        return NULL;
    }
    Py_ssize_t index = 0;
    for (;;) {
        int64_t count;
        if (read_block_count(d, item_min, &count, "an array") < 0) {
            goto error;
        }
        if (count == 0) {
            return list;
        }
        for (int64_t i = 0; i < count; i++, index++) {
            path_push_index(&d->c, index);
            PyObject *v = read_node(e, d, item);
            PATH_POP(&d->c);
            if (v == NULL) {
                goto error;
            }
            int r = PyList_Append(list, v);
            Py_DECREF(v);
            if (r < 0) {
                goto error;
            }
        }
    }
error:
    Py_DECREF(list);
    return NULL;
}

static PyObject *
read_map(DecoderObject *e, DCtx *d, Node *n)
{
    int value_node = n->children[0];
    Py_ssize_t entry_min = 1 + e->nodes[value_node].min_size; /* the key's length byte */
    PyObject *dict = PyDict_New();
    if (dict == NULL) {
        return NULL;
    }
    for (;;) {
        int64_t count;
        if (read_block_count(d, entry_min, &count, "a map") < 0) {
            goto error;
        }
        if (count == 0) {
            return dict;
        }
        for (int64_t i = 0; i < count; i++) {
            PyObject *key = read_string(d);
            if (key == NULL) {
                goto error;
            }
            path_push_key(&d->c, key);
            PyObject *v = read_node(e, d, value_node);
            PATH_POP(&d->c);
            int r = v == NULL ? -1 : PyDict_SetItem(dict, key, v);
            Py_DECREF(key);
            Py_XDECREF(v);
            if (r < 0) {
                goto error;
            }
        }
    }
error:
    Py_DECREF(dict);
    return NULL;
}

/* A dict with room for size keys: one allocation instead of growing while the fields are added. */
static inline PyObject *
new_dict(Py_ssize_t size)
{
#if PY_VERSION_HEX < 0x030D0000
    return _PyDict_NewPresized(size);
#else
    (void)size;
    return PyDict_New();
#endif
}

static PyObject *
read_record(DecoderObject *e, DCtx *d, Node *n)
{
    PyObject *dict = new_dict(n->nfields);
    if (dict == NULL) {
        return NULL;
    }
    for (Py_ssize_t i = 0; i < n->nfields; i++) {
        Field *f = &n->fields[i];
        path_push_field(&d->c, f->name);
        PyObject *v = read_node(e, d, f->node);
        PATH_POP(&d->c);
        if (v == NULL) {
            Py_DECREF(dict);
            return NULL;
        }
        int r = PyDict_SetItem(dict, f->name, v);
        Py_DECREF(v);
        if (r < 0) {
            Py_DECREF(dict);
            return NULL;
        }
    }
    return dict;
}

/* A node whose logical type is converted in C, straight from the bytes. */
static PyObject *
read_logical(DCtx *d, Node *n)
{
    int64_t v;
    Py_ssize_t len;
    const unsigned char *b;
    switch (n->logical) {
    case LT_DATE:
        return read_long(d, &v) < 0 ? NULL : date_from_days(d, v);
    case LT_TS_MILLIS:
        if (read_long(d, &v) < 0) {
            return NULL;
        }
        if (v < MIN_MICROS / 1000 || v > MAX_MICROS / 1000) {
            fail(&d->c, PyExc_ValueError, "timestamp %lld ms from 1970-01-01 is outside years 1 to 9999",
                 (long long)v);
            return NULL;
        }
        return datetime_from_micros(d, v * 1000);
    case LT_TS_MICROS:
        return read_long(d, &v) < 0 ? NULL : datetime_from_micros(d, v);
    case LT_DECIMAL:
        if (read_length(d, &len, "a decimal") < 0) {
            return NULL;
        }
        b = d->p;
        d->p += len;
        return decimal_from_bytes(d, n, b, len);
    case LT_FIXED_DECIMAL:
        if (need(d, n->size, "a fixed decimal") < 0) {
            return NULL;
        }
        b = d->p;
        d->p += n->size;
        return decimal_from_bytes(d, n, b, n->size);
    default:
        fail(&d->c, PyExc_ValueError, "corrupt decoder program (logical type %d)", n->logical);
        return NULL;
    }
}

static PyObject *
read_node(DecoderObject *e, DCtx *d, int ni)
{
    Node *n = &e->nodes[ni];
    PyObject *r;
    int64_t v;
    Py_ssize_t len;
    if (n->c_logical) {
        return read_logical(d, n);
    }
    switch (n->op) {
    case OP_STRING:
        r = read_string(d);
        break;
    case OP_INT:
    case OP_LONG:
        r = read_long(d, &v) < 0 ? NULL : PyLong_FromLongLong(v);
        break;
    case OP_NULL:
        r = Py_None;
        Py_INCREF(r);
        break;
    case OP_BOOLEAN:
        if (need(d, 1, "a boolean") < 0) {
            return NULL;
        }
        r = *d->p++ != 0 ? Py_True : Py_False; /* fastavro: any byte but 0 is true */
        Py_INCREF(r);
        break;
    case OP_FLOAT: {
        if (need(d, 4, "a float") < 0) {
            return NULL;
        }
        const unsigned char *p = d->p;
        union {
            float f;
            uint32_t u;
        } bits;
        bits.u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
        d->p += 4;
        r = PyFloat_FromDouble((double)bits.f);
        break;
    }
    case OP_DOUBLE: {
        if (need(d, 8, "a double") < 0) {
            return NULL;
        }
        union {
            double f;
            uint64_t u;
        } bits;
        bits.u = 0;
        for (int i = 7; i >= 0; i--) {
            bits.u = (bits.u << 8) | d->p[i];
        }
        d->p += 8;
        r = PyFloat_FromDouble(bits.f);
        break;
    }
    case OP_BYTES:
        if (read_length(d, &len, "bytes") < 0) {
            return NULL;
        }
        r = PyBytes_FromStringAndSize((const char *)d->p, len);
        d->p += len;
        break;
    case OP_FIXED:
        if (need(d, n->size, "a fixed") < 0) {
            return NULL;
        }
        r = PyBytes_FromStringAndSize((const char *)d->p, n->size);
        d->p += n->size;
        break;
    case OP_ENUM: {
        Py_ssize_t at = offset_of(d);
        if (read_long(d, &v) < 0) {
            return NULL;
        }
        if (v < 0 || v >= (int64_t)n->nsymbols) {
            fail(&d->c, PyExc_ValueError, "enum index %lld at byte %zd is not a symbol of %U (%zd symbols)",
                 (long long)v, at, n->name, n->nsymbols);
            return NULL;
        }
        r = n->symbol_list[v];
        Py_INCREF(r);
        break;
    }
    case OP_UNION: {
        Py_ssize_t at = offset_of(d);
        if (read_long(d, &v) < 0) {
            return NULL;
        }
        if (v < 0 || v >= (int64_t)n->nchildren) {
            fail(&d->c, PyExc_ValueError, "union index %lld at byte %zd is not a branch of %U (%zd branches)",
                 (long long)v, at, n->name, n->nchildren);
            return NULL;
        }
        if (enter_decode(d) < 0) {
            return NULL;
        }
        r = read_node(e, d, n->children[v]);
        LEAVE(&d->c);
        break;
    }
    case OP_RECORD:
    case OP_ARRAY:
    case OP_MAP:
        if (enter_decode(d) < 0) {
            return NULL;
        }
        if (n->op == OP_RECORD) {
            r = read_record(e, d, n);
        } else if (n->op == OP_ARRAY) {
            r = read_array(e, d, n);
        } else {
            r = read_map(e, d, n);
        }
        LEAVE(&d->c);
        break;
    default:
        fail(&d->c, PyExc_ValueError, "corrupt decoder program (op %d)", n->op);
        return NULL;
    }
    if (r != NULL && n->reader != NULL) {
        return call_reader(d, n, r);
    }
    return r;
}

/* The fewest bytes a value of each node takes, for refusing array/map counts that cannot fit: a fixed
 * point from below (so a lower bound at every step), recursive records included. */
static void
compute_min_sizes(Node *nodes, Py_ssize_t nnodes)
{
    for (Py_ssize_t i = 0; i < nnodes; i++) {
        Node *n = &nodes[i];
        switch (n->op) {
        case OP_NULL:
        case OP_RECORD:
            n->min_size = 0;
            break;
        case OP_FLOAT:
            n->min_size = 4;
            break;
        case OP_DOUBLE:
            n->min_size = 8;
            break;
        case OP_FIXED:
            n->min_size = n->size < MIN_SIZE_CAP ? n->size : MIN_SIZE_CAP;
            break;
        default:
            n->min_size = 1; /* a byte, a varint, a length, a union index or a block count */
        }
    }
    for (Py_ssize_t pass = 0; pass <= nnodes; pass++) {
        int changed = 0;
        for (Py_ssize_t i = 0; i < nnodes; i++) {
            Node *n = &nodes[i];
            if (n->op != OP_RECORD) {
                continue;
            }
            Py_ssize_t sum = 0;
            for (Py_ssize_t j = 0; j < n->nfields; j++) {
                sum += nodes[n->fields[j].node].min_size;
                if (sum > MIN_SIZE_CAP) {
                    sum = MIN_SIZE_CAP;
                }
            }
            if (sum != n->min_size) {
                n->min_size = sum;
                changed = 1;
            }
        }
        if (!changed) {
            break;
        }
    }
}

/* logical: per node None, or (reader, in_c): fastavro's LOGICAL_READERS function for the node's type,
 * and whether the conversion may be done in C (only for fastavro's own date, timestamp and decimal). */
static int
load_readers(Node *nodes, Py_ssize_t nnodes, PyObject *logical)
{
    if (!PyTuple_Check(logical) || PyTuple_GET_SIZE(logical) != nnodes) {
        PyErr_SetString(PyExc_ValueError, "decoder program: one logical entry per node is needed");
        return -1;
    }
    for (Py_ssize_t i = 0; i < nnodes; i++) {
        Node *n = &nodes[i];
        PyObject *entry = PyTuple_GET_ITEM(logical, i);
        if (entry == Py_None) {
            continue;
        }
        PyObject *reader;
        int in_c;
        if (!PyTuple_Check(entry) ||
            !PyArg_ParseTuple(entry, "Op;decoder program: malformed logical entry", &reader, &in_c)) {
            if (!PyErr_Occurred()) {
                PyErr_SetString(PyExc_TypeError, "decoder program: a logical entry must be a tuple");
            }
            return -1;
        }
        if (!PyCallable_Check(reader)) {
            PyErr_SetString(PyExc_TypeError, "decoder program: a logical reader must be callable");
            return -1;
        }
        Py_INCREF(reader);
        n->reader = reader;
        int timestamp = n->logical == LT_TS_MILLIS || n->logical == LT_TS_MICROS;
        n->c_logical = in_c && ((n->logical == LT_DATE && n->op == OP_INT) ||
                                (timestamp && n->op == OP_LONG) ||
                                (n->logical == LT_DECIMAL && n->op == OP_BYTES) ||
                                (n->logical == LT_FIXED_DECIMAL && n->op == OP_FIXED));
    }
    return 0;
}

static int
Decoder_init(DecoderObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"program", "root", "logical", "trailing_error", NULL};
    PyObject *program, *logical, *trailing_error;
    int root;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!iO!O:Decoder", kwlist, &PyTuple_Type, &program, &root,
                                     &PyTuple_Type, &logical, &trailing_error)) {
        return -1;
    }
    if (self->nodes != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Decoder is already initialised");
        return -1;
    }
    if (!PyType_Check(trailing_error) ||
        !PyType_IsSubtype((PyTypeObject *)trailing_error, (PyTypeObject *)PyExc_ValueError)) {
        PyErr_SetString(PyExc_TypeError, "trailing_error must be a subclass of ValueError");
        return -1;
    }
    Node *nodes;
    Py_ssize_t nnodes;
    int loaded_root;
    if (load_program(program, root, &nodes, &nnodes, &loaded_root) < 0) {
        return -1;
    }
    if (load_readers(nodes, nnodes, logical) < 0) {
        free_program(nodes, nnodes);
        return -1;
    }
    compute_min_sizes(nodes, nnodes);
    Py_INCREF(trailing_error);
    self->trailing_error = trailing_error;
    self->nodes = nodes;
    self->nnodes = nnodes;
    self->root = loaded_root;
    return 0;
}

static PyObject *
Decoder_decode(DecoderObject *self, PyObject *body)
{
    if (self->nodes == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Decoder was not initialised");
        return NULL;
    }
    Py_buffer view;
    int has_view = 0;
    DCtx d;
    if (PyBytes_CheckExact(body)) {
        d.start = (const unsigned char *)PyBytes_AS_STRING(body);
        d.end = d.start + PyBytes_GET_SIZE(body);
    } else {
        if (PyUnicode_Check(body) || PyObject_GetBuffer(body, &view, PyBUF_SIMPLE) < 0) {
            if (!PyErr_Occurred()) {
                PyErr_Format(PyExc_TypeError, "expected a bytes-like body, got %s", type_name(body));
            }
            return NULL;
        }
        has_view = 1;
        d.start = (const unsigned char *)view.buf;
        d.end = d.start + view.len;
    }
    d.p = d.start;
    d.empty_items = 0;
    d.c.depth = 0;
    d.c.nesting = 0;
    PyObject *result = read_node(self, &d, self->root);
    if (result != NULL && d.p != d.end) {
        Py_CLEAR(result);
        PyErr_Format(self->trailing_error, "%zd trailing bytes after the Avro body",
                     (Py_ssize_t)(d.end - d.p));
    }
    if (has_view) {
        PyBuffer_Release(&view);
    }
    return result;
}

static int
Decoder_traverse(DecoderObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->trailing_error);
    return traverse_program(self->nodes, self->nnodes, visit, arg);
}

static int
Decoder_clear(DecoderObject *self)
{
    free_program(self->nodes, self->nnodes);
    self->nodes = NULL;
    self->nnodes = 0;
    Py_CLEAR(self->trailing_error);
    return 0;
}

static void
Decoder_dealloc(DecoderObject *self)
{
    PyObject_GC_UnTrack(self);
    Decoder_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Decoder_get_nodes(DecoderObject *self, void *closure)
{
    return PyLong_FromSsize_t(self->nnodes);
}

static PyMethodDef Decoder_methods[] = {
    {"decode", (PyCFunction)Decoder_decode, METH_O,
     "decode(body) -> value: the value of an Avro binary body (bytes-like); ValueError when it is not one."},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef Decoder_getset[] = {
    {"accelerated", (getter)Encoder_get_accelerated, NULL, "True: this decoder runs in C.", NULL},
    {"nodes", (getter)Decoder_get_nodes, NULL, "Number of nodes in the compiled program.", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyTypeObject DecoderType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "schemas._avro_fast.Decoder",
    .tp_basicsize = sizeof(DecoderObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "Decoder(program, root, logical, trailing_error): an Avro binary decoder for one schema.",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Decoder_init,
    .tp_dealloc = (destructor)Decoder_dealloc,
    .tp_traverse = (traverseproc)Decoder_traverse,
    .tp_clear = (inquiry)Decoder_clear,
    .tp_methods = Decoder_methods,
    .tp_getset = Decoder_getset,
};

/* ------------------------------------------------------------------------------------------------ */
/* new_event_id                                                                                     */

#define RANDOM_POOL 4096 /* 256 ids per os.urandom call */

static unsigned char random_pool[RANDOM_POOL];
static Py_ssize_t random_pos = RANDOM_POOL;

#ifndef _WIN32
static void
discard_pool_in_child(void)
{
    /* a forked child must not hand out the ids its parent will also hand out */
    random_pos = RANDOM_POOL;
    memset(random_pool, 0, sizeof(random_pool));
}
#endif

static int
refill_pool(void)
{
    PyObject *fresh = PyObject_CallFunction(urandom_func, "n", (Py_ssize_t)RANDOM_POOL);
    if (fresh == NULL) {
        return -1;
    }
    if (!PyBytes_Check(fresh) || PyBytes_GET_SIZE(fresh) != RANDOM_POOL) {
        Py_DECREF(fresh);
        PyErr_SetString(PyExc_RuntimeError, "os.urandom returned an unexpected value");
        return -1;
    }
    memcpy(random_pool, PyBytes_AS_STRING(fresh), RANDOM_POOL);
    Py_DECREF(fresh);
    random_pos = 0;
    return 0;
}

static PyObject *
new_event_id(PyObject *module, PyObject *unused)
{
    static const char hex[] = "0123456789abcdef";
    if (random_pos + 16 > RANDOM_POOL && refill_pool() < 0) {
        return NULL;
    }
    unsigned char b[16];
    memcpy(b, random_pool + random_pos, 16);
    memset(random_pool + random_pos, 0, 16); /* an id's bytes are used once */
    random_pos += 16;
    /* Version 7 (RFC 9562): the first 48 bits are the Unix time in milliseconds, so ids grow with
     * time and a consumer's index of applied ids grows at its end instead of everywhere. */
    struct timespec now;
    uint64_t ms = 0;
    if (timespec_get(&now, TIME_UTC) == TIME_UTC) {
        ms = (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
    }
    for (int i = 0; i < 6; i++) {
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    }
    b[6] = (unsigned char)((b[6] & 0x0F) | 0x70); /* version 7 */
    b[8] = (unsigned char)((b[8] & 0x3F) | 0x80); /* RFC 4122 variant */
    PyObject *text = PyUnicode_New(36, 127);
    if (text == NULL) {
        return NULL;
    }
    Py_UCS1 *out = PyUnicode_1BYTE_DATA(text);
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) {
            out[o++] = '-';
        }
        out[o++] = (Py_UCS1)hex[b[i] >> 4];
        out[o++] = (Py_UCS1)hex[b[i] & 0x0F];
    }
    return text;
}

/* ------------------------------------------------------------------------------------------------ */
/* module                                                                                           */

static PyMethodDef module_methods[] = {
    {"new_event_id", (PyCFunction)new_event_id, METH_NOARGS,
     "new_event_id() -> str: a version-7 UUID (time-ordered), e.g. '019adb3c-5e2f-7d3b-883f-0016d3cca427'."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "schemas._avro_fast",
    .m_doc = "Avro binary encoding driven by a program compiled per schema (see schemas.fast_encoder).",
    .m_size = -1,
    .m_methods = module_methods,
};

static PyObject *
import_attr(const char *module, const char *attr)
{
    PyObject *m = PyImport_ImportModule(module);
    if (m == NULL) {
        return NULL;
    }
    PyObject *a = PyObject_GetAttrString(m, attr);
    Py_DECREF(m);
    return a;
}

PyMODINIT_FUNC
PyInit__avro_fast(void)
{
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) {
        return NULL;
    }
    if ((Decimal_type = import_attr("decimal", "Decimal")) == NULL ||
        (Integral_abc = import_attr("numbers", "Integral")) == NULL ||
        (Real_abc = import_attr("numbers", "Real")) == NULL ||
        (Mapping_abc = import_attr("collections.abc", "Mapping")) == NULL ||
        (Sequence_abc = import_attr("collections.abc", "Sequence")) == NULL ||
        (array_type = import_attr("array", "array")) == NULL ||
        (urandom_func = import_attr("os", "urandom")) == NULL ||
        (str_as_tuple = PyUnicode_InternFromString("as_tuple")) == NULL ||
        (str_utcoffset = PyUnicode_InternFromString("utcoffset")) == NULL) {
        return NULL;
    }
    if (PyType_Ready(&EncoderType) < 0 || PyType_Ready(&DecoderType) < 0) {
        return NULL;
    }
#ifndef _WIN32
    static int atfork_registered = 0;
    if (!atfork_registered) {
        if (pthread_atfork(NULL, NULL, discard_pool_in_child) != 0) {
            PyErr_SetString(PyExc_RuntimeError, "pthread_atfork failed");
            return NULL;
        }
        atfork_registered = 1;
    }
#endif
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&EncoderType);
    if (PyModule_AddObject(m, "Encoder", (PyObject *)&EncoderType) < 0) {
        Py_DECREF(&EncoderType);
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&DecoderType);
    if (PyModule_AddObject(m, "Decoder", (PyObject *)&DecoderType) < 0) {
        Py_DECREF(&DecoderType);
        Py_DECREF(m);
        return NULL;
    }
    if (PyModule_AddIntConstant(m, "PROGRAM_FORMAT", PROGRAM_FORMAT) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
