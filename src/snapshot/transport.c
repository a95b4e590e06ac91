/* The migration transport (docs/migration.md#security): the wisp-tls
 * process between a VMM and the network. wispd starts one per receive and
 * per migration, with the credentials; the VMM (static, and confined) only
 * ever sees a plaintext stream from an authenticated peer, handed over on
 * its channel (struct mig_chan).
 *
 * TLS 1.3 with GnuTLS, authenticated both ways: by a pre-shared key (both
 * sides hold the same key file) or by X.509 certificates (the receiver
 * requires a client certificate from the CA; the sender checks the
 * target's certificate and its name). Cleartext only when both were told
 * so by name: a TLS peer and a cleartext one do not understand each other.
 *
 * A receiver's transport listens on the one address it was given, takes
 * peers one at a time, gives each handshake at most HANDSHAKE_MS (and
 * never past the deadline), reports refused ones and goes on listening
 * until its VMM closes the channel. Once a peer is authenticated it relays
 * bytes between the TLS session and a socketpair whose other end the VMM
 * holds. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/snapshot.h"

#define HANDSHAKE_MS 10000
#define KEY_FILE_MAX 4096
#define PSK_MIN	     16 /* bytes */

struct tls {
	const struct mig_tls_opts *o;
	bool server, inited;
	gnutls_psk_server_credentials_t psk_srv;
	gnutls_psk_client_credentials_t psk_cli;
	gnutls_certificate_credentials_t x509;
	gnutls_datum_t key;
	char identity[128];
};

/* --- addresses and sockets ------------------------------------------------------ */

static void peer_name(int fd, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char a[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;
	if (getpeername(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			inet_ntop(AF_INET, &s4->sin_addr, a, sizeof(a));
			port = ntohs(s4->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
			inet_ntop(AF_INET6, &s6->sin6_addr, a, sizeof(a));
			port = ntohs(s6->sin6_port);
		}
	}
	snprintf(out, len, strchr(a, ':') ? "[%s]:%u" : "%s:%u", a, port);
}

static void tune(int fd)
{
	int one = 1, buf = 4 << 20;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
}

static int ms_left(uint64_t deadline)
{
	uint64_t now = util_now_ns();
	return now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);
}

/* --- credentials ------------------------------------------------------------------- */

/* A client-named file: opened non-blocking (a FIFO must not hang us), a
 * regular file, small. */
static int check_file(const char *what, const char *path, char *err, size_t errlen)
{
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s '%s': %s", what, path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s '%s': not a regular file", what, path);
		return -EINVAL;
	}
	return fd;
}

/* The key file: hex digits, optionally "IDENTITY:" first (psktool's
 * format); at least PSK_MIN bytes. */
static int load_psk(struct tls *t, char *err, size_t errlen)
{
	const struct mig_tls_opts *o = t->o;
	int fd = check_file("key file", o->psk_file, err, errlen);
	if (fd < 0)
		return fd;
	char buf[KEY_FILE_MAX + 1];
	ssize_t n = read(fd, buf, KEY_FILE_MAX + 1);
	close(fd);
	if (n < 0 || n > KEY_FILE_MAX) {
		snprintf(err, errlen, "key file '%s': %s", o->psk_file,
			 n < 0 ? strerror(errno) : "larger than 4 KiB");
		return -EINVAL;
	}
	buf[n] = 0;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' '))
		buf[--n] = 0;
	char *hex = buf, *colon = strchr(buf, ':');
	snprintf(t->identity, sizeof(t->identity), "%s", "wisp");
	if (colon) {
		*colon = 0;
		snprintf(t->identity, sizeof(t->identity), "%.127s", buf);
		hex = colon + 1;
	}
	if (o->psk_identity)
		snprintf(t->identity, sizeof(t->identity), "%s", o->psk_identity);
	size_t hl = strlen(hex);
	if (hl % 2 || hl / 2 < PSK_MIN) {
		snprintf(err, errlen, "key file '%s': the key must be at least %d bytes in hex",
			 o->psk_file, PSK_MIN);
		return -EINVAL;
	}
	t->key.data = gnutls_malloc(hl / 2);
	t->key.size = (unsigned)(hl / 2);
	if (!t->key.data) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < hl / 2; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1 ||
		    !strchr("0123456789abcdefABCDEF", hex[2 * i]) ||
		    !strchr("0123456789abcdefABCDEF", hex[2 * i + 1])) {
			snprintf(err, errlen, "key file '%s': not hexadecimal", o->psk_file);
			return -EINVAL;
		}
		t->key.data[i] = (uint8_t)v;
	}
	return 0;
}

