#pragma once
/*
 * yaml.h: YAML text to cJSON, for kubeconfig files, clouds.yaml and the output of
 * `helm template`. Scalars follow the YAML 1.2 core schema that Kubernetes' sigs.k8s.io/yaml
 * uses in practice: plain null/~/true/false/ints/floats become JSON values, quoted
 * scalars and everything else stay strings; tags !!str/!!int/!!bool/!!float/!!null are
 * honoured; anchors and aliases are expanded (with a cap so a "billion laughs" document
 * fails instead of eating memory); mapping keys are always strings.
 */
#include <stddef.h>

#include <cJSON.h>

/*
 * Parse every document in text[0..len) into a cJSON array, one element per non-empty
 * document. Returns the array, which the caller frees with cJSON_Delete, or NULL on a
 * syntax error or a document past the limits, with *err set to a one-line message
 * ("line L column C: <problem>") that the caller frees.
 */
cJSON *ks_yaml_parse_all(const char *text, size_t len, char **err);

/*
 * Parse a text that must hold exactly one document (an empty text is an error).
 * Returns it, or NULL with *err as for ks_yaml_parse_all.
 */
cJSON *ks_yaml_parse(const char *text, size_t len, char **err);
