/* wisp image's parsers and writers: ELF dynamic sections (valid, every
 * truncation, foreign machines, strings outside the table), path
 * resolution inside a root (symlinks cannot escape it, loops end), the
 * tree, the newc writer and reader, and the guest init's exit line. All
 * under ASan: a bad file must be refused, never read out of bounds. */
#include <elf.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "image/image_int.h"

#define ELF_SIZE 0x400
#define STR_OFF	 0x300

/* An x86-64 executable: PT_INTERP, one PT_LOAD over the whole file,
 * PT_DYNAMIC with DT_STRTAB, DT_STRSZ, two DT_NEEDED and a DT_RUNPATH. */
static size_t make_elf(uint8_t *b)
{
	memset(b, 0, ELF_SIZE);
	Elf64_Ehdr *eh = (Elf64_Ehdr *)b;
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_type = ET_DYN;
	eh->e_machine = EM_X86_64;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 3;
	Elf64_Phdr *ph = (Elf64_Phdr *)(b + eh->e_phoff);
	const char interp[] = "/lib64/ld-linux-x86-64.so.2";
	memcpy(b + 0x100, interp, sizeof(interp));
	ph[0] = (Elf64_Phdr){.p_type = PT_INTERP, .p_offset = 0x100, .p_filesz = sizeof(interp)};
	ph[1] = (Elf64_Phdr){.p_type = PT_LOAD,
			     .p_offset = 0,
			     .p_vaddr = 0x400000,
			     .p_filesz = ELF_SIZE,
			     .p_memsz = ELF_SIZE};
	const char strs[] = "\0libc.so.6\0libfoo.so.1\0$ORIGIN/../lib";
	memcpy(b + STR_OFF, strs, sizeof(strs));
	Elf64_Dyn *d = (Elf64_Dyn *)(b + 0x200);
	d[0] = (Elf64_Dyn){.d_tag = DT_STRTAB, .d_un.d_ptr = 0x400000 + STR_OFF};
	d[1] = (Elf64_Dyn){.d_tag = DT_STRSZ, .d_un.d_val = sizeof(strs)};
	d[2] = (Elf64_Dyn){.d_tag = DT_NEEDED, .d_un.d_val = 1};
	d[3] = (Elf64_Dyn){.d_tag = DT_NEEDED, .d_un.d_val = 11};
	d[4] = (Elf64_Dyn){.d_tag = DT_RUNPATH, .d_un.d_val = 23};
	d[5] = (Elf64_Dyn){.d_tag = DT_NULL};
	ph[2] = (Elf64_Phdr){.p_type = PT_DYNAMIC, .p_offset = 0x200, .p_filesz = 6 * sizeof(*d)};
	return ELF_SIZE;
}

static void elf_valid(void **state)
{
	uint8_t b[ELF_SIZE];
	char err[256];
	struct image_elf e;
	size_t n = make_elf(b);
	assert_int_equal(image_elf_parse(b, n, &e, err, sizeof(err)), 0);
	assert_true(e.executable);
	assert_true(e.dynamic);
	assert_string_equal(e.interp, "/lib64/ld-linux-x86-64.so.2");
	assert_int_equal(e.nr_needed, 2);
	assert_string_equal(e.needed[0], "libc.so.6");
	assert_string_equal(e.needed[1], "libfoo.so.1");
	assert_string_equal(e.runpath, "$ORIGIN/../lib");
	assert_null(e.rpath);
	image_elf_free(&e);
}

/* Every prefix of a valid file parses or is refused, without reading past
 * the end (ASan watches the heap copy, sized exactly). */
static void elf_truncated(void **state)
{
	uint8_t b[ELF_SIZE];
	char err[256];
	size_t n = make_elf(b);
	for (size_t len = 0; len < n; len++) {
		uint8_t *c = malloc(len ? len : 1);
		memcpy(c, b, len);
		struct image_elf e;
		if (image_elf_parse(c, len, &e, err, sizeof(err)) == 0)
			image_elf_free(&e);
		free(c);
	}
}

