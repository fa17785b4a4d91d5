#pragma once
/*
 * vet.h: hot reload's fixture check (plugin/candidate.h, a vetter) in a child process:
 * `kupenstack plugin test DIR --plugin FILE --vet` run through the host's child-process
 * runner (proc.h) with a deadline, so the fixtures run beside the operator's loop, never
 * in it. The child prints the first failure on stdout and exits 1; the verdict comes when
 * it has exited.
 */
#include "plugin/candidate.h"

/* How long a plugin's fixtures may run in the child before it is killed and the version
 * refused. */
#define KS_CMD_VET_SECONDS 120

/* The vetter `kupenstack run` passes to the loader. */
extern const struct ks_candidate_vetter ks_cmd_vetter;

/*
 * The child's side: run the fixtures of dir/fixtures against the plugin file plugin
 * (fixture/fixture.h, ks_fixture_vet) with the Lua library stdlib (NULL: none). Returns
 * 0 when they pass, 1 after printing the first failure on stdout.
 */
int ks_cmd_vet_child(const char *dir, const char *plugin, const char *stdlib);
