/*
 * mqtt_conf.h - the configuration keys of a broker login, shared by the
 * agent's and the collector's [mqtt] sections (sitepulse/conf.h tables).
 *
 * Both programs log in the same way (sitepulse/mqtt.h), so the keys, their
 * limits and their help texts are written once here. Each program keeps its
 * own uri, client_id, keepalive and window keys, whose defaults differ.
 *
 *   #define M(m) offsetof(struct prog_conf, mqtt.m) - offsetof(struct prog_conf, mqtt)
 *   static const struct sp_conf_key mqtt_keys[] = { ..., SP_CONF_MQTT_LOGIN_KEYS(M), ... };
 *
 * OFF(member) gives a member's offset in the section's struct, which must
 * have char *username, *password, *ca_file, *cert_file, *key_file and bool
 * tls_insecure.
 */
#ifndef SP_MQTT_CONF_H
#define SP_MQTT_CONF_H

#include "sitepulse/conf.h"

#define SP_CONF_MQTT_LOGIN_KEYS(OFF)                                                            \
	{"username", SP_CONF_STRING, OFF(username), "", 0, 256, NULL, 0, NULL,                   \
	 "broker user name (empty: none)"},                                                      \
	{"password", SP_CONF_STRING, OFF(password), "", 0, 256, NULL, SP_CONF_SECRET, NULL,      \
	 "broker password"},                                                                     \
	{"ca_file", SP_CONF_STRING, OFF(ca_file), "", 0, 4096, NULL, 0, NULL,                    \
	 "TLS: CA certificates (PEM) to verify the broker"},                                     \
	{"cert_file", SP_CONF_STRING, OFF(cert_file), "", 0, 4096, NULL, 0, NULL,                \
	 "TLS: client certificate (PEM)"},                                                       \
	{"key_file", SP_CONF_STRING, OFF(key_file), "", 0, 4096, NULL, 0, NULL,                  \
	 "TLS: client private key (PEM)"},                                                       \
	{"tls_insecure", SP_CONF_BOOL, OFF(tls_insecure), "false", 0, 0, NULL, 0, NULL,          \
	 "TLS: skip broker host name verification (testing only)"}

#endif
