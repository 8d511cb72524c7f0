/* tickpipe._hot: the compiled hot path of the pure core (plain CPython C API, no build
 * dependency but a C compiler and the Python headers).
 *
 * Every function here is a faster twin of a pure-Python function that stays the reference
 * (tickpipe/protocol/book.py, frames.py, venues/okx/checksum.py, venues/kraken/checksum.py).
 * A twin either gives exactly the reference's result or declines (returns None), and the
 * caller then runs the reference: the compiled path never invents its own error messages or
 * its own edge cases. tests/protocol/test_hot_differential.py drives both with the same inputs.
 *
 *   parse_side(levels, price_decimals, size_decimals, tick_units, lot_units)
 *       [[price, size], ...] texts -> [(price_units, size_units), ...], or None when any level
 *       is not a well-formed, on-grid level whose units fit in 63 bits (frames.parse_levels).
 *   side_apply(levels_dict, prices_list, descending, updates) -> bool
 *       BookSide.apply on the same dict and sorted list; True when a change touched the top 10.
 *   apply_texts(bid_levels, bid_prices, ask_levels, ask_prices, raw_bids, raw_asks, ...)
 *       parse_side of both sides then side_apply of each in one call (OrderBook.apply_texts),
 *       None with the book untouched when either side is declined; optionally the VTS/1
 *       CRC of the book after it, in the same call (OrderBook.apply_texts_checksum).
 *   top_text(bid_levels, bid_prices, ask_levels, ask_prices, price_decimals, size_decimals,
 *            depth, style) -> bytes | None
 *   top_crc(... same ...) -> int | None
 *       The checksum text of a book's top ``depth`` levels, or its CRC-32 (unsigned):
 *       style 0 = VTS/1 (fixed point, bid0:ask0:bid1:...), 1 = OKX (shortest decimal text,
 *       interleaved), 2 = Kraken (asks then bids, the units' digits, no separators).
 *   crc32(data) -> int       the same CRC-32 as zlib.crc32 (tests check them against each other)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>

#define HOT_ABI 3               /* tickpipe.hotpath refuses a build of another ABI */
#define CHECKSUM_DEPTH 10       /* book.CHECKSUM_DEPTH: the top levels the VTS/1 CRC covers */
#define MAX_DEPTH 64            /* top_text/top_crc: deeper asks are declined */
#define MAX_DIGITS 18           /* 10**18 < 2**63: parsed units always fit in int64 */
#define NUM_BUF 48              /* one formatted number: 19 digits, a point, padding zeros */
#define TEXT_BUF (MAX_DEPTH * 2 * (2 * NUM_BUF + 1))

/* CRC-32 (IEEE 802.3, reflected, as zlib.crc32), slicing by 8: eight bytes a step through
 * eight 256-entry tables. A byte-at-a-time table took 0.75 µs for the ~300 bytes of a VTS/1
 * top-10 text against zlib's 0.23; slicing by 8 is on a par with zlib without linking it (a
 * fresh machine has no zlib headers). */
static uint32_t crc_table[8][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
}

static uint32_t crc_update(uint32_t crc, const unsigned char *p, Py_ssize_t n) {
    crc = ~crc;
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 |
                      (uint32_t)p[7] << 24;
        crc = crc_table[7][lo & 0xFF] ^ crc_table[6][(lo >> 8) & 0xFF] ^
              crc_table[5][(lo >> 16) & 0xFF] ^ crc_table[4][lo >> 24] ^
              crc_table[3][hi & 0xFF] ^ crc_table[2][(hi >> 8) & 0xFF] ^
              crc_table[1][(hi >> 16) & 0xFF] ^ crc_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n-- > 0) crc = crc_table[0][(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

static const int64_t POW10[MAX_DIGITS + 1] = {
    1LL, 10LL, 100LL, 1000LL, 10000LL, 100000LL, 1000000LL, 10000000LL, 100000000LL,
    1000000000LL, 10000000000LL, 100000000000LL, 1000000000000LL, 10000000000000LL,
    100000000000000LL, 1000000000000000LL, 10000000000000000LL, 100000000000000000LL,
    1000000000000000000LL};

/* -- fast-call arguments: what PyArg_ParseTuple checks, without building a tuple ------ */

static int check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t want) {
    if (nargs == want) return 1;
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, want, nargs);
    return 0;
}

