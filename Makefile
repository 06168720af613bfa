# Installing lvs-rs without a package.
#
#   make                                   # cargo build --release --workspace --bins
#   sudo make install                      # under /usr/local (PREFIX), units rewritten to it
#   sudo make install PREFIX=/usr          # the Debian package's layout
#   sudo make install-strip ...            # the same with stripped binaries
#   make install DESTDIR=/tmp/root         # staged (packaging, tests)
#   sudo make uninstall                    # same PREFIX/DESTDIR as for install
#   make deb                               # target/debian/lvs-rs_*.deb (needs cargo-deb)
#                                          # and lvs-rs-dbgsym_*.ddeb (debug symbols)
#
# `install` does not build (run `make` first, as yourself, not as root); it installs the
# binaries of $(BUILD_DIR) (default target/release, or $(CARGO_TARGET_DIR)/release).
# An existing /etc/sysconfig/ha/lvs.cf is never overwritten, and `uninstall` never removes
# it (nor the directory holding it). After installing: edit /etc/sysconfig/ha/lvs.cf, then
# `systemctl daemon-reload; systemctl enable --now pulse`.

PACKAGE    := lvs-rs
PREFIX     ?= /usr/local
DESTDIR    ?=
CARGO      ?= cargo
PROFILE    ?= release
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)
BUILD_DIR  ?= $(TARGET_DIR)/$(PROFILE)

SBINDIR    ?= $(PREFIX)/sbin
MANDIR     ?= $(PREFIX)/share/man
DOCDIR     ?= $(PREFIX)/share/doc/$(PACKAGE)
# systemd looks in /lib/systemd/system (packages) and /usr/local/lib/systemd/system (local).
ifeq ($(PREFIX),/usr)
UNITDIR    ?= /lib/systemd/system
else
UNITDIR    ?= $(PREFIX)/lib/systemd/system
endif
# Fixed: the path pulse and lvsd read by default, whatever PREFIX is.
CONFDIR    := /etc/sysconfig/ha

BINS       := pulse lvsd lvsadm nanny send-arp
UNITS      := pulse.service lvsd.service
MAN5       := lvs.cf.5
MAN8       := pulse.8 lvsd.8 lvsadm.8 nanny.8 send-arp.8
DOCS       := README.md docs/guide-two-routers.md docs/lvs-cf.md docs/pulse.md docs/nanny.md \
              docs/api.md docs/lvsadm.md docs/send-arp.md docs/sync.md \
              docs/migrate-from-piranha.md docs/migrate-from-keepalived.md
EXAMPLES   := $(wildcard etc/*.cf)

INSTALL    ?= install
# `make install-strip` sets it to -s: binaries without their debug line tables (1 to 7 MB
# instead of 15 to 60).
INSTALL_STRIP ?=

.PHONY: all build install install-strip uninstall deb check-built

all: build

build:
	$(CARGO) build --release --workspace --bins

check-built:
	@for b in $(BINS); do \
	  if [ ! -x "$(BUILD_DIR)/$$b" ]; then \
	    echo "make: $(BUILD_DIR)/$$b is missing: run \`make\` (cargo build --release --workspace --bins) first" >&2; \
	    exit 1; \
	  fi; \
	done

install: check-built
	$(INSTALL) -d -m 0755 "$(DESTDIR)$(SBINDIR)"
	for b in $(BINS); do $(INSTALL) $(INSTALL_STRIP) -m 0755 "$(BUILD_DIR)/$$b" "$(DESTDIR)$(SBINDIR)/$$b"; done
	$(INSTALL) -d -m 0755 "$(DESTDIR)$(UNITDIR)"
	for u in $(UNITS); do \
	  sed -e 's|/usr/sbin/|$(SBINDIR)/|g' -e 's|/usr/share/doc/$(PACKAGE)/|$(DOCDIR)/|g' \
	    "systemd/$$u" > "$(DESTDIR)$(UNITDIR)/$$u.tmp" && \
	  chmod 0644 "$(DESTDIR)$(UNITDIR)/$$u.tmp" && \
	  mv -f "$(DESTDIR)$(UNITDIR)/$$u.tmp" "$(DESTDIR)$(UNITDIR)/$$u"; \
	done
	$(INSTALL) -d -m 0755 "$(DESTDIR)$(MANDIR)/man5" "$(DESTDIR)$(MANDIR)/man8"
	for m in $(MAN5); do gzip -9n < "docs/man/$$m" > "$(DESTDIR)$(MANDIR)/man5/$$m.gz"; \
	  chmod 0644 "$(DESTDIR)$(MANDIR)/man5/$$m.gz"; done
	for m in $(MAN8); do gzip -9n < "docs/man/$$m" > "$(DESTDIR)$(MANDIR)/man8/$$m.gz"; \
	  chmod 0644 "$(DESTDIR)$(MANDIR)/man8/$$m.gz"; done
	$(INSTALL) -d -m 0755 "$(DESTDIR)$(DOCDIR)/examples"
	$(INSTALL) -m 0644 $(DOCS) "$(DESTDIR)$(DOCDIR)/"
	$(INSTALL) -m 0644 $(EXAMPLES) "$(DESTDIR)$(DOCDIR)/examples/"
	$(INSTALL) -d -m 0755 "$(DESTDIR)$(CONFDIR)"
	@if [ -e "$(DESTDIR)$(CONFDIR)/lvs.cf" ]; then \
	  echo "make: keeping the existing $(DESTDIR)$(CONFDIR)/lvs.cf (the sample is $(DOCDIR)/examples/lvs.cf.sample)"; \
	else \
	  $(INSTALL) -m 0644 packaging/lvs.cf "$(DESTDIR)$(CONFDIR)/lvs.cf" && \
	  echo "make: installed a sample $(DESTDIR)$(CONFDIR)/lvs.cf: edit it before starting pulse"; \
	fi
	$(INSTALL) -m 0644 packaging/lvs.cf "$(DESTDIR)$(DOCDIR)/examples/lvs.cf.sample"
	@echo "make: next: edit $(CONFDIR)/lvs.cf, then systemctl daemon-reload; systemctl enable --now pulse"

install-strip:
	$(MAKE) install INSTALL_STRIP=-s

uninstall:
	for b in $(BINS); do rm -f "$(DESTDIR)$(SBINDIR)/$$b"; done
	for u in $(UNITS); do rm -f "$(DESTDIR)$(UNITDIR)/$$u"; done
	for m in $(MAN5); do rm -f "$(DESTDIR)$(MANDIR)/man5/$$m.gz"; done
	for m in $(MAN8); do rm -f "$(DESTDIR)$(MANDIR)/man8/$$m.gz"; done
	rm -rf "$(DESTDIR)$(DOCDIR)"
	@echo "make: left $(DESTDIR)$(CONFDIR)/lvs.cf in place (your configuration)"

# The Debian package (metadata in pulse/Cargo.toml): build, then package without rebuilding.
# The release profile keeps line tables (debug = 1): --dbgsym moves them into
# lvs-rs-dbgsym_*.ddeb (install it beside the package to read a watchdog's core dump), so
# lvs-rs_*.deb has stripped binaries (4 MB instead of 35).
deb: build
	$(CARGO) deb -p pulse --no-build --dbgsym
