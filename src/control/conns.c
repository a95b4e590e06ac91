/* The API server's connections, per client (wispd.h): so that idle
 * connections can never lock the API out. libmicrohttpd tells us when a
 * connection starts and closes (MHD_OPTION_NOTIFY_CONNECTION); api.c says
 * when a request starts and ends. The client is the peer's uid
 * (SO_PEERCRED on the unix socket).
 *
 * A connection is idle between requests (and while its request's headers
 * are still coming). When a client has more than its share, or the server
 * is full, the oldest idle connection (of that client, or of anyone) is
 * shut down to make room; only if none is idle is the new one refused.
 * libmicrohttpd also closes a connection idle for the idle timeout. Before
 * this, 512 connections that sent nothing held the API for 10 minutes. */
#include <stdlib.h>
#include <sys/socket.h>

#include "control/wispd.h"
#include "util/util.h"

struct api_conn {
	struct api_conn *prev, *next; /* oldest activity first */
	int fd;
	uid_t uid;
	bool busy;   /* a request is being served */
	bool doomed; /* shut down: libmicrohttpd closes it next */
};

static void unlink_conn(struct api_conns *s, struct api_conn *c)
{
	if (c->prev)
		c->prev->next = c->next;
	else
		s->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		s->tail = c->prev;
	c->prev = c->next = NULL;
}

static void append(struct api_conns *s, struct api_conn *c)
{
	c->prev = s->tail;
	c->next = NULL;
	if (s->tail)
		s->tail->next = c;
	else
		s->head = c;
	s->tail = c;
}

/* Shut c down; libmicrohttpd sees the end of the stream and closes it. */
static void doom(struct api_conns *s, struct api_conn *c)
{
	c->doomed = true;
	s->live--;
	shutdown(c->fd, SHUT_RDWR);
}

/* The oldest idle live connection other than `not`, of uid (or of anyone
 * when any); NULL if none. */
static struct api_conn *oldest_idle(struct api_conns *s, const struct api_conn * not, bool any,
				    uid_t uid)
{
	for (struct api_conn *c = s->head; c; c = c->next)
		if (c != not &&!c->busy && !c->doomed && (any || c->uid == uid))
			return c;
	return NULL;
}

void conns_init(struct api_conns *s, unsigned max, unsigned per_client)
{
	*s = (struct api_conns){.max = max, .per_client = per_client};
}

void *conns_started(struct api_conns *s, int fd)
{
	struct api_conn *c = calloc(1, sizeof(*c));
	if (!c) {
		shutdown(fd, SHUT_RDWR);
		return NULL;
	}
	c->fd = fd;
	struct ucred cr;
	socklen_t len = sizeof(cr);
	/* Not a unix socket, or no credentials: all such peers are one client. */
	c->uid = getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) == 0 ? cr.uid : (uid_t)-1;
	append(s, c);
	s->live++;
	unsigned mine = 0;
	for (struct api_conn *o = s->head; o; o = o->next)
		mine += !o->doomed && o->uid == c->uid;
	if (mine > s->per_client) {
		struct api_conn *old = oldest_idle(s, c, false, c->uid);
		if (old) {
			doom(s, old);
			s->evicted++;
		} else {
			doom(s, c);
			s->refused++;
			return c;
		}
	}
	if (s->live > s->max) {
		struct api_conn *old = oldest_idle(s, c, true, 0);
		if (old) {
			doom(s, old);
			s->evicted++;
		} else {
			doom(s, c);
			s->refused++;
		}
	}
	return c;
}

void conns_busy(struct api_conns *s, void *ctx, bool busy)
{
	struct api_conn *c = ctx;
	if (!c)
		return;
	c->busy = busy;
	unlink_conn(s, c); /* now the youngest */
	append(s, c);
}

void conns_closed(struct api_conns *s, void *ctx)
{
	struct api_conn *c = ctx;
	if (!c)
		return;
	if (!c->doomed)
		s->live--;
	unlink_conn(s, c);
	free(c);
}

void conns_free(struct api_conns *s)
{
	while (s->head) {
		struct api_conn *c = s->head;
		unlink_conn(s, c);
		free(c);
	}
	s->live = 0;
}