static void elf_refused(void **state)
{
	uint8_t b[ELF_SIZE];
	char err[256];
	struct image_elf e;
	assert_int_equal(image_elf_parse((const uint8_t *)"#!/bin/sh\n", 10, &e, err, sizeof(err)),
			 -ENOEXEC);
	assert_string_equal(err, "not an ELF file");
	make_elf(b);
	((Elf64_Ehdr *)b)->e_machine = EM_AARCH64;
	assert_int_equal(image_elf_parse(b, ELF_SIZE, &e, err, sizeof(err)), -EXDEV);
	assert_non_null(strstr(err, "aarch64"));
	make_elf(b);
	b[EI_CLASS] = ELFCLASS32;
	assert_int_equal(image_elf_parse(b, ELF_SIZE, &e, err, sizeof(err)), -EXDEV);
	/* A DT_NEEDED outside the string table. */
	make_elf(b);
	((Elf64_Dyn *)(b + 0x200))[2].d_un.d_val = 4096;
	assert_int_equal(image_elf_parse(b, ELF_SIZE, &e, err, sizeof(err)), -ENOEXEC);
	/* A string table running off the end of the file. */
	make_elf(b);
	((Elf64_Dyn *)(b + 0x200))[1].d_un.d_val = UINT64_MAX - 10;
	assert_int_equal(image_elf_parse(b, ELF_SIZE, &e, err, sizeof(err)), -ENOEXEC);
	/* A string table whose address no PT_LOAD maps. */
	make_elf(b);
	((Elf64_Dyn *)(b + 0x200))[0].d_un.d_ptr = 0x900000;
	assert_int_equal(image_elf_parse(b, ELF_SIZE, &e, err, sizeof(err)), -ENOEXEC);
	/* An interpreter without its NUL. */
	make_elf(b);
	((Elf64_Phdr *)(b + 64))[0].p_filesz = 5;
	assert_int_equal(image_elf_parse(b, ELF_SIZE, &e, err, sizeof(err)), -ENOEXEC);
	/* Program headers past the end, and a huge count. */
	make_elf(b);
	((Elf64_Ehdr *)b)->e_phoff = ELF_SIZE - 8;
	assert_int_equal(image_elf_parse(b, ELF_SIZE, &e, err, sizeof(err)), -ENOEXEC);
	make_elf(b);
	((Elf64_Ehdr *)b)->e_phnum = 0xffff;
	assert_int_equal(image_elf_parse(b, ELF_SIZE, &e, err, sizeof(err)), -ENOEXEC);
}

/* A root with symlinks that try to leave it. */
static char root[64];

static void mkroot(void)
{
	snprintf(root, sizeof(root), "/tmp/wisp-test-image-XXXXXX");
	assert_non_null(mkdtemp(root));
	char p[256];
	const char *dirs[] = {"usr", "usr/lib", "etc"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", root, dirs[i]);
		assert_int_equal(mkdir(p, 0755), 0);
	}
	snprintf(p, sizeof(p), "%s/usr/lib/libc.so.6", root);
	FILE *f = fopen(p, "w");
	fputs("x", f);
	fclose(f);
	const char *links[][2] = {{"lib", "usr/lib"},
				  {"abs", "/usr/lib/libc.so.6"},
				  {"esc", "../../../../../../../etc"},
				  {"escabs", "/../../../../etc/passwd"},
				  {"loop1", "loop2"},
				  {"loop2", "loop1"}};
	for (size_t i = 0; i < 6; i++) {
		snprintf(p, sizeof(p), "%s/%s", root, links[i][0]);
		assert_int_equal(symlink(links[i][1], p), 0);
	}
}

static void rmroot(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
	assert_int_equal(system(cmd), 0);
}

static void path_resolve_inside(void **state)
{
	struct image_resolved r;
	mkroot();
	assert_int_equal(path_resolve(root, "/lib/libc.so.6", &r), 0);
	assert_string_equal(r.path, "usr/lib/libc.so.6");
	assert_int_equal(r.nr_hops, 1);
	assert_string_equal(r.hops[0].path, "lib");
	path_resolved_free(&r);
	assert_int_equal(path_resolve(root, "/abs", &r), 0);
	assert_string_equal(r.path, "usr/lib/libc.so.6");
	path_resolved_free(&r);
	/* Escapes land on the root's own etc, which has no passwd. */
	assert_int_equal(path_resolve(root, "/esc", &r), 0);
	assert_string_equal(r.path, "etc");
	path_resolved_free(&r);
	assert_int_equal(path_resolve(root, "/esc/passwd", &r), -ENOENT);
	assert_int_equal(path_resolve(root, "/escabs", &r), -ENOENT);
	assert_int_equal(path_resolve(root, "/../../etc/../usr/./lib//libc.so.6", &r), 0);
	assert_string_equal(r.path, "usr/lib/libc.so.6");
	path_resolved_free(&r);
	assert_int_equal(path_resolve(root, "/loop1", &r), -ELOOP);
	assert_int_equal(path_resolve(root, "/usr/lib/libc.so.6/x", &r), -ENOTDIR);
	rmroot();
}

static void path_clean_rules(void **state)
{
	char out[64];
	assert_int_equal(path_clean("//a/./b//c/", out, sizeof(out)), 0);
	assert_string_equal(out, "a/b/c");
	assert_int_equal(path_clean("a/../b", out, sizeof(out)), -EINVAL);
	assert_int_equal(path_clean("/", out, sizeof(out)), 0);
	assert_string_equal(out, "");
	assert_int_equal(path_clean("/aaaaaaaaaa", out, 4), -ENAMETOOLONG);
}

