/* SPDX-License-Identifier: Apache-2.0 */
/* Calendar arithmetic and the literal syntaxes of IAM Conditions: RFC 3339
 * timestamps, date("YYYY-MM-DD"), Go-style durations and fixed time zones.
 * Pure integer code over explicit lengths: no libc time functions, no TZ
 * environment, no tzfile, so every function here is thread-safe and
 * allocation-free. Named IANA zones ("Europe/Berlin") are deliberately not
 * understood; see docs/internals/CONDITIONS.md. */
#include <stdint.h>
#include <string.h>
#include "iam/cond_int.h"

#define SECS_PER_DAY INT64_C(86400)

/* Floor division and modulo, because C's / truncates toward zero and
 * times before 1970 are negative. b > 0. */
static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    if ((a % b) != 0 && a < 0)
        q--;
    return q;
}

static int64_t floor_mod(int64_t a, int64_t b)
{
    return a - floor_div(a, b) * b;
}

static int is_leap(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int64_t y, int m)
{
    static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : dim[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil), exact for any year an int64 day count can hold. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400);
    int64_t yoe = y - era * 400;                                   /* [0, 399] */
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;           /* [0, 146096] */
    return era * 146097 + doe - 719468;
}

/* The inverse: year, month 1-12 and day 1-31 of a day number. */
static void civil_from_days(int64_t z, int64_t *y_out, int *m_out, int *d_out)
{
    z += 719468;
    int64_t era = floor_div(z, 146097);
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int d = (int)(doy - (153 * mp + 2) / 5 + 1);
    int m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y_out = yoe + era * 400 + (m <= 2);
    *m_out = m;
    *d_out = d;
}

/* Reads exactly n decimal digits at s; -1 if any is not a digit. */
static int64_t digits(const char *s, size_t n)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int in_range(int64_t sec)
{
    return sec >= COND_TS_MIN_SEC && sec <= COND_TS_MAX_SEC;
}

/* "YYYY-MM-DD" at s (10 bytes, caller checked) -> days since the epoch. */
static int parse_ymd(const char *s, int64_t *days_out)
{
    if (s[4] != '-' || s[7] != '-')
        return -1;
    int64_t y = digits(s, 4), m = digits(s + 5, 2), d = digits(s + 8, 2);
    if (y < 0 || m < 1 || m > 12 || d < 1 || d > days_in_month(y, (int)m))
        return -1;
    *days_out = days_from_civil(y, (int)m, (int)d);
    return 0;
}

/* RFC 3339 as Go's time.Parse(time.RFC3339) takes it, which is what cel-go
 * uses: YYYY-MM-DDTHH:MM:SS, an optional '.' and fraction (digits past the
 * ninth are ignored), then 'Z' or +HH:MM/-HH:MM. Upper-case T and Z only,
 * no leap second, and the instant must lie in CEL's range (years 1-9999). */
int wisp__cond_parse_timestamp(const char *s, size_t len, struct cond_ts *out)
{
    if (len < 20)
        return -1;
    int64_t days;
    if (parse_ymd(s, &days) != 0 || s[10] != 'T' || s[13] != ':' || s[16] != ':')
        return -1;
    int64_t hh = digits(s + 11, 2), mm = digits(s + 14, 2), ss = digits(s + 17, 2);
    if (hh < 0 || hh > 23 || mm < 0 || mm > 59 || ss < 0 || ss > 59)
        return -1;
    size_t i = 19;
    int32_t nsec = 0;
    if (s[i] == '.') {
        i++;
        size_t first = i;
        int32_t scale = 100000000;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            nsec += (s[i] - '0') * scale;
            scale /= 10;
            i++;
        }
        if (i == first)
            return -1;
    }
    int64_t off = 0;
    if (i < len && s[i] == 'Z') {
        i++;
    } else if (i + 6 <= len && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':') {
        int64_t oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
        if (oh < 0 || oh > 23 || om < 0 || om > 59)
            return -1;
        off = (oh * 60 + om) * 60;
        if (s[i] == '-')
            off = -off;
        i += 6;
    } else {
        return -1;
    }
    if (i != len)
        return -1;
    int64_t sec = days * SECS_PER_DAY + hh * 3600 + mm * 60 + ss - off;
    if (!in_range(sec))
        return -1;
    out->sec = sec;
    out->nsec = nsec;
    return 0;
}

/* date("YYYY-MM-DD"): midnight UTC at the start of that day. */
int wisp__cond_parse_date(const char *s, size_t len, struct cond_ts *out)
{
    int64_t days;
    if (len != 10 || parse_ymd(s, &days) != 0)
        return -1;
    int64_t sec = days * SECS_PER_DAY;
    if (!in_range(sec))
        return -1;
    out->sec = sec;
    out->nsec = 0;
    return 0;
}

