/* kt_lease.c: leader election on a Lease against the real API server. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "json.h"
#include "kt.h"
#include "lease.h"

#define NS "kt-lease"
/* Short durations, so that the tests take seconds. */
#define DURATION 3.0
#define DEADLINE 2.0
#define PERIOD 0.5

static struct kt t;
static const struct ks_kube_res leases = { "coordination.k8s.io", "v1", "leases", true };

struct pair;

/* A candidate and what happened to it. */
struct cand {
	struct pair *p;
	char tag; /* 'A' or 'B' in the log */
	struct ks_lease *l;
	struct ks_kube *own; /* its client through a proxy, or NULL for t.kube */
	int started, stopped, released;
	uint64_t started_ns, stopped_ns; /* the last of each */
};

/* Two candidates for one Lease. */
struct pair {
	struct cand c[2];
	int leaders;	 /* leading now, by the callbacks */
	int max_leaders; /* the most at any moment */
	bool disagree;	 /* a callback's count and ks_lease_leading() differed */
	char log[512];	 /* "A+ A- B+ ": started and stopped, in order */
};

static void note(struct cand *c, char what)
{
	size_t n = strlen(c->p->log);

	if (n + 4 < sizeof(c->p->log))
		snprintf(c->p->log + n, sizeof(c->p->log) - n, "%c%c ", c->tag, what);
}

static void check(struct pair *p)
{
	int leading = 0;

	for (int i = 0; i < 2; i++)
		leading += p->c[i].l && ks_lease_leading(p->c[i].l);

	p->max_leaders = KS_MAX(p->max_leaders, p->leaders);
	p->max_leaders = KS_MAX(p->max_leaders, leading);
	if (leading != p->leaders)
		p->disagree = true;
}

static void on_started(struct ks_lease *l, void *data)
{
	struct cand *c = data;

	ks_require(c->l == l);
	c->started++;
	c->started_ns = ks_now_ns();
	c->p->leaders++;
	note(c, '+');
	check(c->p);
}

static void on_stopped(struct ks_lease *l, void *data)
{
	struct cand *c = data;

	ks_require(c->l == l);
	c->stopped++;
	c->stopped_ns = ks_now_ns();
	c->p->leaders--;
	note(c, '-');
	check(c->p);
}

static void on_released(struct ks_lease *l, void *data)
{
	struct cand *c = data;

	ks_require(c->l == l);
	c->released++;
}

static void pair_init(struct pair *p, const char *name, struct ks_kube *kube_a)
{
	memset(p, 0, sizeof(*p));
	for (int i = 0; i < 2; i++) {
		struct cand *c = &p->c[i];
		char id[32];

		c->p = p;
		c->tag = (char)('A' + i);
		c->own = i == 0 ? kube_a : NULL;
		snprintf(id, sizeof(id), "kt-%c", 'a' + i);
		c->l = ks_lease_new(&t.loop, c->own ? c->own : t.kube,
				    &(struct ks_lease_opts){
					    .namespace = NS,
					    .name = name,
					    .identity = id,
					    .lease_duration = DURATION,
					    .renew_deadline = DEADLINE,
					    .retry_period = PERIOD,
					    .on_started = on_started,
					    .on_stopped = on_stopped,
					    .data = c,
				    });
		ks_require(c->l);
	}
}

static void pair_deinit(struct pair *p)
{
	for (int i = 0; i < 2; i++)
		ks_lease_free(p->c[i].l);
	kt_run_for(&t, 0.05); /* the timers close */
	for (int i = 0; i < 2; i++)
		ks_kube_free(p->c[i].own);
}

static bool anyone_leads(void *data)
{
	struct pair *p = data;

	return ks_lease_leading(p->c[0].l) || ks_lease_leading(p->c[1].l);
}

static bool leads(void *data)
{
	return ks_lease_leading(((struct cand *)data)->l);
}

static bool was_released(void *data)
{
	return ((struct cand *)data)->released > 0;
}

static double since(uint64_t t0, uint64_t t1)
{
	return (double)(t1 - t0) / 1e9;
}

static void get_lease(const char *name, struct kt_res *r)
{
	kt_res_clear(r);
	ks_kube_get(t.kube, &leases, NS, name, kt_store, r);
	kt_wait(&t, r, 30);
}

/* "2006-01-02T15:04:05.000000Z" */
static bool is_micro_time(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";

	if (!s || strlen(s) != sizeof(pat) - 1)
		return false;
	for (size_t i = 0; pat[i]; i++) {
		if (pat[i] == 'd' ? !isdigit((unsigned char)s[i]) : s[i] != pat[i])
			return false;
	}
	return true;
}