static int want_type(const char *name, PyObject *obj, PyTypeObject *type, int pos) {
    if (PyObject_TypeCheck(obj, type)) return 1;
    PyErr_Format(PyExc_TypeError, "%s() argument %d must be %s, not %.50s", name, pos + 1,
                 type->tp_name, Py_TYPE(obj)->tp_name);
    return 0;
}

static int int_arg(const char *name, PyObject *obj, int pos, int *out) {
    if (!PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s() argument %d must be int, not %.50s", name, pos + 1,
                     Py_TYPE(obj)->tp_name);
        return 0;
    }
    long v = PyLong_AsLong(obj);
    if (v == -1 && PyErr_Occurred()) return 0;
    if (v < INT_MIN || v > INT_MAX) {
        PyErr_Format(PyExc_OverflowError, "%s() argument %d is out of range", name, pos + 1);
        return 0;
    }
    *out = (int)v;
    return 1;
}

/* -- parsing: instruments.parse_units, restricted to what fits in int64 ------------------ */

/* 1 and *out on success; 0 when the text is not one the fast path takes (malformed, off the
 * grid of ``decimals``, or too many digits): the caller then defers to the reference. */
static int parse_units(PyObject *obj, int decimals, int64_t *out) {
    if (!PyUnicode_CheckExact(obj) || !PyUnicode_IS_ASCII(obj)) return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(obj);
    const char *s = (const char *)PyUnicode_1BYTE_DATA(obj);
    Py_ssize_t i = 0;
    int64_t v = 0;
    int digits = 0;
    while (i < n && s[i] >= '0' && s[i] <= '9') {
        if (v || s[i] != '0') {
            if (++digits > MAX_DIGITS) return 0;
        }
        v = v * 10 + (s[i] - '0');
        i++;
    }
    if (i == 0) return 0; /* no whole part: "", ".5", "-1", " 1" */
    int frac = 0;
    if (i < n) {
        if (s[i] != '.') return 0;
        i++;
        if (i == n) return 0; /* "1." */
        while (i < n) {
            char c = s[i];
            if (c < '0' || c > '9') return 0;
            if (frac < decimals) {
                if (v || c != '0') {
                    if (++digits > MAX_DIGITS) return 0;
                }
                v = v * 10 + (c - '0');
                frac++;
            } else if (c != '0') {
                return 0; /* a non-zero digit beyond the grid's decimals */
            }
            i++;
        }
    }
    int pad = decimals - frac;
    if (pad > 0) {
        if (digits + pad > MAX_DIGITS && v) return 0;
        v *= POW10[pad];
    }
    *out = v;
    return 1;
}

/* One level [price, size] (a list or tuple of two str) on the grid: 1 and *p, *s, or 0 to
 * decline (anything frames.parse_levels might refuse, or units beyond 63 bits). */
static int parse_level(PyObject *lv, int pd, int sd, int64_t tick, int64_t lot, int64_t *p,
                       int64_t *s) {
    PyObject *ps, *ss;
    if (PyTuple_CheckExact(lv) && PyTuple_GET_SIZE(lv) == 2) {
        ps = PyTuple_GET_ITEM(lv, 0);
        ss = PyTuple_GET_ITEM(lv, 1);
    } else if (PyList_CheckExact(lv) && PyList_GET_SIZE(lv) == 2) {
        ps = PyList_GET_ITEM(lv, 0);
        ss = PyList_GET_ITEM(lv, 1);
    } else {
        return 0;
    }
    if (!parse_units(ps, pd, p) || *p == 0 || *p % tick) return 0;
    if (!parse_units(ss, sd, s) || *s % lot) return 0;
    return 1;
}

