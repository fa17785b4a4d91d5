// fuzz-units: host/watch.c host/kube.c host/http.c host/curl_uv.c host/cache.c
// fuzz-units: host/cache_index.c host/map.c host/netguard.c
// fuzz-units: host/json.c
// fuzz-units: host/ks.c host/log.c host/kubeconfig.c host/yaml.c
/* fuzz_watch.c: the watch-stream decoder, fed the input in two pieces. */
#include <stdlib.h>

#include "watch.h"

static void on_ev(enum ks_watch_type type, cJSON *obj, void *data)
{
	(void)type;
	(void)data;
	(void)obj;
}

int LLVMFuzzerTestOneInput(const unsigned char *p, size_t n)
{
	struct ks_watch_decoder d;
	size_t cut = n ? p[0] % (n + 1) : 0;
	char *err = NULL;

	ks_watch_decoder_init(&d, 4096);
	if (ks_watch_decode(&d, (const char *)p, cut, on_ev, NULL, &err) == 0)
		ks_watch_decode(&d, (const char *)p + cut, n - cut, on_ev, NULL, &err);
	free(err);
	ks_watch_decoder_deinit(&d);
	return 0;
}