/* Unit names and sizes of Go's time.ParseDuration, which cel-go's
 * duration() calls. Longest names first is not needed: a unit is the whole
 * run of non-digit, non-'.' bytes, compared exactly. */
static const struct {
    const char *name;
    uint64_t ns;
} dur_units[] = {
    {"ns", 1},
    {"us", 1000},
    {"\xc2\xb5s", 1000}, /* U+00B5 micro sign */
    {"\xce\xbcs", 1000}, /* U+03BC Greek mu */
    {"ms", 1000000},
    {"s", 1000000000},
    {"m", UINT64_C(60) * 1000000000},
    {"h", UINT64_C(3600) * 1000000000},
};

/* Go's time.ParseDuration, step for step: [-+]? then one or more
 * (digits [. digits] | . digits) unit; "0" alone is allowed. The fraction
 * is applied through a double exactly as Go does, so "1.5h" and friends
 * give the same nanoseconds as cel-go. Overflow of int64 ns is an error. */
int wisp__cond_parse_duration(const char *s, size_t len, int64_t *ns_out)
{
    const uint64_t lim = UINT64_C(1) << 63;
    size_t i = 0;
    int neg = 0;
    if (i < len && (s[i] == '-' || s[i] == '+')) {
        neg = s[i] == '-';
        i++;
    }
    if (len - i == 1 && s[i] == '0') {
        *ns_out = 0;
        return 0;
    }
    if (i == len)
        return -1;
    uint64_t total = 0;
    while (i < len) {
        if (!(s[i] == '.' || (s[i] >= '0' && s[i] <= '9')))
            return -1;
        /* Integer part. */
        uint64_t v = 0;
        size_t start = i;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (v > (lim - 1) / 10)
                return -1;
            v = v * 10 + (uint64_t)(s[i] - '0');
            if (v > lim)
                return -1;
            i++;
        }
        int pre = i != start;
        /* Fraction: Go keeps accumulating digits until the value would
         * overflow and silently drops the rest. */
        uint64_t f = 0;
        double scale = 1;
        int post = 0;
        if (i < len && s[i] == '.') {
            i++;
            start = i;
            int overflow = 0;
            while (i < len && s[i] >= '0' && s[i] <= '9') {
                if (!overflow) {
                    if (f > (lim - 1) / 10) {
                        overflow = 1;
                    } else {
                        uint64_t y = f * 10 + (uint64_t)(s[i] - '0');
                        if (y > lim) {
                            overflow = 1;
                        } else {
                            f = y;
                            scale *= 10;
                        }
                    }
                }
                i++;
            }
            post = i != start;
        }
        if (!pre && !post)
            return -1;
        /* Unit. */
        start = i;
        while (i < len && s[i] != '.' && !(s[i] >= '0' && s[i] <= '9'))
            i++;
        if (i == start)
            return -1;
        uint64_t unit = 0;
        for (size_t k = 0; k < sizeof dur_units / sizeof dur_units[0]; k++) {
            if (strlen(dur_units[k].name) == i - start &&
                memcmp(dur_units[k].name, s + start, i - start) == 0) {
                unit = dur_units[k].ns;
                break;
            }
        }
        if (!unit)
            return -1;
        if (v > lim / unit)
            return -1;
        v *= unit;
        if (f > 0) {
            /* f < scale, so this is below unit (at most 3.6e12): the cast
             * cannot overflow. */
            v += (uint64_t)((double)f * ((double)unit / scale));
            if (v > lim)
                return -1;
        }
        /* Go adds first and tests after, which wraps when both are 2^63;
         * test before adding. */
        if (v > lim - total)
            return -1;
        total += v;
    }
    if (neg) {
        *ns_out = total == lim ? INT64_MIN : -(int64_t)total;
        return 0;
    }
    if (total > lim - 1)
        return -1;
    *ns_out = (int64_t)total;
    return 0;
}

/* Zone names that tzdata defines as plain UTC. */
static const char *const utc_names[] = {
    "UTC",       "Etc/UTC",       "GMT",           "Etc/GMT",  "UCT",
    "Etc/UCT",   "Universal",     "Etc/Universal", "Zulu",     "Etc/Zulu",
    "Greenwich", "Etc/Greenwich", "GMT0",          "Etc/GMT0", "GMT+0",
    "GMT-0",     "Etc/GMT+0",     "Etc/GMT-0",     NULL,
};