static int psk_server_key(gnutls_session_t s, const char *identity, gnutls_datum_t *key)
{
	struct tls *t = gnutls_session_get_ptr(s);
	if (strcmp(identity, t->identity) != 0)
		return -1;
	key->data = gnutls_malloc(t->key.size);
	if (!key->data)
		return -1;
	memcpy(key->data, t->key.data, t->key.size);
	key->size = t->key.size;
	return 0;
}

static int tls_init(struct tls *t, const struct mig_tls_opts *o, bool server, char *err,
		    size_t errlen)
{
	memset(t, 0, sizeof(*t));
	t->o = o;
	t->server = server;
	if (o->cleartext)
		return 0;
	int r = gnutls_global_init();
	if (r < 0) {
		snprintf(err, errlen, "GnuTLS: %s", gnutls_strerror(r));
		return -EIO;
	}
	t->inited = true;
	if (o->psk_file) {
		if ((r = load_psk(t, err, errlen)))
			return r;
		if (server) {
			gnutls_psk_allocate_server_credentials(&t->psk_srv);
			gnutls_psk_set_server_credentials_function(t->psk_srv, psk_server_key);
		} else {
			gnutls_psk_allocate_client_credentials(&t->psk_cli);
			r = gnutls_psk_set_client_credentials(t->psk_cli, t->identity, &t->key,
							      GNUTLS_PSK_KEY_RAW);
			if (r < 0) {
				snprintf(err, errlen, "key file '%s': %s", o->psk_file,
					 gnutls_strerror(r));
				return -EINVAL;
			}
		}
		return 0;
	}
	if (!o->ca || !o->cert || !o->key) {
		snprintf(err, errlen, "give a key file, or a CA, a certificate and its key");
		return -EINVAL;
	}
	const char *files[3][2] = {
		{"CA file", o->ca}, {"certificate file", o->cert}, {"key file", o->key}};
	for (int i = 0; i < 3; i++) {
		int fd = check_file(files[i][0], files[i][1], err, errlen);
		if (fd < 0)
			return fd;
		close(fd);
	}
	gnutls_certificate_allocate_credentials(&t->x509);
	r = gnutls_certificate_set_x509_trust_file(t->x509, o->ca, GNUTLS_X509_FMT_PEM);
	if (r <= 0) {
		snprintf(err, errlen, "CA file '%s': %s", o->ca,
			 r == 0 ? "no certificate in it" : gnutls_strerror(r));
		return -EINVAL;
	}
	r = gnutls_certificate_set_x509_key_file(t->x509, o->cert, o->key, GNUTLS_X509_FMT_PEM);
	if (r < 0) {
		snprintf(err, errlen, "certificate '%s' with key '%s': %s", o->cert, o->key,
			 gnutls_strerror(r));
		return -EINVAL;
	}
	return 0;
}

static void tls_free(struct tls *t)
{
	if (t->psk_srv)
		gnutls_psk_free_server_credentials(t->psk_srv);
	if (t->psk_cli)
		gnutls_psk_free_client_credentials(t->psk_cli);
	if (t->x509)
		gnutls_certificate_free_credentials(t->x509);
	if (t->key.data) {
		memset(t->key.data, 0, t->key.size);
		gnutls_free(t->key.data);
	}
	if (t->inited)
		gnutls_global_deinit();
}

/* Handshake on the non-blocking fd until deadline. On success *out is the
 * session; else why says what failed. */