TEST(refuses_bad_options_and_makes_an_identity)
{
	struct ks_lease_opts o = { .namespace = NS, .name = "t-opts" };
	struct ks_lease *l;
	char host[256] = "";
	const char *id;

	o.lease_duration = 2;
	o.renew_deadline = 2;
	ASSERT(ks_lease_new(&t.loop, t.kube, &o) == NULL);
	o.lease_duration = 3;
	o.retry_period = 2;
	ASSERT(ks_lease_new(&t.loop, t.kube, &o) == NULL);
	o = (struct ks_lease_opts){ .namespace = NS };
	ASSERT(ks_lease_new(&t.loop, t.kube, &o) == NULL);
	o.name = "t-opts";
	l = ks_lease_new(&t.loop, t.kube, &o);
	ASSERT(l != NULL);
	gethostname(host, sizeof(host) - 1);
	id = ks_lease_identity(l);
	ASSERT(strncmp(id, host, strlen(host)) == 0);
	ASSERT_EQ(id[strlen(host)], '_');
	ASSERT_EQ(strspn(id + strlen(host) + 1, "0123456789abcdef"), 16);
	ASSERT_EQ(strlen(id), strlen(host) + 17);
	ASSERT(!ks_lease_leading(l));
	ks_lease_free(l);
	kt_run_for(&t, 0.05);
}

TEST(one_of_two_leads_and_the_lease_names_it)
{
	static struct pair p;
	struct kt_res r = { 0 };
	uint64_t t0 = ks_now_ns();
	struct cand *lead;
	char *renewed, *rv;

	pair_init(&p, "t-elect", NULL);
	ks_lease_start(p.c[0].l);
	ks_lease_start(p.c[1].l);
	ASSERT(kt_until(&t, anyone_leads, &p, 10));
	printf("# first leader after %.2f s\n", since(t0, ks_now_ns()));
	kt_run_for(&t, 4 * PERIOD);
	lead = ks_lease_leading(p.c[0].l) ? &p.c[0] : &p.c[1];
	ASSERT(ks_lease_leading(lead->l));
	ASSERT(!ks_lease_leading(p.c[lead == p.c ? 1 : 0].l));
	ASSERT_EQ(p.c[0].started + p.c[1].started, 1);
	ASSERT_EQ(p.c[0].stopped + p.c[1].stopped, 0);
	ASSERT_EQ(p.max_leaders, 1);
	ASSERT(!p.disagree);
	get_lease("t-elect", &r);
	ASSERT_EQ(r.code, 200);
	ASSERT_STR(ks_json_str(r.body, "spec.holderIdentity"), ks_lease_identity(lead->l));
	ASSERT_EQ(ks_json_int(r.body, "spec.leaseDurationSeconds", -1), 3);
	ASSERT_EQ(ks_json_int(r.body, "spec.leaseTransitions", -1), 0);
	ASSERT(is_micro_time(ks_json_str(r.body, "spec.acquireTime")));
	ASSERT(is_micro_time(ks_json_str(r.body, "spec.renewTime")));
	renewed = ks_xstrdup(ks_json_str(r.body, "spec.renewTime"));
	rv = ks_xstrdup(ks_json_str(r.body, "metadata.resourceVersion"));
	/* The leader renews every period: the record moves on, the holder stays. */
	kt_run_for(&t, 3 * PERIOD);
	get_lease("t-elect", &r);
	ASSERT_STR(ks_json_str(r.body, "spec.holderIdentity"), ks_lease_identity(lead->l));
	ASSERT(strcmp(ks_json_str(r.body, "spec.renewTime"), renewed) > 0);
	ASSERT(strcmp(ks_json_str(r.body, "metadata.resourceVersion"), rv) != 0);
	ASSERT_EQ(ks_json_int(r.body, "spec.leaseTransitions", -1), 0);
	free(renewed);
	free(rv);
	kt_res_clear(&r);
	pair_deinit(&p);
}

TEST(release_hands_over_to_the_other)
{
	static struct pair p;
	struct kt_res r = { 0 };
	struct cand *a = &p.c[0], *b = &p.c[1];
	uint64_t t0;

	pair_init(&p, "t-release", NULL);
	ks_lease_start(a->l);
	ASSERT(kt_until(&t, leads, a, 10));
	ks_lease_start(b->l);
	kt_run_for(&t, 3 * PERIOD);
	ASSERT(!ks_lease_leading(b->l));
	t0 = ks_now_ns();
	ks_lease_release(a->l, on_released, a);
	ASSERT(!ks_lease_leading(a->l));
	ASSERT_EQ(a->stopped, 0); /* from the loop, not from inside the call */
	ASSERT(kt_until(&t, was_released, a, 10));
	ASSERT_EQ(a->stopped, 1);
	ASSERT(kt_until(&t, leads, b, 10));
	printf("# takeover after release: %.2f s\n", since(t0, b->started_ns));
	ASSERT(since(t0, b->started_ns) < 10);
	ASSERT(a->stopped_ns < b->started_ns);
	ASSERT_STR(p.log, "A+ A- B+ ");
	ASSERT_EQ(a->released, 1);
	get_lease("t-release", &r);
	ASSERT_STR(ks_json_str(r.body, "spec.holderIdentity"), "kt-b");
	ASSERT_EQ(ks_json_int(r.body, "spec.leaseTransitions", -1), 1);
	ASSERT_EQ(ks_json_int(r.body, "spec.leaseDurationSeconds", -1), 3);
	/* Started again, the released one waits its turn. */
	ks_lease_start(a->l);
	kt_run_for(&t, DURATION + 2 * PERIOD);
	ASSERT(!ks_lease_leading(a->l));
	ASSERT(ks_lease_leading(b->l));
	ASSERT_EQ(p.max_leaders, 1);
	ASSERT(!p.disagree);
	ASSERT_STR(p.log, "A+ A- B+ ");
	kt_res_clear(&r);
	pair_deinit(&p);
}

