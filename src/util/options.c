/* Parsing of option values shared by the verbs. Strict: trailing garbage,
 * signs, empty strings and overflow are all errors. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "util/util.h"

/* Leading decimal digits of s into *v; returns the first other character. */
static const char *parse_digits(const char *s, uint64_t *v)
{
	uint64_t x = 0;
	const char *p = s;
	while (isdigit((unsigned char)*p)) {
		unsigned d = (unsigned)(*p - '0');
		if (x > (UINT64_MAX - d) / 10)
			return NULL;
		x = x * 10 + d;
		p++;
	}
	if (p == s)
		return NULL;
	*v = x;
	return p;
}

int opt_parse_size(const char *s, uint64_t *out)
{
	uint64_t v;
	const char *p = parse_digits(s, &v);
	if (!p)
		return -EINVAL;
	unsigned shift;
	switch (toupper((unsigned char)*p)) {
	case 0:
		shift = 20;
		break;
	case 'K':
		shift = 10;
		break;
	case 'M':
		shift = 20;
		break;
	case 'G':
		shift = 30;
		break;
	default:
		return -EINVAL;
	}
	if (*p) {
		p++;
		if (toupper((unsigned char)*p) == 'I') /* accept MiB, GiB */
			p++;
		if (toupper((unsigned char)*p) == 'B')
			p++;
		if (*p)
			return -EINVAL;
	}
	if (v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = v << shift;
	return 0;
}

int opt_parse_uint(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
	uint64_t v;
	const char *p = parse_digits(s, &v);
	if (!p || *p)
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

int opt_parse_duration_ms(const char *s, uint64_t *out)
{
	uint64_t v;
	const char *p = parse_digits(s, &v);
	if (!p)
		return -EINVAL;
	uint64_t mul;
	if (!*p || !strcmp(p, "s"))
		mul = 1000;
	else if (!strcmp(p, "ms"))
		mul = 1;
	else if (!strcmp(p, "m"))
		mul = 60000;
	else
		return -EINVAL;
	if (v == 0)
		return -ERANGE;
	if (v > UINT64_MAX / mul)
		return -ERANGE;
	*out = v * mul;
	return 0;
}

char *opt_join_args(int argc, char **argv)
{
	size_t len = 1;
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 3;
	char *s = malloc(len), *p = s;
	if (!s)
		return NULL;
	for (int i = 0; i < argc; i++) {
		bool quote = !argv[i][0] || strchr(argv[i], ' ');
		if (i)
			*p++ = ' ';
		if (quote)
			*p++ = '"';
		size_t n = strlen(argv[i]);
		memcpy(p, argv[i], n);
		p += n;
		if (quote)
			*p++ = '"';
	}
	*p = 0;
	return s;
}

bool util_is_vm_id(const char *s)
{
	size_t n = 0;
	for (; s[n]; n++)
		if (!isdigit((unsigned char)s[n]) && !(s[n] >= 'a' && s[n] <= 'f'))
			return false;
	return n == 12;
}