/* Time zones wisp can apply without a tz database: UTC and its aliases,
 * tzdata's fixed "Etc/GMT+N" zones (whose sign is inverted: Etc/GMT+5 is
 * UTC-5), and numeric offsets written as cel-go accepts them, [+-]H:MM or
 * [+-]HH:MM. The empty string is UTC, as Go's LoadLocation("") is.
 * Everything else, including real IANA names, is -1. */
int wisp__cond_parse_tz(const char *s, size_t len, int32_t *off_out)
{
    if (len == 0) {
        *off_out = 0;
        return 0;
    }
    for (int k = 0; utc_names[k]; k++) {
        if (strlen(utc_names[k]) == len && memcmp(utc_names[k], s, len) == 0) {
            *off_out = 0;
            return 0;
        }
    }
    if (len >= 9 && len <= 10 && memcmp(s, "Etc/GMT", 7) == 0 && (s[7] == '+' || s[7] == '-')) {
        int64_t n = digits(s + 8, len - 8);
        if (n < 1 || (s[8] == '0') || (s[7] == '+' && n > 12) || (s[7] == '-' && n > 14))
            return -1;
        *off_out = (int32_t)(s[7] == '+' ? -n * 3600 : n * 3600);
        return 0;
    }
    const char *colon = memchr(s, ':', len);
    if (!colon)
        return -1;
    size_t i = 0;
    int neg = 0;
    if (s[0] == '+' || s[0] == '-') {
        neg = s[0] == '-';
        i = 1;
    }
    size_t hlen = (size_t)(colon - s) - i;
    size_t mlen = len - (size_t)(colon - s) - 1;
    if (hlen < 1 || hlen > 2 || mlen != 2)
        return -1;
    int64_t h = digits(s + i, hlen), m = digits(colon + 1, 2);
    if (h < 0 || h > 23 || m < 0 || m > 59)
        return -1;
    int64_t off = (h * 60 + m) * 60;
    *off_out = (int32_t)(neg ? -off : off);
    return 0;
}

int64_t wisp__cond_ts_get(struct cond_ts ts, int32_t off, enum cond_getter g)
{
    /* |sec| < 2.6e11 and |off| < 1 day: no overflow. */
    int64_t local = ts.sec + off;
    int64_t days = floor_div(local, SECS_PER_DAY);
    int64_t sod = local - days * SECS_PER_DAY; /* second of the day, [0, 86399] */
    int64_t y;
    int m, d;
    switch (g) {
    case GET_HOURS:
        return sod / 3600;
    case GET_MINUTES:
        return sod / 60 % 60;
    case GET_SECONDS:
        return sod % 60;
    case GET_MILLISECONDS:
        return ts.nsec / 1000000;
    case GET_DAY_OF_WEEK:
        return floor_mod(days + 4, 7); /* 1970-01-01 was a Thursday */
    default:
        break;
    }
    civil_from_days(days, &y, &m, &d);
    switch (g) {
    case GET_FULL_YEAR:
        return y;
    case GET_MONTH:
        return m - 1;
    case GET_DATE:
        return d;
    case GET_DAY_OF_MONTH:
        return d - 1;
    case GET_DAY_OF_YEAR:
        return days - days_from_civil(y, 1, 1);
    default:
        return 0;
    }
}

int wisp__cond_ts_from_ms(int64_t ms, struct cond_ts *out)
{
    int64_t sec = floor_div(ms, 1000);
    if (!in_range(sec))
        return -1;
    out->sec = sec;
    out->nsec = (int32_t)(floor_mod(ms, 1000) * 1000000);
    return 0;
}

int wisp__cond_ts_add(struct cond_ts ts, int64_t ns, struct cond_ts *out)
{
    /* ns / 1e9 is at most ~9.2e9 and sec is in range: the sum cannot
     * overflow int64 before the range check. */
    int64_t sec = ts.sec + ns / COND_NS_PER_SEC;
    int64_t nsec = ts.nsec + ns % COND_NS_PER_SEC;
    if (nsec < 0) {
        nsec += COND_NS_PER_SEC;
        sec--;
    } else if (nsec >= COND_NS_PER_SEC) {
        nsec -= COND_NS_PER_SEC;
        sec++;
    }
    if (!in_range(sec))
        return -1;
    out->sec = sec;
    out->nsec = (int32_t)nsec;
    return 0;
}

int wisp__cond_ts_diff(struct cond_ts a, struct cond_ts b, int64_t *ns_out)
{
    int64_t r;
    if (__builtin_mul_overflow(a.sec - b.sec, COND_NS_PER_SEC, &r) ||
        __builtin_add_overflow(r, (int64_t)a.nsec - b.nsec, &r))
        return -1;
    *ns_out = r;
    return 0;
}
