#pragma once
/*
 * listen.h: a TCP listener on the loop and its connections, the part the host's servers
 * share (serve.h's HTTP, admission/https.h's HTTPS on top of it): the listen address
 * parsed, connections accepted up to a cap, each with an idle timer, closed one at a time
 * or all at once when the listener stops, and the server told when the last handle has
 * closed. What is read and written on a connection is the server's. Single-threaded,
 * like the loop: nothing here locks.
 */
#include <stdbool.h>
#include <stddef.h>

#include <uv.h>

#include "list.h"

struct ks_listen;

/* The start of a server's connection (its struct begins with this one). */
struct ks_listen_conn {
	uv_tcp_t tcp; /* data: this connection */
	uv_timer_t timer;
	struct ks_listen *ln;
	struct ks_list link; /* in ln->conns */
	int open_handles;
	bool closing;
};

struct ks_listen_ops {
	size_t conn_size; /* the size of the server's connection struct */
	/* A connection was accepted (its handles are open; the rest of it is zeroed): set up
	 * the server's part; NULL: nothing to do. Reading starts after it. */
	void (*accepted)(struct ks_listen_conn *c);
	uv_read_cb on_read; /* the stream's data is the connection */
	/* c's handles have closed: free the server's part of c (not c itself); NULL:
	 * nothing to do. */
	void (*conn_closed)(struct ks_listen_conn *c);
	/* The listener stopped, and its handle and every connection's have closed: the
	 * server may go. */
	void (*closed)(struct ks_listen *ln);
};

/* Embedded in the server (caller storage); the fields are read-only outside listen.c. */
struct ks_listen {
	uv_tcp_t tcp;
	const struct ks_listen_ops *ops;
	void *data; /* the server's */
	struct ks_list conns;
	size_t nconns;
	size_t max_conns;	  /* connections beyond are closed at once */
	unsigned idle_timeout_ms; /* a connection idle this long is closed */
	int port;
	bool listening; /* the listening handle is not closed yet */
	bool stopping;
	char rbuf[16384]; /* one read at a time: the loop is single-threaded */
};

/*
 * Parse a listen address: "host:port", "[v6]:port", "localhost:port" or ":port" (every
 * IPv4 address); port 0 picks a free one. Returns 0 or -EINVAL.
 */
int ks_listen_parse_addr(const char *addr, struct sockaddr_storage *ss);

/*
 * Listen on addr with ops (not copied: it must outlive ln), data for the server, the
 * connection cap and the idle timeout (both non-zero). Returns 0 (ln->port set), or
 * -EINVAL (a bad address), -EADDRINUSE, -EACCES or another -errno; on error ops->closed
 * runs once, now or when the loop has closed the handle.
 */
int ks_listen_start(struct ks_listen *ln, uv_loop_t *loop, const char *addr,
		    const struct ks_listen_ops *ops, void *data, size_t max_conns,
		    unsigned idle_timeout_ms);
/* (Re)start reading c, with the listener's read buffer. Returns 0 or a uv error. */
int ks_listen_read(struct ks_listen_conn *c);
/* Start c's idle timer again (it has done something). */
void ks_listen_touch(struct ks_listen_conn *c);
/* Close c (a second call does nothing); ops->conn_closed runs, and c is freed, once its
 * handles have closed. */
void ks_listen_close(struct ks_listen_conn *c);
/* Stop listening and close every connection; a second call does nothing; ops->closed
 * runs once every handle has closed. */
void ks_listen_stop(struct ks_listen *ln);