/* The grid arguments shared by parse_side and apply_texts: 1, or 0 to decline, -1 on error. */
static int grid_args(int pd, int sd, PyObject *tick_obj, PyObject *lot_obj, int64_t *tick,
                     int64_t *lot) {
    int overflow_t = 0, overflow_l = 0;
    long long t = PyLong_AsLongLongAndOverflow(tick_obj, &overflow_t);
    long long l = PyLong_AsLongLongAndOverflow(lot_obj, &overflow_l);
    if (PyErr_Occurred()) return -1;
    if (overflow_t || overflow_l) return 0;
    if (pd < 0 || sd < 0 || pd > MAX_DIGITS || sd > MAX_DIGITS || t <= 0 || l <= 0) return 0;
    *tick = t;
    *lot = l;
    return 1;
}

static PyObject *pair_of(int64_t p, int64_t s) {
    PyObject *po = PyLong_FromLongLong(p);
    if (po == NULL) return NULL;
    PyObject *so = PyLong_FromLongLong(s);
    if (so == NULL) {
        Py_DECREF(po);
        return NULL;
    }
    PyObject *pair = PyTuple_New(2);
    if (pair == NULL) {
        Py_DECREF(po);
        Py_DECREF(so);
        return NULL;
    }
    PyTuple_SET_ITEM(pair, 0, po);
    PyTuple_SET_ITEM(pair, 1, so);
    return pair;
}

static PyObject *hot_parse_side(PyObject *self, PyObject *args) {
    PyObject *levels, *tick_obj, *lot_obj;
    int pd, sd;
    int64_t tick, lot;
    if (!PyArg_ParseTuple(args, "OiiOO:parse_side", &levels, &pd, &sd, &tick_obj, &lot_obj))
        return NULL;
    int g = grid_args(pd, sd, tick_obj, lot_obj, &tick, &lot);
    if (g < 0) return NULL;
    if (g == 0 || !PyList_CheckExact(levels)) Py_RETURN_NONE;
    Py_ssize_t n = PyList_GET_SIZE(levels);
    PyObject *out = PyList_New(n);
    if (out == NULL) return NULL;
    for (Py_ssize_t k = 0; k < n; k++) {
        int64_t p, s;
        if (!parse_level(PyList_GET_ITEM(levels, k), pd, sd, tick, lot, &p, &s)) {
            Py_DECREF(out);
            Py_RETURN_NONE;
        }
        PyObject *pair = pair_of(p, s);
        if (pair == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, k, pair);
    }
    return out;
}

/* -- the book side: BookSide.apply ----------------------------------------------------- */

