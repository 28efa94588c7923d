/*
 * test_slotindex.c - the shared slot numbers and hash index: slots found by
 * hash, equal hashes all yielded, release from any place in a chain, a
 * released slot claimed again before a new one (the array stays at its
 * high-water mark), growth keeping every slot, clear, reserve, and the
 * refusals. A model array says which slots should be indexed under which
 * hash.
 */
#include "harness.h"

#include "sitepulse/error.h"
#include "sitepulse/slotindex.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define NSLOTS 5000

/* The slots indexed under hash h, as a bitmap over [0, NSLOTS); their count. */
static int collect(const struct sp_slotindex *x, uint32_t h, bool *seen)
{
	memset(seen, 0, NSLOTS * sizeof(*seen));
	int n = 0;
	for (int32_t i = sp_slotindex_first(x, h); i >= 0; i = sp_slotindex_next(x, i)) {
		CHECK(i < NSLOTS);
		if (i >= NSLOTS)
			return -1;
		CHECK(!seen[i]); /* each slot once */
		seen[i] = true;
		n++;
	}
	return n;
}

static void test_find_claim_release(void)
{
	struct sp_slotindex x;
	CHECK_EQ_INT(sp_slotindex_init(&x, 1), 0);
	CHECK_EQ_INT(x.nheads, 16); /* the smallest */
	CHECK_EQ_INT(sp_slotindex_first(&x, 7), -1);
	CHECK_EQ_INT(sp_slotindex_peek(&x), 0);

	/* three slots under one hash, one under another that shares its chain head */
	CHECK_EQ_INT(sp_slotindex_claim(&x, 7), 0);
	CHECK_EQ_INT(sp_slotindex_claim(&x, 7), 1);
	CHECK_EQ_INT(sp_slotindex_claim(&x, 7 + 16), 2);
	CHECK_EQ_INT(sp_slotindex_claim(&x, 7), 3);
	CHECK_EQ_INT(x.count, 4);
	CHECK_EQ_INT(x.high, 4);

	bool seen[NSLOTS];
	CHECK_EQ_INT(collect(&x, 7, seen), 3);
	CHECK(seen[0] && seen[1] && seen[3] && !seen[2]);
	CHECK_EQ_INT(collect(&x, 7 + 16, seen), 1);
	CHECK(seen[2]);
	CHECK_EQ_INT(sp_slotindex_first(&x, 8), -1);

	/* the chain is 3, 2, 1, 0: out of its middle, then its end, then its head */
	sp_slotindex_release(&x, 1);
	CHECK_EQ_INT(collect(&x, 7, seen), 2);
	CHECK(seen[0] && seen[3] && !seen[1]);
	sp_slotindex_release(&x, 0);
	sp_slotindex_release(&x, 3);
	CHECK_EQ_INT(sp_slotindex_first(&x, 7), -1);
	CHECK_EQ_INT(sp_slotindex_first(&x, 7 + 16), 2);
	CHECK_EQ_INT(x.count, 1);

	/* released slots are claimed again, the last released first, before a new one */
	CHECK_EQ_INT(sp_slotindex_peek(&x), 3);
	CHECK_EQ_INT(sp_slotindex_claim(&x, 42), 3);
	CHECK_EQ_INT(sp_slotindex_first(&x, 42), 3);
	CHECK_EQ_INT(sp_slotindex_claim(&x, 42), 0);
	CHECK_EQ_INT(collect(&x, 42, seen), 2);
	CHECK(seen[0] && seen[3]);
	CHECK_EQ_INT(sp_slotindex_claim(&x, 9), 1);
	CHECK_EQ_INT(x.high, 4); /* no new slot while released ones waited */
	CHECK_EQ_INT(sp_slotindex_peek(&x), 4);
	CHECK_EQ_INT(sp_slotindex_claim(&x, 9), 4);
	CHECK_EQ_INT(x.count, 5);
	CHECK_EQ_INT(x.high, 5);
	sp_slotindex_free(&x);
}