static void tree_rules(void **state)
{
	struct image_tree t;
	assert_int_equal(tree_init(&t), 0);
	assert_int_equal(tree_add_data(&t, "a/b/c", "hi", 2, 0644, "first"), 0);
	assert_non_null(tree_find(&t, "a"));
	assert_int_equal(tree_find(&t, "a/b")->type, ENTRY_DIR);
	assert_int_equal(tree_add_symlink(&t, "a/l", "b", "link"), 0);
	assert_int_equal(tree_add_symlink(&t, "a/l", "b", "again"), 0);
	assert_string_equal(tree_find(&t, "a/l")->reason, "link");
	assert_int_equal(tree_add_dir(&t, "a/l", 0755, "dir"), -EEXIST);
	assert_int_equal(tree_add_dir(&t, "a-b", 0755, "dir"), 0);
	tree_sort(&t);
	/* A directory's entries follow it directly. */
	const char *order[] = {"a", "a/b", "a/b/c", "a/l", "a-b"};
	assert_int_equal(t.n, 5);
	for (size_t i = 0; i < 5; i++)
		assert_string_equal(t.v[i]->path, order[i]);
	char *m;
	assert_int_equal(tree_manifest(&t, &m), 0);
	assert_non_null(strstr(m, "f          2 /a/b/c\tfirst\n"));
	assert_non_null(strstr(m, "l          0 /a/l -> b\tlink\n"));
	free(m);
	tree_free(&t);
}

static void cpio_roundtrip(void **state)
{
	struct image_tree t;
	char err[256];
	assert_int_equal(tree_init(&t), 0);
	assert_int_equal(tree_add_data(&t, "etc/x", "hello", 5, 0644, "x"), 0);
	assert_int_equal(tree_add_symlink(&t, "bin/sh", "busybox", "sh"), 0);
	assert_int_equal(tree_add_chr(&t, "dev/console", 5, 1, 0600, "console"), 0);
	int fd = memfd_create("cpio", 0);
	assert_true(fd >= 0);
	assert_int_equal(cpio_write(&t, fd, err, sizeof(err)), 0);
	off_t len = lseek(fd, 0, SEEK_END);
	assert_int_equal(len % 4, 0);
	uint8_t *b = malloc((size_t)len);
	assert_int_equal(pread(fd, b, (size_t)len, 0), len);
	close(fd);
	assert_memory_equal(b, "070701", 6);
	const uint8_t *data;
	size_t size;
	assert_int_equal(cpio_find(b, (size_t)len, "etc/x", &data, &size), 0);
	assert_int_equal(size, 5);
	assert_memory_equal(data, "hello", 5);
	assert_int_equal(cpio_find(b, (size_t)len, "bin/sh", &data, &size), 0);
	assert_memory_equal(data, "busybox", 7);
	assert_int_equal(cpio_find(b, (size_t)len, "nope", &data, &size), -ENOENT);
	/* Every truncation is refused or not found, never overread. */
	for (off_t n = 0; n < len; n++) {
		uint8_t *c = malloc(n ? (size_t)n : 1);
		memcpy(c, b, (size_t)n);
		int r = cpio_find(c, (size_t)n, "nope", &data, &size);
		assert_true(r == -ENOENT || r == -EINVAL);
		free(c);
	}
	/* A corrupt name size. */
	memcpy(b + 6 + 11 * 8, "FFFFFFFF", 8);
	assert_int_equal(cpio_find(b, (size_t)len, "etc/x", &data, &size), -EINVAL);
	free(b);
	tree_free(&t);
}

static void exit_line(void **state)
{
	assert_int_equal(image_exit_line("wisp-init: exit 0"), 0);
	assert_int_equal(image_exit_line("wisp-init: exit 3\r"), 3);
	assert_int_equal(image_exit_line("[   1.0] wisp-init: exit 255"), 255);
	assert_int_equal(image_exit_line("wisp-init: exit 256"), -1);
	assert_int_equal(image_exit_line("wisp-init: exit "), -1);
	assert_int_equal(image_exit_line("wisp-init: exit 12x"), -1);
	assert_int_equal(image_exit_line("wisp-init: ready"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(elf_valid),	    cmocka_unit_test(elf_truncated),
		cmocka_unit_test(elf_refused),	    cmocka_unit_test(path_resolve_inside),
		cmocka_unit_test(path_clean_rules), cmocka_unit_test(tree_rules),
		cmocka_unit_test(cpio_roundtrip),   cmocka_unit_test(exit_line),
	};
	return cmocka_run_group_tests_name("image", tests, NULL, NULL);
}
