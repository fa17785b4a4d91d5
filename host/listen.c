/* listen.c: a TCP listener and its connections, for the host's servers. */
#include "listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ks.h"

static void maybe_closed(struct ks_listen *ln)
{
	if (ln->stopping && !ln->listening && ln->nconns == 0)
		ln->ops->closed(ln);
}

static void on_conn_closed(uv_handle_t *h)
{
	struct ks_listen_conn *c = h->data;
	struct ks_listen *ln = c->ln;

	if (--c->open_handles > 0)
		return;
	ks_list_del(&c->link);
	ln->nconns--;
	if (ln->ops->conn_closed)
		ln->ops->conn_closed(c);
	free(c);
	maybe_closed(ln);
}

void ks_listen_close(struct ks_listen_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
	uv_close((uv_handle_t *)&c->timer, on_conn_closed);
}

static void on_timeout(uv_timer_t *t)
{
	ks_listen_close(t->data);
}

void ks_listen_touch(struct ks_listen_conn *c)
{
	uv_timer_start(&c->timer, on_timeout, c->ln->idle_timeout_ms, 0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	struct ks_listen_conn *c = h->data;

	(void)hint;
	*buf = uv_buf_init(c->ln->rbuf, sizeof(c->ln->rbuf));
}

int ks_listen_read(struct ks_listen_conn *c)
{
	return uv_read_start((uv_stream_t *)&c->tcp, on_alloc, c->ln->ops->on_read);
}

static void on_connection(uv_stream_t *server, int status)
{
	struct ks_listen *ln = server->data;
	struct ks_listen_conn *c;

	if (status < 0 || ln->stopping)
		return;
	c = ks_xcalloc(1, ln->ops->conn_size);
	c->ln = ln;
	c->tcp.data = c;
	c->timer.data = c;
	ks_require(uv_tcp_init(server->loop, &c->tcp) == 0);
	ks_require(uv_timer_init(server->loop, &c->timer) == 0);
	c->open_handles = 2;
	ks_list_add(&ln->conns, &c->link);
	ln->nconns++;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0 || ln->nconns > ln->max_conns) {
		ks_listen_close(c);
		return;
	}
	if (ln->ops->accepted)
		ln->ops->accepted(c);
	if (ks_listen_read(c) < 0) {
		ks_listen_close(c);
		return;
	}
	ks_listen_touch(c);
}

int ks_listen_parse_addr(const char *addr, struct sockaddr_storage *ss)
{
	const char *colon = strrchr(addr, ':');
	char host[64];
	size_t hl;
	long port;
	char *end;

	if (!colon || colon[1] < '0' || colon[1] > '9')
		return -EINVAL;
	port = strtol(colon + 1, &end, 10);
	hl = (size_t)(colon - addr);
	if (*end || port > 65535 || hl >= sizeof(host))
		return -EINVAL;
	memcpy(host, addr, hl);
	host[hl] = '\0';
	if (hl == 0)
		return uv_ip4_addr("0.0.0.0", (int)port, (struct sockaddr_in *)ss);
	if (strcmp(host, "localhost") == 0)
		return uv_ip4_addr("127.0.0.1", (int)port, (struct sockaddr_in *)ss);
	if (host[0] != '[')
		return uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
	if (hl < 3 || host[hl - 1] != ']')
		return -EINVAL;
	host[hl - 1] = '\0';
	return uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)ss);
}

static void on_listener_closed(uv_handle_t *h)
{
	struct ks_listen *ln = h->data;

	ln->listening = false;
	maybe_closed(ln);
}

static int local_port(uv_tcp_t *tcp)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (uv_tcp_getsockname(tcp, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int ks_listen_start(struct ks_listen *ln, uv_loop_t *loop, const char *addr,
		    const struct ks_listen_ops *ops, void *data, size_t max_conns,
		    unsigned idle_timeout_ms)
{
	struct sockaddr_storage ss;
	int err;

	*ln = (struct ks_listen){ .ops = ops,
				  .data = data,
				  .max_conns = max_conns,
				  .idle_timeout_ms = idle_timeout_ms,
				  .stopping = true };
	ks_list_init(&ln->conns);
	err = ks_listen_parse_addr(addr, &ss);
	if (!err)
		err = uv_tcp_init(loop, &ln->tcp);
	if (err) {
		maybe_closed(ln);
		return err;
	}
	ln->tcp.data = ln;
	ln->listening = true;
	err = uv_tcp_bind(&ln->tcp, (const struct sockaddr *)&ss, 0);
	if (!err)
		err = uv_listen((uv_stream_t *)&ln->tcp, 128, on_connection);
	if (err) {
		uv_close((uv_handle_t *)&ln->tcp, on_listener_closed);
		return err;
	}
	ln->stopping = false;
	ln->port = local_port(&ln->tcp);
	return 0;
}

void ks_listen_stop(struct ks_listen *ln)
{
	struct ks_list *l, *nx;

	if (ln->stopping)
		return;
	ln->stopping = true;
	ks_list_foreach_safe(l, nx, &ln->conns)
		ks_listen_close(KS_CONTAINER_OF(l, struct ks_listen_conn, link));
	uv_close((uv_handle_t *)&ln->tcp, on_listener_closed);
}