/* Many slots, many collisions, growth and churn against a model. */
static void test_growth_and_churn_against_a_model(void)
{
	struct sp_slotindex x;
	CHECK_EQ_INT(sp_slotindex_init(&x, 16), 0);
	static int64_t model[NSLOTS]; /* the slot's hash, or -1 when not indexed */
	for (int i = 0; i < NSLOTS; i++)
		model[i] = -1;
	uint64_t rnd = 0x2545f4914f6cdd1dULL;
	size_t count = 0, most = 0;
	int reused_bad = 0, new_bad = 0;
	for (int step = 0; step < 40000; step++) {
		rnd ^= rnd << 13;
		rnd ^= rnd >> 7;
		rnd ^= rnd << 17;
		if (count < 4000 && (step % 3 || count == 0)) {
			/* few distinct hashes: long runs of equal ones in a chain */
			uint32_t h = sp_hash_id((int64_t)(rnd >> 40) % 700);
			int32_t high = x.high;
			int32_t slot = sp_slotindex_claim(&x, h);
			CHECK(slot >= 0 && slot < NSLOTS);
			if (slot < 0 || slot >= NSLOTS)
				break;
			if (model[slot] >= 0)
				reused_bad++; /* an indexed slot handed out again */
			if (slot == high && (size_t)high != count)
				new_bad++; /* a new slot while released ones waited */
			model[slot] = h;
			if (++count > most)
				most = count;
		} else {
			int slot = (int)(rnd % (uint64_t)x.high);
			if (model[slot] < 0)
				continue;
			sp_slotindex_release(&x, slot);
			model[slot] = -1;
			count--;
		}
	}
	CHECK_EQ_INT(reused_bad, 0);
	CHECK_EQ_INT(new_bad, 0);
	CHECK_EQ_INT(x.count, count);
	CHECK_EQ_INT(x.high, most); /* the high-water mark of slots in use */
	CHECK(x.nheads >= count); /* grown to a load factor of at most 1 */
	CHECK((x.nheads & (x.nheads - 1)) == 0);

	/* every indexed slot is found under its hash, and nothing else is */
	static bool seen[NSLOTS];
	int failures = 0;
	for (int i = 0; i < NSLOTS; i++) {
		if (model[i] < 0)
			continue;
		collect(&x, (uint32_t)model[i], seen);
		for (int j = 0; j < NSLOTS; j++)
			if (seen[j] != (model[j] == model[i]))
				failures++;
	}
	CHECK_EQ_INT(failures, 0);

	/* clear: nothing indexed or released, the memory kept for the next fill */
	size_t heads = x.nheads;
	sp_slotindex_clear(&x);
	CHECK_EQ_INT(x.count, 0);
	CHECK_EQ_INT(x.high, 0);
	CHECK_EQ_INT(x.nheads, heads);
	for (int i = 0; i < NSLOTS; i++)
		if (model[i] >= 0)
			CHECK_EQ_INT(sp_slotindex_first(&x, (uint32_t)model[i]), -1);
	CHECK_EQ_INT(sp_slotindex_claim(&x, 5), 0);
	CHECK_EQ_INT(sp_slotindex_first(&x, 5), 0);
	sp_slotindex_free(&x);
}

static void test_init_sizes_and_reserve(void)
{
	struct sp_slotindex x;
	CHECK_EQ_INT(sp_slotindex_init(&x, 1000), 0);
	CHECK_EQ_INT(x.nheads, 1024); /* rounded up to a power of two */
	CHECK_EQ_INT(sp_slotindex_reserve(&x, 300), 0);
	CHECK(x.nlinks >= 300);
	struct sp_slotindex_link *links = x.links;
	for (int32_t i = 0; i < 300; i++)
		CHECK_EQ_INT(sp_slotindex_claim(&x, (uint32_t)i), i);
	CHECK(x.links == links); /* reserved: no slot below it reallocated */
	CHECK_EQ_INT(x.nheads, 1024); /* below the heads: no rehash */
	for (int32_t i = 0; i < 300; i++)
		CHECK_EQ_INT(sp_slotindex_first(&x, (uint32_t)i), i);
	/* links too large to allocate: refused, nothing changed */
	CHECK_EQ_INT(sp_slotindex_reserve(&x, SIZE_MAX / 2), SP_ENOMEM);
	CHECK(x.links == links);
	sp_slotindex_free(&x);
	CHECK(x.heads == NULL && x.links == NULL && x.count == 0 && x.high == 0);
}

/* How many of 4096 chain heads ids start*stride+1.. take, and the longest chain. */
static void spread(int64_t stride, int *distinct, int *longest)
{
	static int at_head[4096];
	memset(at_head, 0, sizeof(at_head));
	*distinct = *longest = 0;
	for (int64_t k = 0; k < 4096; k++) {
		uint32_t at = sp_hash_id(1 + k * stride) & 4095;
		if (at_head[at]++ == 0)
			(*distinct)++;
		if (at_head[at] > *longest)
			*longest = at_head[at];
	}
}

static void test_hashes_spread(void)
{
	/*
	 * Database ids, consecutive or a power of two apart (an identity hash
	 * would put the latter all on one head), spread over a table their
	 * size about as a random function would: it takes ~63 % of the heads
	 * (2,589) with chains of at most ~7.
	 */
	static const int64_t strides[] = {1, 4096, 1 << 20};
	for (size_t k = 0; k < sizeof(strides) / sizeof(strides[0]); k++) {
		int distinct, longest;
		spread(strides[k], &distinct, &longest);
		CHECK(distinct > 2048);
		CHECK(longest <= 16);
	}
	/* the string and the mix steps change the hash */
	CHECK(sp_hash_str(0, "E01") != sp_hash_str(0, "E02"));
	CHECK(sp_hash_mix(0, 1) != sp_hash_mix(0, 2));
	CHECK(sp_hash_mix(sp_hash_mix(0, 1), 2) != sp_hash_mix(sp_hash_mix(0, 2), 1));
}

int main(void)
{
	RUN(test_find_claim_release);
	RUN(test_growth_and_churn_against_a_model);
	RUN(test_init_sizes_and_reserve);
	RUN(test_hashes_spread);
	HARNESS_EXIT();
}
