// fuzz-units: host/kubeconfig.c host/yaml.c host/map.c host/json.c host/ks.c host/log.c
/* fuzz_kubeconfig.c: kubeconfig parsing: a config or a one-line error, never a crash. */
#include <stdlib.h>
#include <string.h>

#include "kubeconfig.h"

int LLVMFuzzerTestOneInput(const unsigned char *p, size_t n)
{
	struct ks_kubeconfig c;
	char *err = NULL;

	if (ks_kubeconfig_parse(&c, (const char *)p, n, "/nonexistent", NULL, &err) == 0) {
		ks_kubeconfig_deinit(&c);
	} else if (!err || strchr(err, '\n')) {
		abort(); /* an error must be one line */
	}
	free(err);
	return 0;
}
