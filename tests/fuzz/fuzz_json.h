/* For fuzz targets: is an answer JSON, checked without allocating.
 *
 * fuzz_json_ok(s, len) is true if s[0..len) is what jansson's
 * json_loadb(s, len, 0, ...) accepts: one object or array (RFC 8259), then
 * only white space; UTF-8 throughout (no overlong forms, surrogates or
 * code points above U+10FFFF); no \u0000; escaped surrogates in pairs;
 * integers within int64_t; reals finite; at most 2048 values
 * deep. (Stricter in one corner only: jansson skips a NUL byte right
 * after a number.) json_loadb builds every value it reads (an allocation
 * each, a fifth of fuzz_api's time); this only reads, and is not
 * instrumented for coverage: its compares would steer the fuzzer. */
#ifndef WISP_FUZZ_JSON_H
#define WISP_FUZZ_JSON_H

#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct fj {
	const unsigned char *p, *end;
};

#define FJ __attribute__((no_sanitize("coverage"))) static

FJ bool fj_digit(const struct fj *j)
{
	return j->p < j->end && *j->p >= '0' && *j->p <= '9';
}

FJ void fj_space(struct fj *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* Four hex digits: their value, or -1. */
FJ int fj_hex4(struct fj *j)
{
	if (j->end - j->p < 4)
		return -1;
	int v = 0;
	for (int i = 0; i < 4; i++) {
		int c = *j->p++;
		if (c >= '0' && c <= '9')
			v = v << 4 | (c - '0');
		else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
			v = v << 4 | ((c | 0x20) - 'a' + 10);
		else
			return -1;
	}
	return v;
}

/* One UTF-8 sequence of 2 to 4 bytes (its first byte is not ASCII). */
FJ bool fj_utf8(struct fj *j)
{
	unsigned c = *j->p++, n;
	uint32_t u, min;
	if (c >= 0xc2 && c <= 0xdf)
		n = 1, u = c & 0x1f, min = 0x80;
	else if (c >= 0xe0 && c <= 0xef)
		n = 2, u = c & 0x0f, min = 0x800;
	else if (c >= 0xf0 && c <= 0xf4)
		n = 3, u = c & 0x07, min = 0x10000;
	else
		return false;
	if ((size_t)(j->end - j->p) < n)
		return false;
	for (unsigned i = 0; i < n; i++, j->p++) {
		if ((*j->p & 0xc0) != 0x80)
			return false;
		u = u << 6 | (*j->p & 0x3f);
	}
	return u >= min && u <= 0x10ffff && (u < 0xd800 || u > 0xdfff);
}

/* A string; j->p is at its opening quote. */
FJ bool fj_string(struct fj *j)
{
	for (j->p++; j->p < j->end;) {
		unsigned c = *j->p;
		if (c >= 0x80) {
			if (!fj_utf8(j))
				return false;
			continue;
		}
		j->p++;
		if (c == '"')
			return true;
		if (c < 0x20)
			return false;
		if (c != '\\')
			continue;
		if (j->p == j->end)
			return false;
		c = *j->p++;
		if (c == 'u') {
			int u = fj_hex4(j);
			if (u <= 0 ||
			    (u >= 0xdc00 && u <= 0xdfff)) /* bad, \u0000, a lone low half */
				return false;
			if (u >= 0xd800 && u <= 0xdbff) { /* a high half: a low one follows */
				if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
					return false;
				j->p += 2;
				u = fj_hex4(j);
				if (u < 0xdc00 || u > 0xdfff)
					return false;
			}
		} else if (!c || !strchr("\"\\/bfnrt", (int)c)) {
			return false;
		}
	}
	return false;
}

/* A number, in range as jansson reads it (strtoll, or strtod for a real). */
FJ bool fj_number(struct fj *j)
{
	const unsigned char *start = j->p;
	bool real = false;
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (!fj_digit(j))
		return false;
	if (*j->p == '0') {
		j->p++;
		if (fj_digit(j))
			return false;
	}
	while (fj_digit(j))
		j->p++;
	if (j->p < j->end && *j->p == '.') {
		real = true;
		j->p++;
		if (!fj_digit(j))
			return false;
		while (fj_digit(j))
			j->p++;
	}
	if (j->p < j->end && (*j->p | 0x20) == 'e') {
		real = true;
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!fj_digit(j))
			return false;
		while (fj_digit(j))
			j->p++;
	}
	size_t n = (size_t)(j->p - start);
	char buf[64], *s = n < sizeof(buf) ? buf : malloc(n + 1);
	if (!s)
		abort();
	memcpy(s, start, n);
	s[n] = 0;
	errno = 0;
	bool ok;
	if (real) {
		double d = strtod(s, NULL);
		ok = !(errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL));
	} else {
		(void)strtoll(s, NULL, 10);
		ok = errno != ERANGE;
	}
	if (s != buf)
		free(s);
	return ok;
}

FJ bool fj_word(struct fj *j, const char *w)
{
	size_t n = strlen(w);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, w, n))
		return false;
	j->p += n;
	return true;
}

/* A value; depth counts the arrays and objects around it. */
FJ bool fj_value(struct fj *j, int depth)
{
	if (depth == 2048) /* jansson counts every value, not only containers */
		return false;
	fj_space(j);
	if (j->p == j->end)
		return false;
	char open = (char)*j->p;
	if (open != '[' && open != '{') {
		switch (open) {
		case '"':
			return fj_string(j);
		case 't':
			return fj_word(j, "true");
		case 'f':
			return fj_word(j, "false");
		case 'n':
			return fj_word(j, "null");
		default:
			return fj_number(j);
		}
	}
	char close = open == '[' ? ']' : '}';
	j->p++;
	fj_space(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		return true;
	}
	for (;;) {
		if (open == '{') {
			fj_space(j);
			if (j->p == j->end || *j->p != '"' || !fj_string(j))
				return false;
			fj_space(j);
			if (j->p == j->end || *j->p++ != ':')
				return false;
		}
		if (!fj_value(j, depth + 1))
			return false;
		fj_space(j);
		if (j->p == j->end)
			return false;
		char c = (char)*j->p++;
		if (c == close)
			return true;
		if (c != ',')
			return false;
	}
}

FJ inline bool fuzz_json_ok(const char *s, size_t len)
{
	struct fj j = {(const unsigned char *)s, (const unsigned char *)s + len};
	fj_space(&j);
	if (j.p == j.end || (*j.p != '[' && *j.p != '{') || !fj_value(&j, 0))
		return false;
	fj_space(&j);
	return j.p == j.end;
}

#endif
