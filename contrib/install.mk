# `make install` (included by the Makefile): the binaries, the unikernel
# runtime for building guests, man pages, bash completion, the systemd
# units and tmpfiles entry. `make deb` builds the Debian package, which
# runs `make install PREFIX=/usr` (debian/rules). See docs/packaging.md.
#
#   make install [PREFIX=/usr/local] [DESTDIR=...] [SYSTEMDUNITDIR=...]
#
# The programs live together in PREFIX/libexec/wisp (wisp finds wisp-client
# and tinit, wispd wisp-vmm, wisp-oci wisp, next to themselves), with wisp
# and wisp-oci in bin and wispd in sbin as symbolic links to them. A guest
# kernel for wisp-oci's Linux images is not installed (see docs/packaging.md).
PREFIX          ?= /usr/local
SYSCONFDIR      ?= $(if $(filter /usr,$(PREFIX)),/etc,$(PREFIX)/etc)
SYSTEMDUNITDIR  ?= $(PREFIX)/lib/systemd/system
LIBEXECDIR      := $(PREFIX)/libexec/wisp
D               := $(DESTDIR)

MAN_PAGES := $(patsubst docs/man/%.scd,$(BUILD)/man/%,$(wildcard docs/man/*.scd))
$(BUILD)/man/%: docs/man/%.scd
	@mkdir -p $(@D)
	scdoc <$< >$@
man: $(MAN_PAGES)

# The runtime for building unikernels out of the tree: its objects joined
# into one (wrt.o), the note, the virtio drivers' archive, the linker script.
$(BUILD)/unikernels/rt/wrt.o: $(UK_RT_OBJS)
	ld -r -o $@ $^

install: all man $(BUILD)/unikernels/rt/wrt.o
	install -d $(D)$(LIBEXECDIR) $(D)$(PREFIX)/bin $(D)$(PREFIX)/sbin
	install -m 755 $(BUILD)/wisp $(BUILD)/wisp-client $(BUILD)/wispd $(BUILD)/wisp-vmm \
		$(BUILD)/wisp-tls $(BUILD)/wisp-oci $(BUILD)/tinit $(D)$(LIBEXECDIR)/
	ln -sf ../libexec/wisp/wisp $(D)$(PREFIX)/bin/wisp
	ln -sf ../libexec/wisp/wisp-oci $(D)$(PREFIX)/bin/wisp-oci
	ln -sf ../libexec/wisp/wispd $(D)$(PREFIX)/sbin/wispd
	install -d $(D)$(PREFIX)/include/wisp $(D)$(PREFIX)/lib/wisp/unikernel
	install -m 644 include/wisp/abi.h $(UK_DIR)/include/*.h $(D)$(PREFIX)/include/wisp/
	install -m 644 $(BUILD)/unikernels/rt/wrt.o $(UK_BUILD)/rt/note.o $(UK_RT_LIB) \
		$(UK_DIR)/runtime/unikernel.ld $(D)$(PREFIX)/lib/wisp/unikernel/
	install -d $(D)$(PREFIX)/lib/wisp/unikernels
	install -m 644 $(UK_BUILD)/hello.elf $(UK_BUILD)/noop.elf $(D)$(PREFIX)/lib/wisp/unikernels/
	install -d $(D)$(PREFIX)/share/man/man1 $(D)$(PREFIX)/share/man/man5 $(D)$(PREFIX)/share/man/man8
	for m in $(MAN_PAGES); do \
		install -m 644 $$m $(D)$(PREFIX)/share/man/man$${m##*.}/; done
	install -d $(D)$(PREFIX)/share/bash-completion/completions
	install -m 644 contrib/wisp.bash-completion $(D)$(PREFIX)/share/bash-completion/completions/wisp
	install -d $(D)$(SYSTEMDUNITDIR) $(D)$(PREFIX)/lib/tmpfiles.d
	sed 's|@SBINDIR@|$(PREFIX)/sbin|g; s|@SYSCONFDIR@|$(SYSCONFDIR)|g' contrib/wispd.service.in >$(D)$(SYSTEMDUNITDIR)/wispd.service
	chmod 644 $(D)$(SYSTEMDUNITDIR)/wispd.service
	install -m 644 contrib/wispd.socket $(D)$(SYSTEMDUNITDIR)/
	install -m 644 contrib/wisp.tmpfiles $(D)$(PREFIX)/lib/tmpfiles.d/wisp.conf
	install -d $(D)$(SYSCONFDIR)/wisp
	install -m 644 contrib/wispd.conf $(D)$(SYSCONFDIR)/wisp/wispd.conf

uninstall:
	rm -f $(D)$(PREFIX)/bin/wisp $(D)$(PREFIX)/bin/wisp-oci $(D)$(PREFIX)/sbin/wispd
	rm -rf $(D)$(LIBEXECDIR) $(D)$(PREFIX)/include/wisp $(D)$(PREFIX)/lib/wisp
	rm -f $(MAN_PAGES:$(BUILD)/man/%=$(D)$(PREFIX)/share/man/man1/%) \
	      $(MAN_PAGES:$(BUILD)/man/%=$(D)$(PREFIX)/share/man/man5/%) \
	      $(MAN_PAGES:$(BUILD)/man/%=$(D)$(PREFIX)/share/man/man8/%)
	rm -f $(D)$(PREFIX)/share/bash-completion/completions/wisp
	rm -f $(D)$(SYSTEMDUNITDIR)/wispd.service $(D)$(SYSTEMDUNITDIR)/wispd.socket $(D)$(PREFIX)/lib/tmpfiles.d/wisp.conf
	rm -f $(D)$(SYSCONFDIR)/wisp/wispd.conf

# The Debian package, built with Debian's own tools (dpkg-buildpackage,
# debhelper), then checked by lintian; lands in $(BUILD)/deb/.
deb:
	scripts/deps.sh build deb
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/src
	git ls-files -z -co --exclude-standard | xargs -0 cp --parents -t $(BUILD)/deb/src
	cd $(BUILD)/deb/src && dpkg-buildpackage -b -us -uc --no-sign >../build.log 2>&1 || \
		{ tail -30 ../build.log; exit 1; }
	lintian --fail-on error,warning $(BUILD)/deb/*.deb
	@ls -l $(BUILD)/deb/*.deb

.PHONY: man install uninstall deb
