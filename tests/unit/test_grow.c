/* test_grow.c - sp_grow: doubling, the same array when it has room, overflow refused. */
#include "harness.h"

#include "sitepulse/grow.h"

#include <stdint.h>
#include <stdlib.h>

static void test_doubles_from_first(void)
{
	int *a = NULL;
	size_t cap = 0;
	a = sp_grow(a, &cap, 1, sizeof(*a), 4);
	CHECK(a != NULL);
	CHECK_EQ_INT(cap, 4);
	for (int i = 0; i < 4; i++)
		a[i] = i;
	/* room already: the same array, capacity unchanged */
	int *same = sp_grow(a, &cap, 4, sizeof(*a), 4);
	CHECK(same == a);
	CHECK_EQ_INT(cap, 4);
	/* doubled until the need fits, contents kept */
	a = sp_grow(a, &cap, 9, sizeof(*a), 4);
	CHECK(a != NULL);
	CHECK_EQ_INT(cap, 16);
	for (int i = 0; i < 4; i++)
		CHECK_EQ_INT(a[i], i);
	free(a);
}

static void test_overflow_refused(void)
{
	char *a = NULL;
	size_t cap = 0;
	a = sp_grow(a, &cap, 2, 8, 2);
	CHECK(a != NULL);
	CHECK_EQ_INT(cap, 2);
	/* elements times size past SIZE_MAX: NULL, and the array and cap left as they were */
	CHECK(sp_grow(a, &cap, SIZE_MAX / 4, 8, 2) == NULL);
	CHECK_EQ_INT(cap, 2);
	CHECK(sp_grow(a, &cap, SIZE_MAX, 1, 2) == NULL);
	CHECK_EQ_INT(cap, 2);
	a[0] = 'x'; /* still ours (ASan would report a freed array) */
	free(a);
}

int main(void)
{
	RUN(test_doubles_from_first);
	RUN(test_overflow_refused);
	HARNESS_EXIT();
}
