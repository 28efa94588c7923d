/*
 * rules_config.c - the alert rules' settings (rules.h: rules_config_*):
 * the catalogue's defaults, [rule.R] for every site, [site.S.rule.R] for
 * one site, and the clock step. Built once at start, read-only after; the
 * engine (rules.c) reads them through rules_config_get and
 * rules_config_clock_step (rules_int.h).
 */
#include "rules_int.h"

#include "sitepulse/grow.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* A site's own setting; allocated one by one so pointers handed out stay valid. */
struct site_setting {
	struct rule_setting s;
	char site[];
};

struct rules_config {
	struct rule_setting global[RULE_COUNT];
	int64_t clock_step_ms; /* rules_config_set_clock_step */
	struct site_setting **sites[RULE_COUNT]; /* per rule, sorted by site for bsearch */
	size_t nsites[RULE_COUNT], sites_cap[RULE_COUNT];
};

struct rules_config *rules_config_create(void)
{
	struct rules_config *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	for (int r = 0; r < RULE_COUNT; r++)
		rule_defaults((enum rule_id)r, &c->global[r]);
	c->clock_step_ms = RULES_CLOCK_STEP_S_DEFAULT * 1000;
	return c;
}

void rules_config_set_clock_step(struct rules_config *c, int64_t ms)
{
	assert(ms >= 1);
	c->clock_step_ms = ms;
}

int64_t rules_config_clock_step(const struct rules_config *c)
{
	return c->clock_step_ms;
}

void rules_config_destroy(struct rules_config *c)
{
	if (c == NULL)
		return;
	for (int r = 0; r < RULE_COUNT; r++) {
		for (size_t i = 0; i < c->nsites[r]; i++)
			free(c->sites[r][i]);
		free(c->sites[r]);
	}
	free(c);
}

struct rule_setting *rules_config_global(struct rules_config *c, enum rule_id r)
{
	assert((unsigned)r < RULE_COUNT);
	return &c->global[r];
}

/* Index of site among rule r's overrides, or where it would go (*found false). */
static size_t site_slot(const struct rules_config *c, enum rule_id r, const char *site, bool *found)
{
	size_t lo = 0, hi = c->nsites[r];
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = strcmp(c->sites[r][mid]->site, site);
		if (cmp == 0) {
			*found = true;
			return mid;
		}
		if (cmp < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = false;
	return lo;
}

struct rule_setting *rules_config_site(struct rules_config *c, const char *site, enum rule_id r)
{
	assert((unsigned)r < RULE_COUNT && site != NULL);
	bool found;
	size_t at = site_slot(c, r, site, &found);
	if (found)
		return &c->sites[r][at]->s;
	size_t len = strlen(site);
	struct site_setting *o = malloc(sizeof(*o) + len + 1);
	if (o == NULL)
		return NULL;
	struct site_setting **arr =
		sp_grow(c->sites[r], &c->sites_cap[r], c->nsites[r] + 1, sizeof(*arr), 8);
	if (arr == NULL) {
		free(o);
		return NULL;
	}
	c->sites[r] = arr;
	o->s = c->global[r];
	memcpy(o->site, site, len + 1);
	memmove(&arr[at + 1], &arr[at], (c->nsites[r] - at) * sizeof(*arr));
	arr[at] = o;
	c->nsites[r]++;
	return &o->s;
}

const struct rule_setting *rules_config_get(const struct rules_config *c, const char *site,
					    enum rule_id r)
{
	assert((unsigned)r < RULE_COUNT);
	bool found = false;
	size_t at = 0;
	if (site != NULL && c->nsites[r] > 0)
		at = site_slot(c, r, site, &found);
	return found ? &c->sites[r][at]->s : &c->global[r];
}
