/* Builds the guests' memory images from their assembly (os.s, evil.s,
 * vmm.s, which the build turns into the strings below). */
#include <stdio.h>
#include <string.h>

#include "pg.h"

extern const char pg_os_src[], pg_evil_src[], pg_vmm_src[];

static int build(const char *name, const char *src, const char *const *defs, uint64_t *mem,
		 uint32_t size, struct pg_asm *syms)
{
	char err[160];
	int rc;

	memset(mem, 0, size * sizeof(*mem));
	rc = pg_assemble(src, defs, mem, size, syms, err, sizeof(err));
	if (rc)
		fprintf(stderr, "pg: %s: %s\n", name, err);
	return rc;
}

int pg_os_build(uint64_t *mem, uint32_t size, int pv, struct pg_asm *syms)
{
	static const char *const pvdefs[] = {"PV", NULL};

	return build("os.s", pg_os_src, pv ? pvdefs : NULL, mem, size, syms);
}

int pg_evil_build(uint64_t *mem, uint32_t size, struct pg_asm *syms)
{
	return build("evil.s", pg_evil_src, NULL, mem, size, syms);
}

int pg_vmmasm_build(uint64_t *mem, uint32_t size, struct pg_asm *syms)
{
	struct pg_asm local;
	int rc;

	if (size <= PG_VMMASM_BASE + 4 || size > PG_FIELD + 1)
		return -1;
	rc = build("vmm.s", pg_vmm_src, NULL, mem, PG_VMMASM_BASE, syms ? syms : &local);
	if (rc)
		return rc;
	/* Its memory is the length of its segment: the guest gets the rest. */
	mem[1] = pg_psw_pack(pg_psw_make(PG_MODE_S, 0, size,
					 (uint32_t)pg_asm_lookup(syms ? syms : &local, "entry")));
	for (uint32_t i = PG_VMMASM_BASE; i < size; i++)
		mem[i] = 0;
	return 0;
}

int pg_nest_build(uint64_t *mem, int levels)
{
	for (int i = 0; i < levels; i++, mem += PG_VMMASM_BASE)
		if (pg_vmmasm_build(mem, PG_OS_SIZE + (uint32_t)(levels - i) * PG_VMMASM_BASE,
				    NULL))
			return -1;
	return pg_os_build(mem, PG_OS_SIZE, 0, NULL);
}