static int conflicts;

static void count_conflicts(const char *method, long code, double seconds, void *data)
{
	(void)seconds;
	(void)data;
	if (strcmp(method, "PUT") == 0 && code == 409)
		conflicts++;
}

TEST(release_after_a_foreign_write_reads_again_and_clears_the_holder)
{
	static struct pair p;
	struct kt_res r = { 0 };
	struct cand *a = &p.c[0];

	pair_init(&p, "t-race", NULL);
	ks_lease_start(a->l);
	ASSERT(kt_until(&t, leads, a, 10));
	/* Someone else writes while the loop is not running: the resourceVersion we
	 * hold is stale, so the release's first PUT gets a 409. */
	ASSERT_EQ(kt_sh("kubectl -n %s annotate lease t-race kt/touched=yes >/dev/null", NS), 0);
	conflicts = 0;
	ks_kube_set_observer(t.kube, count_conflicts, NULL);
	ks_lease_release(a->l, on_released, a);
	ASSERT(kt_until(&t, was_released, a, 10));
	ks_kube_set_observer(t.kube, NULL, NULL);
	ASSERT_EQ(conflicts, 1);
	ASSERT_EQ(a->stopped, 1);
	get_lease("t-race", &r);
	ASSERT_STR(ks_json_str(r.body, "spec.holderIdentity"), "");
	ASSERT_EQ(ks_json_int(r.body, "spec.leaseDurationSeconds", -1), 1);
	ASSERT_EQ(ks_json_int(r.body, "spec.leaseTransitions", -1), 0);
	ASSERT_STR(ks_json_str(r.body, "metadata.annotations.kt/touched"), "yes");
	ASSERT_STR(p.log, "A+ A- ");
	kt_res_clear(&r);
	pair_deinit(&p);
}

/* A client whose connections go through proxy p. */
static struct ks_kube *via_proxy(struct kt_proxy *p)
{
	struct ks_kubeconfig c = t.cfg;
	struct ks_kube *k;

	c.server = ks_xasprintf("https://127.0.0.1:%d", kt_proxy_port(p));
	k = ks_kube_new(t.http, &c);
	free(c.server);
	return k;
}

static int server_port(void)
{
	const char *colon = strrchr(t.cfg.server, ':');

	return colon ? atoi(colon + 1) : 443;
}

/* A leads through a proxy, B waits; the proxy cuts A off (mode): A must step down
 * within its renew deadline, and before B takes over. */
static void cut_off_leader(const char *name, enum kt_proxy_mode mode, const char *how)
{
	struct kt_proxy *px = kt_proxy_start(&t, "127.0.0.1", server_port());
	static struct pair p;
	struct kt_res r = { 0 };
	struct cand *a = &p.c[0], *b = &p.c[1];
	uint64_t t0;

	pair_init(&p, name, via_proxy(px));
	ks_lease_start(a->l);
	ASSERT(kt_until(&t, leads, a, 10));
	ks_lease_start(b->l);
	kt_run_for(&t, 3 * PERIOD);
	ASSERT(!ks_lease_leading(b->l));
	t0 = ks_now_ns();
	kt_proxy_set_mode(px, mode);
	ASSERT(kt_until(&t, leads, b, 10));
	ASSERT_EQ(a->stopped, 1);
	printf("# %s leader stepped down after %.2f s, the other led after %.2f s\n", how,
	       since(t0, a->stopped_ns), since(t0, b->started_ns));
	ASSERT(since(t0, a->stopped_ns) < DEADLINE + 1);
	ASSERT(a->stopped_ns < b->started_ns);
	/* B waited out the lease from A's last renew, at most a period before t0. */
	ASSERT(since(t0, b->started_ns) > DURATION - PERIOD - 0.1);
	ASSERT_STR(p.log, "A+ A- B+ ");
	get_lease(name, &r);
	ASSERT_STR(ks_json_str(r.body, "spec.holderIdentity"), "kt-b");
	ASSERT_EQ(ks_json_int(r.body, "spec.leaseTransitions", -1), 1);
	/* Back in touch, A sees B's renews and does not take over. */
	kt_proxy_set_mode(px, KT_PROXY_FORWARD);
	kt_run_for(&t, DURATION + 2 * PERIOD);
	ASSERT(!ks_lease_leading(a->l));
	ASSERT(ks_lease_leading(b->l));
	ASSERT_EQ(p.max_leaders, 1);
	ASSERT(!p.disagree);
	ASSERT_STR(p.log, "A+ A- B+ ");
	kt_res_clear(&r);
	pair_deinit(&p);
	kt_proxy_stop(px);
}