static int handshake(struct tls *t, int fd, uint64_t deadline, gnutls_session_t *out, char *why,
		     size_t whylen)
{
	gnutls_session_t s;
	int r = gnutls_init(&s, (t->server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NONBLOCK);
	if (r < 0) {
		snprintf(why, whylen, "GnuTLS: %s", gnutls_strerror(r));
		return -EIO;
	}
	gnutls_session_set_ptr(s, t);
	const char *prio = "NORMAL:-VERS-ALL:+VERS-TLS1.3";
	if (t->psk_srv || t->psk_cli) {
		prio = "NORMAL:-VERS-ALL:+VERS-TLS1.3:+ECDHE-PSK:+DHE-PSK:+PSK";
		r = t->server ? gnutls_credentials_set(s, GNUTLS_CRD_PSK, t->psk_srv)
			      : gnutls_credentials_set(s, GNUTLS_CRD_PSK, t->psk_cli);
	} else {
		r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->x509);
		if (t->server) {
			gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
			gnutls_session_set_verify_cert(s, NULL, 0);
		} else {
			const char *name = t->o->server_name;
			struct in6_addr dummy;
			if (inet_pton(AF_INET, name, &dummy) != 1 &&
			    inet_pton(AF_INET6, name, &dummy) != 1)
				gnutls_server_name_set(s, GNUTLS_NAME_DNS, name, strlen(name));
			gnutls_session_set_verify_cert(s, name, 0);
		}
	}
	if (r >= 0)
		r = gnutls_priority_set_direct(s, prio, NULL);
	if (r < 0) {
		snprintf(why, whylen, "GnuTLS: %s", gnutls_strerror(r));
		gnutls_deinit(s);
		return -EIO;
	}
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, 0);
	for (;;) {
		r = gnutls_handshake(s);
		if (r == GNUTLS_E_SUCCESS)
			break;
		if (r != GNUTLS_E_AGAIN && r != GNUTLS_E_INTERRUPTED) {
			if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
				gnutls_datum_t d = {0};
				unsigned st = gnutls_session_get_verify_cert_status(s);
				gnutls_certificate_verification_status_print(st, GNUTLS_CRT_X509,
									     &d, 0);
				char *txt = d.data ? (char *)d.data : NULL;
				size_t tl = txt ? strlen(txt) : 0;
				while (tl && (txt[tl - 1] == ' ' || txt[tl - 1] == '.'))
					txt[--tl] = 0;
				snprintf(why, whylen, "%s certificate refused: %s",
					 t->server ? "the source's" : "the target's",
					 txt ? txt : "not trusted");
				gnutls_free(d.data);
			} else if (r == GNUTLS_E_PULL_ERROR || r == GNUTLS_E_PUSH_ERROR ||
				   r == GNUTLS_E_PREMATURE_TERMINATION) {
				snprintf(why, whylen,
					 "the peer hung up during the TLS handshake (it refused "
					 "our %s, or speaks cleartext)",
					 t->psk_srv || t->psk_cli ? "key" : "certificate");
			} else if (r == GNUTLS_E_NO_CERTIFICATE_FOUND) {
				snprintf(why, whylen, "the peer sent no certificate");
			} else {
				snprintf(why, whylen, "TLS handshake failed: %s%s",
					 gnutls_strerror(r),
					 t->psk_srv || t->psk_cli ? " (not the same key?)" : "");
			}
			gnutls_deinit(s);
			return -EACCES;
		}
		int left = ms_left(deadline);
		if (!left) {
			snprintf(why, whylen, "TLS handshake not done in time");
			gnutls_deinit(s);
			return -ETIMEDOUT;
		}
		struct pollfd p = {.fd = fd,
				   .events = gnutls_record_get_direction(s) ? POLLOUT : POLLIN};
		poll(&p, 1, left);
	}
	*out = s;
	return 0;
}

/* --- relaying -------------------------------------------------------------------------- */