/* bisect_left(prices, price): -1 with an exception set when a comparison fails */
static Py_ssize_t bisect_left(PyObject *prices, PyObject *price) {
    Py_ssize_t lo = 0, hi = PyList_GET_SIZE(prices);
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        PyObject *item = PyList_GET_ITEM(prices, mid);
        Py_INCREF(item);
        int lt = PyObject_RichCompareBool(item, price, Py_LT);
        Py_DECREF(item);
        if (lt < 0) return -1;
        if (lt)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* One (price, size) update; returns 1 when it touched the top 10, 0 when not, -1 on error. */
static int apply_one(PyObject *levels, PyObject *prices, int desc, PyObject *price,
                     PyObject *size) {
    Py_ssize_t n = PyList_GET_SIZE(prices);
    int nonzero = PyObject_IsTrue(size);
    if (nonzero < 0) return -1;
    if (nonzero) {
        PyObject *old = PyDict_GetItemWithError(levels, price); /* borrowed */
        if (old == NULL && PyErr_Occurred()) return -1;
        if (old != NULL) {
            int same = PyObject_RichCompareBool(old, size, Py_EQ);
            if (same < 0) return -1;
            if (same) return 0;
        }
        int is_new = old == NULL;
        if (PyDict_SetItem(levels, price, size) < 0) return -1;
        if (is_new) {
            Py_ssize_t i = bisect_left(prices, price);
            if (i < 0 || PyList_Insert(prices, i, price) < 0) return -1;
            Py_ssize_t rank = desc ? n - i : i;
            return rank < CHECKSUM_DEPTH;
        }
        if (n <= CHECKSUM_DEPTH) return 1;
        PyObject *edge = desc ? PyList_GET_ITEM(prices, n - CHECKSUM_DEPTH)
                              : PyList_GET_ITEM(prices, CHECKSUM_DEPTH - 1);
        Py_INCREF(edge);
        int top = PyObject_RichCompareBool(price, edge, desc ? Py_GE : Py_LE);
        Py_DECREF(edge);
        return top;
    }
    int present = PyDict_Contains(levels, price);
    if (present <= 0) return present;
    if (PyDict_DelItem(levels, price) < 0) return -1;
    Py_ssize_t i = bisect_left(prices, price);
    if (i < 0 || PyList_SetSlice(prices, i, i + 1, NULL) < 0) return -1;
    Py_ssize_t rank = desc ? n - 1 - i : i;
    return rank < CHECKSUM_DEPTH;
}

/* The interpreter's own ``price, size = u`` (set up in PyInit__hot): an update that is not an
 * exact tuple or list of two is unpacked by it, so its errors are the reference loop's
 * ("too many values to unpack (expected 2)", "cannot unpack non-iterable int object", ...)
 * on every Python version, never messages of our own. */
static PyObject *unpack_pair;

static const char UNPACK_SRC[] = "def unpack_pair(u):\n    p, s = u\n    return p, s\n";

/* One update of side_apply: 1 when it touched the top 10, 0 when not, -1 on error. */
static int apply_update(PyObject *levels, PyObject *prices, int desc, PyObject *u) {
    PyObject *price, *size, *pair = NULL;
    if (PyTuple_CheckExact(u) && PyTuple_GET_SIZE(u) == 2) {
        price = PyTuple_GET_ITEM(u, 0);
        size = PyTuple_GET_ITEM(u, 1);
    } else if (PyList_CheckExact(u) && PyList_GET_SIZE(u) == 2) {
        price = PyList_GET_ITEM(u, 0);
        size = PyList_GET_ITEM(u, 1);
    } else {
        pair = PyObject_CallOneArg(unpack_pair, u); /* always a tuple of two */
        if (pair == NULL) return -1;
        price = PyTuple_GET_ITEM(pair, 0);
        size = PyTuple_GET_ITEM(pair, 1);
    }
    Py_INCREF(price);
    Py_INCREF(size);
    Py_XDECREF(pair);
    int r = apply_one(levels, prices, desc, price, size);
    Py_DECREF(price);
    Py_DECREF(size);
    return r;
}

/* Iterates ``updates`` as the reference's ``for price, size in updates`` does: lazily, item by
 * item, so an iterator that fails half way leaves the updates before it applied, and the
 * errors are the interpreter's (``'int' object is not iterable``). On an error the levels
 * applied before it stay applied, as in the reference; the caller (BookSide.apply) then marks
 * the side's top as changed, since this function cannot return that flag with an error. */
static PyObject *hot_side_apply(PyObject *self, PyObject *args) {
    PyObject *levels, *prices, *updates;
    int desc;
    if (!PyArg_ParseTuple(args, "O!O!pO:side_apply", &PyDict_Type, &levels, &PyList_Type,
                          &prices, &desc, &updates))
        return NULL;
    int changed = 0;
    if (PyList_CheckExact(updates) || PyTuple_CheckExact(updates)) {
        /* the size is read again each time: a list may change under a comparison's __eq__ */
        for (Py_ssize_t k = 0; k < PySequence_Fast_GET_SIZE(updates); k++) {
            PyObject *u = PySequence_Fast_GET_ITEM(updates, k);
            Py_INCREF(u);
            int r = apply_update(levels, prices, desc, u);
            Py_DECREF(u);
            if (r < 0) return NULL;
            changed |= r;
        }
        return PyBool_FromLong(changed);
    }
    PyObject *it = PyObject_GetIter(updates);
    if (it == NULL) return NULL;
    PyObject *u;
    while ((u = PyIter_Next(it)) != NULL) {
        int r = apply_update(levels, prices, desc, u);
        Py_DECREF(u);
        if (r < 0) {
            Py_DECREF(it);
            return NULL;
        }
        changed |= r;
    }
    Py_DECREF(it);
    if (PyErr_Occurred()) return NULL;
    return PyBool_FromLong(changed);
}

#define MAX_FUSED 256 /* apply_texts: levels a side it takes; a longer delta is declined */

/* Parses a whole side into ``out`` (price, size pairs); its count, or -1 to decline. */
static Py_ssize_t parse_raw_side(PyObject *raw, int pd, int sd, int64_t tick, int64_t lot,
                                 int64_t *out) {
    if (!PyList_CheckExact(raw)) return -1;
    Py_ssize_t n = PyList_GET_SIZE(raw);
    if (n > MAX_FUSED) return -1;
    for (Py_ssize_t k = 0; k < n; k++)
        if (!parse_level(PyList_GET_ITEM(raw, k), pd, sd, tick, lot, &out[2 * k],
                         &out[2 * k + 1]))
            return -1;
    return n;
}

static int apply_parsed(PyObject *levels, PyObject *prices, int desc, const int64_t *lv,
                        Py_ssize_t n) {
    int changed = 0;
    for (Py_ssize_t k = 0; k < n; k++) {
        PyObject *price = PyLong_FromLongLong(lv[2 * k]);
        if (price == NULL) return -1;
        PyObject *size = PyLong_FromLongLong(lv[2 * k + 1]);
        if (size == NULL) {
            Py_DECREF(price);
            return -1;
        }
        int r = apply_one(levels, prices, desc, price, size);
        Py_DECREF(price);
        Py_DECREF(size);
        if (r < 0) return -1;
        changed |= r;
    }
    return changed;
}

/* -- checksum texts ------------------------------------------------------------------- */

enum { STYLE_VTS = 0, STYLE_OKX = 1, STYLE_KRAKEN = 2 };

static const char DIGIT_PAIRS[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Writes ``units`` with ``decimals`` digits after the point (style VTS), in shortest form
 * (OKX), or as plain digits (Kraken) at ``out``; returns the length, or -1 to decline
 * (not an exact int, negative, or too large for int64). */
static int format_units(PyObject *obj, int decimals, int style, char *out) {
    /* only an exact int: the reference writes str(units), which for a bool is "True" and for
     * an int subclass may be anything; such a level is the reference's to format */
    if (!PyLong_CheckExact(obj)) return -1;
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (overflow || v < 0 || (v == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        return -1;
    }
    char digits[24]; /* least significant first */
    int nd = 0;
    uint64_t u = (uint64_t)v;
    while (u >= 100) { /* two digits a division: half the divisions of one at a time */
        const char *pair = &DIGIT_PAIRS[2 * (u % 100)];
        digits[nd++] = pair[1];
        digits[nd++] = pair[0];
        u /= 100;
    }
    if (u >= 10) {
        const char *pair = &DIGIT_PAIRS[2 * u];
        digits[nd++] = pair[1];
        digits[nd++] = pair[0];
    } else {
        digits[nd++] = (char)('0' + u);
    }
    if (style == STYLE_KRAKEN || decimals == 0) {
        for (int k = 0; k < nd; k++) out[k] = digits[nd - 1 - k];
        return nd;
    }
    while (nd < decimals + 1) digits[nd++] = '0';
    int len = 0;
    for (int k = nd - 1; k >= decimals; k--) out[len++] = digits[k];
    int frac_end = 0; /* digits[frac_end..decimals-1] are written (least significant first) */
    if (style == STYLE_OKX) {
        while (frac_end < decimals && digits[frac_end] == '0') frac_end++;
        if (frac_end == decimals) return len; /* a whole number: no point */
    }
    out[len++] = '.';
    for (int k = decimals - 1; k >= frac_end; k--) out[len++] = digits[k];
    return len;
}

/* One level "price:size" (VTS, OKX) or "pricesize" (Kraken) at ``out``; -1 to decline. */
static int format_level(PyObject *levels, PyObject *price, int pd, int sd, int style, char *out) {
    PyObject *size = PyDict_GetItemWithError(levels, price);
    if (size == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_KeyError, "a book side's price list and levels disagree");
        return -2;
    }
    int a = format_units(price, pd, style, out);
    if (a < 0) return -1;
    if (style != STYLE_KRAKEN) out[a++] = ':';
    int b = format_units(size, sd, style, out + a);
    if (b < 0) return -1;
    return a + b;
}

/* the best ``k``-th price of a side (0 = best): bids from the end of the ascending list */
static inline PyObject *nth_best(PyObject *prices, Py_ssize_t k, int desc) {
    Py_ssize_t n = PyList_GET_SIZE(prices);
    return PyList_GET_ITEM(prices, desc ? n - 1 - k : k);
}

/* Builds the text of the top ``depth`` levels into ``buf``; returns its length, -1 to
 * decline, -2 on an error set. */
static Py_ssize_t build_text_of(PyObject *bl, PyObject *bp, PyObject *al, PyObject *ap, int pd,
                                int sd, int depth, int style, char *buf) {
    if (depth < 0 || depth > MAX_DEPTH || pd < 0 || sd < 0 || pd > 20 || sd > 20 || style < 0 ||
        style > STYLE_KRAKEN)
        return -1;
    Py_ssize_t nb = PyList_GET_SIZE(bp), na = PyList_GET_SIZE(ap);
    if (nb > depth) nb = depth;
    if (na > depth) na = depth;
    Py_ssize_t len = 0;
    if (style == STYLE_KRAKEN) { /* asks best first, then bids best first */
        for (Py_ssize_t k = 0; k < na; k++) {
            int w = format_level(al, nth_best(ap, k, 0), pd, sd, style, buf + len);
            if (w < 0) return w;
            len += w;
        }
        for (Py_ssize_t k = 0; k < nb; k++) {
            int w = format_level(bl, nth_best(bp, k, 1), pd, sd, style, buf + len);
            if (w < 0) return w;
            len += w;
        }
        return len;
    }
    Py_ssize_t both = nb < na ? nb : na;
    for (Py_ssize_t k = 0; k < both; k++) {
        if (len) buf[len++] = ':';
        int w = format_level(bl, nth_best(bp, k, 1), pd, sd, style, buf + len);
        if (w < 0) return w;
        len += w;
        buf[len++] = ':';
        w = format_level(al, nth_best(ap, k, 0), pd, sd, style, buf + len);
        if (w < 0) return w;
        len += w;
    }
    for (Py_ssize_t k = both; k < nb; k++) { /* the longer side's tail */
        if (len) buf[len++] = ':';
        int w = format_level(bl, nth_best(bp, k, 1), pd, sd, style, buf + len);
        if (w < 0) return w;
        len += w;
    }
    for (Py_ssize_t k = both; k < na; k++) {
        if (len) buf[len++] = ':';
        int w = format_level(al, nth_best(ap, k, 0), pd, sd, style, buf + len);
        if (w < 0) return w;
        len += w;
    }
    return len;
}

/* top_text / top_crc arguments (fast call: no argument tuple): 1, or 0 with an error set */
static int text_args(const char *name, PyObject *const *args, Py_ssize_t nargs, int *ints) {
    if (!check_nargs(name, nargs, 8)) return 0;
    for (int k = 0; k < 4; k++)
        if (!want_type(name, args[k], k % 2 ? &PyList_Type : &PyDict_Type, k)) return 0;
    for (int k = 0; k < 4; k++)
        if (!int_arg(name, args[4 + k], 4 + k, &ints[k])) return 0;
    return 1;
}

static PyObject *hot_top_text(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    int a[4];
    if (!text_args("top_text", args, nargs, a)) return NULL;
    char buf[TEXT_BUF];
    Py_ssize_t len = build_text_of(args[0], args[1], args[2], args[3], a[0], a[1], a[2], a[3], buf);
    if (len == -2) return NULL;
    if (len < 0) Py_RETURN_NONE;
    return PyBytes_FromStringAndSize(buf, len);
}

static PyObject *hot_top_crc(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    int a[4];
    if (!text_args("top_crc", args, nargs, a)) return NULL;
    char buf[TEXT_BUF];
    Py_ssize_t len = build_text_of(args[0], args[1], args[2], args[3], a[0], a[1], a[2], a[3], buf);
    if (len == -2) return NULL;
    if (len < 0) Py_RETURN_NONE;
    return PyLong_FromUnsignedLong(crc_update(0, (const unsigned char *)buf, len));
}

/* apply_texts(bid_levels, bid_prices, ask_levels, ask_prices, raw_bids, raw_asks,
 *             price_decimals, size_decimals, tick_units, lot_units, pending, want_crc)
 *     -> int | None
 * parse_side of both sides, then side_apply of each, in one call (fast call: no argument
 * tuple). None (the book untouched) when either side is declined. Else, without ``want_crc``:
 * bit 0 = a bid in the top 10 changed, bit 1 = an ask. With it: the VTS/1 CRC-32 of the book
 * after the delta when a top-10 level changed in it or ``pending`` (a change since the last
 * CRC) is true; -1 when neither (the last CRC stands); -2 when the CRC text is declined (the
 * caller takes the reference's, both tops changed). */
static PyObject *hot_apply_texts(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    static const char name[] = "apply_texts";
    if (!check_nargs(name, nargs, 12)) return NULL;
    for (int k = 0; k < 4; k++)
        if (!want_type(name, args[k], k % 2 ? &PyList_Type : &PyDict_Type, k)) return NULL;
    PyObject *bl = args[0], *bp = args[1], *al = args[2], *ap = args[3];
    int pd, sd;
    if (!int_arg(name, args[6], 6, &pd) || !int_arg(name, args[7], 7, &sd)) return NULL;
    int pending = PyObject_IsTrue(args[10]);
    int want_crc = PyObject_IsTrue(args[11]);
    if (pending < 0 || want_crc < 0) return NULL;
    int64_t tick, lot;
    int g = grid_args(pd, sd, args[8], args[9], &tick, &lot);
    if (g < 0) return NULL;
    if (g == 0) Py_RETURN_NONE;
    int64_t bids[2 * MAX_FUSED], asks[2 * MAX_FUSED];
    Py_ssize_t nb = parse_raw_side(args[4], pd, sd, tick, lot, bids);
    if (nb < 0) Py_RETURN_NONE;
    Py_ssize_t na = parse_raw_side(args[5], pd, sd, tick, lot, asks);
    if (na < 0) Py_RETURN_NONE;
    int cb = apply_parsed(bl, bp, 1, bids, nb);
    if (cb < 0) return NULL;
    int ca = apply_parsed(al, ap, 0, asks, na);
    if (ca < 0) return NULL;
    if (!want_crc) return PyLong_FromLong(cb | (ca << 1));
    if (!(cb | ca | pending)) return PyLong_FromLong(-1);
    char buf[TEXT_BUF];
    Py_ssize_t len = build_text_of(bl, bp, al, ap, pd, sd, CHECKSUM_DEPTH, STYLE_VTS, buf);
    if (len == -2) return NULL;
    if (len < 0) return PyLong_FromLong(-2);
    return PyLong_FromUnsignedLong(crc_update(0, (const unsigned char *)buf, len));
}

static PyObject *hot_crc32(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    uint32_t crc = crc_update(0, (const unsigned char *)view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(crc);
}

static PyMethodDef hot_methods[] = {
    {"parse_side", hot_parse_side, METH_VARARGS,
     "parse_side(levels, price_decimals, size_decimals, tick_units, lot_units) -> "
     "list[tuple[int, int]] | None"},
    {"side_apply", hot_side_apply, METH_VARARGS,
     "side_apply(levels, prices, descending, updates) -> bool (a top-10 level changed)"},
    {"apply_texts", (PyCFunction)(void (*)(void))hot_apply_texts, METH_FASTCALL,
     "apply_texts(bid_levels, bid_prices, ask_levels, ask_prices, raw_bids, raw_asks, pd, sd, "
     "tick_units, lot_units, pending, want_crc) -> int | None (flags, or the VTS/1 CRC)"},
    {"top_text", (PyCFunction)(void (*)(void))hot_top_text, METH_FASTCALL,
     "top_text(bid_levels, bid_prices, ask_levels, ask_prices, pd, sd, depth, style) -> "
     "bytes | None"},
    {"top_crc", (PyCFunction)(void (*)(void))hot_top_crc, METH_FASTCALL,
     "top_crc(bid_levels, bid_prices, ask_levels, ask_prices, pd, sd, depth, style) -> "
     "int | None"},
    {"crc32", hot_crc32, METH_O, "crc32(data) -> int, as zlib.crc32(data)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef hot_module = {
    PyModuleDef_HEAD_INIT, "tickpipe._hot",
    "The compiled hot path of tickpipe's core (see tickpipe.hotpath).", -1, hot_methods,
    NULL, NULL, NULL, NULL,
};

/* Compiles UNPACK_SRC into ``unpack_pair`` (once per process). */
static int init_unpack(void) {
    if (unpack_pair != NULL) return 0;
    PyObject *globals = PyDict_New();
    if (globals == NULL) return -1;
    PyObject *code = NULL, *res = NULL;
    if (PyDict_SetItemString(globals, "__builtins__", PyEval_GetBuiltins()) == 0 &&
        (code = Py_CompileString(UNPACK_SRC, "<tickpipe._hot>", Py_file_input)) != NULL &&
        (res = PyEval_EvalCode(code, globals, globals)) != NULL) {
        unpack_pair = PyDict_GetItemString(globals, "unpack_pair"); /* borrowed */
        Py_XINCREF(unpack_pair);
    }
    Py_XDECREF(res);
    Py_XDECREF(code);
    Py_DECREF(globals);
    if (unpack_pair == NULL && !PyErr_Occurred())
        PyErr_SetString(PyExc_ImportError, "tickpipe._hot: unpack_pair did not compile");
    return unpack_pair == NULL ? -1 : 0;
}

PyMODINIT_FUNC PyInit__hot(void) {
    crc_init();
    if (init_unpack() < 0) return NULL;
    PyObject *m = PyModule_Create(&hot_module);
    if (m == NULL) return NULL;
    if (PyModule_AddIntConstant(m, "ABI", HOT_ABI) < 0 ||
        PyModule_AddIntConstant(m, "STYLE_VTS", STYLE_VTS) < 0 ||
        PyModule_AddIntConstant(m, "STYLE_OKX", STYLE_OKX) < 0 ||
        PyModule_AddIntConstant(m, "STYLE_KRAKEN", STYLE_KRAKEN) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