TEST(stalled_leader_steps_down_before_the_other_leads)
{
	cut_off_leader("t-stall", KT_PROXY_STALL, "stalled");
}

TEST(refused_leader_steps_down_before_the_other_leads)
{
	cut_off_leader("t-refuse", KT_PROXY_REFUSE, "refused");
}

TEST(vanished_leader_is_replaced_once_its_lease_expires)
{
	static struct pair p;
	struct kt_res r = { 0 };
	struct cand *a = &p.c[0], *b = &p.c[1];
	uint64_t t0;

	pair_init(&p, "t-vanish", NULL);
	ks_lease_start(a->l);
	ASSERT(kt_until(&t, leads, a, 10));
	ks_lease_start(b->l);
	kt_run_for(&t, 3 * PERIOD);
	/* A dies without a word (no release): B must wait out the lease. */
	t0 = ks_now_ns();
	ks_lease_free(a->l);
	a->l = NULL;
	p.leaders--;
	ASSERT(kt_until(&t, leads, b, 15));
	printf("# takeover after the leader vanished: %.2f s\n", since(t0, b->started_ns));
	/* Its last renew was at most a period before it vanished. */
	ASSERT(since(t0, b->started_ns) > DURATION - PERIOD - 0.1);
	ASSERT(since(t0, b->started_ns) < 15);
	get_lease("t-vanish", &r);
	ASSERT_STR(ks_json_str(r.body, "spec.holderIdentity"), "kt-b");
	ASSERT_EQ(ks_json_int(r.body, "spec.leaseTransitions", -1), 1);
	ASSERT_STR(p.log, "A+ B+ ");
	ASSERT_EQ(a->stopped, 0);
	kt_res_clear(&r);
	ks_lease_free(b->l);
	kt_run_for(&t, 0.05);
}

TEST(release_when_not_leading_writes_nothing_and_free_is_silent)
{
	static struct pair p;
	struct kt_res r = { 0 };
	struct cand *a = &p.c[0], *b = &p.c[1];
	char *rv;

	pair_init(&p, "t-quiet", NULL);
	ks_lease_start(a->l);
	ASSERT(kt_until(&t, leads, a, 10));
	ks_lease_start(b->l);
	kt_run_for(&t, 2 * PERIOD);
	ks_lease_release(b->l, on_released, b);
	ASSERT(kt_until(&t, was_released, b, 10));
	ASSERT_EQ(b->stopped, 0);
	ASSERT(ks_lease_leading(a->l));
	/* Freed mid-request, a candidate calls nothing and writes nothing. */
	ks_lease_start(b->l);
	ks_lease_free(b->l);
	ks_lease_free(a->l);
	kt_run_for(&t, PERIOD); /* a write already sent lands */
	get_lease("t-quiet", &r);
	rv = ks_xstrdup(ks_json_str(r.body, "metadata.resourceVersion"));
	kt_run_for(&t, 3 * PERIOD);
	get_lease("t-quiet", &r);
	ASSERT_STR(ks_json_str(r.body, "metadata.resourceVersion"), rv);
	ASSERT_STR(ks_json_str(r.body, "spec.holderIdentity"), "kt-a");
	ASSERT_STR(p.log, "A+ ");
	free(rv);
	kt_res_clear(&r);
}

int main(void)
{
	kt_init(&t, "KUBECONFIG");
	kt_fresh_namespace(&t, NS);
	RUN(refuses_bad_options_and_makes_an_identity);
	RUN(one_of_two_leads_and_the_lease_names_it);
	RUN(release_hands_over_to_the_other);
	RUN(release_after_a_foreign_write_reads_again_and_clears_the_holder);
	RUN(stalled_leader_steps_down_before_the_other_leads);
	RUN(refused_leader_steps_down_before_the_other_leads);
	RUN(vanished_leader_is_replaced_once_its_lease_expires);
	RUN(release_when_not_leading_writes_nothing_and_free_is_silent);
	KT_MAIN_END(&t);
}