static int write_all(int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd q = {.fd = fd, .events = POLLOUT};
			poll(&q, 1, -1);
			continue;
		}
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int tls_send_all(gnutls_session_t s, int fd, const uint8_t *p, size_t len)
{
	while (len) {
		ssize_t n = gnutls_record_send(s, p, len);
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			struct pollfd q = {.fd = fd, .events = POLLOUT};
			poll(&q, 1, -1);
			continue;
		}
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Relay between session s on net and the plaintext socket local until
 * either side ends (a VMM that exits ends its side too). */
static int relay(gnutls_session_t s, int net, int local)
{
	static uint8_t buf[256 << 10];
	for (;;) {
		if (gnutls_record_check_pending(s) == 0) {
			struct pollfd p[2] = {{.fd = net, .events = POLLIN},
					      {.fd = local, .events = POLLIN}};
			if (poll(p, 2, -1) < 0) {
				if (errno == EINTR)
					continue;
				return -1;
			}
			if (p[1].revents) {
				ssize_t n = read(local, buf, sizeof(buf));
				if (n < 0 && (errno == EINTR || errno == EAGAIN))
					continue;
				if (n <= 0) {
					gnutls_bye(s, GNUTLS_SHUT_WR);
					return 0;
				}
				if (tls_send_all(s, net, buf, (size_t)n))
					return 0;
			}
			if (!p[0].revents)
				continue;
		}
		ssize_t n = gnutls_record_recv(s, buf, sizeof(buf));
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			continue;
		if (n <= 0 || write_all(local, buf, (size_t)n))
			return 0;
	}
}

/* A peer is authenticated: hand the VMM a plaintext socket and relay. */
static int hand_over(int chan, gnutls_session_t s, int net)
{
	int sp[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	int buf = 4 << 20;
	setsockopt(sp[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(sp[0], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	setsockopt(sp[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(sp[1], SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	int r = mig_chan_send(chan, MIG_CHAN_PEER, 0, NULL, sp[1]);
	close(sp[1]);
	if (r) {
		close(sp[0]);
		return 1;
	}
	relay(s, net, sp[0]);
	close(sp[0]);
	return 0;
}

/* --- the two ends ------------------------------------------------------------------------ */

/* What both ends do first: the address, and the TLS credentials for this
 * side (server or client). t is always safe to tls_free after. */
static int end_init(const char *addr, const struct mig_tls_opts *o, bool server, struct tls *t,
		    struct sockaddr_storage *ss, socklen_t *sl, char *err, size_t errlen)
{
	int r = mig_parse_addr(addr, ss, sl, err, errlen);
	if (!r)
		r = tls_init(t, o, server, err, errlen);
	else
		memset(t, 0, sizeof(*t));
	return r;
}

/* An end that could not start: say why on the channel, free what it has. */
static int end_failed(int chan, int r, const char *err, int fd, struct tls *t)
{
	mig_chan_send(chan, MIG_CHAN_FAILED, r, err, -1);
	if (fd >= 0)
		close(fd);
	tls_free(t);
	return 1;
}

int mig_transport_listen(int chan, const char *addr, const struct mig_tls_opts *o)
{
	char err[256];
	struct tls t;
	struct sockaddr_storage ss;
	socklen_t sl;
	uint64_t deadline = util_now_ns() + o->deadline_ms * 1000000ull;
	int r = end_init(addr, o, true, &t, &ss, &sl, err, sizeof(err));
	int lfd = -1;
	if (!r) {
		int one = 1;
		lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (lfd >= 0)
			setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (ss.ss_family == AF_INET6 && lfd >= 0)
			setsockopt(lfd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		if (lfd < 0 || bind(lfd, (struct sockaddr *)&ss, sl) < 0 || listen(lfd, 8) < 0) {
			r = -errno;
			snprintf(err, sizeof(err), "cannot listen on %s: %s", addr,
				 strerror(errno));
		}
	}
	if (r)
		return end_failed(chan, r, err, lfd, &t);
	mig_chan_send(chan, MIG_CHAN_LISTENING, 0, NULL, -1);
	for (;;) {
		int left = ms_left(deadline);
		if (!left)
			break;
		struct pollfd p[2] = {{.fd = lfd, .events = POLLIN},
				      {.fd = chan, .events = POLLIN}};
		if (poll(p, 2, left) < 0 && errno != EINTR)
			break;
		if (p[1].revents & (POLLHUP | POLLERR))
			break;
		if (!p[0].revents)
			continue;
		int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (c < 0)
			continue;
		tune(c);
		if (o->cleartext) {
			r = mig_chan_send(chan, MIG_CHAN_PEER, 0, NULL, c);
			close(c);
			if (r)
				break;
			continue;
		}
		char who[80], why[200], msg[200];
		peer_name(c, who, sizeof(who));
		uint64_t now = util_now_ns(), hd = now + HANDSHAKE_MS * 1000000ull;
		gnutls_session_t s;
		if (handshake(&t, c, hd < deadline ? hd : deadline, &s, why, sizeof(why))) {
			snprintf(msg, sizeof(msg), "%.60s: %.130s", who, why);
			close(c);
			if (mig_chan_send(chan, MIG_CHAN_REFUSED, -EACCES, msg, -1))
				break;
			continue;
		}
		r = hand_over(chan, s, c);
		gnutls_deinit(s);
		close(c);
		if (r)
			break;
	}
	close(lfd);
	tls_free(&t);
	return 0;
}

int mig_transport_connect(int chan, const char *addr, const struct mig_tls_opts *o)
{
	char err[256];
	struct tls t;
	struct sockaddr_storage ss;
	socklen_t sl;
	uint64_t deadline = util_now_ns() + o->deadline_ms * 1000000ull;
	int r = end_init(addr, o, false, &t, &ss, &sl, err, sizeof(err));
	int fd = -1;
	if (!r) {
		fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (fd < 0) {
			r = -errno;
		} else if (connect(fd, (struct sockaddr *)&ss, sl) < 0) {
			if (errno != EINPROGRESS) {
				r = -errno;
			} else {
				struct pollfd p = {.fd = fd, .events = POLLOUT};
				int soerr = 0;
				socklen_t el = sizeof(soerr);
				if (poll(&p, 1, ms_left(deadline)) <= 0)
					r = -ETIMEDOUT;
				else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &el) == 0 &&
					 soerr)
					r = -soerr;
			}
		}
		if (r)
			snprintf(err, sizeof(err), "cannot connect to %s: %s", addr, strerror(-r));
	}
	gnutls_session_t s = NULL;
	if (!r && !o->cleartext) {
		char why[200];
		tune(fd);
		if ((r = handshake(&t, fd, deadline, &s, why, sizeof(why))))
			snprintf(err, sizeof(err), "%s: %s", addr, why);
	}
	if (r)
		return end_failed(chan, r, err, fd, &t);
	if (o->cleartext) {
		mig_chan_send(chan, MIG_CHAN_PEER, 0, NULL, fd);
	} else {
		hand_over(chan, s, fd);
		gnutls_deinit(s);
	}
	close(fd);
	tls_free(&t);
	return 0;
}
