/* A two-pass assembler for the machine, small enough to read: one
 * instruction per line, labels, expressions with + - * and parentheses,
 * and the few directives the OS needs (docs/popek-goldberg.md lists them).
 * Pass 1 only sizes lines and records labels; pass 2 emits words. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pg.h"

#define MAXLINE 256
#define MAXOPND 8
#define MAXIF	8

struct as {
	const char *const *defs;
	uint64_t *mem;
	uint32_t size;
	struct pg_asm *syms;
	int pass, line;
	uint32_t base, loc; /* section's physical base, location inside it */
	char *err;
	size_t errlen;
	int failed;
};

static int fail(struct as *s, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (s->failed)
		return -EINVAL;
	s->failed = 1;
	n = snprintf(s->err, s->errlen, "line %d: ", s->line);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < s->errlen)
		vsnprintf(s->err + n, s->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int64_t pg_asm_lookup(const struct pg_asm *a, const char *name)
{
	for (int i = 0; i < a->nsym; i++)
		if (!strcmp(a->sym[i].name, name))
			return a->sym[i].value;
	return -1;
}

static struct pg_sym *sym_find(struct as *s, const char *name)
{
	for (int i = 0; i < s->syms->nsym; i++)
		if (!strcmp(s->syms->sym[i].name, name))
			return &s->syms->sym[i];
	return NULL;
}

static int sym_define(struct as *s, const char *name, int64_t value)
{
	struct pg_sym *y = sym_find(s, name);

	if (y) {
		if (s->pass == 1)
			return fail(s, "'%s' defined twice", name);
		y->value = value;
		return 0;
	}
	if (s->syms->nsym == PG_ASM_MAXSYM)
		return fail(s, "too many symbols");
	if (strlen(name) >= sizeof(y->name))
		return fail(s, "symbol '%s' is too long", name);
	y = &s->syms->sym[s->syms->nsym++];
	strcpy(y->name, name);
	y->value = value;
	return 0;
}

/* --- expressions ---------------------------------------------------------- */

static void skip(const char **p)
{
	while (isspace((unsigned char)**p))
		(*p)++;
}

static int ident(const char **p, char *out, size_t len)
{
	size_t n = 0;

	if (!isalpha((unsigned char)**p) && **p != '_' && **p != '.')
		return 0;
	while (isalnum((unsigned char)**p) || **p == '_' || **p == '.') {
		if (n + 1 < len)
			out[n++] = **p;
		(*p)++;
	}
	out[n] = 0;
	return 1;
}

static int escape(char c)
{
	return c == 'n' ? '\n' : c == 't' ? '\t' : c == '0' ? 0 : c;
}

static int expr(struct as *s, const char **p, int64_t *v);

static int factor(struct as *s, const char **p, int64_t *v)
{
	char name[64];

	skip(p);
	if (**p == '(') {
		(*p)++;
		if (expr(s, p, v))
			return -EINVAL;
		skip(p);
		if (**p != ')')
			return fail(s, "missing ')'");
		(*p)++;
		return 0;
	}
	if (**p == '-') {
		(*p)++;
		if (factor(s, p, v))
			return -EINVAL;
		*v = -*v;
		return 0;
	}
	if (**p == '\'') {
		int c = (unsigned char)(*p)[1];

		if (c == '\\')
			c = escape((*p)[2]), (*p)++;
		if ((*p)[1] == 0 || (*p)[2] != '\'')
			return fail(s, "bad character literal");
		*v = c;
		*p += 3;
		return 0;
	}
	if (isdigit((unsigned char)**p)) {
		char *end;

		*v = (int64_t)strtoull(*p, &end, 0);
		*p = end;
		return 0;
	}
	if (ident(p, name, sizeof(name))) {
		struct pg_sym *y = sym_find(s, name);

		/* Forward references are fine in pass 1: only sizes matter there. */
		if (!y && s->pass == 2)
			return fail(s, "undefined symbol '%s'", name);
		*v = y ? y->value : 0;
		return 0;
	}
	return fail(s, "expected a value at '%s'", *p);
}

static int term(struct as *s, const char **p, int64_t *v)
{
	int64_t r;

	if (factor(s, p, v))
		return -EINVAL;
	for (skip(p); **p == '*'; skip(p)) {
		(*p)++;
		if (factor(s, p, &r))
			return -EINVAL;
		*v = (int64_t)((uint64_t)*v * (uint64_t)r);
	}
	return 0;
}

static int expr(struct as *s, const char **p, int64_t *v)
{
	int64_t r;

	if (term(s, p, v))
		return -EINVAL;
	for (skip(p); **p == '+' || **p == '-'; skip(p)) {
		char op = *(*p)++;

		if (term(s, p, &r))
			return -EINVAL;
		*v = (int64_t)(op == '+' ? (uint64_t)*v + (uint64_t)r : (uint64_t)*v - (uint64_t)r);
	}
	return 0;
}

/* A whole operand must be one expression. */
static int value(struct as *s, const char *opnd, int64_t *v)
{
	const char *p = opnd;

	if (expr(s, &p, v))
		return -EINVAL;
	skip(&p);
	if (*p)
		return fail(s, "junk after expression: '%s'", p);
	return 0;
}

static int reg(struct as *s, const char *opnd, unsigned *r)
{
	if ((opnd[0] != 'r' && opnd[0] != 'R') || opnd[1] < '0' || opnd[1] >= '0' + PG_NREGS ||
	    opnd[2])
		return fail(s, "expected a register r0..r%d, got '%s'", PG_NREGS - 1, opnd);
	*r = (unsigned)(opnd[1] - '0');
	return 0;
}

/* "[r2+8]", "[r2]", "[label]": *hasreg says which. */
static int memop(struct as *s, const char *opnd, unsigned *r, int64_t *off, int *hasreg)
{
	const char *p = opnd;
	char in[MAXLINE];
	size_t n = strlen(opnd);

	if (n < 2 || p[0] != '[' || p[n - 1] != ']')
		return fail(s, "expected [address], got '%s'", opnd);
	memcpy(in, p + 1, n - 2);
	in[n - 2] = 0;
	*off = 0;
	*hasreg = (in[0] == 'r' || in[0] == 'R') && isdigit((unsigned char)in[1]) &&
		  !isalnum((unsigned char)in[2]) && in[2] != '_';
	if (!*hasreg)
		return value(s, in, off);
	char rn[3] = {in[0], in[1], 0};
	if (reg(s, rn, r))
		return -EINVAL;
	p = in + 2;
	skip(&p);
	if (!*p)
		return 0;
	if (*p != '+' && *p != '-')
		return fail(s, "bad address '%s'", opnd);
	return value(s, *p == '+' ? p + 1 : p, off);
}

/* --- lines ---------------------------------------------------------------- */

static int emit(struct as *s, uint64_t w)
{
	uint64_t pa = (uint64_t)s->base + s->loc;

	if (pa >= s->size)
		return fail(s, "address %llu is past memory (%u words)", (unsigned long long)pa,
			    s->size);
	if (s->pass == 2)
		s->mem[pa] = w;
	s->loc++;
	return 0;
}

/* Splits operands at commas outside quotes; trims spaces. */
static int split(char *p, char **opnd)
{
	int n = 0, q = 0;

	while (isspace((unsigned char)*p))
		p++;
	if (!*p)
		return 0;
	opnd[n++] = p;
	for (; *p; p++) {
		if (*p == '"' || *p == '\'')
			q = q == *p ? 0 : q ? q : *p;
		else if (*p == ',' && !q && n < MAXOPND) {
			*p = 0;
			opnd[n++] = p + 1;
		}
	}
	for (int i = 0; i < n; i++) {
		char *e;

		while (isspace((unsigned char)*opnd[i]))
			opnd[i]++;
		e = opnd[i] + strlen(opnd[i]);
		while (e > opnd[i] && isspace((unsigned char)e[-1]))
			*--e = 0;
	}
	return n;
}

static int want(struct as *s, int n, int k, const char *what)
{
	if (n != k)
		return fail(s, "%s takes %d operand%s, got %d", what, k, k == 1 ? "" : "s", n);
	return 0;
}

static int directive(struct as *s, const char *d, char **o, int n)
{
	int64_t v[4];

	if (!strcmp(d, ".equ")) {
		if (want(s, n, 2, d) || value(s, o[1], &v[0]))
			return -EINVAL;
		return sym_define(s, o[0], v[0]);
	}
	if (!strcmp(d, ".org") || !strcmp(d, ".section")) {
		if (want(s, n, 1, d) || value(s, o[0], &v[0]))
			return -EINVAL;
		if (v[0] < 0 || v[0] >= s->size)
			return fail(s, "%s %lld is outside memory", d, (long long)v[0]);
		if (d[1] == 's')
			s->base = (uint32_t)v[0], s->loc = 0;
		else
			s->loc = (uint32_t)v[0];
		return 0;
	}
	if (!strcmp(d, ".word")) {
		for (int i = 0; i < n; i++)
			if (value(s, o[i], &v[0]) || emit(s, (uint64_t)v[0]))
				return -EINVAL;
		return 0;
	}
	if (!strcmp(d, ".space")) {
		if (want(s, n, 1, d) || value(s, o[0], &v[0]))
			return -EINVAL;
		for (int64_t i = 0; i < v[0]; i++)
			if (emit(s, 0))
				return -EINVAL;
		return 0;
	}
	if (!strcmp(d, ".psw")) {
		if (want(s, n, 4, d))
			return -EINVAL;
		if (strcmp(o[0], "s") && strcmp(o[0], "u"))
			return fail(s, ".psw mode must be s or u, got '%s'", o[0]);
		for (int i = 1; i < 4; i++)
			if (value(s, o[i], &v[i]))
				return -EINVAL;
		return emit(s, pg_psw_pack(pg_psw_make(o[0][0] == 'u', (uint32_t)v[1],
						       (uint32_t)v[2], (uint32_t)v[3])));
	}
	if (!strcmp(d, ".string")) {
		const char *p = o[0];

		if (want(s, n, 1, d) || p[0] != '"' || p[strlen(p) - 1] != '"' || strlen(p) < 2)
			return fail(s, ".string wants one \"quoted\" string");
		for (p++; p[1]; p++)
			if (emit(s, (uint64_t)(*p == '\\' ? escape(*++p) : *p)))
				return -EINVAL;
		return emit(s, 0);
	}
	return fail(s, "unknown directive '%s'", d);
}

static int instruction(struct as *s, const char *mn, char **o, int n)
{
	int op = pg_op_by_name(mn);
	unsigned a = 0, b = 0, c = 0;
	int64_t imm = 0;
	int hasreg = 0;
	const struct pg_opinfo *oi;

	if (op < 0)
		return fail(s, "unknown instruction '%s'", mn);
	if (s->pass == 1) /* every instruction is one word */
		return emit(s, 0);
	oi = pg_opinfo((unsigned)op);
	switch (oi->fmt) {
	case PG_FMT_NONE:
		if (want(s, n, 0, mn))
			return -EINVAL;
		break;
	case PG_FMT_RI:
	case PG_FMT_RJ:
		if (want(s, n, 2, mn) || reg(s, o[0], &a) || value(s, o[1], &imm))
			return -EINVAL;
		break;
	case PG_FMT_MEM:
	case PG_FMT_ABS:
		if (want(s, n, 2, mn) || reg(s, o[0], &a) || memop(s, o[1], &b, &imm, &hasreg))
			return -EINVAL;
		/* "ld r1, [label]" is the absolute form: no register is free to
		 * hold a base when the kernel saves the user's registers. */
		if (oi->fmt == PG_FMT_MEM && !hasreg)
			op = op == PG_OP_LD ? PG_OP_LDA : PG_OP_STA;
		else if (oi->fmt == PG_FMT_ABS && hasreg)
			return fail(s, "%s takes an absolute address", mn);
		break;
	case PG_FMT_RRR:
		if (want(s, n, 3, mn) || reg(s, o[0], &a) || reg(s, o[1], &b) || reg(s, o[2], &c))
			return -EINVAL;
		break;
	case PG_FMT_RRI:
	case PG_FMT_BR:
		if (want(s, n, 3, mn) || reg(s, o[0], &a) || reg(s, o[1], &b) ||
		    value(s, o[2], &imm))
			return -EINVAL;
		break;
	case PG_FMT_J:
	case PG_FMT_I:
		if (want(s, n, 1, mn) || value(s, o[0], &imm))
			return -EINVAL;
		break;
	case PG_FMT_R:
		if (want(s, n, 1, mn) || reg(s, o[0], &a))
			return -EINVAL;
		break;
	case PG_FMT_RR:
		if (want(s, n, 2, mn) || reg(s, o[0], &a) || reg(s, o[1], &b))
			return -EINVAL;
		break;
	case PG_FMT_A:
		if (want(s, n, 1, mn) || memop(s, o[0], &b, &imm, &hasreg))
			return -EINVAL;
		if (hasreg)
			return fail(s, "%s takes an absolute address", mn);
		break;
	}
	if (imm < INT32_MIN || imm > INT32_MAX)
		return fail(s, "immediate %lld does not fit in 32 bits", (long long)imm);
	return emit(s, pg_insn((enum pg_op)op, a, b, c, (int32_t)imm));
}

static int defined(struct as *s, const char *name)
{
	for (const char *const *d = s->defs; d && *d; d++)
		if (!strcmp(*d, name))
			return 1;
	return 0;
}

static int pass(struct as *s, const char *src)
{
	int active[MAXIF + 1] = {1}, taken[MAXIF + 1] = {1}, depth = 0;

	s->base = s->loc = 0;
	s->line = 0;
	for (const char *p = src; *p && !s->failed;) {
		char buf[MAXLINE], word[64], *opnd[MAXOPND], *q = buf, *rest;
		size_t len = strcspn(p, "\n");
		int n, quote = 0;

		s->line++;
		if (len >= sizeof(buf))
			return fail(s, "line too long");
		memcpy(buf, p, len);
		buf[len] = 0;
		p += len + (p[len] == '\n');
		for (char *c = buf; *c; c++) { /* strip the comment */
			if (*c == '"' || *c == '\'')
				quote = quote == *c ? 0 : quote ? quote : *c;
			else if (*c == ';' && !quote) {
				*c = 0;
				break;
			}
		}
		skip((const char **)&q);
		if (!ident((const char **)&q, word, sizeof(word))) {
			if (*q)
				return fail(s, "expected a label, instruction or directive");
			continue;
		}
		if (!strcmp(word, ".ifdef") || !strcmp(word, ".ifndef")) {
			char name[64];

			if (depth == MAXIF)
				return fail(s, ".ifdef nested too deep");
			skip((const char **)&q);
			ident((const char **)&q, name, sizeof(name));
			depth++;
			taken[depth] = defined(s, name) == (word[3] == 'd');
			active[depth] = active[depth - 1] && taken[depth];
			continue;
		}
		if (!strcmp(word, ".else") || !strcmp(word, ".endif")) {
			if (!depth)
				return fail(s, "%s without .ifdef", word);
			if (word[1] == 'e' && word[2] == 'l')
				active[depth] = active[depth - 1] && !taken[depth];
			else
				depth--;
			continue;
		}
		if (!active[depth])
			continue;
		if (*q == ':') { /* a label: its value is the location in its section */
			if (sym_define(s, word, s->loc))
				return -EINVAL;
			q++;
			skip((const char **)&q);
			if (!*q)
				continue;
			if (!ident((const char **)&q, word, sizeof(word)))
				return fail(s, "expected an instruction after the label");
		}
		rest = q;
		n = split(rest, opnd);
		if (word[0] == '.' ? directive(s, word, opnd, n) : instruction(s, word, opnd, n))
			return -EINVAL;
	}
	if (!s->failed && depth)
		return fail(s, ".ifdef without .endif");
	return s->failed ? -EINVAL : 0;
}

int pg_assemble(const char *src, const char *const *defs, uint64_t *mem, uint32_t size,
		struct pg_asm *out, char *err, size_t errlen)
{
	struct pg_asm *syms = out ? out : calloc(1, sizeof(*syms));
	struct as s = {
		.defs = defs, .mem = mem, .size = size, .syms = syms, .err = err, .errlen = errlen};
	int rc;

	if (!syms)
		return -ENOMEM;
	syms->nsym = 0;
	if (errlen)
		err[0] = 0;
	s.pass = 1;
	rc = pass(&s, src);
	if (!rc) {
		s.pass = 2;
		rc = pass(&s, src);
	}
	if (!out)
		free(syms);
	return rc;
}
